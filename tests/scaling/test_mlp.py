"""The vectorised trainer equals single runs; padded neurons stay inert."""

from __future__ import annotations

import torch

from intelligible.scaling.mlp import (
    BatchedMLP,
    Spec,
    forward_layers,
    init_layers,
    sequential_layers,
    train_batched,
    train_single,
)
from intelligible.scaling.tasks import make_task


def test_init_is_the_same_for_a_seed_whatever_the_grid():
    specs = [Spec(12, 1.0, (1.0,), 3), Spec(20, 8.0, (1.0,), 3), Spec(12, 64.0, (1.0,), 4)]
    net = BatchedMLP(1, 1, 1, specs)
    alone = init_layers([1, 12, 1], 3)
    for (w, b), (w0, b0) in zip(net.model(0), alone):
        assert torch.equal(w, w0) and torch.equal(b, b0)
    assert not torch.equal(net.model(0)[0][0], net.model(2)[0][0])
    # padding: model 0's neurons 12..19 have zero weights
    assert net.weights[0][0, :, 12:].abs().sum() == 0 and net.weights[1][0, 12:].abs().sum() == 0


def test_the_vectorised_trainer_equals_single_runs():
    task = make_task("parallel")
    x, y = task.sample(32, -1.0, 1.0, seed=0)
    specs = [
        Spec(16, 4.0, (0.5, 0.5), 0),
        Spec(24, 32.0, (0.9, 0.1), 1),
        Spec(24, 1.0, (0.75, 0.25), 2),
    ]
    net = BatchedMLP(task.n_inputs, task.n_outputs, 1, specs)
    train_batched(net, x, y, steps=40, lr=1e-2, l1=1e-3, disable_progress=True)
    x_test, _ = task.sample(128, -1.0, 1.0, seed=1)
    batched_out = net.forward(x_test)
    for m, spec in enumerate(specs):
        single = train_single(task.n_inputs, task.n_outputs, 1, spec, x, y, steps=40, lr=1e-2, l1=1e-3)
        for (w, b), (w0, b0) in zip(net.model(m), sequential_layers(single)):
            torch.testing.assert_close(w, w0, rtol=1e-4, atol=2e-5)
            torch.testing.assert_close(b, b0, rtol=1e-4, atol=2e-5)
        torch.testing.assert_close(batched_out[m], single(x_test).detach(), rtol=1e-4, atol=2e-5)
    # padded neurons of the narrow model got no update
    assert net.weights[0][0, :, 16:].abs().sum() == 0 and net.weights[1][0, 16:].abs().sum() == 0


def test_a_deeper_batched_network_matches_its_layers():
    specs = [Spec(8, 1.0, (1.0,), 0), Spec(5, 1.0, (1.0,), 1)]
    net = BatchedMLP(4, 1, 2, specs, activation="silu")
    x = torch.randn(10, 4)
    out = net.forward(x)
    for m in range(2):
        torch.testing.assert_close(out[m], forward_layers(net.model(m), x, "silu"))


def test_training_lowers_the_loss():
    task = make_task("square")
    x, y = task.sample(64, -1.0, 1.0, seed=0)
    net = BatchedMLP(1, 1, 1, [Spec(16, 16.0, (1.0,), 0)])
    history = train_batched(net, x, y, steps=200, lr=1e-2, l1=0.0, disable_progress=True)
    assert history[-1]["mean_mse"] < 0.1 * history[0]["mean_mse"]
