"""Physics-informed losses for KANs: derivatives of the network output and a Poisson-equation loss.

Second derivatives need the twice-differentiable spline path; these helpers switch to it for their
own call and switch back, so training code does not have to remember.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from intelligible.core.errors import DataError
from intelligible.kan.model import KAN


@contextlib.contextmanager
def _second_order(model: KAN) -> Iterator[None]:
    previous = [layer.fast_backward for layer in model.layers]
    model.twice_differentiable(True)
    try:
        yield
    finally:
        for layer, fast in zip(model.layers, previous):
            layer.fast_backward = fast


def _single_output(model: KAN) -> None:
    if sum(model.width[-1]) != 1:
        raise DataError(
            f"PDE helpers need a network with one output (u), this one has {sum(model.width[-1])}"
        )


def gradient(model: KAN, x: Tensor) -> Tensor:
    """du/dx_i at each point, (batch, n_in), kept in the graph so a loss on it can be trained."""
    _single_output(model)
    x = x.detach().requires_grad_(True)
    with _second_order(model):
        (grad,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    return grad


def laplacian(model: KAN, x: Tensor) -> Tensor:
    """sum_i d^2 u / dx_i^2 at each point, (batch,), differentiable with respect to the parameters."""
    _single_output(model)
    x = x.detach().requires_grad_(True)
    with _second_order(model):
        (grad,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
        total = torch.zeros(x.shape[0], dtype=x.dtype)
        for i in range(x.shape[1]):
            (second,) = torch.autograd.grad(grad[:, i].sum(), x, create_graph=True)
            total = total + second[:, i]
    return total


def poisson_loss(
    model: KAN,
    interior: Tensor,
    source: Callable[[Tensor], Tensor],
    boundary: Tensor,
    boundary_value: Callable[[Tensor], Tensor],
    *,
    alpha: float = 0.01,
) -> tuple[Tensor, Tensor, Tensor]:
    """Loss for  laplacian(u) = source  with  u = boundary_value  on the boundary (the paper's setting):
    alpha * mean(residual^2) + mean(boundary error^2). Returns (loss, pde_mse, boundary_mse)."""
    residual = laplacian(model, interior) - source(interior)
    pde = torch.mean(residual**2)
    with _second_order(model):
        bc = torch.mean((model(boundary)[:, 0] - boundary_value(boundary)) ** 2)
    return alpha * pde + bc, pde, bc
