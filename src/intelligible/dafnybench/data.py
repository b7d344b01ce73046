"""DafnyBench tasks: from a `test.json`-style file, a folder of .dfy pairs, or the Hugging Face
dataset `wendy-sun/DafnyBench`; and the known defects of the data, found per task."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from intelligible.core.errors import DataError, MissingDependencyError
from intelligible.dafnybench.checks import forbidden_constructs
from intelligible.dafnybench.hints import strip_hints
from intelligible.dafnybench.source import line_of, mask, tokens

HF_DATASET = "wendy-sun/DafnyBench"
_FIELDS = ("test_ID", "test_file", "ground_truth", "hints_removed")


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
    """Tasks from a JSON file (records {test_ID, test_file, ground_truth, hints_removed}), a folder
    with `ground_truth/` and `hints_removed/` .dfy files (`X.dfy` paired with `X_no_hints.dfy` or
    `X.dfy`), or the Hugging Face dataset id `wendy-sun/DafnyBench` (needs network access)."""
    path = Path(source)
    if path.is_file():
        try:
            records = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise DataError(f"{path}: not a JSON file ({error})") from error
        return _from_records(records, str(path))
    if path.is_dir():
        return _from_folder(path)
    if str(source) == HF_DATASET or re.fullmatch(r"[\w.-]+/[\w.-]+", str(source)):
        return _from_hub(str(source))
    raise DataError(
        f"{source}: no such file or folder (give a test.json, a folder of .dfy pairs, or {HF_DATASET})"
    )


def _from_folder(folder: Path) -> list[Task]:
    truth_dir, removed_dir = folder / "ground_truth", folder / "hints_removed"
    if not truth_dir.is_dir() or not removed_dir.is_dir():
        raise DataError(f"{folder}: expected subfolders ground_truth/ and hints_removed/ with .dfy files")
    tasks = []
    for index, truth in enumerate(sorted(truth_dir.glob("*.dfy"))):
        for name in (f"{truth.stem}_no_hints.dfy", truth.name):
            removed = removed_dir / name
            if removed.is_file():
                break
        else:
            raise DataError(f"{truth}: no hints-removed file {truth.stem}_no_hints.dfy in {removed_dir}")
        tasks.append(Task(f"{index:03d}", truth.name, truth.read_text(), removed.read_text()))
    if not tasks:
        raise DataError(f"{truth_dir}: no .dfy files")
    return tasks


def _from_hub(dataset: str) -> list[Task]:
    try:
        from datasets import load_dataset  # type: ignore[import-not-found]
    except ImportError as error:
        raise MissingDependencyError(
            f"loading {dataset} needs the `datasets` package: pip install datasets"
        ) from error
    try:
        rows = load_dataset(dataset, split="test")
    except Exception as error:  # noqa: BLE001 - the hub raises many kinds; all mean "not reachable here"
        raise DataError(
            f"{dataset}: could not load from the Hugging Face hub ({type(error).__name__}: {error})"
        ) from error
    return _from_records([dict(row) for row in rows], dataset)


@dataclass(frozen=True)
class Defect:
    """A known defect of a task's data."""

    test_id: str
    kind: str  # "dangling_lines" | "escape_hatch" | "assumption" (informational)
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def data_defects(task: Task) -> list[Defect]:
    """The defects of one task: hint removal that changed code (dangling continuation lines of a
    multi-line hint, a brace removed with a hint line), and hints-removed programs that already
    contain `assume`/`{:verify false}`-like escape hatches."""
    found: list[Defect] = []
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
