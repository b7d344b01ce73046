"""Brute-force expression search over the MIPS operator set, and the array evaluator."""

from __future__ import annotations

import time

import numpy as np
import pytest

from intelligible.core.errors import ConfigError, DataError
from intelligible.symbolic import evaluate_expression, search_expression


@pytest.fixture
def ab() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"a": rng.integers(-9, 10, 1000), "b": rng.integers(0, 10, 1000)}


def _check(variables: dict[str, np.ndarray], target: np.ndarray, **options) -> str:
    expression = search_expression(variables, target, **options)
    assert expression is not None
    np.testing.assert_array_equal(evaluate_expression(expression, variables), target)
    # Plain Python on ints gives the same, row by row (a sample of rows keeps this quick).
    for row in range(0, len(target), 50):
        scope = {name: int(values[row]) for name, values in variables.items()}
        assert eval(expression, {"__builtins__": {"abs": abs, "int": int}}, scope) == target[row]
    return expression


def test_recovers_abs_difference_and_shifted_sum_quickly(ab):
    start = time.perf_counter()
    difference = _check(ab, np.abs(ab["a"] - ab["b"]))
    shifted = _check(ab, ab["a"] + ab["b"] - 1)
    assert time.perf_counter() - start < 2.0
    assert difference == "abs(a - b)"
    assert sum(shifted.count(symbol) for symbol in "+-*%") <= 3
    assert shifted == "a + b - 1"


def test_modulo_and_comparison(ab):
    assert _check(ab, ab["a"] % 3) == "a % 3"
    assert _check(ab, (ab["a"] > 0).astype(int)) == "int(a > 0)"
    assert _check(ab, (ab["b"] == 0).astype(int)) == "int(b == 0)"


def test_modulo_never_divides_by_zero(ab):
    # b is 0 on some rows, so `a % b` is not a candidate; b + 1 never is.
    assert _check(ab, ab["a"] % (ab["b"] + 1)) == "a % (b + 1)"


def test_constants_are_folded(ab):
    assert _check(ab, ab["b"] % 4) == "b % 4"


def test_none_when_max_size_is_too_small(ab):
    target = np.abs(ab["a"] - ab["b"])
    assert search_expression(ab, target, max_size=3) is None
    assert search_expression(ab, target, max_size=4) == "abs(a - b)"
    assert search_expression(ab, ab["a"], max_size=0) is None  # size 0: the search is switched off
    assert search_expression(ab, ab["a"], max_size=1) == "a"


def test_none_when_one_input_row_has_two_targets():
    variables = {"a": np.array([1, 1, 2])}
    assert search_expression(variables, np.array([0, 1, 2])) is None


def test_bad_input_names_the_values(ab):
    with pytest.raises(DataError, match="variable 'b' has 999 rows but target has 1000"):
        search_expression({"a": ab["a"], "b": ab["b"][:-1]}, ab["a"])
    with pytest.raises(DataError, match=r"variable 'a' holds non-integer value 0.5 at index \(1,\)"):
        search_expression({"a": np.array([1.0, 0.5])}, np.array([1, 0]))
    with pytest.raises(DataError, match="name '2x' is not a Python identifier"):
        search_expression({"2x": ab["a"]}, ab["a"])
    with pytest.raises(DataError, match=r"target must be 1-D with shape \(rows,\), got shape \(2, 500\)"):
        search_expression(ab, ab["a"].reshape(2, 500))
    with pytest.raises(ConfigError, match="max_size must be an integer >= 0, got -1"):
        search_expression(ab, ab["a"], max_size=-1)


def test_evaluator_accepts_only_arithmetic():
    variables = {"x": np.array([-2, 0, 3])}
    np.testing.assert_array_equal(evaluate_expression("int(x > 0) + abs(x) % 2", variables), [0, 0, 2])
    np.testing.assert_array_equal(evaluate_expression("(x + 3) // 2 ^ 1", variables), [1, 0, 2])
    with pytest.raises(ConfigError, match="unsupported construct"):
        evaluate_expression("__import__('os')", variables)
    with pytest.raises(ConfigError, match="unknown name 'y' in 'x \\+ y'; known: x"):
        evaluate_expression("x + y", variables)
    with pytest.raises(ConfigError, match="unsupported construct 'x.real'"):
        evaluate_expression("x.real", variables)
    with pytest.raises(DataError, match="'x % x' divides by zero"):
        evaluate_expression("x % x", variables)


def test_search_finds_running_minima_and_maxima():
    rng = np.random.default_rng(3)
    s, x = rng.integers(0, 10, 300), rng.integers(0, 10, 300)
    for target, expected in ((np.minimum(s, x), "min"), (np.maximum(s, x), "max")):
        found = search_expression({"s": s, "x0": x}, target, max_size=3)
        assert found is not None and found.startswith(expected)
        np.testing.assert_array_equal(evaluate_expression(found, {"s": s, "x0": x}), target)
