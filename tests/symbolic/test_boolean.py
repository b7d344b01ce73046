"""Boolean formulas from truth tables: shortcuts (parity, thresholds, AND/OR/NOT), then sum of products."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from intelligible.core.errors import DataError
from intelligible.symbolic import algebraic_normal_form, boolean_formula, evaluate_expression


def _table(n_inputs: int) -> np.ndarray:
    return np.array(list(itertools.product([0, 1], repeat=n_inputs)))


def _check(X: np.ndarray, y: np.ndarray, names: list[str]) -> str:
    formula = boolean_formula(X, y, names)
    assert formula is not None
    np.testing.assert_array_equal(evaluate_expression(formula, dict(zip(names, X.T, strict=True))), y)
    # The text is plain Python on 0/1 ints too (int(...) included), row by row.
    for row, expected in zip(X.tolist(), y.tolist(), strict=True):
        assert eval(formula, {"__builtins__": {"int": int}}, dict(zip(names, row, strict=True))) == expected
    return formula


def test_xor_of_two_and_three_inputs():
    X2, X3 = _table(2), _table(3)
    assert _check(X2, X2[:, 0] ^ X2[:, 1], ["a", "b"]) == "a ^ b"
    assert _check(X2, 1 - (X2[:, 0] ^ X2[:, 1]), ["a", "b"]) == "1 - (a ^ b)"
    assert _check(X3, X3.sum(axis=1) % 2, ["a", "b", "c"]) == "a ^ b ^ c"


def test_parity_of_four_inputs_with_repeated_rows():
    X = np.random.default_rng(0).integers(0, 2, size=(200, 5))  # x4 is irrelevant
    assert _check(X, X[:, :4].sum(axis=1) % 2, ["x0", "x1", "x2", "x3", "x4"]) == "x0 ^ x1 ^ x2 ^ x3"


def test_majority_is_a_threshold():
    X = _table(3)
    assert _check(X, (X.sum(axis=1) >= 2).astype(int), ["a", "b", "c"]) == "int(a + b + c >= 2)"
    assert _check(X, (X.sum(axis=1) == 1).astype(int), ["a", "b", "c"]) == "int(a + b + c == 1)"


def test_and_or_not():
    X = _table(3)
    names = ["a", "b", "c"]
    assert _check(X, X[:, 0] & X[:, 2], names) == "a & c"
    assert _check(X, X[:, 0] | X[:, 1], names) == "a | b"
    assert _check(X, 1 - X[:, 1], names) == "1 - b"
    assert _check(X, X[:, 2], names) == "c"
    assert _check(X, 1 - (X[:, 0] & X[:, 1] & X[:, 2]), names) == "1 - (a & b & c)"
    assert _check(X, 1 - (X[:, 0] | X[:, 1]), names) == "1 - (a | b)"
    assert _check(X, np.ones(8, dtype=int), names) == "1"


def test_sum_of_products_uses_dont_cares():
    X = _table(3)
    names = ["a", "b", "c"]

    def f(rows: np.ndarray) -> np.ndarray:
        return (rows[:, 0] & (1 - rows[:, 1])) | (rows[:, 1] & rows[:, 2] & (1 - rows[:, 0]))

    assert _check(X, f(X), names) == "(a & (1 - b)) | ((1 - a) & b & c)"
    partial = X[:6]  # rows 110 and 111 were never seen: don't-cares
    assert _check(partial, f(partial), names) == "a | (b & c)"


def test_contradictory_rows_give_none():
    X = np.array([[0, 1], [0, 1], [1, 0]])
    assert boolean_formula(X, np.array([0, 1, 1]), ["a", "b"]) is None


def test_algebraic_normal_form():
    # AND: the single monomial x0*x1; XOR: x0 + x1; entry k is the monomial of k's bits.
    np.testing.assert_array_equal(algebraic_normal_form([0, 0, 0, 1]), [0, 0, 0, 1])
    np.testing.assert_array_equal(algebraic_normal_form([0, 1, 1, 0]), [0, 1, 1, 0])
    np.testing.assert_array_equal(algebraic_normal_form([1, 0, 0, 0]), [1, 1, 1, 1])


def test_bad_input_names_the_values():
    X = _table(2)
    with pytest.raises(DataError, match="X has 4 rows but y has 3"):
        boolean_formula(X, np.zeros(3), ["a", "b"])
    with pytest.raises(DataError, match=r"names has 1 entries \['a'\] but X has 2 columns"):
        boolean_formula(X, np.zeros(4), ["a"])
    with pytest.raises(DataError, match=r"X holds non-integer value 0.5 at index \(0, 1\)"):
        boolean_formula([[0, 0.5]], [1], ["a", "b"])
    with pytest.raises(DataError, match=r"y holds 2 at index \(3,\); a Boolean table has only 0 and 1"):
        boolean_formula(X, np.array([0, 1, 1, 2]), ["a", "b"])
