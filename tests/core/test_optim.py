"""Our L-BFGS: torch's method with a scale-free curvature test."""

from __future__ import annotations

import pytest
import torch

from intelligible.core.optim import LBFGS


def _rosenbrock(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    return scale * ((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)


def _run(optimiser_class, scale: float, steps: int = 5, **options) -> tuple[torch.Tensor, list[float]]:
    x = torch.tensor([-1.5, 2.0], dtype=torch.float64, requires_grad=True)
    opt = optimiser_class([x], lr=1.0, history_size=10, line_search_fn="strong_wolfe",
                          tolerance_grad=1e-32, tolerance_change=1e-32, **options)  # fmt: skip

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = _rosenbrock(x, scale)
        loss.backward()
        return loss

    losses = [float(opt.step(closure)) for _ in range(steps)]
    return x.detach(), losses


def test_it_follows_torchs_lbfgs_where_the_curvature_is_large():
    # on a well-scaled problem both keep every curvature pair: the same iterates to rounding
    ours, _ = _run(LBFGS, 1.0, steps=1)
    theirs, _ = _run(torch.optim.LBFGS, 1.0, steps=1)
    torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-12)


def test_it_converges_and_does_not_depend_on_the_loss_scale():
    at_one, _ = _run(LBFGS, 1.0)
    torch.testing.assert_close(at_one, torch.tensor([1.0, 1.0], dtype=torch.float64), rtol=0, atol=1e-8)
    # a loss 1e-12 times smaller: torch's absolute y.s > 1e-10 drops every pair and it stalls
    tiny, _ = _run(LBFGS, 1e-12)
    torch.testing.assert_close(tiny, at_one, rtol=0, atol=1e-6)
    stalled, _ = _run(torch.optim.LBFGS, 1e-12)
    assert (stalled - at_one).abs().max() > 1e-3


def test_fixed_steps_and_state_across_steps():
    x = torch.tensor([3.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt = LBFGS([x], lr=0.5, max_iter=4)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = (x**2).sum()
        loss.backward()
        return loss

    first = opt.step(closure)
    second = opt.step(closure)
    assert second < first
    state = opt.state[x]
    assert state["n_iter"] == 8 and state["func_evals"] >= 8 and len(state["s"]) <= 10


def test_bad_arguments():
    x = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="line_search_fn"):
        LBFGS([x], line_search_fn="armijo")
    with pytest.raises(ValueError, match="lr > 0"):
        LBFGS([x], lr=0.0)
    with pytest.raises(ValueError, match="real parameters"):
        LBFGS([torch.zeros(2, dtype=torch.complex64, requires_grad=True)])
