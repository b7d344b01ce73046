"""The fused CPU trainer (numba) gives the torch trainer's numbers and is picked when it applies."""

from __future__ import annotations

import pytest
import torch

from intelligible.core.errors import ConfigError
from intelligible.scaling import _fused
from intelligible.scaling.mlp import (
    BatchedMLP,
    Spec,
    fused_unavailable,
    sequential_layers,
    train_batched,
    train_single,
)
from intelligible.scaling.sweep import SweepConfig, run_grid
from intelligible.scaling.tasks import make_task

pytestmark = pytest.mark.skipif(not _fused.AVAILABLE, reason="numba is not installed")


def _pair(task_name: str, specs: list[Spec], activation: str, steps: int, l1: float = 1e-3):
    """The same stack trained by torch and by the kernel: (torch net, fused net, histories)."""
    task = make_task(task_name)
    x, y = task.sample(48, -1.0, 1.0, seed=0)
    nets, histories = [], []
    for fused in (False, True):
        net = BatchedMLP(task.n_inputs, task.n_outputs, 1, specs, activation)
        histories.append(
            train_batched(net, x, y, steps=steps, lr=1e-2, l1=l1, disable_progress=True, fused=fused)
        )
        nets.append(net)
    return task, x, y, nets, histories


@pytest.mark.parametrize("activation", ["relu", "silu", "tanh"])
@pytest.mark.parametrize("task_name", ["square", "parallel"])
def test_the_fused_trainer_gives_the_torch_trainers_numbers(task_name, activation):
    # square: one input and one output (the kernel's single-loop path); parallel: 2 and 2 (general path)
    weights = (1.0,) if task_name == "square" else (0.75, 0.25)
    specs = [Spec(10, 4.0, weights, 0), Spec(16, 64.0, weights, 1), Spec(16, 1.0, weights, 2)]
    _, _, _, (torch_net, fused_net), (torch_history, fused_history) = _pair(task_name, specs, activation, 30)
    for a, b in zip(torch_net.parameters, fused_net.parameters):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
    assert [h["step"] for h in fused_history] == [h["step"] for h in torch_history]
    for a, b in zip(torch_history, fused_history):
        assert b["mean_mse"] == pytest.approx(a["mean_mse"], rel=1e-4)
    # the narrow model's padded neurons stayed exactly zero
    assert fused_net.weights[0][0, :, 10:].abs().sum() == 0 and fused_net.weights[1][0, 10:].abs().sum() == 0
    assert fused_net.biases[0][0, 0, 10:].abs().sum() == 0


def test_the_fused_trainer_equals_single_runs_without_the_penalty_too():
    specs = [Spec(12, 8.0, (0.9, 0.1), 5), Spec(20, 2.0, (0.5, 0.5), 6)]
    task, x, y, (_, fused_net), _ = _pair("parallel", specs, "relu", 25, l1=0.0)
    for m, spec in enumerate(specs):
        single = train_single(task.n_inputs, task.n_outputs, 1, spec, x, y, steps=25, lr=1e-2, l1=0.0)
        for (w, b), (w0, b0) in zip(fused_net.model(m), sequential_layers(single)):
            torch.testing.assert_close(w, w0, rtol=1e-4, atol=2e-6)
            torch.testing.assert_close(b, b0, rtol=1e-4, atol=2e-6)


def test_a_sweep_gives_the_same_losses_and_allocations_with_either_trainer():
    config = SweepConfig(task="parallel", widths=(12, 20), alphas=(4.0, 64.0), betas=(0.5, 0.9), seeds=(0,),
                         steps=60, n_train=64, n_test=256)  # fmt: skip
    by_torch = run_grid(config, disable_progress=True, fused=False)
    by_kernel = run_grid(config, disable_progress=True, fused=True)
    assert len(by_kernel) == len(by_torch) == 8
    for a, b in zip(by_torch, by_kernel):
        assert (a["width"], a["alpha"], a["beta"]) == (b["width"], b["alpha"], b["beta"])
        assert b["mse"] == pytest.approx(a["mse"], rel=1e-4)
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4)
        assert b["allocated"] == a["allocated"] and b["allocated_ablation"] == a["allocated_ablation"]


def test_the_kernel_is_picked_when_it_applies_and_torch_otherwise(monkeypatch):
    calls = []
    kernel = _fused.train_models

    def counting(*args):
        calls.append(args[2].shape[0])
        return kernel(*args)

    monkeypatch.setattr(_fused, "train_models", counting)
    task = make_task("square")
    x, y = task.sample(16, -1.0, 1.0, seed=0)
    shallow = BatchedMLP(1, 1, 1, [Spec(4, 1.0, (1.0,), 0), Spec(6, 2.0, (1.0,), 1)])
    assert fused_unavailable(shallow) is None
    train_batched(shallow, x, y, steps=3, lr=1e-2, l1=1e-3, disable_progress=True)
    assert calls == [2, 2, 2]  # one call per chunk of steps, both models at once
    calls.clear()
    train_batched(shallow, x, y, steps=3, lr=1e-2, l1=1e-3, disable_progress=True, fused=False)
    deep = BatchedMLP(1, 1, 2, [Spec(4, 1.0, (1.0,), 0)])
    assert "one hidden layer, not 2" in fused_unavailable(deep)
    history = train_batched(deep, x, y, steps=3, lr=1e-2, l1=1e-3, disable_progress=True)
    assert calls == [] and len(history) == 3


def test_forcing_the_kernel_where_it_cannot_run_is_a_one_line_error(monkeypatch):
    task = make_task("square")
    x, y = task.sample(16, -1.0, 1.0, seed=0)
    deep = BatchedMLP(1, 1, 2, [Spec(4, 1.0, (1.0,), 0)])
    before = [p.clone() for p in deep.parameters]
    with pytest.raises(
        ConfigError, match="fused trainer cannot train this network: it trains one hidden layer"
    ):
        train_batched(deep, x, y, steps=3, lr=1e-2, l1=1e-3, disable_progress=True, fused=True)
    assert all(torch.equal(a, b) for a, b in zip(before, deep.parameters))
    # a sweep is refused before anything trains
    monkeypatch.setattr(_fused, "train_models", lambda *args: pytest.fail("trained"))
    series = SweepConfig(
        task="series", widths=(4,), alphas=(1.0,), seeds=(0,), steps=5, n_train=16, n_test=16
    )
    with pytest.raises(
        ConfigError, match="cannot train this sweep: it trains one hidden layer, not 2"
    ) as caught:
        run_grid(series, disable_progress=True, fused=True)
    assert "\n" not in str(caught.value)
    monkeypatch.setattr(_fused, "AVAILABLE", False)
    square = SweepConfig(widths=(4,), alphas=(1.0,), seeds=(0,), steps=5, n_train=16, n_test=16)
    with pytest.raises(ConfigError, match="numba is not installed"):
        run_grid(square, disable_progress=True, fused=True)
    # without numba the default falls back to torch
    (record,) = run_grid(square, disable_progress=True)
    assert record["width"] == 4


def test_the_kernel_leaves_the_thread_counts_as_it_found_them():
    import numba

    torch_before, numba_before = torch.get_num_threads(), numba.get_num_threads()
    task = make_task("square")
    x, y = task.sample(256, -1.0, 1.0, seed=0)
    net = BatchedMLP(1, 1, 1, [Spec(1000, 1.0, (1.0,), s) for s in range(9)])  # big enough to go parallel
    train_batched(net, x, y, steps=2, lr=1e-2, l1=1e-3, disable_progress=True)
    assert (torch.get_num_threads(), numba.get_num_threads()) == (torch_before, numba_before)
