"""LM activations for SAEs: the residual stream after one layer, optionally cached on disk in shards.

Activations are collected from `intelligible.lm.LanguageModel` on BOS-prefixed token windows; the
BOS position is dropped (its residual is an outlier by orders of magnitude in most LMs and would
dominate the reconstruction loss). `normalize=True` rescales so that the mean norm is sqrt(d), as
in the TopK and Switch SAE papers; the factor is kept so reconstructions can be spliced back.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import Tensor

from intelligible.core.errors import DataError
from intelligible.core.progress import progress
from intelligible.core.runs import atomic_write_bytes, atomic_write_text
from intelligible.lm.model import LanguageModel


@dataclass
class Activations:
    """Token activations (tokens, d) of `layer`, and the factor they were multiplied by."""

    values: Tensor
    layer: int
    scale: float = 1.0
    stats: CacheStats | None = None

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
    batch_size: int = 16,
    normalize: bool = False,
    cache_dir: str | Path | None = None,
    shard_windows: int = 256,
    show_progress: bool | None = None,
) -> Activations:
    """Residuals after `layer` at every non-BOS position of `windows`, as (tokens, d).

    The LM runs only up to `layer` (no later blocks, no unembedding), `batch_size` windows at a time.
    With `cache_dir`, the activations go to disk in shards of `shard_windows` windows as they are
    computed, under a subfolder named by a hash of (model, layer, windows): a later call with the same
    inputs reads them back instead of running the LM, and an interrupted one continues after its last
    finished shard (no token is computed twice or lost). `stats` says how fast the LM part ran.
    """
    if not 0 <= layer < lm.n_layers:
        raise DataError(f"layer must be in 0..{lm.n_layers - 1}, got {layer}")
    if batch_size < 1 or shard_windows < 1:
        raise DataError(f"batch_size and shard_windows must be >= 1, got {batch_size}, {shard_windows}")
    if cache_dir is not None:
        values, stats = _cached(lm, windows, layer, Path(cache_dir), batch_size, shard_windows, show_progress)
    else:
        clock = time.perf_counter()
        values = _run(lm, windows, layer, batch_size, show_progress)
        stats = CacheStats(tokens=values.shape[0], lm_seconds=time.perf_counter() - clock)
    scale = 1.0
    if normalize:
        scale = math.sqrt(values.shape[1]) / float(values.norm(dim=1).mean())
        values = values * scale
    return Activations(values=values, layer=layer, scale=scale, stats=stats)


def _run(
    lm: LanguageModel, windows: Tensor, layer: int, batch_size: int, show_progress: bool | None = False
) -> Tensor:
    parts = []
    starts = range(0, windows.shape[0], batch_size)
    for start in progress(starts, desc=f"activations L{layer}", disable=_quiet(show_progress, len(starts))):
        h = residual_at(lm, windows[start : start + batch_size], layer)
        parts.append(h[:, 1:].reshape(-1, h.shape[-1]).float())
    return torch.cat(parts)


def _quiet(show_progress: bool | None, steps: int) -> bool | None:
    """tqdm's `disable`: as asked, else automatic (a terminal) for long loops and off for short ones."""
    if show_progress is not None:
        return not show_progress
    return None if steps > 20 else True


@dataclass
class CacheStats:
    """How activations were obtained: tokens, seconds the LM ran (all parts of a resumed cache
    together), tokens/s, and how many shards were computed now and read from disk."""

    tokens: int
    lm_seconds: float
    shards_computed: int = 0
    shards_reused: int = 0

    @property
    def tokens_per_s(self) -> float | None:
        return self.tokens / self.lm_seconds if self.lm_seconds > 0 else None


CACHE_FORMAT = 2  # bump when the layout or the meaning of a shard changes


def cache_key(lm: LanguageModel, windows: Tensor, layer: int) -> dict:
    """What a cache depends on: the model, the layer and the exact token windows (a content hash)."""
    digest = hashlib.sha256(windows.to(torch.int64).contiguous().numpy().tobytes()).hexdigest()
    return {"format": CACHE_FORMAT, "model": lm.name, "layer": layer, "windows": list(windows.shape),
            "sha256": digest}  # fmt: skip


def cache_folder(cache_dir: str | Path, key: dict) -> Path:
    """The subfolder of `cache_dir` that holds the activations for `key` (several caches can share a dir)."""
    name = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / f"L{key['layer']}-{name}"


def _cached(
    lm: LanguageModel, windows: Tensor, layer: int, cache_dir: Path, batch_size: int, shard_windows: int,
    show_progress: bool | None,
) -> tuple[Tensor, CacheStats]:  # fmt: skip
    key = cache_key(lm, windows, layer)
    folder = cache_folder(cache_dir, key)
    record = _read_manifest(folder, key, shard_windows)
    n = windows.shape[0]
    reused = len(record["shards"])
    done = sum(shard["windows"] for shard in record["shards"])
    todo = range(done, n, record["shard_windows"])
    bar = progress(todo, desc=f"caching L{layer}", disable=_quiet(show_progress, len(todo) * 4))
    for start in bar:
        clock = time.perf_counter()
        chunk = windows[start : start + record["shard_windows"]]
        values = _run(lm, chunk, layer, batch_size)
        record["lm_seconds"] += time.perf_counter() - clock
        name = f"shard_{len(record['shards']):05d}.safetensors"
        atomic_write_bytes(folder / name, save_safetensors({"activations": values.contiguous()}))
        record["shards"].append({"name": name, "windows": chunk.shape[0], "tokens": values.shape[0]})
        # the manifest after its shard: a crash loses at most the shard being computed
        atomic_write_text(folder / "manifest.json", json.dumps(record))
    values = _load_shards(folder, record)
    if values.shape[0] != n * (windows.shape[1] - 1):
        raise DataError(f"activation cache {folder} is incomplete; delete it to rebuild")
    stats = CacheStats(tokens=values.shape[0], lm_seconds=record["lm_seconds"],
                       shards_computed=len(record["shards"]) - reused, shards_reused=reused)  # fmt: skip
    return values, stats


def _read_manifest(folder: Path, key: dict, shard_windows: int) -> dict:
    manifest = folder / "manifest.json"
    fresh = {"key": key, "shard_windows": shard_windows, "shards": [], "lm_seconds": 0.0}
    if not manifest.is_file():
        return fresh
    try:
        record = json.loads(manifest.read_text())
        if record["key"] != key:  # a hash collision of the folder name; never trust it
            raise ValueError("the manifest describes other inputs")
        if not (isinstance(record["shard_windows"], int) and record["shard_windows"] >= 1):
            raise ValueError(f"bad shard size {record['shard_windows']!r}")
        for shard in record["shards"]:
            if not (folder / shard["name"]).is_file():
                raise ValueError(f"{shard['name']} is missing")
        float(record["lm_seconds"])
    except Exception as error:  # json, key and type errors alike mean a damaged cache
        raise DataError(f"activation cache {folder} is damaged ({error}); delete it to rebuild") from None
    return record


def _load_shards(folder: Path, record: dict) -> Tensor:
    parts = []
    for shard in record["shards"]:
        try:
            values = load_safetensors((folder / shard["name"]).read_bytes())["activations"]
        except Exception as error:  # safetensors and OS errors alike mean a damaged cache
            raise DataError(f"activation cache {folder} is damaged ({error}); delete it to rebuild") from None
        if values.shape[0] != shard["tokens"]:
            raise DataError(f"activation cache {folder} is damaged ({shard['name']} is cut short); delete it")
        parts.append(values)
    return torch.cat(parts) if parts else torch.zeros(0)
