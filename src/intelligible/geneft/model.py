"""The knowledge-graph autoencoder: an encoder that embeds each symbol (its repon) and a decoder
that predicts R(x1, x2) from the two embeddings.

Parameters live in plain dicts of tensors whose leading axis runs over models, so one forward pass
evaluates many models at once (`forward`); `SingleModel` is the same network as an ordinary
`nn.Module`, the reference the batched trainer is checked against.

Decoders:
- `mlp`: a combiner of the two embeddings (concatenation, difference or squared difference) and an
  MLP with `depth` linear layers (depth 1 is a linear read-out) of `width` tanh units.
- the "ideal" decoders, each the simplest read-out that can express one kind of relation exactly,
  so that what they miss is the induction gap of learning the embeddings, not decoder capacity:
  `ideal-distance` (equivalences: logit = s (t - |e1 - e2|^2)), `ideal-order` (strict total orders:
  logit = u . (e2 - e1) - c), `ideal-product` (two-class relations such as a complete bipartite
  graph: logit = -(u . e1 + c)(u . e2 + c)). The ideal decoders read e1 and e2 directly (no combiner).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError
from intelligible.geneft.relations import Relation

COMBINERS = ("concat", "difference", "squared-difference")
DECODERS = ("mlp", "ideal", "ideal-distance", "ideal-order", "ideal-product")
MAX_DEPTH = 64
MAX_WIDTH = 4096
MAX_EMBED_DIM = 256


@dataclass(frozen=True)
class ModelSpec:
    """One architecture: n symbols, embedding dimension, combiner and decoder."""

    n: int
    embed_dim: int = 2
    combiner: str = "concat"
    decoder: str = "mlp"
    depth: int = 3  # linear layers of the MLP decoder (depth - 1 hidden tanh layers)
    width: int = 50
    embed_std: float = 1.0  # embeddings start as N(0, embed_std^2) per coordinate

    def validate(self) -> None:
        """ConfigError for a value out of range."""
        for name, value, high in (("embed_dim", self.embed_dim, MAX_EMBED_DIM), ("depth", self.depth, MAX_DEPTH),
                                  ("width", self.width, MAX_WIDTH)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise ConfigError(f"{name} must be a whole number from 1 to {high}, got {shown(value)}")
        if self.combiner not in COMBINERS:
            raise ConfigError(f"combiner must be one of {', '.join(COMBINERS)}, got {shown(self.combiner)}")
        if self.decoder not in DECODERS or self.decoder == "ideal":
            raise ConfigError(f"decoder must be one of {', '.join(DECODERS)}, got {shown(self.decoder)}")
        if not (
            isinstance(self.embed_std, int | float) and math.isfinite(self.embed_std) and self.embed_std > 0
        ):
            raise ConfigError(f"embed_std must be a finite number above 0, got {shown(self.embed_std)}")

    @property
    def combined_dim(self) -> int:
        """The width of the combiner's output (the MLP's input)."""
        return 2 * self.embed_dim if self.combiner == "concat" else self.embed_dim


def ideal_decoder_for(relation: Relation) -> str:
    """The ideal decoder of a relation from its axioms: an equivalence reads distances, a strict
    total order a projection, a two-class relation a product of signs; ConfigError otherwise."""
    axioms = set(relation.axioms())
    if {"reflexive", "symmetric", "transitive"} <= axioms:
        return "ideal-distance"
    if {"irreflexive", "antisymmetric", "total", "transitive"} <= axioms:
        return "ideal-order"
    if {"irreflexive", "symmetric", "antitransitive", "negatively-transitive"} <= axioms:
        return "ideal-product"
    raise ConfigError(
        f"no ideal decoder for relation {shown(relation.name)} (axioms: {', '.join(sorted(axioms)) or 'none'}); "
        "ideal decoders exist for equivalences, strict total orders and two-class relations; use --decoder mlp"
    )


def init_params(spec: ModelSpec, seed: int) -> dict[str, torch.Tensor]:
    """One model's initial parameters from its own seeded stream (float32)."""
    g = torch.Generator().manual_seed(int(seed) * 2654435761 % 2**63 + 1)  # not the data split's stream
    params = {"embedding": torch.randn(spec.n, spec.embed_dim, generator=g) * spec.embed_std}
    d = spec.embed_dim
    if spec.decoder == "mlp":
        sizes = [spec.combined_dim] + [spec.width] * (spec.depth - 1) + [1]
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            bound = 1.0 / math.sqrt(fan_in)  # torch.nn.Linear's default initialisation
            params[f"weight{i}"] = (torch.rand(fan_in, fan_out, generator=g) * 2 - 1) * bound
            params[f"bias{i}"] = (torch.rand(fan_out, generator=g) * 2 - 1) * bound
    elif spec.decoder == "ideal-distance":
        params["scale"] = torch.ones(1)
        params["threshold"] = torch.ones(1)
    else:  # ideal-order, ideal-product
        params["direction"] = torch.randn(d, generator=g) / math.sqrt(d)
        params["offset"] = torch.zeros(1)
    return params


def stack_params(spec: ModelSpec, seeds: list[int]) -> dict[str, torch.Tensor]:
    """The initial parameters of many models, stacked on a leading model axis."""
    singles = [init_params(spec, seed) for seed in seeds]
    return {name: torch.stack([p[name] for p in singles]) for name in singles[0]}


