"""DafnyBench tasks: from a `test.json`-style file (gzip-compressed or not), a folder holding one or a
folder of .dfy pairs, the development split bundled with the package, or the Hugging Face dataset
`wendy-sun/DafnyBench` (the full benchmark, when the hub is reachable); and the known defects of the
data, found per task."""

from __future__ import annotations

import gzip
import json
import os
import re
import socket
import threading
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlparse

from intelligible.core.errors import DataError, MissingDependencyError
from intelligible.dafnybench.checks import forbidden_constructs
from intelligible.dafnybench.hints import strip_hints
from intelligible.dafnybench.source import has_code, line_of, mask, tokens

HF_DATASET = "wendy-sun/DafnyBench"
HUB_PREFIX = "hf:"  # `hf:owner/name`: any Hugging Face dataset with a test.json in this record format
# the development split, its license and attribution, and the published results, inside the package
BUNDLED_DATA = Path(__file__).resolve().parent / "bundled_data"
TASK_FILES = ("test.json", "test.json.gz", "test_dev.json", "test_dev.json.gz")
HUB_PROBE_SECONDS = 5.0
_FIELDS = ("test_ID", "test_file", "ground_truth", "hints_removed")


def shorten(text: object, limit: int = 80) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_data_text(path: str | Path) -> str:
    """The text of a data file, gunzipped when its name ends in `.gz`; `X` that is missing with `X.gz`
    beside it reads `X.gz`. One-line DataErrors for a missing file, a folder, unreadable or non-text
    content."""
    path = Path(path)
    if not path.exists() and not path.name.endswith(".gz") and path.with_name(path.name + ".gz").is_file():
        path = path.with_name(path.name + ".gz")
    if path.is_dir():
        raise DataError(f"{shorten(path)}: is a folder, expected a file")
    if not path.exists():
        raise DataError(f"{shorten(path)}: no such file")
    if not path.is_file():
        raise DataError(f"{shorten(path)}: not a regular file")
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        return raw.decode("utf-8")
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError
        raise DataError(
            f"{shorten(path)}: cannot read it ({getattr(error, 'strerror', None) or error})"
        ) from error
    except UnicodeDecodeError as error:
        raise DataError(f"{shorten(path)}: not a UTF-8 text file (byte {error.start})") from error


def task_file(folder: str | Path) -> Path | None:
    """The task file in `folder` (the first of test.json, test.json.gz, test_dev.json, test_dev.json.gz
    that exists), or None."""
    folder = Path(folder)
    return next((folder / name for name in TASK_FILES if (folder / name).is_file()), None)


@dataclass(frozen=True)
class Task:
    """One benchmark program: its id, file name, verified ground truth and hints-removed version."""

    test_id: str
    test_file: str
    ground_truth: str
    hints_removed: str

    def to_record(self) -> dict:
        return {"test_ID": self.test_id, "test_file": self.test_file, "ground_truth": self.ground_truth,
                "hints_removed": self.hints_removed}  # fmt: skip


def _from_records(records: list, where: str) -> list[Task]:
    if not isinstance(records, list) or not records:
        raise DataError(
            f"{where}: expected a non-empty JSON list of records with fields {', '.join(_FIELDS)}"
        )
    tasks = []
    for index, record in enumerate(records):
        if not isinstance(record, dict) or any(key not in record for key in _FIELDS):
            missing = [k for k in _FIELDS if not isinstance(record, dict) or k not in record]
            raise DataError(f"{where}: record {index} lacks {', '.join(missing)}")
        test_id = record["test_ID"]
        test_id = f"{int(test_id):03d}" if str(test_id).isdigit() else str(test_id)
        tasks.append(Task(test_id, str(record["test_file"]), str(record["ground_truth"]),
                          str(record["hints_removed"])))  # fmt: skip
    return tasks


def load_tasks(source: str | Path) -> list[Task]:
    """Tasks from a JSON file (records {test_ID, test_file, ground_truth, hints_removed}; `.gz` read
    transparently), a folder holding one (see `TASK_FILES`), a folder with `ground_truth/` and
    `hints_removed/` .dfy files (`X.dfy` paired with `X_no_hints.dfy` or `X.dfy`), or from the Hugging
    Face hub: `wendy-sun/DafnyBench` or `hf:<owner>/<name>` (needs network access, or a cached copy)."""
    text = str(source)
    path = Path(source)
    if text.startswith(HUB_PREFIX) or (text == HF_DATASET and not path.exists()):
        return _from_hub(text.removeprefix(HUB_PREFIX))
    if path.is_dir():
        found = task_file(path)
        return _from_json(found) if found is not None else _from_folder(path)
    if path.exists() or path.with_name(path.name + ".gz").is_file():
        return _from_json(path)
    raise DataError(
        f"{shorten(source)}: no such file or folder (give a test.json, a folder with one or with .dfy pairs, "
        f"or {HUB_PREFIX}{HF_DATASET} for the full benchmark from the Hugging Face hub)"
    )


def _from_json(path: Path) -> list[Task]:
    text = read_data_text(path)
    try:
        records = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{shorten(path)}: not a JSON file ({error})") from error
    return _from_records(records, shorten(path))


