"""The repon theory: C conserved, collision iff C > 0, p_r against a Monte Carlo of the linear model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from intelligible.core.errors import ConfigError
from intelligible.geneft.repon import (
    cluster_factor,
    collision_probability,
    conserved_quantity,
    monte_carlo_collisions,
    simulate,
)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_c_is_conserved_along_matrix_dynamics(seed):
    rng = np.random.default_rng(seed)
    a0, r0 = rng.standard_normal((3, 2)), rng.standard_normal(2)
    eta_a, eta_x = float(10 ** rng.uniform(-0.5, 0.5)), float(10 ** rng.uniform(-0.5, 0.5))
    _, a_path, r_path = simulate(a0, r0, eta_a, eta_x, time=10.0, dt=5e-3, record_every=20)
    c = conserved_quantity(a_path, r_path, eta_a, eta_x)
    assert np.abs(c - c[0]).max() <= 1e-7 * max(1.0, abs(c[0]))
    assert np.linalg.norm(a_path[-1] @ r_path[-1]) < 0.2 * np.linalg.norm(a0 @ r0)  # the loss |A r|^2 falls


@pytest.mark.parametrize(("a0", "c0"), [(1.0, 0.5), (0.5, 1.0), (1.2, 1.0), (0.9, 1.0)])
def test_the_sign_of_c_decides_the_collision(a0, c0):
    eta_a, eta_x = 0.5, 1.0
    _, a_path, r_path = simulate(np.array([[a0]]), np.array([c0]), eta_a, eta_x, time=100.0, dt=0.02)
    c = float(conserved_quantity(a0, c0, eta_a, eta_x))
    a_end, r_end = abs(float(a_path[-1, 0, 0])), abs(float(r_path[-1, 0]))
    if c > 0:  # the repons collide; the decoder keeps a^2 -> 2 eta_A C
        assert r_end < 0.05 * c0 and a_end == pytest.approx(math.sqrt(2 * eta_a * c), rel=0.02)
    else:  # the decoder stops seeing r first; c^2 -> -eta_x C
        assert a_end < 0.05 * a0 and r_end == pytest.approx(math.sqrt(-eta_x * c), rel=0.02)


def test_scalar_c_by_hand():
    assert conserved_quantity(2.0, 1.0, 0.5, 4.0) == pytest.approx(4 / 1 - 1 / 4)
    assert conserved_quantity(2.0, 1.0, 0.5, 4.0, factor=4.0) == pytest.approx(4 - 1 / 2)


def test_p_r_by_hand_and_limits():
    assert collision_probability(1.0, 2.0) == pytest.approx(0.5)  # arctan(1) = pi/4
    assert collision_probability(1.0, 1.0, sigma_ratio=math.sqrt(2)) == pytest.approx(0.5)
    assert collision_probability(1e6, 1.0) < 0.001 and collision_probability(1e-6, 1.0) > 0.999
    assert cluster_factor() == 2.0 and cluster_factor(4) == pytest.approx(5.0)


@pytest.mark.parametrize("factor", [2.0, cluster_factor(3)])
@pytest.mark.parametrize("ratio", [0.1, 1.0, 10.0])
def test_p_r_matches_monte_carlo_within_001(ratio, factor):
    predicted = collision_probability(ratio, 1.0, sigma_ratio=1.5, factor=factor)
    simulated = monte_carlo_collisions(ratio, 1.0, sigma_a=1.5, factor=factor, samples=2000, seed=3)
    assert abs(predicted - simulated) <= 0.01


def test_bad_repon_inputs():
    with pytest.raises(ConfigError, match="eta_A must be a finite number above 0, got 0"):
        collision_probability(0.0, 1.0)
    with pytest.raises(ConfigError, match="eta_x must be a finite number above 0, got -1"):
        simulate(np.ones((1, 1)), np.ones(1), 1.0, -1.0)
    with pytest.raises(ConfigError, match="A must be"):
        simulate(np.ones((2, 3)), np.ones(2), 1.0, 1.0)
    with pytest.raises(ConfigError, match="cluster needs"):
        cluster_factor(0)
