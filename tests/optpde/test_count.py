"""The count n_CQ: the table, planted and refused densities, the soft count, parsing errors."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

from intelligible.core.errors import ConfigError, DataError
from intelligible.optpde import (
    CurveConfig,
    count_conserved,
    jet_symbol,
    make_curves,
    parse_pde,
    pde_from_coefficients,
    prove,
    reduced_basis,
    soft_count,
)
from intelligible.optpde.conservation import euler_images, hard_count
from intelligible.optpde.experiment import NLS, TABLE, CountConfig, count_pde
from intelligible.optpde.jet import euler, total_derivative

u, u1, u2, u3 = (jet_symbol("u", k) for k in range(4))
SMALL = CurveConfig(n_curves=40, n_points=400, seed=1)


@pytest.fixture(scope="module")
def setting():
    basis = reduced_basis(("u",), 3, 2)
    curves = make_curves(SMALL, ("u",), 4)
    return basis, curves, euler_images(basis, curves)


@pytest.mark.parametrize(("name", "text", "expected", "why"), TABLE, ids=[row[0] for row in TABLE])
def test_the_n_cq_table(setting, name, text, expected, why):
    basis, curves, images = setting
    result = count_conserved(parse_pde(text), basis, curves, images=images)
    assert result.n_conserved == expected, (name, result.singular_values)
    assert result.n_proved == expected  # every quantity proved exactly


def test_nls_as_two_real_fields():
    basis = reduced_basis(("u", "v"), 2, 1)  # mass and momentum live at degree 2, order 1
    result = count_conserved(parse_pde(NLS[1]), basis, make_curves(SMALL, ("u", "v"), 2))
    assert result.n_conserved == 2 and result.n_proved == 2
    assert {str(q.density) for q in result.quantities} == {"u**2 + v**2", "u*v_x"}


def test_a_planted_density_is_found_and_proved(setting):
    basis, curves, images = setting
    # a Hamiltonian flow u_t = D(E(H)) conserves H: plant H = u**3 + 2 u u_x**2 (not in any table row)
    planted = u**3 + 2 * u * u1**2
    rhs = sympy.expand(total_derivative(euler(planted, "u", ("u",)), ("u",)))
    pde = parse_pde(str(rhs))
    result = count_conserved(pde, basis, curves, images=images)
    densities = [q.density for q in result.quantities]
    assert all(q.proved for q in result.quantities)
    # the planted density is in the span of what was found (mass is conserved too)
    span = sympy.Matrix([[sympy.expand(d).coeff(m) if m != u else sympy.expand(d).coeff(u, 1).subs({u1: 0, u2: 0})
                          for m in (u, u**3, u * u1**2)] for d in densities])  # fmt: skip
    target = sympy.Matrix([[0, 1, 2]])
    assert span.rank() == span.col_join(target).rank()


def test_a_non_conserved_density_is_refused():
    kdv = parse_pde("u_xxx + 6*u*u_x")
    assert prove(u**3 - u1**2 / 2, kdv)
    assert not prove(u**3 + u1**2 / 2, kdv)
    assert not prove(u2**2, kdv)


def test_the_count_is_scale_free(setting):
    basis, curves, images = setting
    small = count_conserved(parse_pde("u_xxx + 6*u*u_x"), basis, curves, images=images)
    large = count_conserved(parse_pde("1000*u_xxx + 6000*u*u_x"), basis, curves, images=images)
    np.testing.assert_allclose(small.singular_values, large.singular_values, rtol=1e-6, atol=1e-12)


def test_soft_count_approaches_the_hard_count():
    s = np.array([1.0, 0.3, 1e-3, 1e-12, 1e-15])
    hard = hard_count(s, -8.0)
    assert hard == 2
    gaps = [abs(soft_count(s, -8.0, width) - hard) for width in (2.0, 0.5, 0.1, 0.01)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-6


def test_gradients_of_the_soft_count_flow():
    from intelligible.optpde.search import SearchConfig, build_family

    family = build_family(SearchConfig(n_curves=12, n_points=200, starts=1))
    c = torch.randn(3, len(family.members), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    c.requires_grad_(True)
    for values in (family.singular_values(c), family.smooth_singular_values(c)):
        n_eff = soft_count(values, -3.0, 1.0).sum()
        (grad,) = torch.autograd.grad(n_eff, c)
        assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_coefficient_vectors(setting):
    basis, curves, images = setting
    from intelligible.optpde import family_monomials

    members = family_monomials()
    assert len(members) == 33 and u1 not in members
    vector = np.zeros(33)
    vector[members.index(u3)] = 1.0
    assert (
        count_conserved(pde_from_coefficients(vector, members), basis, curves, images=images).n_conserved == 4
    )
    vector[0] = float("nan")
    with pytest.raises(ConfigError, match="NaN"):
        pde_from_coefficients(vector, members)
    with pytest.raises(ConfigError, match="all coefficients are zero"):
        pde_from_coefficients(np.zeros(33), members)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("u_xxx + 6*u*u_x +", "cannot parse the PDE"),
        ("__import__('os').system('true')", "unknown symbol '__import__'"),
        ("u.real + u_x", "unsupported expression"),
        ("u_xxx + w*u_x", "unknown symbol 'w'"),
        ("u_t = u_xx; v_t = w", "unknown symbol 'w'"),
        ("u_x**(10**10)", "exponent"),
        ("", "empty"),
        ("3 + 4", "uses no field"),
        ("u_t = u; u_t = u_x", "given twice"),
        ("u_xxxxxxxxxxxxxxxxxxxx", "derivatives up to order"),
    ],
)
def test_bad_formulas_are_one_line_errors(text, message):
    with pytest.raises(ConfigError, match=message) as error:
        parse_pde(text)
    assert "\n" not in str(error.value)


def test_a_formula_undefined_on_the_curves_is_a_data_error():
    with pytest.raises(DataError, match="not finite"):
        count_pde("log(u) + u_xxx", CountConfig(n_curves=10, n_points=100))


def test_bad_count_settings():
    with pytest.raises(ConfigError, match="beyond this tool's limit"):
        CountConfig(degree=40).validate()
    with pytest.raises(ConfigError, match="candidate monomials"):
        CountConfig(degree=6, order=5).validate()
    with pytest.raises(ConfigError, match="params"):
        CountConfig(params="a=nan").validate()
    with pytest.raises(ConfigError, match="too many values"):
        CountConfig(n_curves=10**6, n_points=10**6).validate()


def test_parameters_stay_symbolic_in_the_proof():
    result = count_pde("(u_x + a**2*u_xxx)**3", CountConfig(n_curves=30, n_points=400, params="a=0.5"))
    assert result.n_conserved == 1 and result.n_proved == 1  # proved at a = 0.5
    assert sympy.expand(result.quantities[0].density - (u1**2 - u2**2 / 4)) == 0
    a = sympy.Symbol("a", real=True)
    assert prove(u1**2 - a**2 * u2**2, parse_pde("(u_x + a**2*u_xxx)**3", {"a": 0.5}))  # for every a
