"""LM activations for SAEs: the residual stream after one layer, optionally cached on disk in shards.

Activations are collected from `intelligible.lm.LanguageModel` on BOS-prefixed token windows; the
BOS position is dropped (its residual is an outlier by orders of magnitude in most LMs and would
dominate the reconstruction loss). `normalize=True` rescales so that the mean norm is sqrt(d), as
in the TopK and Switch SAE papers; the factor is kept so reconstructions can be spliced back.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from intelligible.core.errors import DataError
from intelligible.core.runs import atomic_write_bytes, atomic_write_text
from intelligible.lm.model import LanguageModel


@dataclass
class Activations:
    """Token activations (tokens, d) of `layer`, and the factor they were multiplied by."""

    values: Tensor
    layer: int
    scale: float = 1.0

    @property
    def d(self) -> int:
        return self.values.shape[1]


@torch.no_grad()
def residual_at(lm: LanguageModel, windows: Tensor, layer: int) -> Tensor:
    """Residual stream after block `layer` for token windows (batch, seq): (batch, seq, d)."""
    if not 0 <= layer < lm.n_layers:
        raise DataError(f"layer must be in 0..{lm.n_layers - 1}, got {layer}")
    h = lm.embed(windows)
    return lm.run_layers(h, range(layer + 1))


@torch.no_grad()
def collect_activations(
    lm: LanguageModel,
    windows: Tensor,
    layer: int,
    *,
    batch_size: int = 8,
    normalize: bool = False,
    cache_dir: str | Path | None = None,
) -> Activations:
    """Residuals after `layer` at every non-BOS position of `windows`, as (tokens, d).

    With `cache_dir`, shards of activations are written there (with a manifest naming the model,
    layer and windows) and read back on the next call with the same inputs instead of running the LM.
    """
    key = {"model": lm.name, "layer": layer, "windows": list(windows.shape),
           "checksum": int(windows.sum()) * 31 + int((windows * torch.arange(windows.shape[1])).sum())}  # fmt: skip
    if cache_dir is not None and (cached := _read_cache(Path(cache_dir), key)) is not None:
        values = cached
    else:
        parts = []
        for start in range(0, windows.shape[0], batch_size):
            h = residual_at(lm, windows[start : start + batch_size], layer)
            parts.append(h[:, 1:].reshape(-1, h.shape[-1]).float())
        values = torch.cat(parts)
        if cache_dir is not None:
            _write_cache(Path(cache_dir), key, values)
    scale = 1.0
    if normalize:
        scale = math.sqrt(values.shape[1]) / float(values.norm(dim=1).mean())
        values = values * scale
    return Activations(values=values, layer=layer, scale=scale)


SHARD_TOKENS = 65_536


def _write_cache(folder: Path, key: dict, values: Tensor) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shards = []
    for index, start in enumerate(range(0, values.shape[0], SHARD_TOKENS)):
        name = f"shard_{index:05d}.safetensors"
        atomic_write_bytes(
            folder / name,
            save_safetensors({"activations": values[start : start + SHARD_TOKENS].contiguous()}),
        )
        shards.append(name)
    # the manifest last: a reader never sees a cache whose shards are still being written
    atomic_write_text(
        folder / "manifest.json", json.dumps({"key": key, "shards": shards, "tokens": values.shape[0]})
    )


def _read_cache(folder: Path, key: dict) -> Tensor | None:
    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return None
    try:
        record = json.loads(manifest.read_text())
        if record["key"] != key:
            return None
        values = torch.cat(
            [load_safetensors((folder / name).read_bytes())["activations"] for name in record["shards"]]
        )
    except Exception as error:  # json, safetensors and OS errors alike mean a damaged cache
        raise DataError(f"activation cache {folder} is damaged ({error}); delete it to rebuild") from None
    if values.shape[0] != record["tokens"]:
        raise DataError(f"activation cache {folder} is incomplete; delete it to rebuild")
    return values
