"""Candidate conserved densities: monomials in the jet variables, reduced modulo total derivatives.

Two densities whose difference is a total derivative have the same integral, so a basis that keeps
both (u*u_xx and u_x**2) has null vectors that mean nothing. The reduced basis keeps one monomial per
class: monomials are taken in a preferred order (low degree, low derivative order first) and kept
only when their Euler images are independent of those kept before, exactly, over the rationals.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import sympy

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError
from intelligible.optpde.jet import euler, jet_name, jet_symbol

MAX_FIELDS = 4
MAX_ORDER = 6
MAX_DEGREE = 8
# monomials in one basis: beyond this the exact reduction (sympy) and the matrix G take too long here
MAX_MONOMIALS = 400


@dataclass(frozen=True)
class Basis:
    """Candidate densities: `functions` (sympy expressions) over `fields`, with display names."""

    fields: tuple[str, ...]
    functions: tuple[sympy.Expr, ...]
    reduced: bool
    description: str

    @property
    def names(self) -> list[str]:
        """Each function as text (u_x**2, u*u_xx, ...)."""
        return [str(f) for f in self.functions]

    def __len__(self) -> int:
        return len(self.functions)


def count_monomials(n_variables: int, degree: int) -> int:
    """Monomials of degree 1..`degree` in `n_variables` variables."""
    return math.comb(n_variables + degree, degree) - 1


def check_size(fields: tuple[str, ...], degree: int, order: int) -> None:
    """Refuse a basis too large to reduce exactly and count here, saying what it would cost."""
    for name, value, top in (("degree", degree, MAX_DEGREE), ("order", order, MAX_ORDER)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "degree" else 0):
            raise ConfigError(
                f"the basis {name} must be an integer >= {1 if name == 'degree' else 0}, got {shown(value)}"
            )
        if value > top:
            raise ConfigError(
                f"a basis {name} of {value} is beyond this tool's limit of {top}: "
                f"{count_monomials(len(fields) * (order + 1), degree):,} monomials would need an exact "
                "reduction that does not finish here; use a smaller degree or order"
            )
    if not 1 <= len(fields) <= MAX_FIELDS:
        raise ConfigError(f"between 1 and {MAX_FIELDS} fields are supported, got {len(fields)}")
    n = count_monomials(len(fields) * (order + 1), degree)
    if n > MAX_MONOMIALS:
        raise ConfigError(
            f"degree {degree} and order {order} in {len(fields)} field(s) give {n:,} candidate monomials; "
            f"at most {MAX_MONOMIALS} are reduced exactly here (the reduction grows like the square of "
            f"that number, about {n * n // MAX_MONOMIALS**2 + 1}x the limit's time); use a smaller degree or order"
        )


def monomials(fields: tuple[str, ...], degree: int, order: int, min_degree: int = 1) -> list[sympy.Expr]:
    """All monomials of degree `min_degree`..`degree` in the fields and their derivatives up to `order`,
    in the preferred order: lower degree, then lower highest derivative, then lower total order."""
    check_size(fields, degree, order)
    variables = [(f, k) for f in fields for k in range(order + 1)]
    found = []
    for d in range(min_degree, degree + 1):
        for combo in itertools.combinations_with_replacement(variables, d):
            orders = [k for _, k in combo]
            key = (d, max(orders), sum(orders), [(fields.index(f), k) for f, k in combo])
            found.append((key, sympy.Mul(*[jet_symbol(f, k) for f, k in combo])))
    found.sort(key=lambda item: item[0])
    return [m for _, m in found]


def _images(functions: list[sympy.Expr], fields: tuple[str, ...]) -> list[dict]:
    """Each function's Euler images as {(field, monomial): coefficient} (exact rationals)."""
    images = []
    for f in functions:
        coefficients: dict = {}
        for field in fields:
            image = euler(f, field, fields)
            if image == 0:
                continue
            for monomial, coefficient in sympy.expand(image).as_coefficients_dict().items():
                coefficients[(field, monomial)] = coefficient
        images.append(coefficients)
    return images


def _independent(images: list[dict]) -> tuple[list[int], sympy.Matrix, list]:
    """Indices of images independent of the earlier ones (exact elimination), the full matrix and its rows."""
    keys = sorted({k for image in images for k in image}, key=str)
    index = {k: i for i, k in enumerate(keys)}
    matrix = sympy.zeros(len(keys), len(images))
    for j, image in enumerate(images):
        for k, value in image.items():
            matrix[index[k], j] = value
    if not keys:
        return [], matrix, keys
    _, pivots = matrix.rref(simplify=False)
    return list(pivots), matrix, keys


def reduced_basis(fields: tuple[str, ...] = ("u",), degree: int = 3, order: int = 2) -> Basis:
    """One monomial per class modulo total derivatives, preferring low degree and low order."""
    candidates = monomials(fields, degree, order)
    kept, _, _ = _independent(_images(candidates, fields))
    return Basis(
        fields,
        tuple(candidates[i] for i in kept),
        True,
        f"monomials of degree <= {degree} in {', '.join(fields)} and derivatives up to order {order}, "
        "reduced modulo total derivatives",
    )


def monomial_basis(fields: tuple[str, ...] = ("u",), degree: int = 3, order: int = 2) -> Basis:
    """All monomials, total derivatives included (the unreduced basis, for comparison)."""
    return Basis(
        fields,
        tuple(monomials(fields, degree, order)),
        False,
        f"all monomials of degree <= {degree} up to order {order} (not reduced)",
    )


def paper_basis() -> Basis:
    """A 13-function basis in the style of the paper's code: powers 1-3 of u, u_x, u_xx and their
    products, without reduction. Its null space holds combinations such as u*u_xx + u_x**2 = D(u*u_x)
    that conserve nothing; the reduced basis has none."""
    u, ux, uxx = (jet_symbol("u", k) for k in range(3))
    functions = (
        u,
        u**2,
        u**3,
        ux,
        ux**2,
        ux**3,
        uxx,
        uxx**2,
        uxx**3,
        u * ux,
        u * uxx,
        ux * uxx,
        u * ux * uxx,
    )
    return Basis(("u",), functions, False, "13 functions: u, u_x, u_xx to powers 1-3, and their products")


def reduce_density(density: sympy.Expr, basis: Basis) -> list[sympy.Rational]:
    """Coordinates of `density` in a reduced `basis`, modulo total derivatives (exact).

    Raises ConfigError when the density is outside the basis's span."""
    if not basis.reduced:
        raise ConfigError("reduce_density needs a reduced basis (reduced_basis(...))")
    images = _images([*basis.functions, sympy.expand(density)], basis.fields)
    keys = sorted({k for image in images for k in image}, key=str)
    matrix = sympy.Matrix([[image.get(k, 0) for image in images[:-1]] for k in keys])
    target = sympy.Matrix([images[-1].get(k, 0) for k in keys])
    if not keys:
        return [sympy.Integer(0)] * len(basis)
    try:
        solution, params = matrix.gauss_jordan_solve(target)
    except ValueError:
        raise ConfigError(
            f"{shown(str(density))} is outside the span of the basis ({basis.description})"
        ) from None
    return [sympy.nsimplify(v) for v in solution.subs({p: 0 for p in params})]


def jet_names(fields: tuple[str, ...], order: int) -> list[str]:
    """u, u_x, ..., v, v_x, ... up to `order`."""
    return [jet_name(f, k) for f in fields for k in range(order + 1)]
