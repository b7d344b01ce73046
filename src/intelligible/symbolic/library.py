"""A library of one-variable functions with torch and sympy forms and a complexity, shared by the
studies that turn learned functions into formulas (KAN, MIPS, OptPDE).

The torch forms are protected where the function has a singularity (log at 0, 1/x at 0, sqrt of a
negative number), so fitting never produces NaN; the sympy forms are the true functions. Where the
protection acts (`in_domain` is false somewhere), `sympy_form(u, protected=True)` is the sympy form
of what the torch form computes, so a formula can say exactly what a model does there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy
import torch
from torch import Tensor

from intelligible.core.errors import ConfigError

_EPS = 1e-6


def _reciprocal(x: Tensor) -> Tensor:
    return 1 / torch.where(x.abs() < _EPS, torch.full_like(x, _EPS), x)


@dataclass(frozen=True)
class SymbolicFunction:
    """A named function: torch form for fitting, sympy form for formulas, complexity for model choice."""

    name: str
    torch_fn: Callable[[Tensor], Tensor]
    sympy_fn: Callable[[sympy.Expr], sympy.Expr]
    complexity: int
    # where torch_fn equals the true function (None: everywhere), and torch_fn's own sympy form
    domain: Callable[[Tensor], Tensor] | None = None
    protected: Callable[[sympy.Expr], sympy.Expr] | None = None

    def in_domain(self, x: Tensor) -> bool:
        """True when the torch form is the true function at every value of `x` (no protection acts)."""
        return self.domain is None or bool(self.domain(x).all())

    def sympy_form(self, x: sympy.Expr, protected: bool = False) -> sympy.Expr:
        """The true function of `x`, or with `protected` what the torch form computes."""
        return self.protected(x) if protected and self.protected is not None else self.sympy_fn(x)


def _entry(
    name: str,
    torch_fn: Callable,
    sympy_fn: Callable,
    complexity: int,
    domain: Callable | None = None,
    protected: Callable | None = None,
) -> tuple[str, SymbolicFunction]:
    return name, SymbolicFunction(name, torch_fn, sympy_fn, complexity, domain, protected)


_S_EPS = sympy.Float(_EPS)


def _clip(x: sympy.Expr, low: sympy.Expr, high: sympy.Expr) -> sympy.Expr:
    return sympy.Min(sympy.Max(x, low), high)


SYMBOLIC_LIB: dict[str, SymbolicFunction] = dict(
    [
        _entry("x", lambda x: x, lambda x: x, 1),
        _entry("x^2", lambda x: x**2, lambda x: x**2, 2),
        _entry("x^3", lambda x: x**3, lambda x: x**3, 3),
        _entry("x^4", lambda x: x**4, lambda x: x**4, 3),
        _entry("x^5", lambda x: x**5, lambda x: x**5, 3),
        _entry(
            "1/x",
            _reciprocal,
            lambda x: 1 / x,
            2,
            lambda x: x.abs() >= _EPS,
            lambda x: sympy.Piecewise((1 / _S_EPS, sympy.Abs(x) < _S_EPS), (1 / x, True)),
        ),
        _entry(
            "1/x^2",
            lambda x: 1 / (x**2).clamp_min(_EPS),
            lambda x: 1 / x**2,
            2,
            lambda x: x**2 >= _EPS,
            lambda x: 1 / sympy.Max(x**2, _S_EPS),
        ),
        _entry(
            "sqrt",
            lambda x: x.clamp_min(0).sqrt(),
            sympy.sqrt,
            2,
            lambda x: x >= 0,
            lambda x: sympy.sqrt(sympy.Max(x, 0)),
        ),
        _entry(
            "x^1.5",
            lambda x: x.clamp_min(0) ** 1.5,
            lambda x: x ** sympy.Rational(3, 2),
            4,
            lambda x: x >= 0,
            lambda x: sympy.Max(x, 0) ** sympy.Rational(3, 2),
        ),
        _entry(
            "1/sqrt(x)",
            lambda x: 1 / x.clamp_min(_EPS).sqrt(),
            lambda x: 1 / sympy.sqrt(x),
            2,
            lambda x: x >= _EPS,
            lambda x: 1 / sympy.sqrt(sympy.Max(x, _S_EPS)),
        ),
        _entry("exp", torch.exp, sympy.exp, 2),
        _entry(
            "log",
            lambda x: torch.log(x.clamp_min(_EPS)),
            sympy.log,
            2,
            lambda x: x >= _EPS,
            lambda x: sympy.log(sympy.Max(x, _S_EPS)),
        ),
        _entry("abs", torch.abs, sympy.Abs, 3),
        _entry("sin", torch.sin, sympy.sin, 2),
        _entry("cos", torch.cos, sympy.cos, 2),
        _entry("tan", torch.tan, sympy.tan, 3),
        _entry("tanh", torch.tanh, sympy.tanh, 3),
        _entry("sgn", torch.sign, sympy.sign, 3),
        _entry(
            "arcsin",
            lambda x: torch.asin(x.clamp(-1, 1)),
            sympy.asin,
            4,
            lambda x: x.abs() <= 1,
            lambda x: sympy.asin(_clip(x, -1, 1)),
        ),
        _entry(
            "arccos",
            lambda x: torch.acos(x.clamp(-1, 1)),
            sympy.acos,
            4,
            lambda x: x.abs() <= 1,
            lambda x: sympy.acos(_clip(x, -1, 1)),
        ),
        _entry("arctan", torch.atan, sympy.atan, 4),
        _entry(
            "arctanh",
            lambda x: torch.atanh(x.clamp(-1 + _EPS, 1 - _EPS)),
            sympy.atanh,
            4,
            lambda x: x.abs() <= 1 - _EPS,
            lambda x: sympy.atanh(_clip(x, -1 + _S_EPS, 1 - _S_EPS)),
        ),
        _entry("gaussian", lambda x: torch.exp(-(x**2)), lambda x: sympy.exp(-(x**2)), 3),
        _entry("0", torch.zeros_like, lambda x: sympy.Integer(0), 0),
    ]
)


def get_function(name: str) -> SymbolicFunction:
    """The library entry called `name`; an unknown name is a ConfigError listing the valid ones."""
    try:
        return SYMBOLIC_LIB[name]
    except KeyError:
        raise ConfigError(f"unknown symbolic function {name!r}; valid: {', '.join(SYMBOLIC_LIB)}") from None
