"""The autoencoding data set: all n^2 ordered pairs (x1, x2) with the label R(x1, x2), split into
a training sample of a given fraction and the held-out rest.

The split depends on (n, fraction, seed) only, so the trained networks and the Monte Carlo bound
(`statics.monte_carlo_bound`) see the very same training pairs for the same seed.
"""

from __future__ import annotations

import math

import numpy as np

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError


def check_fraction(fraction: object, what: str = "fraction") -> float:
    """A data fraction in (0, 1]."""
    ok = isinstance(fraction, int | float | np.floating) and not isinstance(fraction, bool)
    if not ok or not math.isfinite(fraction) or not 0.0 < fraction <= 1.0:
        raise ConfigError(f"{what} must be a share of the n^2 pairs in (0, 1], got {shown(fraction)}")
    return float(fraction)


def train_count(n: int, fraction: float) -> int:
    """How many of the n^2 pairs a fraction trains on (at least one)."""
    return max(1, min(n * n, int(round(fraction * n * n))))


def split_pairs(n: int, fraction: float, seed: int) -> np.ndarray:
    """Indices (into the n^2 pairs, pair i = (i // n, i % n)) of the training sample, sorted."""
    check_fraction(fraction)
    order = np.random.Generator(np.random.PCG64([int(seed), n, 0x6E])).permutation(n * n)
    return np.sort(order[: train_count(n, fraction)])


def train_mask(n: int, fraction: float, seed: int) -> np.ndarray:
    """Boolean (n^2,) mask of the training pairs."""
    mask = np.zeros(n * n, dtype=bool)
    mask[split_pairs(n, fraction, seed)] = True
    return mask
