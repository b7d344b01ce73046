"""Boolean formulas from truth tables with don't-cares, written as Python expressions on 0/1 ints.

MIPS turns Boolean state updates (bits of a distilled RNN) into code. Rows that were never observed
are don't-cares: any formula that is right on the observed rows is acceptable, and the readable
ones come first:

1. a constant: `0`, `1`;
2. one variable or its negation: `x0`, `1 - x0`;
3. the parity of a subset: `x0 ^ x1 ^ x2`, negated `1 - (x0 ^ x1)` (from the algebraic normal form,
   a Möbius transform, when every row was seen; by trying subsets when some were not);
4. a symmetric function of a subset (it depends only on how many of them are 1): AND `x0 & x1`,
   OR `x0 | x1`, their negations `1 - (x0 & x1)`, `1 - (x0 | x1)`, and otherwise
   `int(x0 + x1 + x2 >= 2)`, `int(... <= t)`, `int(... == t)`, `int(... != t)`;
5. a minimal sum of products (sympy's `SOPform` with the don't-cares), negated literals written
   `(1 - x1)`: `(x0 & (1 - x1)) | x2`; or the same for the complement under `1 - (...)` if shorter.

Every expression gives 0 or 1 on 0/1 Python ints. `int(...)` does not accept numpy arrays; evaluate
on arrays with `intelligible.symbolic.evaluate_expression`.
"""

from __future__ import annotations

import itertools

import numpy as np
import sympy
from sympy.logic import SOPform

from intelligible.core.errors import DataError
from intelligible.symbolic.integer_regression import integer_table

MAX_INPUTS = 30  # rows are packed into int64 codes, and complete tables beyond ~2^20 rows are rare
# Masks x rows examined by the subset searches (parity, symmetric) before giving up on that shortcut.
_SEARCH_BUDGET = 20_000_000
# SOPform's Quine-McCluskey grows fast with the number of don't-cares; list them only for small tables.
_MAX_DONTCARE_INPUTS = 8


def boolean_formula(X: np.ndarray, y: np.ndarray, names: list[str]) -> str | None:
    """A Python expression over `names` equal to y on every observed row, or None if rows contradict.

    X is (rows, inputs) of 0/1, rows may repeat and unseen rows are don't-cares; y is (rows,) of 0/1.
    See the module docstring for the forms tried, in order.
    """
    X, y, names = integer_table(X, y, names)
    for label, array in (("X", X), ("y", y)):
        bad = (array != 0) & (array != 1)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise DataError(
                f"{label} holds {array[where].item()} at index {where}; a Boolean table has only 0 and 1"
            )
    n_inputs = X.shape[1]
    if n_inputs > MAX_INPUTS:
        raise DataError(f"X has {n_inputs} inputs; boolean_formula handles at most {MAX_INPUTS}")
    # Row j's code has bit i set when input i is 1, so masks of bits select subsets of inputs.
    codes = X @ (np.int64(1) << np.arange(n_inputs, dtype=np.int64))
    codes, inverse = np.unique(codes, return_inverse=True)
    ones = np.bincount(inverse, weights=y, minlength=len(codes))
    seen = np.bincount(inverse, minlength=len(codes))
    if ((ones > 0) & (ones < seen)).any():
        return None  # the same inputs were seen with both outputs
    values = (ones > 0).astype(np.int64)

    if values.min() == values.max():
        return str(int(values[0]))
    for i, name in enumerate(names):
        bit = (codes >> i) & 1
        if np.array_equal(values, bit):
            return name
        if np.array_equal(values, 1 - bit):
            return f"1 - {name}"
    for finder in (_parity, _symmetric):
        found = finder(codes, values, names)
        if found is not None:
            return found
    return _sum_of_products(codes, values, names)


def algebraic_normal_form(truth_table: np.ndarray) -> np.ndarray:
    """The ANF of a complete truth table (length 2^p, entry k = output on the inputs whose bits are k):
    entry k of the result is 1 when the monomial of k's inputs appears in the XOR of monomials."""
    anf = np.asarray(truth_table, dtype=np.uint8).copy()
    n_inputs = int(np.log2(len(anf)))
    if len(anf) != 1 << n_inputs:
        raise DataError(f"a truth table has 2^p entries, got {len(anf)}")
    for i in range(n_inputs):
        # Möbius transform, one input at a time: f(..1..) ^= f(..0..) in place.
        view = anf.reshape(-1, 2, 1 << i)
        view[:, 1, :] ^= view[:, 0, :]
    return anf


def _parity_text(subset: list[str], negated: bool) -> str:
    text = " ^ ".join(subset)
    return f"1 - ({text})" if negated else text


