"""One call that makes a run repeatable."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's `random`, NumPy and torch; return a torch.Generator seeded with `seed`.

    Code that needs its own random stream (data shuffling, initialisation) should take the
    returned generator rather than rely on global state, so that adding a random call elsewhere
    does not change its numbers.
    """
    random.seed(seed)
    # NumPy's legacy seed only accepts 32-bit values.
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator
