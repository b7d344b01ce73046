"""Exact integer regression: turn a table of integers into `a . x + b`, `(a . x + b) % m` or `(a . x + b) // m`.

MIPS (Michaud et al. 2024) reads each state update and output of a distilled RNN off a table of
observed (variables -> target) rows. Most of them are integer-linear, modular (parity, digit sums)
or floor divisions (carries). A fit must hold on *every* row, so each candidate is verified in
integer arithmetic; floating point only proposes candidates.

Search order, first hit wins: linear, then `% m` for m = 2..16, then `// m` for m = 2..16 (smallest
m first). Within a form, fewer non-zero coefficients first, then smaller coefficients. The modular and
floor searches are exhaustive over small coefficients (`% m`: every residue; `// m`: |a| <= m) up to a
fixed amount of work per modulus; a table that needs more gets None rather than a slow answer.
"""

from __future__ import annotations

import itertools
import keyword
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from intelligible.core.errors import DataError

MODULI = range(2, 17)
# Element operations allowed per (form, modulus) in the small-coefficient searches: ~0.1 s of numpy.
_SEARCH_BUDGET = 20_000_000
# Candidate coefficient vectors evaluated at once (times the number of distinct rows).
_CHUNK_ELEMENTS = 1 << 20
# Column subsets tried when the design is rank-deficient, before settling for a greedy column basis.
_MAX_SUBSETS = 4096


def as_integer_array(values: object, label: str, ndim: int) -> np.ndarray:
    """`values` as an int64 array of `ndim` dimensions, or a DataError naming what is wrong.

    Floats are accepted when every value is a whole number (hidden states rounded by a caller often
    arrive as floats); bools count as 0/1.
    """
    array = np.asarray(values)
    if array.ndim != ndim:
        shape = "(rows, variables)" if ndim == 2 else "(rows,)"
        raise DataError(f"{label} must be {ndim}-D with shape {shape}, got shape {array.shape}")
    if array.size and array.dtype.kind not in "biuf":
        raise DataError(f"{label} has dtype {array.dtype}; give an integer array")
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(
                f"{label} holds non-integer value {array[where].item()!r} at index {where}; give integer arrays"
            )
        if array.size and np.abs(array).max() >= 2**62:
            raise DataError(f"{label} holds {np.abs(array).max().item()!r}, too large for int64 arithmetic")
    if array.dtype.kind == "u" and array.size and array.max() >= 2**62:
        raise DataError(f"{label} holds {array.max().item()!r}, too large for int64 arithmetic")
    return array.astype(np.int64)


def check_names(names: Sequence[str], n_columns: int) -> list[str]:
    """The names as a list, or a DataError: one distinct Python identifier per column."""
    names = list(names)
    if len(names) != n_columns:
        raise DataError(f"names has {len(names)} entries {names} but X has {n_columns} columns")
    for name in names:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
            raise DataError(f"name {name!r} is not a Python identifier; expressions need names like x0, s1")
    if len(set(names)) != len(names):
        duplicate = next(name for name in names if names.count(name) > 1)
        raise DataError(f"name {duplicate!r} appears more than once in names {names}")
    return names


