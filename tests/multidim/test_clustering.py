"""Clustering recovers planted groups of decoder directions."""

from __future__ import annotations

import numpy as np
import pytest

from intelligible.core.errors import ConfigError, DataError
from intelligible.multidim.clustering import cluster_directions, graph_clusters, spectral_clusters


def _planted(
    seed: int = 0, d: int = 64, groups: int = 3, per_group: int = 6, singles: int = 20, span: float = np.pi
):
    rng = np.random.default_rng(seed)
    rows, truth = [], []
    for g in range(groups):
        plane, _ = np.linalg.qr(rng.standard_normal((d, 2)))
        for j in range(per_group):  # an arc of directions in the plane
            angle = span * j / per_group
            rows.append(plane @ [np.cos(angle), np.sin(angle)])
            truth.append(g)
    for _ in range(singles):
        rows.append(rng.standard_normal(d))
        truth.append(-1)
    order = rng.permutation(len(rows))
    return np.array(rows)[order] * rng.uniform(0.5, 2.0, (len(rows), 1)), np.array(truth)[order]


def _as_sets(clusters):
    return {frozenset(int(i) for i in c) for c in clusters}


def test_graph_method_recovers_the_planted_groups():
    directions, truth = _planted()
    expected = {frozenset(np.flatnonzero(truth == g).tolist()) for g in range(3)}
    assert _as_sets(graph_clusters(directions, k=2, tau=0.5)) == expected
    assert _as_sets(cluster_directions(directions, "graph", k=2, tau=0.5, n_clusters=2)) == expected


def test_spectral_method_keeps_each_planted_group_together():
    # the angular affinity of orthogonal rows is 0.5, so spectral clustering needs tighter groups
    directions, truth = _planted(singles=0, span=np.pi / 4)
    clusters = spectral_clusters(directions, n_clusters=3, seed=0)
    assert _as_sets(clusters) == {frozenset(np.flatnonzero(truth == g).tolist()) for g in range(3)}


def test_bad_inputs():
    directions, _ = _planted()
    with pytest.raises(ConfigError, match="unknown clustering method 'kmeans'"):
        cluster_directions(directions, "kmeans")
    with pytest.raises(ConfigError, match="n_clusters must be between 2 and"):
        spectral_clusters(directions, n_clusters=1)
    bad = directions.copy()
    bad[3] = 0.0
    with pytest.raises(DataError, match="decoder row 3 is all zeros"):
        graph_clusters(bad)
