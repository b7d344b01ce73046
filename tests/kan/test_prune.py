"""Attribution and pruning keep the network's outputs."""

from __future__ import annotations

import pytest
import torch

from intelligible.core.errors import ConfigError
from intelligible.kan.model import KAN
from intelligible.kan.prune import attribute, prune, prune_edge, prune_input, prune_node


def _with_dead_nodes():
    model = KAN([3, 5, 1], grid=4, seed=0)
    with torch.no_grad():
        model.layers[1].mask[[1, 3], :] = 0.0  # hidden nodes 1 and 3 reach nothing
        model.layers[0].mask[2, :] = 0.0  # input 2 feeds nothing
    return model


def test_attribution_finds_dead_nodes_and_inputs():
    model = _with_dead_nodes()
    x = torch.rand(200, 3) * 2 - 1
    nodes, edges = attribute(model, x)
    assert [len(n) for n in nodes] == [3, 5, 1]
    assert edges[0].shape == (5, 3) and edges[1].shape == (1, 5)
    assert nodes[1][1] == 0 and nodes[1][3] == 0 and nodes[1][0] > 0
    assert nodes[0][2] == 0 and nodes[0][0] > 0


def test_prune_node_keeps_outputs():
    model = _with_dead_nodes()
    x = torch.rand(200, 3) * 2 - 1
    smaller = prune_node(model, x)
    assert smaller.width == [(3, 0), (3, 0), (1, 0)]
    torch.testing.assert_close(smaller(x), model(x))


def test_prune_input_keeps_outputs():
    model = _with_dead_nodes()
    x = torch.rand(200, 3) * 2 - 1
    smaller, kept = prune_input(model, x)
    assert kept == [0, 1]
    torch.testing.assert_close(smaller(x[:, kept]), model(x))
    with pytest.raises(ConfigError, match="active inputs must be a non-empty subset of 0..2"):
        prune_input(model, active=[5])


def test_prune_edge_masks_weak_edges_only():
    model = KAN([2, 3, 1], grid=4, seed=0)
    x = torch.rand(100, 2) * 2 - 1
    before = model(x)
    prune_edge(model, x, threshold=0.0)
    torch.testing.assert_close(model(x), before)  # threshold 0 keeps everything
    prune_edge(model, x, threshold=1e9)
    assert float(model.layers[0].mask.sum()) == 0.0


def test_prune_combines_both():
    model = _with_dead_nodes()
    x = torch.rand(200, 3) * 2 - 1
    pruned = prune(model, x, node_th=1e-2, edge_th=1e-3)
    assert pruned.width[1] == (3, 0)
    torch.testing.assert_close(pruned(x), model(x))


def test_multiplication_layers_are_kept_whole():
    model = KAN([2, [1, 1], 1], grid=3, seed=0)
    x = torch.rand(50, 2)
    torch.testing.assert_close(prune_node(model, x, threshold=1e9)(x), model(x))
