"""Brute-force search for the smallest integer expression that reproduces a target, and a safe evaluator.

MIPS (Michaud et al. 2024) falls back to enumerating small programs when a state update is neither
linear nor Boolean. Expressions are built bottom-up by size (a variable or a constant has size 1;
each operator adds 1) from:

    binary   a + b, a - b, a * b, a % b  (only when b is non-zero on every row; Python's sign rule)
    unary    a + 1, a - 1, -a, abs(a), int(a > 0), int(a == 0)
    binary   min(a, b), max(a, b) (beyond the paper's set)

Each candidate is evaluated on all distinct input rows at once (int64 numpy arrays). Candidates with
the same values are interchangeable, so only the first (smallest) of each value vector is kept,
identified by a 64-bit hash of its values; this keeps the search to thousands of expressions where
the syntax would give millions. Values beyond +-2^31 are dropped so that no product overflows int64.

The returned string is parenthesised Python, exact on ints; `int(...)` does not accept numpy
arrays, so use `evaluate_expression` to run it on arrays.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence

import numpy as np

from intelligible.core.errors import ConfigError, DataError
from intelligible.symbolic.integer_regression import as_integer_array, check_names

# Python precedence of the text of a candidate, to parenthesise only where needed.
_SUM, _MOD, _PRODUCT, _NEGATION, _ATOM = 1, 2, 2.5, 3, 4
_LIMIT = 2**31  # |values| above this are dropped: products of two stay below 2^62
_CHUNK_ELEMENTS = 1 << 20
# Stored value vectors (all sizes together) x rows; a search that would store more stops growing
# its pool of sub-expressions (it stays correct, but may miss an answer) to bound memory (~200 MB).
_MAX_STORED_ELEMENTS = 25_000_000

_UNARY: list[tuple[Callable[[np.ndarray], np.ndarray], Callable[[str, float], tuple[str, float]]]] = [
    (lambda a: a + 1, lambda text, prec: (f"{_wrap(text, prec, _SUM)} + 1", _SUM)),
    (lambda a: a - 1, lambda text, prec: (f"{_wrap(text, prec, _SUM)} - 1", _SUM)),
    (np.negative, lambda text, prec: (f"-{_wrap(text, prec, _ATOM)}", _NEGATION)),
    (np.abs, lambda text, prec: (f"abs({text})", _ATOM)),
    (lambda a: (a > 0).astype(np.int64), lambda text, prec: (f"int({text} > 0)", _ATOM)),
    (lambda a: (a == 0).astype(np.int64), lambda text, prec: (f"int({text} == 0)", _ATOM)),
]
# symbol, numpy op, commutative, (left, right) precedence needed without parentheses, result precedence
_BINARY = [
    ("+", np.add, True, (_SUM, _SUM), _SUM),
    ("-", np.subtract, False, (_SUM, _MOD), _SUM),
    ("*", np.multiply, True, (_PRODUCT, _NEGATION), _PRODUCT),
    ("%", np.remainder, False, (_NEGATION, _NEGATION), _MOD),
    # beyond the paper's operators: running minima and maxima are otherwise out of reach at small sizes
    ("min", np.minimum, True, (0, 0), _ATOM),
    ("max", np.maximum, True, (0, 0), _ATOM),
]


def _wrap(text: str, prec: float, needed: float) -> str:
    return text if prec >= needed else f"({text})"


def _fold(values: np.ndarray, text: tuple[str, float]) -> tuple[str, float]:
    """A constant-valued expression (`3 + 1`) is written as its value (`4`); its size stays."""
    if values.min() != values.max():
        return text
    value = int(values[0])
    return str(value), (_ATOM if value >= 0 else _NEGATION)


class _Pool:
    """Every distinct value vector found so far, grouped by the size of its smallest expression."""

    def __init__(self, target: np.ndarray) -> None:
        # Random odd multipliers make the wrapped dot product a 64-bit hash of the value vector.
        rng = np.random.default_rng(0)
        self.multipliers = rng.integers(0, 2**63, size=target.shape, dtype=np.uint64) * 2 + 1
        self.target = target
        self.target_hash = int(self.hash(target[None, :])[0])
        self.seen: set[int] = set()
        self.values: dict[int, list[np.ndarray]] = {}
        self.texts: dict[int, list[tuple[str, float]]] = {}
        self.stored = 0
        self.full = False

    def hash(self, values: np.ndarray) -> np.ndarray:
        return (np.ascontiguousarray(values).view(np.uint64) * self.multipliers).sum(axis=1, dtype=np.uint64)

    def offer(
        self, size: int, values: np.ndarray, text: Callable[[int], tuple[str, float]], store: bool
    ) -> str | None:
        """Add a chunk of candidates of `size`; return the text of one that equals the target."""
        keep = (np.abs(values) <= _LIMIT).all(axis=1)
        hashes = self.hash(values)
        for index in np.flatnonzero((hashes == np.uint64(self.target_hash)) & keep):
            if np.array_equal(values[index], self.target):
                return _fold(values[index], text(int(index)))[0]
        if not store or self.full:
            return None
        unique_hashes, first = np.unique(hashes[keep], return_index=True)
        rows = np.flatnonzero(keep)[first]
        new = [i for h, i in zip(unique_hashes.tolist(), rows.tolist(), strict=True) if h not in self.seen]
        if not new:
            return None
        new.sort()  # generation order, so that among equals the earlier (simpler-looking) text wins
        self.seen.update(hashes[new].tolist())
        self.values.setdefault(size, []).append(values[new])
        constant = (values[new] == values[new, :1]).all(axis=1)
        self.texts.setdefault(size, []).extend(
            _fold(values[i], text(i)) if is_constant else text(i)
            for i, is_constant in zip(new, constant.tolist(), strict=True)
        )
        self.stored += len(new) * values.shape[1]
        self.full = self.stored > _MAX_STORED_ELEMENTS
        return None

    def level(self, size: int) -> tuple[np.ndarray, list[tuple[str, float]]]:
        """All stored value vectors of `size` as one (count, rows) array, with their texts."""
        chunks = self.values.get(size)
        if not chunks:
            return np.empty((0, len(self.target)), np.int64), []
        if len(chunks) > 1:
            self.values[size] = [np.concatenate(chunks)]  # a level is complete once it is read
        return self.values[size][0], self.texts[size]


def search_expression(
    variables: dict[str, np.ndarray],
    target: np.ndarray,
    *,
    max_size: int = 7,
    constants: Sequence[int] = (0, 1, 2, 3),
) -> str | None:
    """The smallest expression over `variables` equal to `target` on every row, or None up to `max_size`.

    max_size 0 searches nothing (None); 1 tries only the variables and constants.

    variables maps names to (rows,) integer arrays; see the module docstring for sizes and operators.
    """
    names = check_names(list(variables), len(variables))
    if not names:
        raise DataError("variables is empty; give at least one named integer array")
    if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)) or max_size < 0:
        raise ConfigError(f"max_size must be an integer >= 0, got {max_size!r}")
    target = as_integer_array(target, "target", 1)
    columns = []
    for name in names:
        column = as_integer_array(variables[name], f"variable {name!r}", 1)
        if len(column) != len(target):
            raise DataError(f"variable {name!r} has {len(column)} rows but target has {len(target)}")
        columns.append(column)
    constant_values = [int(c) for c in as_integer_array(list(constants), "constants", 1)]
    if len(target) == 0:
        raise DataError("target has no rows; give at least one observed row")
    if max_size == 0:
        return None  # a caller's way to switch the search off

    # Only distinct input rows matter; a row seen with two targets rules out every expression.
    inputs, inverse = np.unique(np.stack(columns, axis=1), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    row_target = np.zeros(len(inputs), dtype=np.int64)
    row_target[inverse] = target
    if not np.array_equal(row_target[inverse], target):
        return None
    pool = _Pool(row_target)

    leaves = [(inputs[:, j], name) for j, name in enumerate(names)]
    leaves += [(np.full(len(inputs), c, dtype=np.int64), str(c)) for c in constant_values]
    leaf_values = np.stack([values for values, _ in leaves])
    leaf_texts = [(text, _ATOM if text.lstrip("-") == text else _NEGATION) for _, text in leaves]
    found = pool.offer(1, leaf_values, lambda i: leaf_texts[i], store=max_size > 1)
    if found is not None:
        return found

    for size in range(2, max_size + 1):
        store = size < max_size  # the last size is only compared with the target
        found = _grow_unary(pool, size, store) or _grow_binary(pool, size, store)
        if found is not None:
            return found
    return None


def _grow_unary(pool: _Pool, size: int, store: bool) -> str | None:
    operands, texts = pool.level(size - 1)
    if not len(operands):
        return None
    step = max(1, _CHUNK_ELEMENTS // operands.shape[1])
    for apply, render in _UNARY:
        for start in range(0, len(operands), step):
            found = pool.offer(
                size,
                apply(operands[start : start + step]),
                lambda i, s=start, r=render: r(*texts[s + i]),
                store,
            )
            if found is not None:
                return found
    return None


def _grow_binary(pool: _Pool, size: int, store: bool) -> str | None:
    for symbol, apply, commutative, needs, result_prec in _BINARY:
        for left_size in range(1, size - 1):
            right_size = size - 1 - left_size
            if commutative and left_size > right_size:
                continue  # the mirrored pair of sizes gives the same values
            left, left_texts = pool.level(left_size)
            right, right_texts = pool.level(right_size)
            if symbol == "%":
                usable = np.flatnonzero((right != 0).all(axis=1))  # Python raises on x % 0
                right, right_texts = right[usable], [right_texts[i] for i in usable]
            if not len(left) or not len(right):
                continue
            n_right, n_rows = right.shape
            step = max(1, _CHUNK_ELEMENTS // (n_right * n_rows))
            for start in range(0, len(left), step):
                values = apply(left[start : start + step, None, :], right[None, :, :]).reshape(-1, n_rows)
                render = _BinaryText(symbol, needs, result_prec, left_texts[start:], right_texts)
                found = pool.offer(size, values, render, store)
                if found is not None:
                    return found
    return None


class _BinaryText:
    """The text of candidate `index` of a block: left operand index // n_right, right index % n_right."""

    def __init__(self, symbol: str, needs: tuple[float, float], prec: float, left: list, right: list) -> None:
        self.symbol, self.needs, self.prec, self.left, self.right = symbol, needs, prec, left, right

    def __call__(self, index: int) -> tuple[str, float]:
        left_text, left_prec = self.left[index // len(self.right)]
        right_text, right_prec = self.right[index % len(self.right)]
        if self.symbol in ("min", "max"):
            return f"{self.symbol}({left_text}, {right_text})", self.prec
        left_text = _wrap(left_text, left_prec, self.needs[0])
        return f"{left_text} {self.symbol} {_wrap(right_text, right_prec, self.needs[1])}", self.prec


# ---------------------------------------------------------------------------------------------
# Evaluating the expressions these tools write, on numpy arrays.

_BINARY_NODES: dict[type, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Mod: np.remainder,
    ast.FloorDiv: np.floor_divide,
    ast.BitXor: np.bitwise_xor,
    ast.BitAnd: np.bitwise_and,
    ast.BitOr: np.bitwise_or,
}
_COMPARE_NODES: dict[type, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}


def evaluate_expression(expression: str, variables: dict[str, np.ndarray]) -> np.ndarray:
    """Evaluate an integer expression (as written by the tools in this package) on arrays, row by row.

    Python semantics on int64 arrays: + - * % // ^ & | ~, unary -, comparisons, abs() and int().
    Nothing is executed by Python itself: the text is walked as a syntax tree, and any other
    construct is a ConfigError. Returns an int64 array with one value per row.
    """
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as error:
        raise ConfigError(f"cannot parse the expression {expression!r}: {error.msg}") from None
    arrays = {name: as_integer_array(values, f"variable {name!r}", 1) for name, values in variables.items()}
    lengths = {len(values) for values in arrays.values()}
    if len(lengths) > 1:
        raise DataError(f"variables have different numbers of rows: {sorted(lengths)}")
    n_rows = lengths.pop() if lengths else 1

    def walk(node: ast.AST) -> np.ndarray:
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_NODES:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, (ast.Mod, ast.FloorDiv)) and (np.asarray(right) == 0).any():
                raise DataError(f"{ast.unparse(node)!r} divides by zero on some row")
            return _BINARY_NODES[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd, ast.Invert)):
            operand = walk(node.operand)
            if isinstance(node.op, ast.USub):
                return np.negative(operand)
            return np.invert(operand) if isinstance(node.op, ast.Invert) else operand
        if isinstance(node, ast.Compare) and all(type(op) in _COMPARE_NODES for op in node.ops):
            result, left = None, walk(node.left)
            for op, comparator in zip(node.ops, node.comparators, strict=True):
                right = walk(comparator)
                step = _COMPARE_NODES[type(op)](left, right)
                result, left = (step if result is None else np.logical_and(result, step)), right
            return result
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("min", "max"):
            if len(node.args) != 2 or node.keywords:
                raise ConfigError(f"{node.func.id}() takes two arguments in {ast.unparse(node)!r}")
            pair = [walk(argument) for argument in node.args]
            return (np.minimum if node.func.id == "min" else np.maximum)(*pair)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("abs", "int"):
            if len(node.args) != 1 or node.keywords:
                raise ConfigError(f"{node.func.id}() takes one argument in {ast.unparse(node)!r}")
            argument = walk(node.args[0])
            return np.abs(argument) if node.func.id == "abs" else np.asarray(argument).astype(np.int64)
        if isinstance(node, ast.Name):
            if node.id not in arrays:
                raise ConfigError(f"unknown name {node.id!r} in {expression!r}; known: {', '.join(arrays)}")
            return arrays[node.id]
        if isinstance(node, ast.Constant) and type(node.value) in (int, bool):
            return np.int64(node.value)
        raise ConfigError(f"unsupported construct {ast.unparse(node)!r} in {expression!r}")

    value = np.asarray(walk(tree.body)).astype(np.int64)
    return np.broadcast_to(value, (n_rows,)).copy()
