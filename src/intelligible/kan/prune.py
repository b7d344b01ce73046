"""Attribution scores and pruning (KAN 2.0): find the edges and nodes that matter, drop the rest.

Scores flow backwards from the outputs (score 1 each). An edge's score is its output node's score
times the edge's share of that node's activity, std(edge activation) / std(node pre-activation);
a node's score is the sum of its outgoing edges' scores. Multiplication nodes pass their score to
both factors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from intelligible.core.errors import ConfigError
from intelligible.kan.model import KAN


@torch.no_grad()
def attribute(model: KAN, x: Tensor) -> tuple[list[Tensor], list[Tensor]]:
    """(node_scores per node layer, input first; edge_scores per layer as (out_sub, in)) on samples x."""
    inputs = model.layer_inputs(x)
    edge_scales, sub_scales = [], []
    for layer, h in zip(model.layers, inputs):
        edge_scales.append(layer.edge_activations(h).std(dim=0))
        sub_scales.append(layer(h).std(dim=0))
    node_scores: list[Tensor] = [torch.ones(sum(model.width[-1]))]
    edge_scores: list[Tensor] = []
    for index in range(len(model.layers) - 1, -1, -1):
        n_sum, n_mult = model.width[index + 1]
        node = node_scores[0]
        sub = torch.cat([node[:n_sum], node[n_sum:].repeat_interleave(2)])
        edge = edge_scales[index] / (sub_scales[index][:, None] + 1e-4) * sub[:, None]
        edge_scores.insert(0, edge)
        node_scores.insert(0, edge.sum(dim=0))
    return node_scores, edge_scores


@torch.no_grad()
def prune_edge(model: KAN, x: Tensor, threshold: float = 3e-2) -> KAN:
    """Mask (in place) every edge whose score is below `threshold`; returns the model."""
    _, edge_scores = attribute(model, x)
    for layer, scores in zip(model.layers, edge_scores):
        layer.mask.mul_((threshold <= scores.T).to(layer.mask.dtype))
    return model


@torch.no_grad()
def _subset(model: KAN, keep: Sequence[Tensor]) -> KAN:
    """A new KAN keeping node indices keep[l] of every node layer l (multiplication layers kept whole)."""
    width = []
    for (n_sum, n_mult), kept in zip(model.width, keep):
        width.append([len(kept), 0] if n_mult == 0 else [n_sum, n_mult])
    smaller = KAN(
        width, model.grid_size, model.k, seed=model.seed, base=model.layers[0].base, grid_eps=model.grid_eps
    )
    for index, (old, new) in enumerate(zip(model.layers, smaller.layers)):
        keep_in = keep[index]
        n_sum, n_mult = model.width[index + 1]
        keep_out = keep[index + 1] if n_mult == 0 else torch.arange(old.out_dim)
        new.n_intervals, new.uniform = old.n_intervals, old.uniform
        new.grid = old.grid[keep_in].clone()
        new.coef = torch.nn.Parameter(old.coef[keep_in][:, :, keep_out].clone())
        new.scale_base = torch.nn.Parameter(old.scale_base[keep_in][:, keep_out].clone())
        new.scale_sp = torch.nn.Parameter(old.scale_sp[keep_in][:, keep_out].clone())
        new.mask = old.mask[keep_in][:, keep_out].clone()
        new.sym_mask = old.sym_mask[keep_in][:, keep_out].clone()
        new.sym_params = torch.nn.Parameter(old.sym_params[keep_in][:, keep_out].clone())
        new.sym_names = [[old.sym_names[i][o] for o in keep_out.tolist()] for i in keep_in.tolist()]
    return smaller


@torch.no_grad()
def prune_node(model: KAN, x: Tensor, threshold: float = 1e-2) -> KAN:
    """A smaller KAN without the hidden (sum) nodes whose score is below `threshold`."""
    node_scores, _ = attribute(model, x)
    keep = [torch.arange(len(scores)) for scores in node_scores]
    for index in range(1, len(node_scores) - 1):
        if model.width[index][1] == 0:
            kept = torch.nonzero(node_scores[index] >= threshold).flatten()
            keep[index] = (
                kept if len(kept) else node_scores[index].argmax().reshape(1)
            )  # keep the network connected
    return _subset(model, keep)


def prune(model: KAN, x: Tensor, node_th: float = 1e-2, edge_th: float = 3e-2) -> KAN:
    """pykan's `prune`: drop weak hidden nodes, then mask weak edges of what is left."""
    return prune_edge(prune_node(model, x, node_th), x, edge_th)


@torch.no_grad()
def prune_input(
    model: KAN, x: Tensor | None = None, threshold: float = 1e-2, active: Sequence[int] | None = None
) -> tuple[KAN, list[int]]:
    """A KAN using only the inputs that matter (score >= threshold, or the given `active` indices).

    Returns the smaller model and the kept input indices (feed it x[:, kept]).
    """
    if active is None:
        if x is None:
            raise ConfigError("prune_input needs samples x to score the inputs, or an explicit active list")
        node_scores, _ = attribute(model, x)
        kept = torch.nonzero(node_scores[0] >= threshold).flatten()
    else:
        bad = [i for i in active if not 0 <= int(i) < model.in_dim]
        if bad or not active:
            raise ConfigError(
                f"active inputs must be a non-empty subset of 0..{model.in_dim - 1}, got {list(active)}"
            )
        kept = torch.tensor(sorted({int(i) for i in active}))
    if len(kept) == 0:
        raise ConfigError(f"no input scores >= {threshold}; lower the threshold")
    node_count = [torch.arange(sum(w)) for w in model.width]
    return _subset(model, [kept, *node_count[1:]]), kept.tolist()
