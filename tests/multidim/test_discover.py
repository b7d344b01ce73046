"""Discovery on a planted SAE: a circle cluster outranks a line cluster; bad SAE files are named."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from intelligible.core.errors import DataError
from intelligible.lm.saes import ReLUSAE, save_sae
from intelligible.multidim.discover import (
    DiscoverConfig,
    cluster_reconstruction,
    encode_all,
    is_cyclic_word,
    rank_clusters,
)
from intelligible.multidim.experiment import read_sae


def _planted_sae(d: int = 16, seed: int = 0) -> tuple[ReLUSAE, torch.Tensor, list[str]]:
    """Latents 0-5: six directions round a circle in dims 0-1; latents 6-9: +-e2, +-e3 (lines)."""
    rng = np.random.default_rng(seed)
    sae = ReLUSAE(d, 10)
    rows = np.zeros((10, d))
    for j in range(6):
        rows[j, :2] = np.cos(2 * np.pi * j / 6), np.sin(2 * np.pi * j / 6)
    rows[6, 2], rows[7, 2], rows[8, 3], rows[9, 3] = 1, -1, 1, -1
    n = 3000
    angle = rng.uniform(0, 2 * np.pi, n)
    ring = np.zeros((n, d))
    ring[:, 0], ring[:, 1] = np.cos(angle), np.sin(angle)
    line = np.zeros((n, d))
    line[:, 2] = rng.standard_normal(n)
    with torch.no_grad():
        sae.W_dec.copy_(torch.tensor(rows, dtype=torch.float32))
        sae.W_enc.copy_(torch.tensor(rows, dtype=torch.float32))
        sae.b_enc.fill_(-0.5)  # a ring latent fires within 60 degrees of its direction
        sae.b_dec.zero_()
    x = torch.tensor(np.concatenate([ring, line]), dtype=torch.float32)
    words = [" Monday"] * n + [" the"] * n
    return sae, x, words


def test_a_circle_cluster_outranks_a_line():
    sae, x, words = _planted_sae()
    firing = encode_all(sae, x)
    ids, x_hat = cluster_reconstruction(sae, firing, np.arange(6))
    assert len(ids) == 3000 and x_hat.shape == (3000, 16)
    cfg = DiscoverConfig(method="graph", neighbours=2, tau=0.4, steps=300, min_tokens=50)
    scored, clusters = rank_clusters(sae, x, words, cfg)
    assert frozenset(range(6)) in {frozenset(c.tolist()) for c in clusters}
    best = scored[0]
    assert set(best.latents) == set(range(6))
    assert best.score > 0.3 and best.cyclic_fraction == 1.0
    assert best.planes[0]["separability_bits"] > 0.5  # the ring's own plane: not separable
    assert best.top_tokens[0] == (" Monday", 3000)


def test_cyclic_words():
    assert is_cyclic_word(" Monday") and is_cyclic_word("Sept.") and is_cyclic_word(" 12")
    assert not is_cyclic_word(" the") and not is_cyclic_word("12345")


def test_sae_files_of_the_wrong_kind_or_width(tmp_path):
    sae, x, words = _planted_sae()
    save_sae(sae, tmp_path / "good")
    assert read_sae(tmp_path / "good.json").n_latents == 10
    (tmp_path / "other.json").write_text(json.dumps({"kind": "kan", "format": 1, "config": {}}))
    (tmp_path / "other.safetensors").write_bytes(b"")
    with pytest.raises(DataError, match="other.json' is not a usable SAE"):
        read_sae(tmp_path / "other.json")
    with pytest.raises(DataError, match="no SAE at"):
        read_sae(tmp_path / "missing")
    with pytest.raises(DataError, match=r"the SAE reads 16-dimensional activations, got \(5, 8\)"):
        encode_all(sae, torch.zeros(5, 8))
