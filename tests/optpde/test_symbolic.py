"""Jets, the Euler operator, the reduced basis, the Gaussian test curves against sympy."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from intelligible.core.errors import ConfigError
from intelligible.optpde import (
    CurveConfig,
    conserves,
    euler,
    is_total_derivative,
    jet_symbol,
    make_curves,
    reduce_density,
    reduced_basis,
    total_derivative,
)
from intelligible.optpde.basis import monomials, paper_basis
from intelligible.optpde.curves import hermite_gaussian

u, u1, u2, u3 = (jet_symbol("u", k) for k in range(4))
FIELDS = ("u",)


def test_gaussian_derivatives_match_sympy():
    x, m = sympy.symbols("x m")
    config = CurveConfig(n_curves=3, n_points=64, n_gaussians=4, seed=3)
    curves = make_curves(config, max_derivative=7)
    rng = np.random.default_rng(config.seed)  # the same draws as make_curves
    mu = rng.uniform(-config.mu_range, config.mu_range, (3, 4))
    amplitude = rng.uniform(-config.amplitude, config.amplitude, (3, 4))
    gaussian = sympy.exp(-((x - m) ** 2) / (2 * sympy.Rational(3, 2) ** 2))
    for k in (0, 1, 3, 7):
        derivative = sympy.lambdify((x, m), sympy.diff(gaussian, x, k), "numpy")
        for c in range(3):
            exact = sum(amplitude[c, g] * derivative(curves.x, mu[c, g]) for g in range(4))
            np.testing.assert_allclose(
                curves.jets["u"][k][c], exact, rtol=1e-9, atol=1e-9 * np.abs(exact).max()
            )


def test_hermite_recurrence():
    t = np.linspace(-3, 3, 7)
    values = hermite_gaussian(t, 3)
    np.testing.assert_allclose(values[3], (t**3 - 3 * t) * np.exp(-t * t / 2))


def test_total_derivative_and_euler():
    assert total_derivative(u * u1, FIELDS) == u1**2 + u * u2
    assert sympy.expand(euler(u**3 / 3 - u1**2 / 2, "u", FIELDS) - (u**2 + u2)) == 0
    assert is_total_derivative(u1**2 + u * u2, FIELDS)
    assert is_total_derivative(u1**3 + 2 * u * u1 * u2, FIELDS)
    assert not is_total_derivative(u1**2, FIELDS)


def test_reduced_basis_has_one_member_per_class():
    basis = reduced_basis(FIELDS, 3, 2)
    assert basis.names == ["u", "u**2", "u_x**2", "u_xx**2", "u**3", "u*u_x**2", "u_x**3", "u*u_xx**2",
                           "u_x*u_xx**2", "u_xx**3"]  # fmt: skip
    assert len(monomials(FIELDS, 3, 2)) == 19  # 9 of them are total derivatives or equivalent
    # u*u_xx is -u_x**2 modulo a total derivative; u*u_x*u_xx is -u_x**3/2
    assert reduce_density(u * u2, basis) == [0, 0, -1, 0, 0, 0, 0, 0, 0, 0]
    assert reduce_density(u * u1 * u2, basis)[6] == sympy.Rational(-1, 2)
    assert all(c == 0 for c in reduce_density(u * u1 + u2, basis))


def test_exact_conservation():
    kdv = {"u": u3 + 6 * u * u1}
    assert conserves(u**3 - u1**2 / 2, kdv, FIELDS)
    assert not conserves(u1**2, kdv, FIELDS)  # a non-conserved density is refused
    assert not conserves(u1, kdv, FIELDS)  # a total derivative conserves nothing
    a = sympy.Symbol("a", real=True)
    family = {"u": (u1 + a**2 * u3) ** 3}
    assert conserves(u1**2 - a**2 * u2**2, family, FIELDS)  # for every a
    assert not conserves(u1**2 + a**2 * u2**2, family, FIELDS)


def test_paper_basis_is_13_functions():
    assert len(paper_basis()) == 13


def test_too_large_basis_says_the_cost():
    with pytest.raises(ConfigError, match="monomials"):
        reduced_basis(FIELDS, 20, 2)
    with pytest.raises(ConfigError, match=r"candidate monomials.*smaller degree or order"):
        reduced_basis(FIELDS, 5, 6)
    with pytest.raises(ConfigError, match="order"):
        reduced_basis(FIELDS, 3, 50)
