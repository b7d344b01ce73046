"""Fits: a planted exponent is recovered with an interval that covers it; the prediction arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from intelligible.core.errors import DataError
from intelligible.scaling.fit import (
    CHINCHILLA_EXPONENT,
    PowerFit,
    fit_power_law,
    median_interval,
    naive_ratio,
    predict_parameter_exponent,
    ratio_interval,
    spearman,
    verdict,
)


def _planted(
    exponent: float, seeds: int, noise: float, rng_seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(rng_seed)
    n = np.tile(np.array([2, 3, 5, 8, 13, 21, 34, 56], float), seeds)
    groups = np.repeat(np.arange(seeds), 8)
    # each seed has its own offset (shared initialisation) plus point noise
    offsets = rng.normal(0, noise, seeds)[groups]
    loss = 0.3 * n**exponent * np.exp(offsets + rng.normal(0, noise, len(n)))
    return n, loss, groups


@pytest.mark.parametrize(("exponent", "rng_seed"), [(-1.1, 0), (-1.0, 1), (-0.5, 2), (-2.0, 3)])
def test_the_fit_recovers_a_planted_exponent_with_an_interval_that_covers_it(exponent, rng_seed):
    n, loss, groups = _planted(exponent, seeds=6, noise=0.15, rng_seed=rng_seed)
    fit = fit_power_law(n, loss, groups, n_boot=400, seed=rng_seed)
    assert fit.covers(exponent), fit
    assert abs(fit.exponent - exponent) < 0.15
    assert fit.high - fit.low < 0.5
    assert fit.n_points == len(n) and fit.n_groups == 6


def test_the_interval_covers_the_planted_exponent_in_most_repeats():
    covered = 0
    for rng_seed in range(20):
        n, loss, groups = _planted(-1.0, seeds=4, noise=0.2, rng_seed=100 + rng_seed)
        covered += fit_power_law(n, loss, groups, n_boot=150, seed=rng_seed).covers(-1.0)
    assert covered >= 17  # a 95% interval (the two-stage bootstrap covered 98-100 of 100 in trials)


def test_an_exact_power_law_gives_a_tight_interval_and_zero_points_are_dropped():
    n = np.array([0, 1, 2, 4, 8, 16], float)
    loss = np.where(n > 0, 2.0 * np.maximum(n, 1) ** -1.0, 5.0)
    fit = fit_power_law(n, loss, n_boot=100)
    assert fit.n_points == 5
    assert fit.exponent == pytest.approx(-1.0) and fit.prefactor == pytest.approx(2.0)
    assert fit.low == pytest.approx(-1.0) and fit.high == pytest.approx(-1.0)


def test_the_window_restricts_the_fit():
    n = np.array([1, 2, 4, 8, 16, 32, 64], float)
    loss = np.where(n <= 16, n**-1.0, 16.0**-1.0)  # flat beyond 16, a floor
    assert fit_power_law(n, loss, n_boot=50, x_max=16).exponent == pytest.approx(-1.0)
    assert fit_power_law(n, loss, n_boot=50).exponent > -0.9


def test_too_few_points_are_a_one_line_data_error():
    with pytest.raises(DataError, match="at least 3 points"):
        fit_power_law([0, 0, 3], [1, 1, 1])
    with pytest.raises(DataError, match="2 different sizes"):
        fit_power_law([4, 4, 4], [1, 2, 3])


def test_verdicts_say_holds_fails_or_inconclusive():
    n, loss, groups = _planted(-1.0, seeds=6, noise=0.05, rng_seed=5)
    fit = fit_power_law(n, loss, groups, n_boot=200)
    assert verdict(fit, -1.0, 0.3) is True
    assert verdict(fit, -2.0, 0.3) is False
    wide = PowerFit(
        exponent=-1.1, prefactor=1.0, low=-1.5, high=-0.7, n_points=10, n_groups=2, confidence=0.95
    )
    assert verdict(wide, -1.0, 0.2) is None  # covers -1 but reaches beyond the tolerance: inconclusive


def test_ratios_medians_and_ranks():
    assert naive_ratio(0.5) == pytest.approx(1.0)
    assert naive_ratio(0.9) == pytest.approx(3.0)
    med, low, high = ratio_interval([4, 6, 0, 8], [2, 3, 5, 4], [0, 1, 2, 3], n_boot=200)
    assert med == pytest.approx(2.0) and low == pytest.approx(2.0) and high == pytest.approx(2.0)
    med, low, high = median_interval([1.0, 2.0, 3.0, np.nan], [0, 1, 2, 3], n_boot=200)
    assert med == pytest.approx(2.0) and 1.0 <= low <= med <= high <= 3.0
    assert spearman([1, 2, 4, 8], [3, 3, 5, 9]) == pytest.approx(
        np.corrcoef([1, 2, 3, 4], [1.5, 1.5, 3, 4])[0, 1]
    )
    assert np.isnan(spearman([1, 2, 3], [1, 1, 1]))


def test_the_prediction_maps_the_exponent_and_its_interval():
    n, loss, groups = _planted(-1.0, seeds=6, noise=0.1, rng_seed=7)
    fit = fit_power_law(n, loss, groups, n_boot=200)
    deep, fixed = predict_parameter_exponent(fit)
    assert deep.params_exponent == 3 and fixed.params_exponent == 2
    assert deep.loss_exponent == pytest.approx(fit.exponent / 3)
    assert (deep.low, deep.high) == pytest.approx((fit.low / 3, fit.high / 3))
    assert fixed.loss_exponent == pytest.approx(fit.exponent / 2)
    assert abs(-1 / 3 + CHINCHILLA_EXPONENT) < 0.01
