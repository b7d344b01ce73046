"""Discovery: from an SAE and activations to ranked candidate multi-dimensional features.

For each cluster of decoder directions (`clustering`), on every token where some cluster latent fires,
the cluster's reconstruction x_hat = sum over its latents of act_i * W_dec[i] (the decoder bias left
out) is projected to its top 5 principal components; each consecutive PCA plane (1-2, 2-3, 3-4, 4-5)
gets S (bits) and M_eps, and the cluster's score is the mean over its planes of (1 - M_eps) * S, planes
with M_eps < 0.01 skipped (the paper's appendix). High scores mark clusters whose points are neither
separable nor a mixture: irreducible candidates such as circles.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError, DataError
from intelligible.lm.saes.models import Code, SparseAutoencoder
from intelligible.multidim.circles import MONTHS, NUMBER_WORDS, WEEKDAYS
from intelligible.multidim.indices import mixture_index, pca_planes, separability_index

# Words of the cyclic concepts the paper found (weekdays, months; numbers, as in dates and years), with
# common short forms; digits count too, since tokenizers like SmolLM2's split numbers into digits.
CYCLIC_WORDS = frozenset(
    {w.lower() for w in (*WEEKDAYS, *MONTHS, *NUMBER_WORDS)}
    | {w[:3].lower() for w in (*WEEKDAYS, *MONTHS)}
    | {"tues", "thur", "thurs", "sept"}
)


def is_cyclic_word(token: str) -> bool:
    """Whether a token (spaces and punctuation ignored) is a weekday, a month, a number word or a number."""
    word = token.strip().strip(".,;:!?'\"()").lower()
    return word in CYCLIC_WORDS or (word.isdigit() and len(word) <= 4)


@dataclass
class DiscoverConfig:
    """How clusters are formed and scored."""

    method: str = "graph"  # graph | spectral
    n_clusters: int = 100  # spectral only
    neighbours: int = 2  # graph: top-k neighbours per latent
    tau: float = 0.5  # graph: drop edges with cosine below tau
    max_clusters: int = 200  # score the largest this many clusters
    max_cluster_size: int = 1000
    min_tokens: int = 100  # clusters firing on fewer tokens are not scored
    max_tokens: int = 20_000  # a cluster's tokens beyond this are left out (the first ones kept)
    n_components: int = 5
    bins: int = (
        10  # per axis; the authors' SAE scoring (10 x 10, 100 angles); fewer if a cluster has few tokens
    )
    n_angles: int = 100
    eps: float = 0.1
    steps: int = 1000
    lr: float = 0.1
    restarts: int = 2  # starts per plane for M_eps; the best is kept
    seed: int = 0

    def validate(self) -> None:
        if self.restarts < 1:
            raise ConfigError(f"restarts must be at least 1, got {self.restarts}")
        if self.method not in ("graph", "spectral"):
            raise ConfigError(f"method must be graph or spectral, got {shown(self.method)}")
        checks = {"n_clusters": (2, 10**6), "neighbours": (1, 1000), "max_clusters": (1, 10**6),
                  "max_cluster_size": (2, 10**7), "min_tokens": (4, 10**9), "max_tokens": (4, 10**9),
                  "n_components": (2, 100), "bins": (2, 1000), "n_angles": (1, 100_000), "steps": (1, 10**7)}  # fmt: skip
        for name, (low, high) in checks.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
        if not -1 <= self.tau <= 1:
            raise ConfigError(f"tau must be in [-1, 1], got {self.tau}")
        if not 0 < self.eps < 10 or not self.lr > 0:
            raise ConfigError(f"eps must be in (0, 10) and lr positive, got eps={self.eps}, lr={self.lr}")
        if self.max_tokens < self.min_tokens:
            raise ConfigError(
                f"max_tokens ({self.max_tokens}) must be at least min_tokens ({self.min_tokens})"
            )


@dataclass
class Firing:
    """Every (token, latent, activation > 0) of the SAE on the activations (a COO list)."""

    token: torch.Tensor
    latent: torch.Tensor
    value: torch.Tensor
    n_tokens: int


@torch.no_grad()
def encode_all(sae: SparseAutoencoder, activations: torch.Tensor, batch: int = 4096) -> Firing:
    """Run the SAE encoder over (T, d) activations; keep the firing latents only."""
    if activations.dim() != 2 or activations.shape[1] != sae.d:
        raise DataError(
            f"the SAE reads {sae.d}-dimensional activations, got {tuple(activations.shape)}; "
            "it was trained on another model or site"
        )
    tokens, latents, values = [], [], []
    for start in range(0, len(activations), batch):
        code: Code = sae.encode(activations[start : start + batch].float())
        if code.indices is None:
            row, col = (code.values > 0).nonzero(as_tuple=True)
            val = code.values[row, col]
        else:
            keep = code.values > 0
            row = keep.nonzero(as_tuple=True)[0]
            col, val = code.indices[keep], code.values[keep]
        tokens.append(row + start)
        latents.append(col)
        values.append(val.float())
    return Firing(torch.cat(tokens), torch.cat(latents), torch.cat(values), len(activations))


def cluster_reconstruction(
    sae: SparseAutoencoder,
    firing: Firing,
    latents: np.ndarray,
    max_tokens: int | None = None,
    compact: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(token ids (n,), x_hat (n, d)) over the tokens where a cluster latent fires; with `compact`, x_hat in an
    orthonormal basis of the cluster's decoder rows, (n, c)."""
    member = torch.zeros(sae.n_latents, dtype=torch.bool)
    member[torch.as_tensor(latents, dtype=torch.long)] = True
    mask = member[firing.latent]
    tok, lat, val = firing.token[mask], firing.latent[mask], firing.value[mask]
    unique, slot = torch.unique(tok, return_inverse=True)
    if max_tokens is not None and len(unique) > max_tokens:
        keep = slot < max_tokens
        unique, slot, lat, val = unique[:max_tokens], slot[keep], lat[keep], val[keep]
    decoder = sae.W_dec.detach().float()
    if compact:
        # the reconstructions lie in the span of the cluster's decoder rows: write them in an orthonormal
        # basis of that span (c <= cluster size coordinates instead of d); PCA and both indices are unchanged
        rows = torch.as_tensor(latents, dtype=torch.long)
        basis, _ = torch.linalg.qr(decoder[rows].double().T)  # (d, c)
        decoder = torch.zeros(sae.n_latents, basis.shape[1], dtype=torch.float64)
        decoder[rows] = sae.W_dec.detach().double()[rows] @ basis
    out = torch.zeros(len(unique), decoder.shape[1], dtype=decoder.dtype)
    out.index_add_(0, slot, val[:, None].to(decoder.dtype) * decoder[lat])
    return unique.numpy(), out.double().numpy()


