"""B-spline bases against scipy, and the fast local evaluation against Cox-de Boor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.interpolate import BSpline

from intelligible.kan import bspline_basis, local_uniform_basis, scatter_dense, uniform_grid


def scipy_basis(x: np.ndarray, knots: np.ndarray, k: int) -> np.ndarray:
    n_bases = len(knots) - k - 1
    out = np.zeros((len(x), n_bases))
    for i in range(n_bases):
        out[:, i] = np.nan_to_num(BSpline.basis_element(knots[i : i + k + 2], extrapolate=False)(x))
    return out


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("n_intervals", [1, 5, 10])
def test_cox_de_boor_matches_scipy(k, n_intervals):
    grid = uniform_grid(
        torch.tensor([-1.0, 0.0], dtype=torch.float64),
        torch.tensor([1.0, 3.0], dtype=torch.float64),
        n_intervals,
        k,
    )
    gen = torch.Generator().manual_seed(k * 10 + n_intervals)
    x = (
        torch.rand(200, 2, generator=gen, dtype=torch.float64) * 5 - 1.5
    )  # inside, outside and in the extension
    ours = bspline_basis(x, grid, k)
    assert ours.shape == (200, 2, n_intervals + k)
    for i in range(2):
        expected = scipy_basis(x[:, i].numpy(), grid[i].numpy(), k)
        np.testing.assert_allclose(ours[:, i].numpy(), expected, atol=1e-12)


def test_non_uniform_knots_match_scipy():
    knots = torch.tensor([[-2.0, -1.5, -1.0, -0.2, 0.1, 0.7, 1.0, 1.6, 2.5]], dtype=torch.float64)
    x = torch.linspace(-2.2, 2.7, 301, dtype=torch.float64)[:, None]
    ours = bspline_basis(x, knots, 3)
    np.testing.assert_allclose(
        ours[:, 0].numpy(), scipy_basis(x[:, 0].numpy(), knots[0].numpy(), 3), atol=1e-12
    )


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_local_uniform_basis_equals_cox_de_boor(k):
    n_intervals = 7
    lower = torch.tensor([-1.0, 2.0, -0.5], dtype=torch.float64)
    upper = torch.tensor([1.0, 4.0, 0.5], dtype=torch.float64)
    grid = uniform_grid(lower, upper, n_intervals, k)
    gen = torch.Generator().manual_seed(k)
    x = (torch.rand(500, 3, generator=gen, dtype=torch.float64) * 2 - 0.5) * (upper - lower) + lower
    values, first, inside = local_uniform_basis(x, lower, (upper - lower) / n_intervals, n_intervals, k)
    assert values.shape == (500, 3, k + 1)
    dense = scatter_dense(values, first, n_intervals + k)
    np.testing.assert_allclose(dense.numpy(), bspline_basis(x, grid, k).numpy(), atol=1e-10)
    # partition of unity on the core range
    core = ((x >= lower) & (x < upper)).unsqueeze(-1)
    sums = dense.sum(-1, keepdim=True)
    assert torch.allclose(sums[core.expand_as(sums)], torch.ones(1, dtype=torch.float64))
    assert not inside[(x < grid[:, 0]) | (x >= grid[:, -1])].any()


def test_local_basis_is_differentiable():
    lower, h = torch.tensor([-1.0], dtype=torch.float64), torch.tensor([0.25], dtype=torch.float64)
    x = torch.tensor([[0.1], [0.33]], dtype=torch.float64, requires_grad=True)
    coef = torch.randn(11, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def f(inp):
        values, first, _ = local_uniform_basis(inp, lower, h, 8, 3)
        return (scatter_dense(values, first, 11) * coef).sum()

    assert torch.autograd.gradcheck(f, (x,))