def stack_mixed_depths(
    spec: ModelSpec, seeds: list[int], depths: list[int]
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """MLPs of different depths (same width) in one stack, and the (B, D - 1) mask of their active
    hidden layers, D = the largest depth.

    Every hidden layer is padded to K = max(width, combined_dim) units; a model of depth d uses
    hidden layers 0..d-2 and passes its activations unchanged through the rest (`forward` with
    `layer_mask`), then the output layer. Each model's own initial parameters sit in the top-left
    corner of the padded ones, the rest are zeros; their gradients are exactly zero, so Adam leaves
    them at zero and each model trains as it would alone."""
    top = max(depths)
    k = max(spec.width, spec.combined_dim)
    mask = torch.zeros(len(seeds), max(top - 1, 0))
    stacked: dict[str, list[torch.Tensor]] = {"embedding": []}
    for layer in range(top):
        stacked[f"weight{layer}"], stacked[f"bias{layer}"] = [], []
    for i, (seed, depth) in enumerate(zip(seeds, depths)):
        own = init_params(replace(spec, depth=int(depth)), seed)
        mask[i, : depth - 1] = 1.0
        stacked["embedding"].append(own["embedding"])
        for layer in range(top):
            # hidden layers 0..depth-2 are the model's own; its output layer goes last
            source = layer if layer < depth - 1 else (depth - 1 if layer == top - 1 else None)
            rows, cols = (k, 1) if layer == top - 1 else (k, k)
            weight, bias = torch.zeros(rows, cols), torch.zeros(cols)
            if source is not None:
                w, b = own[f"weight{source}"], own[f"bias{source}"]
                weight[: w.shape[0], : w.shape[1]] = w
                bias[: b.shape[0]] = b
            stacked[f"weight{layer}"].append(weight)
            stacked[f"bias{layer}"].append(bias)
    return {name: torch.stack(values) for name, values in stacked.items()}, mask


def forward(
    spec: ModelSpec,
    params: dict[str, torch.Tensor],
    pairs: torch.Tensor,
    layer_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Logits (B, P) of B models at pair indices `pairs` (B, P) into the n^2 pairs. `layer_mask`
    (B, D - 1): MLPs of mixed depths stacked by `stack_mixed_depths`."""
    emb = params["embedding"]  # (B, n, d)
    d = emb.shape[-1]
    first = torch.gather(emb, 1, (pairs // spec.n).unsqueeze(-1).expand(-1, -1, d))
    second = torch.gather(emb, 1, (pairs % spec.n).unsqueeze(-1).expand(-1, -1, d))
    if spec.decoder == "ideal-distance":
        dist = ((first - second) ** 2).sum(-1)
        return params["scale"] * (params["threshold"] - dist)
    if spec.decoder == "ideal-order":
        return ((second - first) * params["direction"].unsqueeze(1)).sum(-1) - params["offset"]
    if spec.decoder == "ideal-product":
        u = params["direction"].unsqueeze(1)
        return -((first * u).sum(-1) + params["offset"]) * ((second * u).sum(-1) + params["offset"])
    h = combine(spec.combiner, first, second)
    if layer_mask is not None:
        depth = len([k for k in params if k.startswith("weight")])
        width = params["weight0"].shape[1]
        h = torch.nn.functional.pad(h, (0, width - h.shape[-1]))
        for i in range(depth - 1):
            active = layer_mask[:, i].view(-1, 1, 1)
            # an inactive layer passes h on exactly: 0 * tanh(...) + 1 * h
            h = (
                active * torch.tanh(torch.baddbmm(params[f"bias{i}"].unsqueeze(1), h, params[f"weight{i}"]))
                + (1 - active) * h
            )
        last = depth - 1
        return torch.baddbmm(params[f"bias{last}"].unsqueeze(1), h, params[f"weight{last}"]).squeeze(-1)
    for i in range(spec.depth):
        h = torch.baddbmm(params[f"bias{i}"].unsqueeze(1), h, params[f"weight{i}"])
        if i < spec.depth - 1:
            h = torch.tanh(h)
    return h.squeeze(-1)


def combine(combiner: str, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """The decoder's input from the two embeddings."""
    if combiner == "concat":
        return torch.cat([first, second], dim=-1)
    if combiner == "difference":
        return first - second
    return (first - second) ** 2


class SingleModel(nn.Module):
    """One model as an ordinary module (the reference for the batched trainer)."""

    def __init__(self, spec: ModelSpec, seed: int) -> None:
        super().__init__()
        self.spec = spec
        self.params = nn.ParameterDict(
            {k: nn.Parameter(v.clone()) for k, v in init_params(spec, seed).items()}
        )

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        """Logits at pair indices (P,)."""
        spec, p = self.spec, self.params
        first, second = p["embedding"][pairs // spec.n], p["embedding"][pairs % spec.n]
        if spec.decoder == "ideal-distance":
            return p["scale"] * (p["threshold"] - ((first - second) ** 2).sum(-1))
        if spec.decoder == "ideal-order":
            return (second - first) @ p["direction"] - p["offset"]
        if spec.decoder == "ideal-product":
            return -(first @ p["direction"] + p["offset"]) * (second @ p["direction"] + p["offset"])
        h = combine(spec.combiner, first, second)
        for i in range(spec.depth):
            h = h @ p[f"weight{i}"] + p[f"bias{i}"]
            if i < spec.depth - 1:
                h = torch.tanh(h)
        return h.squeeze(-1)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """The embeddings (trained at the encoder's learning rate)."""
        return [self.params["embedding"]]

    def decoder_parameters(self) -> list[nn.Parameter]:
        """Everything else (trained at the decoder's learning rate)."""
        return [v for k, v in self.params.items() if k != "embedding"]