@dataclass
class ClusterScore:
    """One cluster's reducibility: planes with S and M_eps, its score and the tokens that fire it."""

    latents: list[int]
    n_tokens: int
    score: float
    planes: list[dict] = field(default_factory=list)
    explained: list[float] = field(default_factory=list)
    top_tokens: list[tuple[str, int]] = field(default_factory=list)
    cyclic_fraction: float = 0.0  # of its firing tokens, the share that are weekday, month or number words
    coords: np.ndarray | None = None  # (n, k) PCA coordinates, for plots
    token_ids: np.ndarray | None = None
    note: str = ""


def score_cluster(
    sae: SparseAutoencoder, firing: Firing, latents: np.ndarray, token_text: list[str], cfg: DiscoverConfig
) -> ClusterScore:
    """Reconstruct, PCA, index every plane, and combine into the cluster's score."""
    ids, x_hat = cluster_reconstruction(sae, firing, latents, cfg.max_tokens, compact=True)
    counts = Counter(token_text[i] for i in ids)
    result = ClusterScore(latents=[int(v) for v in latents], n_tokens=len(ids), score=0.0,
                          top_tokens=counts.most_common(10),
                          cyclic_fraction=sum(c for t, c in counts.items() if is_cyclic_word(t)) / max(len(ids), 1))  # fmt: skip
    if len(ids) < cfg.min_tokens:
        result.note = f"fires on {len(ids)} tokens (< {cfg.min_tokens}); not scored"
        return result
    planes, ratios = pca_planes(x_hat, cfg.n_components)
    result.explained = [float(r) for r in ratios]
    result.coords = np.concatenate([planes[0], planes[1:, :, 1].T], axis=1) if len(planes) else None
    result.token_ids = ids
    spread = planes.std(axis=1).min(axis=1)
    usable = [p for p in range(len(planes)) if spread[p] > 1e-9 * max(float(np.abs(x_hat).max()), 1e-30)]
    if not usable:
        result.note = "every PCA plane is degenerate (a constant coordinate)"
        return result
    bins = min(cfg.bins, int(math.isqrt(len(ids))))
    sep = separability_index(planes[usable], bins=bins, n_angles=cfg.n_angles)
    mix = mixture_index(
        planes[usable], eps=cfg.eps, steps=cfg.steps, lr=cfg.lr, seed=cfg.seed, restarts=cfg.restarts
    )
    terms = []
    for n, p in enumerate(usable):
        used = bool(mix.fraction[n] >= 0.01)
        result.planes.append({"plane": f"{p + 1}-{p + 2}", "separability_bits": float(sep.bits[n]),
                              "mixture": float(mix.fraction[n]), "used": used})  # fmt: skip
        if used:
            terms.append((1.0 - mix.fraction[n]) * sep.bits[n])
    result.score = float(np.mean(terms)) if terms else 0.0
    if bins < cfg.bins:
        result.note = f"{bins}x{bins} bins ({len(ids)} tokens)"
    return result


def rank_clusters(
    sae: SparseAutoencoder, activations: torch.Tensor, token_text: list[str], cfg: DiscoverConfig
) -> tuple[list[ClusterScore], list[np.ndarray]]:
    """Cluster the SAE's decoder rows, score the largest clusters, return them best first (and all clusters)."""
    from intelligible.multidim.clustering import cluster_directions

    cfg.validate()
    if len(token_text) != len(activations):
        raise DataError(f"{len(token_text)} token texts for {len(activations)} activation rows")
    clusters = cluster_directions(sae.W_dec.detach(), cfg.method, n_clusters=min(cfg.n_clusters, sae.n_latents - 1),
                                  k=cfg.neighbours, tau=cfg.tau, seed=cfg.seed)  # fmt: skip
    firing = encode_all(sae, activations)
    candidates = [c for c in clusters if len(c) <= cfg.max_cluster_size][: cfg.max_clusters]
    scored = [score_cluster(sae, firing, c, token_text, cfg) for c in candidates]
    scored.sort(key=lambda s: -s.score)
    return scored, clusters
