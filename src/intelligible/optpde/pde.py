"""Evolution equations u_t = F(u, u_x, u_xx, ...), for one field or a system, typed as text or given
as coefficients over a monomial family.

Text goes through the project's bounded formula parser (`intelligible.symbolic.parse`): nothing is
evaluated by Python, and an unknown name, an unsafe construct or a formula too large is a one-line
ConfigError. The jet names (u, u_x, u_xx, ...) are mapped onto the parser's variables first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError, DataError
from intelligible.optpde.curves import Curves
from intelligible.optpde.jet import jet_symbol, max_order
from intelligible.symbolic.parse import CONSTANTS, FUNCTIONS, parse_formula

MAX_PDE_ORDER = 12
MAX_EQUATIONS = 4
_IDENTIFIER = re.compile(r"(?<![\w.])[A-Za-z_]\w*")
_LHS = re.compile(r"^\s*([A-Za-z]+)_t\s*$")
_JET = re.compile(r"^([A-Za-z]+)(?:_(x+))?$")
_PARSER_VARIABLE = re.compile(r"\bx(\d+)\b")


@dataclass
class PDE:
    """u_t = rhs[u] for each field; `rhs` may hold parameters (symbols in `params`), whose numbers
    for the numerical count are `values`."""

    fields: tuple[str, ...]
    rhs: dict[str, sympy.Expr]
    text: str
    params: dict[str, float] = field(default_factory=dict)

    @property
    def order(self) -> int:
        """The highest x-derivative on the right-hand side."""
        return max(max_order(expr, self.fields) for expr in self.rhs.values())

    def numeric_rhs(self) -> dict[str, sympy.Expr]:
        """The right-hand sides with the parameters replaced by their values."""
        values = {sympy.Symbol(name, real=True): value for name, value in self.params.items()}
        return {f: expr.subs(values) for f, expr in self.rhs.items()}

    def exact_rhs(self, at_values: bool = False) -> dict[str, sympy.Expr]:
        """The right-hand sides with decimal numbers as exact rationals (0.1 -> 1/10), for the proofs;
        parameters stay symbols unless `at_values` (then they take their values, as rationals)."""
        rhs = self.numeric_rhs() if at_values else self.rhs
        return {f: sympy.nsimplify(expr, rational=True) for f, expr in rhs.items()}

    def evaluate(self, curves: Curves) -> dict[str, np.ndarray]:
        """Each right-hand side on every curve: {field: (n_curves, n_points)}."""
        missing = [f for f in self.fields if f not in curves.jets]
        if missing:
            raise DataError(f"the curves have no samples of field(s) {', '.join(missing)}")
        if self.order > curves.max_derivative:
            raise DataError(
                f"the PDE needs derivatives up to order {self.order}; the curves hold {curves.max_derivative}"
            )
        return {f: evaluate_expression(expr, self.fields, curves) for f, expr in self.numeric_rhs().items()}

    def __str__(self) -> str:
        return "; ".join(f"{f}_t = {self.rhs[f]}" for f in self.fields)


def evaluate_expression(expr: sympy.Expr, fields: tuple[str, ...], curves: Curves) -> np.ndarray:
    """A differential expression (no free parameters) on every curve: (n_curves, n_points)."""
    variables = sorted(expr.free_symbols, key=str)
    arrays = []
    for s in variables:
        match = _JET.match(s.name)
        if not match or match.group(1) not in fields:
            raise ConfigError(f"{s.name!r} has no value: give the parameter a number")
        arrays.append(curves.jets[match.group(1)][len(match.group(2) or "")])
    shape = (curves.n_curves, len(curves.x))
    # lambdify prints a sympy tree built by the bounded parser or by our own code: whitelisted functions only
    function = sympy.lambdify(variables, expr, modules="numpy")
    with np.errstate(all="ignore"):
        values = np.broadcast_to(np.asarray(function(*arrays), dtype=float), shape)
    if not np.all(np.isfinite(values)):
        raise DataError(
            f"{shown(str(expr))} is not finite on the test curves (a log, root or division outside its "
            "domain); the count needs a right-hand side defined for all real u"
        )
    return values


def _translate(message: str, names: list[str]) -> str:
    """A parser message about x0, x1, ... rewritten with the jet names the user typed."""
    message = message.replace("x0, x1, ...", "the fields and their derivatives").replace(
        "x0..", "u, u_x, ..."
    )
    return _PARSER_VARIABLE.sub(
        lambda m: names[int(m.group(1))] if int(m.group(1)) < len(names) else m.group(0), message
    )


def _parse_rhs(text: str, fields: tuple[str, ...], params: dict[str, float]) -> sympy.Expr:
    names: list[str] = []
    used_field = False

    def substitute(match: re.Match) -> str:
        nonlocal used_field
        name = match.group(0)
        if name in FUNCTIONS or name in CONSTANTS:
            return name
        jet = _JET.match(name)
        if jet and jet.group(1) in fields:
            order = len(jet.group(2) or "")
            if order > MAX_PDE_ORDER:
                raise ConfigError(f"{shown(name, 40)}: derivatives up to order {MAX_PDE_ORDER} are supported")
            used_field = True
        elif name not in params:
            hint = ", ".join(f"{f}, {f}_x, {f}_xx" for f in fields)
            extra = f"; parameters: {', '.join(params)}" if params else ""
            raise ConfigError(
                f"unknown symbol {shown(name, 40)} in the PDE {shown(text, 60)}; use the fields and their "
                f"derivatives ({hint}, ...){extra}, numbers, pi, e and {', '.join(FUNCTIONS)}"
            )
        if name not in names:
            names.append(name)
        return f"x{names.index(name)}"

    if not text.strip():
        raise ConfigError("a right-hand side is empty; give e.g. 'u_xxx + 6*u*u_x'")
    rewritten = _IDENTIFIER.sub(substitute, text.strip())
    if not used_field:
        raise ConfigError(
            f"the right-hand side {shown(text, 60)} uses no field ({', '.join(fields)}); "
            "write it in terms of u, u_x, u_xx, ..."
        )
    try:
        formula = parse_formula(rewritten, n_var=len(names), allow_constant=True)
    except ConfigError as error:
        raise ConfigError(_translate(str(error), names).replace("the function", "the PDE")) from None
    symbols = {f"x{i}": _symbol_for(name, fields) for i, name in enumerate(names)}
    return formula.sympy.subs({s: symbols[s.name] for s in formula.sympy.free_symbols}, simultaneous=True)


def _symbol_for(name: str, fields: tuple[str, ...]) -> sympy.Symbol:
    jet = _JET.match(name)
    if jet and jet.group(1) in fields:
        return jet_symbol(jet.group(1), len(jet.group(2) or ""))
    return sympy.Symbol(name, real=True)


def parse_pde(text: str, params: dict[str, float] | None = None) -> PDE:
    """Parse 'u_xxx + 6*u*u_x' (one field, u), 'u_t = u*u_x', or a system
    'u_t = -v_xx/2 - (u**2 + v**2)*v; v_t = u_xx/2 + (u**2 + v**2)*u' (equations split by ';').

    `params` names extra symbols with their numbers for the count (the exact check keeps them
    symbolic, so a proof holds for every value)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("the PDE is empty; give e.g. 'u_xxx + 6*u*u_x' or 'u_t = u*u_x'")
    params = dict(params or {})
    for name, value in params.items():
        if (
            not (isinstance(name, str) and re.fullmatch(r"[A-Za-z]\w*", name))
            or name in FUNCTIONS
            or name in CONSTANTS
        ):
            raise ConfigError(
                f"parameter name {shown(name)} is not a plain name (or clashes with a function)"
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"parameter {name} needs a finite number, got {shown(value)}")
    parts = [part for part in re.split(r"[;\n]", text) if part.strip()]
    if len(parts) > MAX_EQUATIONS:
        raise ConfigError(f"the system has {len(parts)} equations; at most {MAX_EQUATIONS} are supported")
    with_lhs = [part.count("=") for part in parts]
    if any(n > 1 for n in with_lhs) or (any(with_lhs) and not all(with_lhs)):
        raise ConfigError(
            f"cannot read the PDE {shown(text, 60)}: write one right-hand side ('u_xxx + 6*u*u_x') or "
            "equations 'u_t = ...; v_t = ...', each with one '='"
        )
    if not any(with_lhs):
        if len(parts) > 1:
            raise ConfigError("a system needs its equations named: 'u_t = ...; v_t = ...'")
        fields, sides = ("u",), [parts[0]]
    else:
        fields_list, sides = [], []
        for part in parts:
            left, right = part.split("=")
            match = _LHS.match(left)
            if not match:
                raise ConfigError(
                    f"the left-hand side {shown(left.strip(), 40)} must be a time derivative like u_t"
                )
            if match.group(1) in fields_list:
                raise ConfigError(f"{match.group(1)}_t is given twice")
            fields_list.append(match.group(1))
            sides.append(right)
        fields = tuple(fields_list)
    clash = [name for name in params if name in fields]
    if clash:
        raise ConfigError(f"parameter {clash[0]!r} has the name of a field")
    rhs = {f: _parse_rhs(side, fields, params) for f, side in zip(fields, sides)}
    return PDE(fields, rhs, text.strip(), params)


