"""The neuron count on hand-built networks with known allocations, and the ablation check beside it."""

from __future__ import annotations

import torch

from intelligible.scaling.allocation import (
    ablation_losses,
    agreement,
    allocated_by_ablation,
    allocated_by_weights,
    intermediate_correlation,
)


def _parallel_net() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """2 inputs -> 8 hidden -> 2 outputs: neurons 0-2 serve subtask 0, 3-4 subtask 1, 5 both,
    6 has no input weight above threshold, 7 no output weight above threshold."""
    w_in = torch.zeros(2, 8)
    w_out = torch.zeros(8, 2)
    w_in[0, [0, 1, 2]] = torch.tensor([1.0, -1.0, 0.5])
    w_out[[0, 1, 2], 0] = torch.tensor([0.7, 0.6, -0.4])
    w_in[1, [3, 4]] = torch.tensor([1.0, -0.8])
    w_out[[3, 4], 1] = torch.tensor([0.5, 0.9])
    w_in[:, 5] = torch.tensor([0.6, -0.7])
    w_out[5, :] = torch.tensor([0.3, 0.4])
    w_in[0, 6] = 5e-4  # below the threshold
    w_out[6, 0] = 1.0
    w_in[1, 7] = 1.0
    w_out[7, 1] = 2e-4  # below the threshold
    w_in[1, 0] = 1e-4  # a weak link from the other input does not make neuron 0 shared
    biases = [torch.tensor([0.1, 0.2, -0.1, 0.0, 0.1, 0.05, 0.3, 0.2]), torch.zeros(2)]
    return [w_in, w_out], biases


def test_weight_count_on_a_hand_built_parallel_network():
    weights, _ = _parallel_net()
    allocated = allocated_by_weights(weights, [((0,), 0), ((1,), 1)], threshold=1e-3)
    assert allocated.shape == (2, 1, 8)
    assert allocated[0, 0].nonzero().flatten().tolist() == [0, 1, 2, 5]
    assert allocated[1, 0].nonzero().flatten().tolist() == [3, 4, 5]
    # the threshold decides: at 1e-5 the weak links count too
    loose = allocated_by_weights(weights, [((0,), 0), ((1,), 1)], threshold=1e-5)
    assert loose[0, 0].nonzero().flatten().tolist() == [0, 1, 2, 5, 6]
    # neuron 0 now hears x1 too, but it has no output weight to y1: still not subtask 1's
    assert loose[1, 0].nonzero().flatten().tolist() == [3, 4, 5, 7]


def test_weight_count_follows_paths_through_a_deeper_network():
    # 2 inputs -> 3 -> 3 -> 2 outputs; subtask 0 runs x0 -> a0 -> b0 -> y0, subtask 1 x1 -> a1 -> b1 -> y1,
    # a2 is reached from x0 but leads nowhere, b2 leads to y1 but nothing reaches it
    w1 = torch.zeros(2, 3)
    w2 = torch.zeros(3, 3)
    w3 = torch.zeros(3, 2)
    w1[0, 0] = w1[1, 1] = w1[0, 2] = 1.0
    w2[0, 0] = w2[1, 1] = 1.0
    w3[0, 0] = w3[1, 1] = w3[2, 1] = 1.0
    allocated = allocated_by_weights([w1, w2, w3], [((0,), 0), ((1,), 1)], threshold=1e-3)
    assert allocated.shape == (2, 2, 3)
    assert allocated[0].int().tolist() == [[1, 0, 0], [1, 0, 0]]
    assert allocated[1].int().tolist() == [[0, 1, 0], [0, 1, 0]]
    # a batch of models gives the same answer model by model
    batched = allocated_by_weights(
        [w.unsqueeze(0).repeat(3, 1, 1) for w in (w1, w2, w3)], [((0,), 0), ((1,), 1)]
    )
    assert torch.equal(batched[2], allocated)


