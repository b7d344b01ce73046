"""KANLayer: the fused kernels and the torch paths against plain Cox-de Boor autograd, gradients, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from intelligible.core.errors import ConfigError, DataError
from intelligible.kan import KAN, _kernels
from intelligible.kan.layer import KANLayer
from intelligible.kan.spline import bspline_basis, uniform_features, uniform_grid


def _pair(in_dim=3, out_dim=4, grid=6, k=3, base="silu"):
    fast = KANLayer(in_dim, out_dim, grid, k, base=base, generator=torch.Generator().manual_seed(0)).double()
    slow = KANLayer(in_dim, out_dim, grid, k, base=base, generator=torch.Generator().manual_seed(0)).double()
    slow.uniform = False
    slow.fast_backward = False  # the reference: Cox-de Boor through plain autograd
    exact = uniform_grid(
        torch.full((in_dim,), -1.0, dtype=torch.float64), torch.ones(in_dim, dtype=torch.float64), grid, k
    )
    fast.grid.copy_(exact)
    slow.grid.copy_(exact)
    return fast, slow


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("base", ["silu", "identity", "zero"])
@pytest.mark.parametrize("out_dim", [1, 4])  # one output takes the kernels' scalar path
def test_fast_path_equals_cox_de_boor(k, base, out_dim):
    fast, slow = _pair(out_dim=out_dim, k=k, base=base)
    x = torch.rand(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2.6 - 1.3
    torch.testing.assert_close(fast(x), slow(x), atol=1e-12, rtol=0)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    fast(x1).pow(2).sum().backward()
    slow(x2).pow(2).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=1e-10, rtol=0)
    for p_fast, p_slow in zip(fast.parameters(), slow.parameters()):
        torch.testing.assert_close(p_fast.grad, p_slow.grad, atol=1e-10, rtol=0)


def _compare(fast, slow, x, atol=1e-12):
    torch.testing.assert_close(fast(x), slow(x), atol=atol, rtol=0)
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    fast.zero_grad()
    slow.zero_grad()
    fast(x1).pow(2).sum().backward()
    slow(x2).pow(2).sum().backward()
    torch.testing.assert_close(x1.grad, x2.grad, atol=atol * 100, rtol=0)
    for p_fast, p_slow in zip(fast.parameters(), slow.parameters()):
        torch.testing.assert_close(p_fast.grad, p_slow.grad, atol=atol * 100, rtol=0)


@pytest.mark.skipif(not _kernels.AVAILABLE, reason="numba not installed")
@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("out_dim", [1, 4])
def test_fused_kernels_on_data_adapted_knots(k, out_dim):
    # jittered knots: the kernels' binary-search span and local Cox-de Boor triangle, with masked edges
    fast, slow = _pair(out_dim=out_dim, k=k)
    generator = torch.Generator().manual_seed(2)
    knots = (fast.grid + torch.rand(fast.grid.shape, generator=generator, dtype=torch.float64) * 0.1).sort(
        -1
    )[0]
    for layer in (fast, slow):
        layer.grid.copy_(knots)
        layer.uniform = False
        layer.mask[0, out_dim - 1] = 0.0
    x = torch.rand(128, 3, dtype=torch.float64, generator=generator) * 3 - 1.5  # some outside the knots
    _compare(fast, slow, x)


@pytest.mark.skipif(not _kernels.AVAILABLE, reason="numba not installed")
def test_fused_kernels_in_float32_and_with_input_grad_off():
    fast, slow = _pair()
    x = torch.rand(256, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3)) * 2 - 1
    torch.testing.assert_close(fast.float()(x.float()).double(), slow(x), atol=2e-5, rtol=0)
    fast, slow = _pair()  # fresh float64 copies (the float32 round trip rounded the parameters)
    for layer in (fast, slow):
        layer.zero_grad()
        layer(x).pow(2).sum().backward()  # x needs no grad: only the weight gradient is computed
    assert fast.coef.grad.abs().sum() > 0
    torch.testing.assert_close(fast.coef.grad, slow.coef.grad, atol=1e-10, rtol=0)
    torch.testing.assert_close(fast.scale_base.grad, slow.scale_base.grad, atol=1e-10, rtol=0)


def test_torch_fallback_without_numba(monkeypatch):
    # a machine without numba gets the torch implementation, same numbers
    fast, slow = _pair()
    x = torch.rand(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(4)) * 2.6 - 1.3
    monkeypatch.setattr(_kernels, "AVAILABLE", False)
    _compare(fast, slow, x)


@pytest.mark.parametrize("k", [2, 3])
def test_uniform_features_gradcheck(k):
    lower = torch.tensor([-1.0, 0.0], dtype=torch.float64)
    h = torch.tensor([0.4, 0.25], dtype=torch.float64)
    # keep away from knots, where the order-k spline's derivative has a kink for k <= 2
    x = torch.tensor([[0.13, 0.61], [-0.77, 0.33], [1.9, -0.6]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda inp: uniform_features(inp, lower, h, 5, k, "silu"), (x,))


def test_edge_activations_sum_to_output():
    layer = KANLayer(3, 2, 5, 3, generator=torch.Generator().manual_seed(0))
    x = torch.rand(10, 3) * 2 - 1
    acts = layer.edge_activations(x)
    assert acts.shape == (10, 2, 3)
    torch.testing.assert_close(acts.sum(-1), layer(x), atol=1e-5, rtol=0)


def test_mask_removes_an_edge():
    layer = KANLayer(2, 1, 5, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        layer.mask[1, 0] = 0.0
    x = torch.rand(8, 2)
    x_changed = x.clone()
    x_changed[:, 1] = torch.rand(8)
    torch.testing.assert_close(layer(x), layer(x_changed))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"grid": 0}, "grid must be an integer >= 1, got 0"),
        ({"k": 0}, "k must be an integer >= 1, got 0"),
        ({"base": "tanh"}, "unknown base function 'tanh'; valid: silu, identity, zero"),
        ({"grid_range": (1.0, -1.0)}, "grid_range must be increasing"),
    ],
)
def test_bad_config(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        KANLayer(2, 1, **{"grid": 5, "k": 3, **kwargs})


def test_wrong_input_width():
    with pytest.raises(DataError, match=r"expected input of shape \(batch, 2\), got \(4, 3\)"):
        KANLayer(2, 1)(torch.zeros(4, 3))


def test_second_derivatives_refused_on_fast_path_and_exact_on_the_slow_one():
    from intelligible.kan.model import KAN

    model = KAN([1, 3, 1], grid=5, seed=0).double()
    x = torch.linspace(-0.9, 0.9, 7, dtype=torch.float64)[:, None].requires_grad_(True)
    with pytest.raises(RuntimeError, match="first-order only; call model.twice_differentiable"):
        torch.autograd.grad(model(x).sum(), x, create_graph=True)
    model.twice_differentiable()
    (first,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(first.sum(), x)
    # compare with central finite differences of the first derivative
    eps = 1e-5

    def derivative(points):
        points = points.detach().requires_grad_(True)
        return torch.autograd.grad(model(points).sum(), points)[0]

    numeric = (derivative(x + eps) - derivative(x - eps)) / (2 * eps)
    torch.testing.assert_close(second, numeric, atol=1e-5, rtol=1e-5)


def test_pykan_init_is_pykans_starting_network():
    # pykan 0.2.8's KAN(width=[2, 3, 1], grid=5, k=3, seed=7) in float64, its parameters stored as data
    stored = json.loads((Path(__file__).parent / "data" / "pykan_init_seed7.json").read_text())
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # pykan draws in the default dtype; so do we
    try:
        model = KAN([2, 3, 1], grid=5, k=3, seed=7, init="pykan")
        other = KAN([2, 3, 1], grid=5, k=3, seed=7)
    finally:
        torch.set_default_dtype(default)
    for layer, theirs in zip(model.layers, stored["layers"], strict=True):
        coef = torch.tensor(theirs["coef"], dtype=torch.float64).permute(0, 2, 1)
        torch.testing.assert_close(layer.coef.detach(), coef, rtol=0, atol=1e-12)
        torch.testing.assert_close(
            layer.scale_base.detach(), torch.tensor(theirs["scale_base"], dtype=torch.float64), rtol=0, atol=0
        )
        torch.testing.assert_close(
            layer.scale_sp.detach(), torch.tensor(theirs["scale_sp"], dtype=torch.float64), rtol=0, atol=1e-15
        )
    assert model.init == "pykan" and other.init == "coefficients"
    assert not torch.allclose(other.layers[0].coef, model.layers[0].coef)


def test_pykan_init_splines_pass_through_small_noise_at_the_grid_points():
    layer = KANLayer(
        3, 4, grid=6, k=3, noise_scale=0.3, generator=torch.Generator().manual_seed(0), init="pykan"
    )
    points = layer.grid[:, 3:-3].T.contiguous()  # (G + 1, in)
    values = torch.einsum("bim,imo->bio", bspline_basis(points, layer.grid, 3), layer.coef.detach())
    again = (torch.rand(7, 3, 4, generator=torch.Generator().manual_seed(0)) - 0.5) * 0.3 / 6
    torch.testing.assert_close(values, again, rtol=0, atol=1e-6)
    # minimum norm: any other spline through the same values has larger coefficients
    assert float(layer.coef.abs().max()) < 0.3


def test_unknown_init_is_refused():
    with pytest.raises(ConfigError, match="unknown init 'xavier'; valid: coefficients, pykan"):
        KANLayer(2, 2, init="xavier")
    with pytest.raises(ConfigError, match="init must be one of coefficients, pykan"):
        KAN([2, 2], init="Pykan")
