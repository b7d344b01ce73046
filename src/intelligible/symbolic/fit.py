"""Fit y ~ c * f(a * x + b) + d for many curves at once (one per KAN edge), for a library function f.

a and b come from a grid search, zoomed in `zooms` times around the best cell; c and d from the
closed-form least-squares line of y on f(a x + b); the score is the R^2 of that line.
"""

from __future__ import annotations

import torch
from torch import Tensor

from intelligible.symbolic.library import SymbolicFunction


def fit_affine(
    x: Tensor,
    y: Tensor,
    fn: SymbolicFunction,
    *,
    a_range: tuple[float, float] = (-10.0, 10.0),
    b_range: tuple[float, float] = (-10.0, 10.0),
    grid: int = 41,
    zooms: int = 2,
) -> tuple[Tensor, Tensor]:
    """x, y: (curves, samples). Returns params (curves, 4) = (a, b, c, d) and R^2 (curves,)."""
    x, y = x.double(), y.double()
    n_curves = x.shape[0]
    a_lo = torch.full((n_curves,), a_range[0], dtype=torch.float64)
    a_hi = torch.full((n_curves,), a_range[1], dtype=torch.float64)
    b_lo = torch.full((n_curves,), b_range[0], dtype=torch.float64)
    b_hi = torch.full((n_curves,), b_range[1], dtype=torch.float64)
    y_centred = y - y.mean(dim=1, keepdim=True)
    y_var = (y_centred**2).sum(dim=1)
    steps = torch.linspace(0, 1, grid, dtype=torch.float64)
    for _ in range(zooms + 1):
        a = a_lo[:, None] + steps[None] * (a_hi - a_lo)[:, None]  # (curves, grid)
        b = b_lo[:, None] + steps[None] * (b_hi - b_lo)[:, None]
        arg = a[:, :, None, None] * x[:, None, None, :] + b[:, None, :, None]  # (curves, ga, gb, samples)
        f = torch.nan_to_num(fn.torch_fn(arg), nan=0.0, posinf=0.0, neginf=0.0)
        f_centred = f - f.mean(dim=-1, keepdim=True)
        cov = (f_centred * y_centred[:, None, None, :]).sum(-1)
        f_var = (f_centred**2).sum(-1)
        r2 = cov**2 / (f_var * y_var[:, None, None] + 1e-30)
        best = r2.reshape(n_curves, -1).argmax(dim=1)
        ia, ib = best // grid, best % grid
        rows = torch.arange(n_curves)
        a_best, b_best = a[rows, ia], b[rows, ib]
        a_step = (a_hi - a_lo) / (grid - 1)
        b_step = (b_hi - b_lo) / (grid - 1)
        a_lo, a_hi = a_best - a_step, a_best + a_step
        b_lo, b_hi = b_best - b_step, b_best + b_step
    f = torch.nan_to_num(fn.torch_fn(a_best[:, None] * x + b_best[:, None]), nan=0.0, posinf=0.0, neginf=0.0)
    f_centred = f - f.mean(dim=1, keepdim=True)
    f_var = (f_centred**2).sum(dim=1)
    c = (f_centred * y_centred).sum(dim=1) / (f_var + 1e-30)
    d = y.mean(dim=1) - c * f.mean(dim=1)
    r2 = ((f_centred * y_centred).sum(dim=1) ** 2 / (f_var * y_var + 1e-30)).clamp(0, 1)
    constant = y_var < 1e-20  # a flat curve is fitted exactly by d alone
    r2 = torch.where(constant, torch.ones_like(r2), r2)
    c = torch.where(constant, torch.zeros_like(c), c)
    return torch.stack([a_best, b_best, c, d], dim=1), r2