def test_ablation_agrees_with_the_weight_count_on_a_hand_built_network():
    weights, biases = _parallel_net()
    x = torch.rand(512, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    # targets slightly off the network, so every loss is positive and each working neuron matters
    with torch.no_grad():
        h = torch.relu(x @ weights[0] + biases[0])
        y = h @ weights[1] + biases[1] + 0.01 * torch.sin(7 * x)
    stacked_w = [w.unsqueeze(0) for w in weights]
    stacked_b = [b.view(1, 1, -1) for b in biases]
    masks = [torch.ones(1, 1, 8)]
    base, ablated = ablation_losses(stacked_w, stacked_b, masks, torch.relu, x, y)
    by_ablation = allocated_by_ablation(base, ablated, tol=0.01)
    by_weights = allocated_by_weights(stacked_w, [((0,), 0), ((1,), 1)])
    assert torch.equal(by_ablation, by_weights)
    assert float(agreement(by_weights, by_ablation)[0]) == 1.0
    # the closed form equals removing the neuron by hand
    for j in (0, 3, 5):
        w_out = weights[1].clone()
        w_out[j] = 0
        mean = h[:, j].mean()
        out = h @ w_out + biases[1] + mean * weights[1][j]
        by_hand = (out - y).square().mean(dim=0)
        torch.testing.assert_close(ablated[0][0, j], by_hand, rtol=1e-4, atol=1e-8)


def test_a_constant_neuron_is_not_confirmed_by_ablation():
    # neuron 1 has no input weight but a bias: it only adds a constant, like a second output bias
    w_in = torch.tensor([[1.0, 0.0]])
    w_out = torch.tensor([[1.0], [0.5]])
    biases = [torch.tensor([0.0, 0.8]), torch.tensor([0.0])]
    x = torch.linspace(-1, 1, 101).unsqueeze(1)
    y = torch.relu(x) + 0.4 + 0.01 * x**2
    base, ablated = ablation_losses([w_in[None], w_out[None]], [b.view(1, 1, -1) for b in biases],
                                    [torch.ones(1, 1, 2)], torch.relu, x, y)  # fmt: skip
    confirmed = allocated_by_ablation(base, ablated, tol=0.01)
    assert confirmed[0, 0, 0].tolist() == [True, False]


def test_ablation_of_an_inner_layer_matches_removing_the_neuron():
    torch.manual_seed(0)
    w = [torch.randn(1, 2, 5), torch.randn(1, 5, 4), torch.randn(1, 4, 1)]
    b = [torch.randn(1, 1, 5), torch.randn(1, 1, 4), torch.randn(1, 1, 1)]
    masks = [torch.ones(1, 1, 5), torch.ones(1, 1, 4)]
    x = torch.randn(64, 2)
    y = torch.randn(64, 1)
    _, ablated = ablation_losses(w, b, masks, torch.tanh, x, y)
    h1 = torch.tanh(x @ w[0][0] + b[0][0])
    for j in range(5):
        h = h1.clone()
        h[:, j] = h1[:, j].mean()
        out = torch.tanh(h @ w[1][0] + b[1][0]) @ w[2][0] + b[2][0]
        torch.testing.assert_close(ablated[0][0, j], (out - y).square().mean(dim=0), rtol=1e-4, atol=1e-6)


def test_intermediate_correlation_finds_the_neuron_that_carries_g():
    x = torch.rand(200, 4, generator=torch.Generator().manual_seed(1))
    g = (x[:, 0] - x[:, 1]) ** 2 + (x[:, 2] - x[:, 3]) ** 2
    noise = torch.randn(1, 200, 3, generator=torch.Generator().manual_seed(2))
    pres = [noise.clone(), torch.cat([noise, (3 * g - 1).view(1, 200, 1)], dim=2)]
    posts = [torch.relu(p) for p in pres]
    pres[0] = torch.cat([pres[0], torch.zeros(1, 200, 1)], dim=2)
    posts[0] = torch.cat([posts[0], torch.zeros(1, 200, 1)], dim=2)
    best = intermediate_correlation(pres, posts, g, [torch.ones(1, 1, 4), torch.ones(1, 1, 4)])[0]
    assert best["layer"] == 1 and best["neuron"] == 3 and best["kind"] == "pre"
    assert best["r"] > 0.9999