def _parity(codes: np.ndarray, values: np.ndarray, names: list[str]) -> str | None:
    n_inputs = len(names)
    if len(codes) == 1 << n_inputs:
        # Complete table: the ANF is unique, and it is linear exactly when y is an affine parity.
        table = np.zeros(1 << n_inputs, dtype=np.uint8)
        table[codes] = values
        anf = algebraic_normal_form(table)
        monomials = np.flatnonzero(anf)
        if (np.bitwise_count(monomials) > 1).any():
            return None
        return _parity_text([names[i] for i in range(n_inputs) if anf[1 << i]], bool(anf[0]))
    # With don't-cares the ANF depends on how they are filled; try subsets, smallest first.
    work = 0
    for size in range(2, n_inputs + 1):
        masks = np.array(
            [sum(1 << i for i in subset) for subset in itertools.combinations(range(n_inputs), size)]
        )
        work += len(masks) * len(codes)
        if work > _SEARCH_BUDGET:
            return None
        parity = (np.bitwise_count(codes[None, :] & masks[:, None]) & 1).astype(np.int64)
        for negated in (False, True):
            hits = np.flatnonzero((parity == (values ^ negated)).all(axis=1))
            if len(hits):
                mask = int(masks[hits[0]])
                return _parity_text([names[i] for i in range(n_inputs) if mask >> i & 1], negated)
    return None


def _symmetric(codes: np.ndarray, values: np.ndarray, names: list[str]) -> str | None:
    n_inputs = len(names)
    work = 0
    for size in range(2, n_inputs + 1):
        for subset in itertools.combinations(range(n_inputs), size):
            work += len(codes)
            if work > _SEARCH_BUDGET:
                return None
            mask = sum(1 << i for i in subset)
            counts = np.bitwise_count(codes & mask).astype(np.int64)
            zero_counts, one_counts = counts[values == 0], counts[values == 1]
            if np.intersect1d(zero_counts, one_counts).size:
                continue  # not a function of the count alone
            text = _count_rule(zero_counts, one_counts, [names[i] for i in subset])
            if text is not None:
                return text
    return None


def _count_rule(zero_counts: np.ndarray, one_counts: np.ndarray, subset: list[str]) -> str | None:
    """The simplest rule on the number of ones among `subset` that separates the two sets of counts."""
    size, total = len(subset), " + ".join(subset)
    if zero_counts.max() < one_counts.min():  # y = [count >= t] for t in (max zero, min one]
        if zero_counts.max() == 0:
            return " | ".join(subset)
        if one_counts.min() == size:
            return " & ".join(subset)
        return f"int({total} >= {one_counts.min()})"
    if one_counts.max() < zero_counts.min():  # y = [count <= t] for t in [max one, min zero)
        if one_counts.max() == 0:
            return f"1 - ({' | '.join(subset)})"
        if zero_counts.min() == size:
            return f"1 - ({' & '.join(subset)})"
        return f"int({total} <= {one_counts.max()})"
    if len(np.unique(one_counts)) == 1:
        return f"int({total} == {one_counts[0]})"
    if len(np.unique(zero_counts)) == 1:
        return f"int({total} != {zero_counts[0]})"
    return None


def _render_sop(expr: sympy.Basic, names: dict[sympy.Symbol, str]) -> str:
    def literal(term: sympy.Basic) -> str:
        if isinstance(term, sympy.Not):
            return f"(1 - {names[term.args[0]]})"
        return names[term]

    def product(term: sympy.Basic) -> str:
        if isinstance(term, sympy.And):
            return " & ".join(sorted((literal(arg) for arg in term.args), key=_variable_order(names)))
        return literal(term)

    if expr is sympy.true:
        return "1"
    if expr is sympy.false:
        return "0"
    if isinstance(expr, sympy.Or):
        terms = sorted(expr.args, key=lambda term: (sympy.count_ops(term), str(term)))
        return " | ".join(f"({product(t)})" if isinstance(t, sympy.And) else product(t) for t in terms)
    text = product(expr)
    return text[1:-1] if text.startswith("(") else text  # a lone negated literal needs no parentheses


def _variable_order(names: dict[sympy.Symbol, str]):
    position = {name: index for index, name in enumerate(names.values())}
    return lambda text: position[text.strip("()").removeprefix("1 - ")]


def _sum_of_products(codes: np.ndarray, values: np.ndarray, names: list[str]) -> str:
    symbols = [sympy.Symbol(f"v{i}") for i in range(len(names))]
    symbol_names = dict(zip(symbols, names))

    def bits(code: int) -> list[int]:
        # SOPform reads the first variable as the most significant bit of an int; lists are unambiguous.
        return [(code >> i) & 1 for i in range(len(names))]

    if len(names) <= _MAX_DONTCARE_INPUTS:
        unseen = np.setdiff1d(np.arange(1 << len(names)), codes)
        dontcares = [bits(int(code)) for code in unseen]
    else:
        dontcares = []  # unseen rows then read as 0: still exact on the observed rows, maybe longer
    direct = _render_sop(
        SOPform(symbols, [bits(int(c)) for c in codes[values == 1]], dontcares), symbol_names
    )
    complement = _render_sop(
        SOPform(symbols, [bits(int(c)) for c in codes[values == 0]], dontcares), symbol_names
    )
    complement = f"1 - ({complement})"
    return complement if len(complement) < len(direct) else direct
