"""Safe parsing of formulas typed by users ("exp(sin(pi*x0) + x1**2)") into sympy and torch.

Nothing is evaluated by Python: the text is parsed by `ast` and only numbers, the variables x0..x{n-1},
the constants pi and e, + - * / ** and calls of whitelisted one-argument functions are accepted;
anything else (attributes, subscripts, other names, keywords) is a ConfigError naming the part.

The work a formula may ask for is bounded before anything is evaluated: the length of the text, the
size and nesting depth of the expression, and the size of constant exponents (sympy would otherwise
compute `9**999999999` exactly, for ever). Constant parts are then checked with float arithmetic,
so `1/0`, `log(0)`, `2**10000` or `(-8)**(1/3)` are refused with a one-line ConfigError, and a
formula without any variable (`sin(1)`) is refused unless the caller allows constants.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable

import sympy
import torch
from torch import Tensor

from intelligible.core.config import shown
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
# float versions, for checking the constant parts of a formula before sympy or torch sees them
_MATH: dict[str, Callable[[float], float]] = {
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "exp": math.exp, "log": math.log,
    "sqrt": math.sqrt, "abs": math.fabs, "tanh": math.tanh, "sinh": math.sinh, "cosh": math.cosh,
    "arcsin": math.asin, "arccos": math.acos, "arctan": math.atan, "arctanh": math.atanh,
}  # fmt: skip
CONSTANTS = {"pi": (sympy.pi, math.pi), "e": (sympy.E, math.e)}
_VARIABLE = re.compile(r"^x(\d+)$")
_BINARY = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**"}
_FLOAT_OPS: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "**": operator.pow,
}  # fmt: skip

# Bounds on what a formula may ask for. Real formulas (the Feynman equations, special functions)
# are far inside them; beyond them sympy and the recursive walks below get slow or overflow the stack.
MAX_LENGTH = 1000  # characters of text
MAX_NODES = 400  # numbers, names, operations and calls in the expression
MAX_DEPTH = 100  # nesting; a chain of n additions nests n deep
MAX_EXPONENT = 100  # absolute value of a constant exponent
_EXACT_LIMIT = 2.0**53  # constants larger than this are kept as floats in sympy
_MAX_VARIABLE = 10_000  # x10000 and beyond: surely a typo


def _describe(node: ast.AST) -> str:
    """The source of `node`, quoted and cut to a readable length."""
    text = ast.unparse(node)
    return repr(text) if len(text) <= 60 else repr(f"{text[:45]}...") + f" ({len(text)} chars)"


def _measure(tree: ast.AST) -> None:
    """Refuse expressions with too many parts or nested too deeply (an explicit stack: no recursion)."""
    nodes, deepest = 0, 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            nodes += 1
            deepest = max(deepest, depth)
            if nodes > MAX_NODES:
                raise ConfigError(
                    f"the function has more than {MAX_NODES} numbers, variables and operations; "
                    "give a shorter formula"
                )
            if deepest > MAX_DEPTH:
                raise ConfigError(
                    f"the function nests more than {MAX_DEPTH} operations deep; give a simpler formula"
                )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


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
            if index >= _MAX_VARIABLE:
                raise ConfigError(f"variable {node.id} is out of range: at most x{_MAX_VARIABLE - 1}")
            seen.add(index)
        elif node.id not in CONSTANTS:
            raise ConfigError(
                f"unknown name {shown(node.id, 40)} in the function; use x0, x1, ..., pi, e and "
                f"{', '.join(FUNCTIONS)}"
            )
    elif isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise ConfigError(f"unknown function {_describe(node.func)}; valid: {', '.join(FUNCTIONS)}")
        if len(node.args) != 1 or node.keywords:
            raise ConfigError(f"{node.func.id}() takes exactly one argument, got {_describe(node)}")
        _check(node.args[0], n_var, seen)
    else:
        raise ConfigError(
            f"unsupported expression {_describe(node)}: only numbers, x0.., pi, e, + - * / ** and functions"
        )


def _constant_value(node: ast.AST, values: dict[int, float] | None = None) -> float | None:
    """The value of `node` if it uses no variable (None otherwise), computed in floats.

    Refuses, with a ConfigError naming the part, a constant exponent beyond MAX_EXPONENT, a division
    by zero, a function outside its domain, a complex number and an overflow: all of them before
    sympy (which would compute huge powers exactly) or torch sees the formula. With `values`, the
    value of every constant node is kept there under `id(node)`.
    """
    value = _fold(node, {} if values is None else values)
    if value is not None and values is not None:
        values[id(node)] = value
    return value


def _fold(node: ast.AST, values: dict[int, float]) -> float | None:
    if isinstance(node, ast.Constant):
        try:
            return _finite(float(node.value), node)
        except OverflowError:  # an integer literal beyond the float range
            raise ConfigError(f"{_describe(node)} is too large to compute") from None
    if isinstance(node, ast.Name):
        return CONSTANTS[node.id][1] if node.id in CONSTANTS else None
    if isinstance(node, ast.UnaryOp):
        value = _constant_value(node.operand, values)
        return None if value is None else (-value if isinstance(node.op, ast.USub) else value)
    if isinstance(node, ast.Call):
        argument = _constant_value(node.args[0], values)
        if argument is None:
            return None
        name = node.func.id  # type: ignore[attr-defined]  # _check allowed only plain names
        try:
            return _finite(_MATH[name](argument), node)
        except ValueError:
            raise ConfigError(f"{_describe(node)} is undefined: {name} of {argument:.6g}") from None
        except OverflowError:
            raise ConfigError(f"{_describe(node)} is too large to compute") from None
    assert isinstance(node, ast.BinOp)
    left, right = _constant_value(node.left, values), _constant_value(node.right, values)
    op = _BINARY[type(node.op)]
    if op == "**" and right is not None and abs(right) > MAX_EXPONENT:
        raise ConfigError(
            f"the exponent in {_describe(node)} is too large ({right:.6g}); constant exponents must be "
            f"at most {MAX_EXPONENT} in absolute value"
        )
    if op == "/" and right == 0:
        raise ConfigError(f"division by zero in {_describe(node)}")
    if left is None or right is None:
        return None
    try:
        value = _FLOAT_OPS[op](left, right)
    except ZeroDivisionError:
        raise ConfigError(f"{_describe(node)} is undefined (zero to a negative power)") from None
    except OverflowError:
        raise ConfigError(f"{_describe(node)} is too large to compute") from None
    if isinstance(value, complex):  # Python's float power of a negative base: a complex number
        raise ConfigError(f"{_describe(node)} is not a real number (a negative number to a fractional power)")
    return _finite(value, node)


def _finite(value: float, node: ast.AST) -> float:
    if not math.isfinite(value):
        raise ConfigError(f"{_describe(node)} is too large to compute (it overflows to infinity)")
    return value


class Formula:
    """A validated formula: `.sympy` (expression in symbols x0..), `.n_var`, and calling it on a
    (batch, n_var) tensor evaluates it with torch."""

    def __init__(self, text: str, n_var: int | None = None, *, allow_constant: bool = False) -> None:
        if n_var is not None and (isinstance(n_var, bool) or not isinstance(n_var, int) or n_var < 1):
            raise ConfigError(f"n_var must be an integer >= 1, got {shown(n_var)}")
        if len(text) > MAX_LENGTH:
            raise ConfigError(
                f"the function is {len(text)} characters long; at most {MAX_LENGTH} are accepted"
            )
        try:
            tree = ast.parse(text.replace("^", "**"), mode="eval")
        except SyntaxError as error:
            raise ConfigError(f"cannot parse the function {shown(text)}: {error.msg}") from None
        except (RecursionError, MemoryError, ValueError):
            raise ConfigError(f"cannot parse the function {shown(text)}: it is nested too deeply") from None
        _measure(tree)
        seen: set[int] = set()
        _check(tree, n_var, seen)
        self._constants: dict[int, float] = {}
        constant = _constant_value(tree.body, self._constants)
        if constant is not None and not allow_constant:
            raise ConfigError(
                f"the function {shown(text)} uses no input variable (it is the constant {constant:.6g}); "
                "write it in terms of x0, x1, ..."
            )
        self.text = text
        self.n_var = n_var if n_var is not None else (max(seen) + 1 if seen else 1)
        self.symbols = sympy.symbols([f"x{i}" for i in range(self.n_var)])
        self._tree = tree.body
        self.sympy = self._to_sympy(self._tree)

    def _to_sympy(self, node: ast.AST) -> sympy.Expr:
        value = self._constants.get(id(node))
        if value is not None and abs(value) > _EXACT_LIMIT:
            # beyond 2**53 floats are not exact anyway; exact sympy integers this large make roots and
            # powers of them slow (sympy factors them)
            return sympy.Float(value)
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
            argument if isinstance(argument, Tensor) else torch.tensor(argument, dtype=x.dtype)
        )

    def __call__(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] < self.n_var:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ConfigError(f"the function needs input of shape (batch, {self.n_var}), got {shape}")
        value = self._to_torch(self._tree, x)
        if isinstance(value, Tensor):
            return value.expand(x.shape[0]) if value.dim() == 0 else value
        return torch.full((x.shape[0],), float(value), dtype=x.dtype)

    def __repr__(self) -> str:
        return f"Formula({shown(self.text)}, n_var={self.n_var})"


def parse_formula(text: str, n_var: int | None = None, *, allow_constant: bool = False) -> Formula:
    """Validate and parse `text`; see the module docstring for what is accepted.

    A formula that uses no variable is refused unless `allow_constant` (it is almost always a
    mistake in a function to fit: `sin(1)` for `sin(x1)`).
    """
    if not isinstance(text, str) or not text.strip():
        raise ConfigError("the function is empty; give e.g. 'exp(sin(pi*x0) + x1**2)'")
    return Formula(text, n_var, allow_constant=allow_constant)
