"""The symbolic library and the vectorised c*f(a*x+b)+d fit."""

from __future__ import annotations

import pytest
import sympy
import torch

from intelligible.core.errors import ConfigError
from intelligible.symbolic import SYMBOLIC_LIB, fit_affine, get_function


def test_torch_and_sympy_forms_agree_on_their_domain():
    x = torch.linspace(0.1, 0.9, 9, dtype=torch.float64)
    s = sympy.Symbol("s")
    for name, fn in SYMBOLIC_LIB.items():
        expr = sympy.lambdify(s, fn.sympy_fn(s), "math")
        expected = torch.tensor([float(expr(float(v))) for v in x], dtype=torch.float64)
        torch.testing.assert_close(fn.torch_fn(x).double(), expected, atol=1e-9, rtol=1e-9, msg=name)


def test_protected_forms_never_give_nan():
    x = torch.linspace(-3, 3, 61)
    for name, fn in SYMBOLIC_LIB.items():
        if name != "tan":
            assert torch.isfinite(fn.torch_fn(x)).all(), name


def test_unknown_name():
    with pytest.raises(ConfigError, match="unknown symbolic function 'sinh'; valid: x, x\\^2"):
        get_function("sinh")


def test_fit_recovers_planted_parameters_for_many_curves():
    x = torch.linspace(-1, 1, 101).repeat(3, 1)
    truth = torch.tensor([[2.0, 1.0, 0.5, -0.3], [3.14, 0.0, 1.0, 0.0], [-1.5, 0.5, 2.0, 1.0]])
    y = truth[:, 2:3] * torch.sin(truth[:, 0:1] * x + truth[:, 1:2]) + truth[:, 3:4]
    params, r2 = fit_affine(x, y, get_function("sin"), zooms=3)
    assert (r2 > 0.9999).all()
    fitted = params[:, 2:3] * torch.sin(params[:, 0:1] * x + params[:, 1:2]) + params[:, 3:4]
    assert (fitted - y).abs().max() < 1e-3


def test_fit_scores_wrong_function_lower():
    x = torch.linspace(-1, 1, 101)[None]
    y = torch.exp(x)
    _, r2_exp = fit_affine(x, y, get_function("exp"))
    _, r2_sin = fit_affine(x, y, get_function("sgn"))
    assert r2_exp.item() > 0.9999 > r2_sin.item()
