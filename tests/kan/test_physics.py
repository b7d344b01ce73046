"""PDE helpers: exact derivatives of a known network, the Poisson loss, and training on it."""

from __future__ import annotations

import math

import pytest
import torch

from intelligible.core.errors import DataError
from intelligible.kan import KAN, fix_symbolic
from intelligible.kan.physics import gradient, laplacian, poisson_loss


def _known_model() -> KAN:
    """u(x, y) = sin(pi x) + y^2, built from symbolic edges."""
    model = KAN([2, 1], grid=3, seed=0).double()
    fix_symbolic(model, 0, 0, 0, "sin", params=[math.pi, 0, 1, 0])
    fix_symbolic(model, 0, 1, 0, "x^2")
    return model


def test_gradient_and_laplacian_of_a_known_function():
    model = _known_model()
    x = torch.rand(20, 2, dtype=torch.float64) * 2 - 1
    expected_grad = torch.stack([math.pi * torch.cos(math.pi * x[:, 0]), 2 * x[:, 1]], dim=1)
    # pi was stored as a float32 parameter before .double(): agreement to float32 precision
    torch.testing.assert_close(gradient(model, x), expected_grad, atol=1e-6, rtol=1e-6)
    expected_lap = -(math.pi**2) * torch.sin(math.pi * x[:, 0]) + 2
    torch.testing.assert_close(laplacian(model, x), expected_lap, atol=1e-5, rtol=1e-5)
    assert all(layer.fast_backward for layer in model.layers)  # switched back afterwards


def test_poisson_loss_is_zero_for_the_solution_and_trains():
    model = _known_model()
    interior = torch.rand(50, 2, dtype=torch.float64) * 2 - 1
    boundary = torch.tensor([[-1.0, 0.3], [1.0, -0.2], [0.4, 1.0]], dtype=torch.float64)

    def source(p):
        return -(math.pi**2) * torch.sin(math.pi * p[:, 0]) + 2

    def exact(p):
        return torch.sin(math.pi * p[:, 0]) + p[:, 1] ** 2

    loss, pde, bc = poisson_loss(model, interior, source, boundary, exact)
    assert float(loss.detach()) == pytest.approx(0.0, abs=1e-10)
    spline = KAN([2, 3, 1], grid=5, seed=0).double()
    optimizer = torch.optim.Adam(spline.parameters(), lr=0.01)
    losses = []
    for _ in range(30):
        loss, _, _ = poisson_loss(spline, interior, source, boundary, exact)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]


def test_needs_a_single_output():
    with pytest.raises(DataError, match="one output"):
        laplacian(KAN([2, 2]), torch.zeros(3, 2))
