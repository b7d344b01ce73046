"""Differential polynomials in the jet variables u, u_x, u_xx, ... of one or more fields.

A density rho(u, u_x, ...) has a conserved integral under u_t = F exactly when
E_u(rho) * F (summed over the fields) is a total derivative, and an expression is a total derivative
exactly when its Euler operator (variational derivative) vanishes for every field. Both facts hold
for functions that decay at the ends of the line, which is what the numerical count assumes too, so
the exact checks here prove what the numbers suggest.
"""

from __future__ import annotations

import re
from functools import cache

import sympy

_NAME = re.compile(r"^([A-Za-z]+)(?:_(x+))?$")


@cache
def jet_symbol(field: str, order: int) -> sympy.Symbol:
    """The symbol of the `order`-th x-derivative of `field`: u, u_x, u_xx, ..."""
    return sympy.Symbol(field if order == 0 else f"{field}_{'x' * order}", real=True)


def jet_name(field: str, order: int) -> str:
    """The name of `jet_symbol(field, order)` as a user types it."""
    return field if order == 0 else f"{field}_{'x' * order}"


def split_jet(symbol: sympy.Symbol, fields: tuple[str, ...]) -> tuple[str, int] | None:
    """(field, order) when `symbol` is a derivative of one of `fields`, else None (a parameter)."""
    match = _NAME.match(symbol.name)
    if not match or match.group(1) not in fields:
        return None
    return match.group(1), len(match.group(2) or "")


def max_order(expr: sympy.Expr, fields: tuple[str, ...], field: str | None = None) -> int:
    """The highest derivative of `field` (of any field when None) in `expr`; -1 when there is none."""
    orders = [
        jet[1]
        for s in expr.free_symbols
        if (jet := split_jet(s, fields)) is not None and (field is None or jet[0] == field)
    ]
    return max(orders, default=-1)


def total_derivative(expr: sympy.Expr, fields: tuple[str, ...]) -> sympy.Expr:
    """D_x of `expr` (no explicit x): sum over jet variables of d(expr)/d(u_k) * u_{k+1}."""
    result = sympy.Integer(0)
    for s in expr.free_symbols:
        jet = split_jet(s, fields)
        if jet is not None:
            result += sympy.diff(expr, s) * jet_symbol(jet[0], jet[1] + 1)
    return result


def euler(expr: sympy.Expr, field: str, fields: tuple[str, ...]) -> sympy.Expr:
    """The Euler operator (variational derivative) of `expr` with respect to `field`:
    sum_k (-D)^k d(expr)/d(field_k)."""
    expr = sympy.sympify(expr)
    jets = [s for s in expr.free_symbols if split_jet(s, fields) is not None]
    if jets and expr.is_polynomial(*jets):
        return _euler_polynomial(expr, field, fields)
    top = max_order(expr, fields, field)
    result = sympy.Integer(0)
    for k in range(top + 1):
        term = sympy.diff(expr, jet_symbol(field, k))
        for _ in range(k):
            term = -total_derivative(term, fields)
        result += term
    return sympy.expand(result)


def _euler_polynomial(expr: sympy.Expr, field: str, fields: tuple[str, ...]) -> sympy.Expr:
    """The Euler operator on polynomials (parameters in the coefficients), in sympy's Poly arithmetic,
    which is far faster than expression trees for the products the exact checks build."""
    top_all = max_order(expr, fields)
    top = max_order(expr, fields, field)
    gens = [jet_symbol(f, k) for f in fields for k in range(top_all + top + 2)]
    poly = sympy.Poly(expr, *gens)
    shifts = {
        (f, k): sympy.Poly(jet_symbol(f, k + 1), *gens) for f in fields for k in range(top_all + top + 1)
    }

    def derivative(p: sympy.Poly) -> sympy.Poly:
        result = sympy.Poly(0, *gens, domain=p.domain)
        for (f, k), shift in shifts.items():
            partial = p.diff(jet_symbol(f, k))
            if not partial.is_zero:
                result += partial * shift
        return result

    result = sympy.Poly(0, *gens, domain=poly.domain)
    for k in range(top + 1):
        term = poly.diff(jet_symbol(field, k))
        for _ in range(k):
            term = -derivative(term)
        result += term
    return sympy.expand(result.as_expr())


def is_zero(expr: sympy.Expr) -> bool:
    """Whether `expr` is identically zero (expanded; simplified when it is not a polynomial)."""
    expanded = sympy.expand(expr)
    if expanded == 0:
        return True
    if expanded.is_polynomial(*expanded.free_symbols):
        return False
    return sympy.simplify(expanded) == 0


def is_total_derivative(expr: sympy.Expr, fields: tuple[str, ...]) -> bool:
    """Whether `expr` is D_x of something: its Euler operator vanishes for every field."""
    return all(is_zero(euler(expr, field, fields)) for field in fields)


def time_derivative_density(
    density: sympy.Expr, rhs: dict[str, sympy.Expr], fields: tuple[str, ...]
) -> sympy.Expr:
    """The integrand of d/dt of the integral of `density` under u_t = rhs[u] (after integrating by
    parts): sum over fields of E_u(density) * rhs[u]."""
    return sympy.expand(sum((euler(density, f, fields) * rhs[f] for f in fields), sympy.Integer(0)))


def conserves(density: sympy.Expr, rhs: dict[str, sympy.Expr], fields: tuple[str, ...]) -> bool:
    """Exact check: the integral of `density` is constant in time for every decaying solution of
    u_t = rhs, for all values of any parameters (symbols that are not jet variables)."""
    if is_total_derivative(density, fields):
        return False  # a trivial density: its integral is zero, not a conserved quantity
    return is_total_derivative(time_derivative_density(density, rhs, fields), fields)
