"""Run directories: config, metrics, checkpoints and figures of one training or experiment run.

Layout of a run directory::

    config.json          {"config", "seed", "versions", "created", "command"}
    metrics.jsonl        one JSON object per logged step
    <name>.safetensors   checkpoint tensors; the JSON state is embedded in its metadata
    <name>.json          the same state, readable
    figures/<name>.png

Every file is written atomically (temp file in the same folder, fsync, os.replace), so a crash or
Ctrl-C leaves either the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intelligible.core.config import config_to_dict, to_jsonable
from intelligible.core.errors import ConfigError, DataError, OutputError

if TYPE_CHECKING:  # torch loads with the first checkpoint, not with the CLI or the registry
    import torch

# The checkpoint state lives in the safetensors header under this key, which also tells our
# checkpoints apart from any other .safetensors file a user keeps in the folder.
_STATE_KEY = "intelligible.state"

_VERSIONED_PACKAGES = (
    "intelligible",
    "torch",
    "transformers",
    "numpy",
    "safetensors",
    "scipy",
    "scikit-learn",
    "sympy",
    "matplotlib",
    "accelerate",
    "gguf",
    "tqdm",
    "click",
    "httpx",
    "ray",
)


def package_versions() -> dict[str, str]:
    """Versions of Python and of the installed packages a result may depend on (absent ones skipped)."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            if name == "intelligible":
                # Running from a source tree that was never pip-installed.
                from intelligible import __version__

                versions[name] = __version__
    return versions


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _current_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` so that readers see the old file or the new one, never a partial one."""
    path = Path(path)
    tmp_name: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as tmp:
            tmp_name = tmp.name
            tmp.write(data)
            tmp.flush()
            os.fsync(tmp.fileno())
        # temp files are created 0600; give the result the permissions a plain open() would
        os.chmod(tmp_name, 0o666 & ~_UMASK)
        os.replace(tmp_name, path)
        tmp_name = None
        _fsync_dir(path.parent)
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from error
    finally:
        # Also runs on KeyboardInterrupt, so an interrupted write leaves no temp file behind.
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform, and not needed for correctness.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def ensure_writable_dir(path: str | Path) -> Path:
    """Create folder `path` (and parents) and prove it is writable; raise OutputError otherwise."""
    if str(path).strip() == "":
        raise OutputError("the output folder is empty; give a folder name")
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        # Permissions alone do not say whether a write succeeds (root, read-only mounts), so try one.
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-probe-"):
            pass
    except OSError as error:
        raise OutputError(f"cannot write to output folder {path}: {error.strerror or error}") from error
    return path


@contextlib.contextmanager
def interrupt_guard(on_interrupt: Callable[[], None]) -> Iterator[None]:
    """On Ctrl-C inside the block, call `on_interrupt()` (e.g. save a checkpoint), then re-raise."""
    try:
        yield
    except KeyboardInterrupt:
        on_interrupt()
        raise


class RunDir:
    """One run's folder. Open an existing one with `RunDir(path)`; start one with `RunDir.create`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def check(
        cls,
        path: str | Path,
        config: dict[str, Any] | Any,
        seed: int,
        *,
        resume: bool = False,
        overwrite: bool = False,
        kind: str = "run",
        rerunnable: bool = False,
    ) -> None:
        """Raise what `create` would raise for these arguments, without writing anything.

        Commands call it before loading models or data, so a bad `--out` fails in a second and a
        rejected command leaves the folder as it was.
        """
        path = _check_out_path(path)
        if not path.exists():
            return
        run = cls(path)
        if not run.config_path.exists() or (overwrite and not resume):
            return
        if resume:
            saved = run.read_config()
            differing = _differing_keys(
                {"seed": saved.get("seed"), **saved.get("config", {})},
                {"seed": seed, **config_to_dict(config)},
            )
            if differing:
                raise ConfigError(
                    f"cannot resume the run in {run.path}: the config differs from the saved one in "
                    f"{'; '.join(differing)}. Drop --resume and add --overwrite to start over, or use "
                    "another output folder."
                )
            return
        try:
            saved_kind = run.read_config().get("kind")
        except DataError:
            saved_kind = None  # an unreadable config is no reason to keep or to refuse; the rest says
        if rerunnable and saved_kind == kind:
            return
        held = run.previous_run()
        if held:
            raise OutputError(
                f"{run.path} holds {held}; nothing was changed. Add --resume to continue it, "
                "--overwrite to replace it, or choose another --out."
            )

    @classmethod
    def create(
        cls,
        path: str | Path,
        config: dict[str, Any] | Any,
        seed: int,
        *,
        resume: bool = False,
        overwrite: bool = False,
        kind: str = "run",
        rerunnable: bool = False,
    ) -> RunDir:
        """Create the run folder and write `config.json`.

        With `resume=True` an existing `config.json` is kept, after checking that `config` and
        `seed` match it (ConfigError listing the differing keys otherwise). Without it, a folder
        that holds an earlier run (metrics, checkpoints or a summary) is refused with an
        OutputError, unless `overwrite=True` or the earlier run is of the same `kind` and
        `rerunnable` (a reproduction, whose outputs the same command regenerates). A replaced
        run's metrics and checkpoints are removed so they cannot mix with the new run.
        """
        cls.check(path, config, seed, resume=resume, overwrite=overwrite, kind=kind, rerunnable=rerunnable)
        run = cls(ensure_writable_dir(path))
        config_dict = config_to_dict(config)
        if resume and run.config_path.exists():
            return run
        run._remove_previous_run()
        record = {
            "config": config_dict,
            "seed": seed,
            "kind": kind,
            "versions": package_versions(),
            "created": datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": shlex.join(sys.argv),
        }
        run.write_json("config.json", record)
        return run

    def previous_run(self) -> str:
        """Describe the earlier run this folder holds ('' when none): what `create` will not clear."""
        parts = []
        if (self.path / "summary.json").exists():
            parts.append("a finished run")
        checkpoints = sorted(p.stem for p in self.path.glob("*.safetensors") if _is_checkpoint(p))
        if checkpoints:
            parts.append(f"checkpoints ({', '.join(checkpoints[:3])})")
        metrics = self.read_metrics()
        if metrics:
            parts.append(f"{len(metrics)} logged steps")
        if not parts:
            return ""
        return "an earlier run: " + ", ".join(parts)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def read_config(self) -> dict[str, Any]:
        """The saved `config.json` record (config, seed, versions, created, command)."""
        try:
            record = json.loads(self.config_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise DataError(f"{self.path} is not a run folder: it has no config.json") from None
        except IsADirectoryError:
            raise DataError(f"{self.config_path} is a folder, not a run's config file") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DataError(f"{self.config_path} is not valid JSON: {error}") from None
        except OSError as error:
            raise DataError(f"cannot read {self.config_path}: {error.strerror or error}") from None
        if not isinstance(record, dict) or not isinstance(record.get("config", {}), dict):
            raise DataError(
                f"{self.config_path} is not a run's config (expected a JSON object with a 'config' "
                "object); was this folder written by intelligible?"
            )
        return record

    def log_metrics(self, step: int, **values: Any) -> None:
        """Append `{"step": step, **values}` as one line of metrics.jsonl (tensors become numbers)."""
        line = json.dumps({"step": int(step), **to_jsonable(values)})
        try:
            # Opening per call keeps no handle alive across a crash; each line is on disk at once.
            with self.metrics_path.open("a", encoding="utf-8") as file:
                file.write(line + "\n")
                file.flush()
        except OSError as error:
            raise OutputError(f"cannot write {self.metrics_path}: {error.strerror or error}") from error

    def read_metrics(self) -> list[dict[str, Any]]:
        """All logged metric lines, in order; a line cut off by a crash is skipped."""
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def truncate_metrics(self, last_step: int) -> int:
        """Drop logged lines with step > `last_step` (atomically); return how many were dropped.

        A resumed run calls it with its checkpoint's step, so the steps between that checkpoint and
        the crash are logged once, by the resumed run, not twice.
        """
        if not self.metrics_path.exists():
            return 0
        kept, dropped = [], 0
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                dropped += bool(line.strip())  # a line cut off by the crash
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] > last_step:
                dropped += 1
                continue
            kept.append(line)
        if dropped:
            atomic_write_text(self.metrics_path, "".join(f"{line}\n" for line in kept))
        return dropped

    def save_checkpoint(
        self, tensors: dict[str, torch.Tensor], state: dict[str, Any], name: str = "checkpoint"
    ) -> Path:
        """Save `<name>.safetensors` (tensors + state) and a readable `<name>.json` copy of the state.

        The safetensors file carries the state in its header and is replaced last, as one atomic
        rename: it is the commit. A crash at any point leaves the previous checkpoint loadable.
        """
        from safetensors.torch import save as save_safetensors

        state_json = json.dumps(to_jsonable(state))
        contiguous = {key: tensor.detach().contiguous() for key, tensor in tensors.items()}
        data = save_safetensors(contiguous, metadata={_STATE_KEY: state_json})
        atomic_write_text(self.path / f"{name}.json", json.dumps(json.loads(state_json), indent=2))
        return atomic_write_bytes(self.path / f"{name}.safetensors", data)

    def load_checkpoint(
        self, name: str = "checkpoint", device: str | torch.device = "cpu"
    ) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """Return `(tensors, state)` of checkpoint `name`, or None when there is none."""
        from safetensors import safe_open

        path = self.path / f"{name}.safetensors"
        if not path.exists():
            return None
        try:
            with safe_open(str(path), framework="pt", device=str(device)) as file:
                header = file.metadata() or {}
                tensors = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118
        except Exception as error:  # safetensors raises its own error types for a corrupt header
            raise DataError(f"checkpoint {path} cannot be read: {error}") from error
        if _STATE_KEY not in header:
            raise DataError(f"{path} is not an intelligible checkpoint (no saved state in its header)")
        return tensors, json.loads(header[_STATE_KEY])

    def save_figure(self, fig: Any, name: str) -> Path:
        """Save a matplotlib figure as `figures/<name>.png` (dpi 120), close it, return the path."""
        import matplotlib.pyplot as plt  # pyplot is slow to import and only needed here

        buffer = io.BytesIO()
        try:
            fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
        finally:
            plt.close(fig)
        filename = name if name.endswith(".png") else f"{name}.png"
        return atomic_write_bytes(self.path / "figures" / filename, buffer.getvalue())

    def write_text(self, name: str, text: str) -> Path:
        """Write `text` to `<run>/<name>` atomically."""
        return atomic_write_text(self.path / name, text)

    def write_json(self, name: str, obj: Any) -> Path:
        """Write `obj` as indented JSON to `<run>/<name>` atomically (Paths, tuples, tensors converted)."""
        return atomic_write_text(self.path / name, json.dumps(to_jsonable(obj), indent=2) + "\n")

    def _remove_previous_run(self) -> None:
        """Delete the metrics, summary and checkpoints an earlier run left in this folder."""
        self.metrics_path.unlink(missing_ok=True)
        (self.path / "summary.json").unlink(missing_ok=True)
        for tensors_path in self.path.glob("*.safetensors"):
            if _is_checkpoint(tensors_path):
                tensors_path.unlink(missing_ok=True)
                tensors_path.with_suffix(".json").unlink(missing_ok=True)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"


def _is_checkpoint(path: Path) -> bool:
    """Whether `path` is a checkpoint that `RunDir.save_checkpoint` wrote (its header holds our state)."""
    try:
        with path.open("rb") as file:
            size = int.from_bytes(file.read(8), "little")
            if not 0 < size < 100_000_000:
                return False
            header = json.loads(file.read(size))
    except (OSError, ValueError):  # not a readable safetensors file: not ours
        return False
    return isinstance(header, dict) and _STATE_KEY in (header.get("__metadata__") or {})


def _check_out_path(path: str | Path) -> Path:
    """`path` as an output folder that can be created or written, checked without writing."""
    if str(path).strip() == "":
        raise OutputError("the output folder is empty; give a folder name with --out")
    path = Path(path)
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        where = "is a file" if existing == path else f"is inside {existing}, which is a file"
        raise OutputError(f"cannot use {path} as the output folder: it {where}")
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-probe-"):
            pass
    except OSError as error:
        raise OutputError(f"cannot write to output folder {path}: {error.strerror or error}") from None
    return path


def _differing_keys(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """Describe each key whose value differs between two JSON-safe dicts."""
    missing = object()
    differing = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key, missing), current.get(key, missing)
        if old != new:
            shown_old = "(absent)" if old is missing else repr(old)
            shown_new = "(absent)" if new is missing else repr(new)
            differing.append(f"{key} (saved {shown_old}, now {shown_new})")
    return differing
