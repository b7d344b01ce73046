"""Clustering SAE decoder directions into candidate multi-dimensional features (Engels et al. 2024, section 4).

- `spectral_clusters`: spectral clustering on the affinity 1 - arccos(cos)/pi between decoder rows
  (the paper's GPT-2 run: 1000 clusters of 24,576 latents).
- `graph_clusters`: each latent keeps edges to its top-k most similar latents (k = 2), edges with
  cosine below tau (0.5) are dropped, and the connected components are the clusters (the paper's
  Mistral run). Neighbours are found block by block, so the M x M similarity matrix is never held.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError, DataError

METHODS = ("graph", "spectral")
# spectral clustering holds a dense M x M affinity; past this many latents use the graph method
SPECTRAL_MAX_LATENTS = 20_000


def unit_rows(directions: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Decoder rows (M, d) as float32 unit vectors; DataError for NaN, too few rows or all-zero rows."""
    w = torch.as_tensor(np.asarray(directions) if not isinstance(directions, torch.Tensor) else directions)
    w = w.detach().float()
    if w.dim() != 2 or w.shape[0] < 2 or w.shape[1] < 1:
        raise DataError(f"decoder directions must be (latents >= 2, d) rows, got shape {tuple(w.shape)}")
    if not torch.isfinite(w).all():
        raise DataError("decoder directions hold NaN or infinite values")
    norms = w.norm(dim=1, keepdim=True)
    if (norms == 0).any():
        raise DataError(
            f"decoder row {int((norms[:, 0] == 0).nonzero()[0])} is all zeros; it has no direction"
        )
    return w / norms


def graph_clusters(directions: np.ndarray | torch.Tensor, *, k: int = 2, tau: float = 0.5,
                   block: int = 4096) -> list[np.ndarray]:  # fmt: skip
    """Connected components of the top-k cosine-neighbour graph with edges below `tau` dropped.

    Returns the clusters of two or more latents, largest first (a lone latent is a 1-D feature).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if not 1 <= int(k) <= 1000:
        raise ConfigError(f"k (neighbours per latent) must be between 1 and 1000, got {shown(k)}")
    if not (math.isfinite(tau) and -1 <= tau <= 1):
        raise ConfigError(f"tau (the cosine cutoff) must be in [-1, 1], got {shown(tau)}")
    w = unit_rows(directions)
    m = w.shape[0]
    k = min(int(k), m - 1)
    sources, targets = [], []
    for start in range(0, m, block):
        sims = w[start : start + block] @ w.T
        rows = torch.arange(start, min(start + block, m))
        sims[torch.arange(len(rows)), rows] = -2.0  # not its own neighbour
        values, neighbours = sims.topk(k, dim=1)
        keep = values >= tau
        sources.append(rows[:, None].expand(-1, k)[keep].numpy())
        targets.append(neighbours[keep].numpy())
    src, dst = np.concatenate(sources), np.concatenate(targets)
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(m, m))
    _, labels = connected_components(graph, directed=False)
    return _groups(labels)


def spectral_clusters(
    directions: np.ndarray | torch.Tensor, n_clusters: int, *, seed: int = 0
) -> list[np.ndarray]:
    """Spectral clustering on the angular affinity 1 - arccos(cos)/pi; clusters of two or more, largest first."""
    from sklearn.cluster import SpectralClustering

    w = unit_rows(directions)
    m = w.shape[0]
    if not 2 <= int(n_clusters) < m:
        raise ConfigError(f"n_clusters must be between 2 and {m - 1} (latents - 1), got {shown(n_clusters)}")
    if m > SPECTRAL_MAX_LATENTS:
        raise DataError(
            f"spectral clustering of {m} latents needs a dense {m}x{m} affinity; use the graph method "
            f"(method=graph) past {SPECTRAL_MAX_LATENTS} latents"
        )
    cos = (w @ w.T).clamp(-1.0, 1.0).double().numpy()
    affinity = 1.0 - np.arccos(cos) / np.pi
    model = SpectralClustering(n_clusters=int(n_clusters), affinity="precomputed", random_state=seed,
                               assign_labels="cluster_qr")  # fmt: skip
    labels = model.fit_predict(affinity)
    return _groups(labels)


def _groups(labels: np.ndarray) -> list[np.ndarray]:
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.diff(labels[order])) + 1
    groups = [g for g in np.split(order, bounds) if len(g) >= 2]
    return sorted(groups, key=lambda g: (-len(g), int(g[0])))


def cluster_directions(directions: np.ndarray | torch.Tensor, method: str, *, n_clusters: int = 100, k: int = 2,
                       tau: float = 0.5, seed: int = 0) -> list[np.ndarray]:  # fmt: skip
    """`graph` or `spectral` by name."""
    if method == "graph":
        return graph_clusters(directions, k=k, tau=tau)
    if method == "spectral":
        return spectral_clusters(directions, n_clusters, seed=seed)
    raise ConfigError(f"unknown clustering method {shown(method)}; valid: {', '.join(METHODS)}")
