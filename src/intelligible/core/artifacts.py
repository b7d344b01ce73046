"""Artifacts studies exchange as files: `<name>.safetensors` (tensors) + `<name>.json` (kind, config).

Readers live here, below the studies, so one study can load another's artifact without importing it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intelligible.core.config import to_jsonable
from intelligible.core.errors import DataError
from intelligible.core.runs import atomic_write_bytes, atomic_write_text

if TYPE_CHECKING:  # torch is imported when tensors are read or written, not for the registry's checks
    import torch

FORMAT_VERSION = 1

# The kinds studies exchange, with what a file of each kind holds. A study's registry line names
# the kinds it produces and consumes; the reader of a shared kind lives below the studies.
ARTIFACT_KINDS: dict[str, str] = {
    "sae": "a trained sparse autoencoder: <name>.json + <name>.safetensors, as `intelligible sae train` writes",
}


def _paths(path: str | Path) -> tuple[Path, Path]:
    base = Path(path)
    if base.suffix in (".safetensors", ".json"):
        base = base.with_suffix("")
    # append, never replace: in "model_lr0.01" the ".01" is part of the name, not an extension
    return base.with_name(base.name + ".safetensors"), base.with_name(base.name + ".json")


def save_artifact(
    path: str | Path, kind: str, config: dict[str, Any], tensors: dict[str, torch.Tensor]
) -> Path:
    """Write tensors then the JSON that names their kind (the JSON last: a reader never sees a half artifact)."""
    from safetensors.torch import save as save_safetensors

    weights, meta = _paths(path)
    data = save_safetensors({key: value.detach().contiguous().cpu() for key, value in tensors.items()})
    atomic_write_bytes(weights, data)
    atomic_write_text(
        meta, json.dumps({"kind": kind, "format": FORMAT_VERSION, "config": to_jsonable(config)}, indent=2)
    )
    return meta


def load_artifact(
    path: str | Path, kind: str | None = None
) -> tuple[str, dict[str, Any], dict[str, torch.Tensor]]:
    """Read an artifact; with `kind`, refuse one of another kind. Returns (kind, config, tensors)."""
    from safetensors.torch import load as load_safetensors

    weights, meta = _paths(path)
    found, config = _read_description(weights, meta, kind)
    try:
        tensors = load_safetensors(weights.read_bytes())
    except Exception as error:  # safetensors raises its own error types on corrupt files
        raise DataError(f"{weights} cannot be read as safetensors: {error}") from None
    return found, config, tensors


def _read_description(weights: Path, meta: Path, kind: str | None) -> tuple[str, dict[str, Any]]:
    if not meta.is_file() or not weights.is_file():
        raise DataError(f"no artifact at {meta.with_suffix('')}: need both {meta.name} and {weights.name}")
    try:
        record = json.loads(meta.read_text(encoding="utf-8"))
        found = record["kind"]
        config = record["config"]
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise DataError(f"{meta} is not an intelligible artifact description: {error}") from None
    if not isinstance(found, str) or not isinstance(config, dict):
        raise DataError(f"{meta} is not an intelligible artifact description: 'kind' or 'config' malformed")
    if kind is not None and found != kind:
        raise DataError(f"{meta} holds a '{found}' artifact, not a '{kind}'")
    return found, config


def check_artifact(path: str | Path, kind: str) -> Path:
    """Check, without reading the tensors, that `path` names an artifact of `kind`; return its JSON path.

    This is what a consumer does with a path it was handed (`--sae PATH`), before any long work.
    """
    if kind not in ARTIFACT_KINDS:
        raise DataError(f"unknown artifact kind {kind!r}; known kinds: {', '.join(ARTIFACT_KINDS)}")
    weights, meta = _paths(path)
    _read_description(weights, meta, kind)
    return meta
