"""The batched family, the polish, a tiny search, and wave breaking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from intelligible.core.errors import ConfigError
from intelligible.optpde import count_conserved, pde_from_coefficients
from intelligible.optpde.breaking import BreakingConfig, richardson_breaking_time, solve_breaking
from intelligible.optpde.search import SearchConfig, build_family, family_form_residual, polish, search

TINY = SearchConfig(starts=12, steps=40, batch=6, n_curves=30, n_points=300, max_families=2, seed=0)


@pytest.fixture(scope="module")
def family():
    return build_family(TINY)


def test_batched_counts_match_one_at_a_time(family):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(4, len(family.members)))
    names = [str(m) for m in family.members]
    vectors[0] = 0
    vectors[0, names.index("u_xxx")] = 1.0
    vectors[1] = 0
    vectors[1, [names.index("u_xxx"), names.index("u*u_x")]] = [1.0, 6.0]
    batched = family.counts(vectors)
    single = [count_conserved(pde_from_coefficients(v, family.members), family.basis, family.curves,
                              verify=False).n_conserved for v in vectors]  # fmt: skip
    assert batched.tolist() == single
    assert batched[:2].tolist() == [4, 3]


def test_the_polish_lands_on_an_exact_solution(family):
    names = [str(m) for m in family.members]
    start = np.zeros(len(names))
    start[names.index("u_xxx")] = 1.0
    start[names.index("u_xx*u_xxx")] = 0.3
    noisy = start + 0.05 * np.random.default_rng(1).normal(size=len(names)) * (start != 0)
    balanced = noisy * family.member_scales
    polished = polish(family, balanced, start != 0, 20)
    coefficients = polished / family.member_scales
    assert family.counts(coefficients[None])[0] >= 1


def test_a_tiny_search_is_deterministic_and_proves_what_it_reports(family):
    first = search(TINY, family)
    second = search(TINY, family)
    np.testing.assert_array_equal(first.optima, second.optima)
    assert first.optima.shape == (12, 33)
    np.testing.assert_allclose(np.linalg.norm(first.optima, axis=1), 1.0)
    assert len(first.loss_curve) == TINY.steps
    for found in first.families:
        assert found.n_conserved >= 1 and found.size >= 1
        assert found.proved == ("proved" in found.statuses)


def test_the_family_form():
    from intelligible.optpde import family_monomials

    members = family_monomials()
    names = [str(m) for m in members]
    q = 0.3
    vector = np.zeros(33)
    for name, value in (
        ("u_x**3", 1),
        ("u_x**2*u_xxx", 3 * q),
        ("u_x*u_xxx**2", 3 * q * q),
        ("u_xxx**3", q**3),
    ):
        vector[names.index(name)] = value
    residual, fitted = family_form_residual(vector, members)
    assert residual < 1e-12 and math.isclose(fitted, q)
    vector[names.index("u**3")] = 0.5
    assert family_form_residual(vector, members)[0] > 0.1


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("starts", 0, "starts"), ("lr", float("nan"), "lr"), ("family_degree", 40, "limit"),
     ("soft_threshold", 1.0, "soft_threshold"), ("n_curves", 10**5, "GiB")],
)  # fmt: skip
def test_bad_search_settings(key, value, message):
    config = SearchConfig(**{key: value})
    with pytest.raises(ConfigError, match=message):
        config.validate()


def test_breaking_time_within_5_percent():
    coarse, fine, extrapolated = richardson_breaking_time(400, 2.0)
    exact = 1 / (24 * math.pi**3)
    assert abs(extrapolated - exact) / exact < 0.05
    assert abs(fine - exact) < abs(coarse - exact)  # the scheme converges


def test_max_u_decays_after_breaking():
    result = solve_breaking(400, 10.0)
    before = result.max_u[result.times <= 0.9 * result.exact_breaking_time]
    assert before.min() > 0.999 and result.max_u[-1] < 0.85
    assert np.all(np.diff(result.max_u) <= 1e-12)  # max u never grows


def test_bad_breaking_settings():
    with pytest.raises(ConfigError, match="n_points"):
        BreakingConfig(n_points=10).validate()
    with pytest.raises(ConfigError, match="time steps"):
        BreakingConfig(n_points=900_000, t_final_over_tb=1000).validate()


def test_torch_threads_are_restored(family):
    before = torch.get_num_threads()
    search(SearchConfig(starts=2, steps=2, batch=2, n_curves=30, n_points=300, max_families=1), family)
    assert torch.get_num_threads() == before