def pde_from_coefficients(
    coefficients: Sequence[float], family: Sequence[sympy.Expr], fields: tuple[str, ...] = ("u",)
) -> PDE:
    """u_t = sum_k coefficients[k] * family[k] (one field)."""
    values = np.asarray(coefficients, dtype=float)
    if values.ndim != 1 or len(values) != len(family):
        raise ConfigError(
            f"need {len(family)} coefficients (one per family member), got shape {values.shape}"
        )
    if not np.all(np.isfinite(values)):
        raise ConfigError("the coefficients hold NaN or infinite values; give finite numbers")
    if not np.any(values):
        raise ConfigError("all coefficients are zero: u_t = 0 conserves everything; give a nonzero vector")
    if len(fields) != 1:
        raise ConfigError("a coefficient vector describes one field's equation")
    rhs = sympy.Add(*[sympy.Float(c) * m for c, m in zip(values, family) if c != 0])
    return PDE(fields, {fields[0]: rhs}, str(rhs))


def family_monomials(degree: int = 3, order: int = 3, exclude: Sequence[str] = ("u_x",)) -> list[sympy.Expr]:
    """The search family: monomials of degree 1..`degree` in u and its derivatives up to `order`,
    without `exclude` (u_x alone is a shift of frame). The paper's 33: degree 3, order 3, no u_x."""
    from intelligible.optpde.basis import monomials

    removed = {str(e).replace(" ", "") for e in exclude}
    return [m for m in monomials(("u",), degree, order) if str(m).replace(" ", "") not in removed]