def integer_table(X: object, y: object, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validate a regression table: X (rows, variables) and y (rows,) of integers, one name per column."""
    X = as_integer_array(X, "X", 2)
    y = as_integer_array(y, "y", 1)
    if X.shape[0] != y.shape[0]:
        raise DataError(f"X has {X.shape[0]} rows but y has {y.shape[0]}; give one target per row")
    if X.shape[0] == 0:
        raise DataError("X and y have no rows; give at least one observed row")
    return X, y, check_names(names, X.shape[1])


def distinct_rows(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The distinct rows of X with their targets, or None when one row of X has two different targets."""
    rows, inverse = np.unique(X, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    low = np.full(len(rows), np.iinfo(np.int64).max)
    high = np.full(len(rows), np.iinfo(np.int64).min)
    np.minimum.at(low, inverse, y)
    np.maximum.at(high, inverse, y)
    if (low != high).any():
        return None
    return rows, low


def linear_text(coefficients: dict[str, int], intercept: int) -> str:
    """`3*x0 - 2*x1 + 5`: zero terms omitted, coefficient 1 written as the bare name."""
    text = ""
    for name, coefficient in coefficients.items():
        if coefficient == 0:
            continue
        term = name if abs(coefficient) == 1 else f"{abs(coefficient)}*{name}"
        if not text:
            text = f"-{term}" if coefficient < 0 else term
        else:
            text += f" - {term}" if coefficient < 0 else f" + {term}"
    if not text:
        return str(intercept)
    if intercept:
        text += f" - {-intercept}" if intercept < 0 else f" + {intercept}"
    return text


@dataclass(frozen=True)
class IntegerFit:
    """y = (coefficients . x + intercept), then `% modulus` or `// floor_div` when one is set."""

    coefficients: dict[str, int]
    intercept: int
    modulus: int | None = None
    floor_div: int | None = None

    @property
    def expression(self) -> str:
        """A Python expression over the variable names, e.g. `(x0 + x1 + s0) % 2` or `s0 + x0 - 1`."""
        inner = linear_text(self.coefficients, self.intercept)
        divisor, operator = (self.modulus, "%") if self.modulus else (self.floor_div, "//")
        if divisor is None:
            return inner
        if not inner.lstrip("-").isidentifier() and not inner.lstrip("-").isdigit():
            inner = f"({inner})"
        return f"{inner} {operator} {divisor}"

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The fitted formula on a (rows, variables) integer table; int64 with Python's % and // signs."""
        X = as_integer_array(X, "X", 2)
        if X.shape[1] != len(self.coefficients):
            raise DataError(f"X has {X.shape[1]} columns but the fit uses {len(self.coefficients)}")
        values = X @ np.array(list(self.coefficients.values()), dtype=np.int64) + self.intercept
        if self.modulus:
            return values % self.modulus
        if self.floor_div:
            return values // self.floor_div
        return values


def fit_integer_linear(
    X: np.ndarray, y: np.ndarray, names: list[str], *, max_coef: int = 1000
) -> IntegerFit | None:
    """The simplest exact integer fit of y on X's columns, or None if no form fits every row.

    Tries `y == X @ a + b`, then `(X @ a + b) % m` and `(X @ a + b) // m` for m = 2..16 (see the module
    docstring for the order). `max_coef` bounds |a| of the linear form (the intercept is free);
    the modular and floor forms use small coefficients by construction.
    """
    X, y, names = integer_table(X, y, names)
    table = distinct_rows(X, y)
    if table is None:
        return None  # one input row with two targets: no function of X fits
    rows, targets = table

    def fit(coefficients: np.ndarray, intercept: int, **form: int) -> IntegerFit:
        return IntegerFit(dict(zip(names, (int(c) for c in coefficients))), int(intercept), **form)

    linear = _fit_linear(rows, targets, max_coef)
    if linear is not None:
        return fit(*linear)
    for modulus in MODULI:
        found = _fit_modular(rows, targets, modulus)
        if found is not None:
            return fit(*found, modulus=modulus)
    for divisor in MODULI:
        found = _fit_floor(rows, targets, divisor)
        if found is not None:
            return fit(*found, floor_div=divisor)
    return None


def _solve_on(
    rows: np.ndarray, targets: np.ndarray, columns: Sequence[int], max_coef: int
) -> tuple[np.ndarray, int] | None:
    """Least squares on `columns` plus an intercept, rounded, then verified exactly on every row."""
    design = np.column_stack([rows[:, list(columns)], np.ones(len(rows))]).astype(np.float64)
    solution = np.linalg.lstsq(design, targets.astype(np.float64), rcond=None)[0]
    if not np.isfinite(solution).all() or np.abs(solution[:-1]).max(initial=0) > max_coef + 0.5:
        return None
    rounded = np.rint(solution).astype(np.int64)
    coefficients = np.zeros(rows.shape[1], dtype=np.int64)
    coefficients[list(columns)] = rounded[:-1]
    if not np.array_equal(rows @ coefficients + rounded[-1], targets):
        return None
    return coefficients, int(rounded[-1])


def _fit_linear(rows: np.ndarray, targets: np.ndarray, max_coef: int) -> tuple[np.ndarray, int] | None:
    n_columns = rows.shape[1]
    design = np.column_stack([rows, np.ones(len(rows))]).astype(np.float64)
    rank = int(np.linalg.matrix_rank(design))
    if rank == n_columns + 1:
        # Full column rank: the solution is unique, so unused columns come out exactly zero.
        return _solve_on(rows, targets, range(n_columns), max_coef)
    # Rank-deficient (duplicated or dependent columns): many exact solutions exist, and least squares
    # returns a dense, possibly fractional one. Look for the one with the fewest non-zero coefficients.
    tried = 0
    for size in range(rank):
        for columns in itertools.combinations(range(n_columns), size):
            found = _solve_on(rows, targets, columns, max_coef)
            if found is not None:
                return found
            tried += 1
            if tried >= _MAX_SUBSETS:
                return _solve_on(rows, targets, _greedy_basis(design), max_coef)
    return None


def _greedy_basis(design: np.ndarray) -> list[int]:
    """Columns of X (the last design column is the intercept) that add rank, in order, after the intercept."""
    basis: list[int] = []
    for column in range(design.shape[1] - 1):
        candidate = [*basis, column, design.shape[1] - 1]
        if np.linalg.matrix_rank(design[:, candidate]) == len(candidate):
            basis.append(column)
    return basis


def _coefficient_grid(values: Sequence[int], size: int) -> np.ndarray:
    """Every vector of `size` coefficients from `values`, simplest first (small |a|, then few negatives)."""
    grid = np.array(list(itertools.product(values, repeat=size)), dtype=np.int64).reshape(-1, size)
    order = np.lexsort(((grid < 0).sum(axis=1), np.abs(grid).sum(axis=1)))
    return grid[order]


def _subsets(rows: np.ndarray, modulus: int | None):
    """Column subsets by increasing size, skipping columns that are constant (mod `modulus`):
    their contribution is absorbed by the intercept, so a smaller subset already covers them."""
    reduced = rows % modulus if modulus else rows
    useful = [j for j in range(rows.shape[1]) if (reduced[:, j] != reduced[0, j]).any()]
    for size in range(1, len(useful) + 1):
        for columns in itertools.combinations(useful, size):
            yield list(columns)


def _fit_modular(rows: np.ndarray, targets: np.ndarray, modulus: int) -> tuple[np.ndarray, int] | None:
    if targets.min() < 0 or targets.max() >= modulus:
        return None
    reduced = rows % modulus
    # Coefficients only matter mod m: try each residue once, written in the symmetric range (-1, not 6).
    residues = sorted(range(-((modulus - 1) // 2), modulus // 2 + 1), key=lambda a: (abs(a), a < 0))[1:]
    for columns, chunk in _coefficient_chunks(rows, _subsets(rows, modulus), residues):
        gap = (targets - chunk @ reduced[:, columns].T) % modulus  # the intercept each row asks for
        hits = np.flatnonzero((gap == gap[:, :1]).all(axis=1))
        if len(hits):
            coefficients = np.zeros(rows.shape[1], dtype=np.int64)
            coefficients[columns] = chunk[hits[0]]
            intercept = int(gap[hits[0], 0])
            return coefficients, intercept - modulus if intercept > modulus // 2 else intercept
    return None


def _fit_floor(rows: np.ndarray, targets: np.ndarray, divisor: int) -> tuple[np.ndarray, int] | None:
    values = [a for magnitude in range(1, divisor + 1) for a in (magnitude, -magnitude)]
    for columns, chunk in _coefficient_chunks(rows, _subsets(rows, None), values):
        # (v + b) // m == y  <=>  m*y - v <= b <= m*y - v + m - 1 on every row.
        need = divisor * targets - chunk @ rows[:, columns].T
        low, high = need.max(axis=1), need.min(axis=1) + divisor - 1
        hits = np.flatnonzero(low <= high)
        if len(hits):
            best = hits[0]
            coefficients = np.zeros(rows.shape[1], dtype=np.int64)
            coefficients[columns] = chunk[best]
            # The intercept nearest 0 in the allowed range keeps the expression short.
            return coefficients, int(np.clip(0, low[best], high[best]))
    return None


def _coefficient_chunks(rows: np.ndarray, subsets, values: Sequence[int]):  # noqa: ANN001, ANN202
    """(columns, block of candidate coefficient rows) over the column subsets, within the work budget."""
    work = 0
    step = max(1, _CHUNK_ELEMENTS // len(rows))
    for columns in subsets:
        grid = _coefficient_grid(values, len(columns))
        work += grid.size * len(rows)
        if work > _SEARCH_BUDGET:
            return  # the search gives up: callers return None
        for start in range(0, len(grid), step):
            yield columns, grid[start : start + step]