def _from_folder(folder: Path) -> list[Task]:
    truth_dir, removed_dir = folder / "ground_truth", folder / "hints_removed"
    if not truth_dir.is_dir() or not removed_dir.is_dir():
        raise DataError(
            f"{shorten(folder)}: expected a test.json (or test_dev.json, either maybe .gz) or subfolders "
            "ground_truth/ and hints_removed/ with .dfy files"
        )
    tasks = []
    for index, truth in enumerate(sorted(truth_dir.glob("*.dfy"))):
        for name in (f"{truth.stem}_no_hints.dfy", truth.name):
            removed = removed_dir / name
            if removed.is_file():
                break
        else:
            raise DataError(f"{truth}: no hints-removed file {truth.stem}_no_hints.dfy in {removed_dir}")
        tasks.append(Task(f"{index:03d}", truth.name, read_data_text(truth), read_data_text(removed)))
    if not tasks:
        raise DataError(f"{truth_dir}: no .dfy files")
    return tasks


def _hub_unreachable(endpoint: str) -> str | None:
    """Why the hub (or the proxy in front of it) cannot be reached, or None if a TCP connection opens.
    A quick probe first, so that offline the loader fails at once instead of retrying for a minute."""
    url = urlparse(endpoint)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    for variable in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        proxy = os.environ.get(variable, "")
        no_proxy = os.environ.get("NO_PROXY", os.environ.get("no_proxy", ""))
        if proxy and not any(host.endswith(d.strip().lstrip(".")) for d in no_proxy.split(",") if d.strip()):
            parsed = urlparse(proxy if "://" in proxy else f"http://{proxy}")
            host, port = parsed.hostname or "", parsed.port or 80
            break
    outcome: list[str | None] = []

    def probe() -> None:  # in a thread: name resolution itself can hang past any socket timeout
        try:
            socket.create_connection((host, port), timeout=HUB_PROBE_SECONDS).close()
            outcome.append(None)
        except OSError as error:
            outcome.append(f"{host}:{port}: {error.strerror or error}")

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(HUB_PROBE_SECONDS + 1)
    return outcome[0] if outcome else f"{host}:{port}: no answer within {HUB_PROBE_SECONDS:g} s"


def _from_hub(dataset: str) -> list[Task]:
    """The dataset's `test.json` through `huggingface_hub` (installed with transformers): downloaded
    when the hub is reachable, else a cached copy, else a one-line DataError."""
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", dataset):
        raise DataError(f"{shorten(dataset)}: not a Hugging Face dataset id (owner/name)")
    try:
        import logging

        from huggingface_hub import constants, hf_hub_download
    except ImportError as error:
        raise MissingDependencyError(
            f"loading {dataset} needs the `huggingface_hub` package: pip install huggingface_hub"
        ) from error
    unreachable = (
        "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else _hub_unreachable(constants.ENDPOINT)
    )
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)  # its retry warnings would repeat what the one-line error says
    try:
        path = hf_hub_download(
            dataset,
            "test.json",
            repo_type="dataset",
            local_files_only=unreachable is not None,
            etag_timeout=10,
        )
    except Exception as error:  # noqa: BLE001 - the hub raises many kinds; all mean "not loadable here"
        if unreachable is not None:
            raise DataError(
                f"{dataset}: the Hugging Face hub is not reachable ({shorten(unreachable)}) and no copy is "
                "cached; use the bundled development split (the default) or pass --data"
            ) from error
        raise DataError(
            f"{dataset}: could not load test.json from the Hugging Face hub ({type(error).__name__}: "
            f"{shorten(error, 160)})"
        ) from error
    finally:
        logger.setLevel(level)
    return _from_json(Path(path))


@dataclass(frozen=True)
class Defect:
    """A known defect of a task's data."""

    test_id: str
    kind: str  # "no_code" | "dangling_lines" | "escape_hatch" | "assumption" (informational)
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def data_defects(task: Task) -> list[Defect]:
    """The defects of one task: hint removal that changed code (dangling continuation lines of a
    multi-line hint, a brace removed with a hint line), and hints-removed programs that already
    contain `assume`/`{:verify false}`-like escape hatches; and a program that is all comments."""
    found: list[Defect] = []
    if not has_code(task.ground_truth):
        return [Defect(task.test_id, "no_code", "the ground truth is all comments: there is nothing to verify "
                       "(Dafny calls an empty program verified)")]  # fmt: skip
    # both programs without any hint must be the same code; the benchmark's line-based removal left
    # the continuation lines of multi-line hints (and once a brace) behind
    removed, truth = tokens(strip_hints(task.hints_removed)), tokens(strip_hints(task.ground_truth))
    if [t for t, _ in removed] != [t for t, _ in truth]:
        first = next(
            (k for k, (a, b) in enumerate(zip(removed, truth)) if a[0] != b[0]), min(len(removed), len(truth))
        )
        stripped = strip_hints(task.hints_removed)
        line = line_of(stripped, removed[first][1]) if first < len(removed) else "end"
        found.append(Defect(task.test_id, "dangling_lines",
                            f"hint removal changed the code: it differs from the ground truth's near line {line}"))  # fmt: skip
    code = mask(task.hints_removed)
    for pattern, what in (
        (r"assume\s+false", "assume false"),
        (r"\{\s*:\s*verify\s+false\s*\}", "{:verify false}"),
    ):
        match = re.search(pattern, code)
        if match:
            found.append(Defect(task.test_id, "escape_hatch", f"the hints-removed program already contains {what} "
                                f"(line {line_of(task.hints_removed, match.start())}): it verifies without any proof"))  # fmt: skip
    for name, lines in forbidden_constructs(task.hints_removed).items():
        if name in ("assume", "{:axiom}") and not any(d.kind == "escape_hatch" for d in found):
            found.append(Defect(task.test_id, "assumption",
                                f"the program itself assumes something: {name} (line {lines[0]})"))  # fmt: skip
    return found
