"""Exact integer regression: linear, modular and floor-division forms, recovered from planted tables."""

from __future__ import annotations

import numpy as np
import pytest

from intelligible.core.errors import DataError
from intelligible.symbolic import IntegerFit, fit_integer_linear


def _evaluate(expression: str, X: np.ndarray, names: list[str]) -> np.ndarray:
    return eval(expression, {"__builtins__": {}}, dict(zip(names, X.T, strict=True)))


def _check(X: np.ndarray, y: np.ndarray, names: list[str]) -> IntegerFit:
    fit = fit_integer_linear(X, y, names)
    assert fit is not None
    np.testing.assert_array_equal(fit.predict(X), y)
    np.testing.assert_array_equal(np.broadcast_to(_evaluate(fit.expression, X, names), y.shape), y)
    return fit


@pytest.fixture
def small_ints() -> np.ndarray:
    return np.random.default_rng(0).integers(-6, 7, size=(300, 3))


@pytest.fixture
def bits() -> np.ndarray:
    return np.random.default_rng(1).integers(0, 2, size=(200, 3))


def test_planted_linear_with_an_unused_column(small_ints):
    X = small_ints
    fit = _check(X, 3 * X[:, 0] - 2 * X[:, 1] + 5, ["x0", "x1", "x2"])
    assert fit.coefficients == {"x0": 3, "x1": -2, "x2": 0}
    assert (fit.intercept, fit.modulus, fit.floor_div) == (5, None, None)
    assert fit.expression == "3*x0 - 2*x1 + 5"


def test_linear_text_conventions(small_ints):
    X = small_ints
    assert _check(X, -X[:, 1] + 2, ["x0", "x1", "x2"]).expression == "-x1 + 2"
    assert _check(X, X[:, 2] - X[:, 0] - 1, ["x0", "x1", "x2"]).expression == "-x0 + x2 - 1"
    assert _check(X, np.full(len(X), 4), ["x0", "x1", "x2"]).expression == "4"


def test_parity_is_a_sum_mod_2(bits):
    fit = _check(bits, bits.sum(axis=1) % 2, ["x0", "x1", "s0"])
    assert fit.modulus == 2
    assert fit.expression == "(x0 + x1 + s0) % 2"


def test_carry_is_a_floor_division(bits):
    fit = _check(bits, bits.sum(axis=1) // 2, ["a", "b", "c"])
    assert fit.floor_div == 2
    assert fit.expression == "(a + b + c) // 2"


def test_smallest_modulus_that_fits():
    rng = np.random.default_rng(2)
    X = np.column_stack([rng.integers(0, 7, 400), rng.integers(0, 10, 400)])
    fit = _check(X, (X[:, 0] + X[:, 1]) % 7, ["s", "x"])
    assert fit.modulus == 7
    assert fit.expression == "(s + x) % 7"
    # Coefficients are written in the symmetric range: -1 rather than 6.
    assert _check(X, (X[:, 0] - X[:, 1] + 2) % 7, ["s", "x"]).expression == "(s - x + 2) % 7"


def test_product_is_not_linear():
    X = np.random.default_rng(3).integers(0, 6, size=(300, 2))
    assert fit_integer_linear(X, X[:, 0] * X[:, 1], ["x0", "x1"]) is None


def test_contradictory_rows_have_no_fit():
    X = np.array([[0, 1], [0, 1], [1, 1]])
    assert fit_integer_linear(X, np.array([0, 1, 2]), ["a", "b"]) is None


def test_duplicated_column_gets_the_sparsest_solution(small_ints):
    X = np.column_stack([small_ints[:, 0], small_ints[:, 0], small_ints[:, 1]])
    fit = _check(X, 2 * X[:, 0] + X[:, 2] - 1, ["a", "a_copy", "b"])
    assert sum(1 for c in fit.coefficients.values() if c) == 2
    assert fit.expression in ("2*a + b - 1", "2*a_copy + b - 1")


def test_whole_floats_are_accepted(small_ints):
    X = small_ints.astype(float)
    assert _check(X, X[:, 0] + 1.0, ["x0", "x1", "x2"]).expression == "x0 + 1"


def test_max_coef_bounds_the_linear_coefficients(small_ints):
    X = small_ints
    assert fit_integer_linear(X, 50 * X[:, 0], ["x0", "x1", "x2"], max_coef=10) is None


def test_bad_input_names_the_values():
    X = np.zeros((4, 2), dtype=int)
    with pytest.raises(DataError, match="X has 4 rows but y has 3"):
        fit_integer_linear(X, np.zeros(3), ["a", "b"])
    with pytest.raises(DataError, match=r"names has 3 entries \['a', 'b', 'c'\] but X has 2 columns"):
        fit_integer_linear(X, np.zeros(4), ["a", "b", "c"])
    with pytest.raises(DataError, match=r"y holds non-integer value 0.5 at index \(2,\)"):
        fit_integer_linear(X, np.array([0, 1, 0.5, 2]), ["a", "b"])
    with pytest.raises(DataError, match="X has dtype <U1"):
        fit_integer_linear(np.array([["a", "b"]]), np.zeros(1), ["a", "b"])
    with pytest.raises(DataError, match="name '1a' is not a Python identifier"):
        fit_integer_linear(X, np.zeros(4), ["1a", "b"])
    with pytest.raises(DataError, match=r"X must be 2-D .* got shape \(4,\)"):
        fit_integer_linear(np.zeros(4), np.zeros(4), ["a"])
