"""Safe parsing of formulas typed by users ("exp(sin(pi*x0) + x1**2)") into sympy and torch.

Nothing is evaluated by Python: the text is parsed by `ast` and only numbers, the variables x0..x{n-1},
the constants pi and e, + - * / ** and calls of whitelisted one-argument functions are accepted;
anything else (attributes, subscripts, other names, keywords) is a ConfigError naming the part.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Callable

import sympy
import torch
from torch import Tensor

from intelligible.core.errors import ConfigError

FUNCTIONS: dict[str, tuple[Callable[[sympy.Expr], sympy.Expr], Callable[[Tensor], Tensor]]] = {
    "sin": (sympy.sin, torch.sin),
    "cos": (sympy.cos, torch.cos),
    "tan": (sympy.tan, torch.tan),
    "exp": (sympy.exp, torch.exp),
    "log": (sympy.log, torch.log),
    "sqrt": (sympy.sqrt, torch.sqrt),
    "abs": (sympy.Abs, torch.abs),
    "tanh": (sympy.tanh, torch.tanh),
    "sinh": (sympy.sinh, torch.sinh),
    "cosh": (sympy.cosh, torch.cosh),
    "arcsin": (sympy.asin, torch.asin),
    "arccos": (sympy.acos, torch.acos),
    "arctan": (sympy.atan, torch.atan),
    "arctanh": (sympy.atanh, torch.atanh),
}
CONSTANTS = {"pi": (sympy.pi, math.pi), "e": (sympy.E, math.e)}
_VARIABLE = re.compile(r"^x(\d+)$")
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}


def _describe(node: ast.AST) -> str:
    return ast.unparse(node)


def _check(node: ast.AST, n_var: int | None, seen: set[int]) -> None:
    if isinstance(node, ast.Expression):
        _check(node.body, n_var, seen)
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        _check(node.left, n_var, seen)
        _check(node.right, n_var, seen)
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        _check(node.operand, n_var, seen)
    elif isinstance(node, ast.Constant) and type(node.value) in (int, float):
        pass
    elif isinstance(node, ast.Name):
        match = _VARIABLE.match(node.id)
        if match:
            index = int(match.group(1))
            if n_var is not None and index >= n_var:
                raise ConfigError(f"variable {node.id} is out of range: the function has x0..x{n_var - 1}")
            seen.add(index)
        elif node.id not in CONSTANTS:
            raise ConfigError(
                f"unknown name {node.id!r} in the function; use x0, x1, ..., pi, e and {', '.join(FUNCTIONS)}"
            )
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise ConfigError(f"unknown function {_describe(node.func)!r}; valid: {', '.join(FUNCTIONS)}")
        if len(node.args) != 1 or node.keywords:
            raise ConfigError(f"{node.func.id}() takes exactly one argument, got {_describe(node)!r}")
        _check(node.args[0], n_var, seen)
    else:
        raise ConfigError(
            f"unsupported expression {_describe(node)!r}: only numbers, x0.., pi, e, + - * / ** and functions"
        )


class Formula:
    """A validated formula: `.sympy` (expression in symbols x0..), `.n_var`, and calling it on a
    (batch, n_var) tensor evaluates it with torch."""

    def __init__(self, text: str, n_var: int | None = None) -> None:
        try:
            tree = ast.parse(text.replace("^", "**"), mode="eval")
        except SyntaxError as error:
            raise ConfigError(f"cannot parse the function {text!r}: {error.msg}") from None
        seen: set[int] = set()
        _check(tree, n_var, seen)
        self.text = text
        self.n_var = n_var if n_var is not None else (max(seen) + 1 if seen else 1)
        self.symbols = sympy.symbols([f"x{i}" for i in range(self.n_var)])
        self._tree = tree.body
        self.sympy = self._to_sympy(self._tree)

    def _to_sympy(self, node: ast.AST) -> sympy.Expr:
        if isinstance(node, ast.BinOp):
            left, right = self._to_sympy(node.left), self._to_sympy(node.right)
            op = _BINARY[type(node.op)]
            return {
                "+": left + right,
                "-": left - right,
                "*": left * right,
                "/": left / right,
                "**": left**right,
            }[op]
        if isinstance(node, ast.UnaryOp):
            value = self._to_sympy(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Constant):
            return sympy.sympify(node.value)
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return CONSTANTS[node.id][0]
            return self.symbols[int(node.id[1:])]
        assert isinstance(node, ast.Call)
        return FUNCTIONS[node.func.id][0](self._to_sympy(node.args[0]))

    def _to_torch(self, node: ast.AST, x: Tensor) -> Tensor | float:
        if isinstance(node, ast.BinOp):
            left, right = self._to_torch(node.left, x), self._to_torch(node.right, x)
            op = _BINARY[type(node.op)]
            return {"+": lambda: left + right, "-": lambda: left - right, "*": lambda: left * right,
                    "/": lambda: left / right, "**": lambda: left**right}[op]()  # fmt: skip
        if isinstance(node, ast.UnaryOp):
            value = self._to_torch(node.operand, x)
            return -value if isinstance(node.op, ast.USub) else value
        if isinstance(node, ast.Constant):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return CONSTANTS[node.id][1]
            return x[:, int(node.id[1:])]
        assert isinstance(node, ast.Call)
        argument = self._to_torch(node.args[0], x)
        return FUNCTIONS[node.func.id][1](
            argument if isinstance(argument, Tensor) else torch.tensor(argument)
        )

    def __call__(self, x: Tensor) -> Tensor:
        value = self._to_torch(self._tree, x)
        return value if isinstance(value, Tensor) else torch.full((x.shape[0],), float(value))

    def __repr__(self) -> str:
        return f"Formula({self.text!r}, n_var={self.n_var})"


def parse_formula(text: str, n_var: int | None = None) -> Formula:
    """Validate and parse `text`; see the module docstring for what is accepted."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("the function is empty; give e.g. 'exp(sin(pi*x0) + x1**2)'")
    return Formula(text, n_var)
