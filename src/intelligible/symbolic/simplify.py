"""Reading fitted formulas: snap near-exact constants to exact numbers, and compare with a truth.

A formula distilled from a network carries float constants such as 0.99999999842 or 3.14159265546,
and degenerate ones (c * exp(b) with b != 0 where only their product matters). `snap_constants`
first expands so that such products collapse into one number, then replaces every float within
`tol` of a "nice" value (0, an integer, a half-integer, a small multiple of pi) by that exact value,
and reports how far the farthest constant had to move.
"""

from __future__ import annotations

import math

import sympy


def _nice_value(value: float, tol: float) -> sympy.Expr | None:
    candidates: list[tuple[float, sympy.Expr]] = [
        (float(round(value)), sympy.Integer(round(value))),
        (round(2 * value) / 2, sympy.Rational(round(2 * value), 2)),
    ]
    for denominator in (1, 2, 4):
        multiple = round(value * denominator / math.pi)
        if multiple:
            candidates.append(
                (multiple * math.pi / denominator, sympy.Rational(multiple, denominator) * sympy.pi)
            )
    best = min(candidates, key=lambda pair: abs(pair[0] - value))
    return best[1] if abs(best[0] - value) <= tol else None


def canonical(expr: sympy.Expr) -> sympy.Expr:
    """Expand products and powers and split exponentials of sums, so degenerate constants merge."""
    expanded = sympy.expand(expr)
    return sympy.expand(expanded, power_exp=True)


def snap_constants(expr: sympy.Expr, tol: float = 1e-3) -> tuple[sympy.Expr, float]:
    """(expression with near-nice floats made exact, largest distance moved; inf if some float stays).

    Repeats until nothing changes: snapping can make exp(0 * x) or 1.0000 * x collapse, which exposes
    new products of constants.
    """
    largest = 0.0
    current = canonical(expr)
    for _ in range(5):
        floats = current.atoms(sympy.Float)
        if not floats:
            return current, largest
        replacements = {}
        for number in floats:
            nice = _nice_value(float(number), tol)
            if nice is not None:
                replacements[number] = nice
                largest = max(largest, abs(float(number) - float(nice)))
        if not replacements:
            return current, math.inf  # a constant that is not near any nice value
        current = canonical(current.xreplace(replacements))
    return current, (largest if not current.atoms(sympy.Float) else math.inf)


def same_expression(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Whether two exact expressions are identical as functions (sympy simplification of a - b)."""
    return sympy.simplify(a - b) == 0
