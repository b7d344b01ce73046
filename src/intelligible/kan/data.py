"""Datasets for KANs: samples of a function on a box, in pykan's dict format."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from intelligible.core.errors import ConfigError, DataError


def create_dataset(
    f: Callable[[Tensor], Tensor],
    n_var: int = 2,
    ranges: Sequence[float] | Sequence[Sequence[float]] = (-1.0, 1.0),
    train_num: int = 1000,
    test_num: int = 1000,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    name: str = "f",
    hint: str = "narrow `ranges`",
) -> dict[str, Tensor]:
    """Uniform samples of f on the box `ranges`: {train_input, train_label, test_input, test_label}.

    f maps (n, n_var) to (n,) or (n, n_out). `ranges` is one [low, high] for every variable or one
    pair per variable. dtype float64 keeps labels exact enough for errors below 1e-7. Sample points
    where f is NaN or infinite are a DataError naming f as `name` and ending with `hint`.
    """
    if n_var < 1 or train_num < 1 or test_num < 1:
        raise ConfigError(f"n_var, train_num and test_num must be >= 1, got {n_var}, {train_num}, {test_num}")
    if len(ranges) == 2 and all(isinstance(v, (int, float)) for v in ranges):
        box = [(float(ranges[0]), float(ranges[1]))] * n_var
    else:
        box = [(float(lo), float(hi)) for lo, hi in ranges]
        if len(box) != n_var:
            raise ConfigError(f"ranges has {len(box)} pairs for {n_var} variables")
    if any(lo >= hi for lo, hi in box):
        raise ConfigError(f"every range must be increasing, got {box}")
    low = torch.tensor([lo for lo, _ in box], dtype=dtype)
    high = torch.tensor([hi for _, hi in box], dtype=dtype)
    generator = torch.Generator().manual_seed(seed)

    def sample(n: int) -> tuple[Tensor, Tensor]:
        x = low + torch.rand(n, n_var, generator=generator, dtype=dtype) * (high - low)
        y = f(x)
        y = y.unsqueeze(1) if y.dim() == 1 else y
        if y.shape[0] != n:
            raise DataError(f"f returned {tuple(y.shape)} for {n} samples; expected ({n},) or ({n}, n_out)")
        bad = ~torch.isfinite(y)
        if bool(bad.any()):
            first = x[int(torch.nonzero(bad)[0, 0])].tolist()
            raise DataError(
                f"{name} is NaN or infinite at {int(bad.any(dim=1).sum())} of {n} sample points "
                f"(e.g. at x = {[round(v, 4) for v in first[:4]]}); {hint}"
            )
        return x, y.to(dtype)

    train_input, train_label = sample(train_num)
    test_input, test_label = sample(test_num)
    return {
        "train_input": train_input,
        "train_label": train_label,
        "test_input": test_input,
        "test_label": test_label,
    }
