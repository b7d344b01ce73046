"""Reading results: success@k, success by program length and by amount of hints (quartiles), with and
without the programs that verify without hints; the published models' results, and their final
programs re-scored with our verifier and both spec checks."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from intelligible.core.errors import DataError
from intelligible.dafnybench.checks import paper_check, strict_check
from intelligible.dafnybench.data import Task, read_data_text, shorten
from intelligible.dafnybench.hints import count_hint_chars
from intelligible.dafnybench.prompts import extract_program

PUBLISHED_MODELS = ("claude-3-opus", "gpt-4o", "gpt-4-turbo", "gpt-3.5-turbo", "codellama-7b")


MAX_ATTEMPT = 1000  # far above any run's attempts; a larger number is a damaged file


def read_results_csv(path: str | Path) -> dict[str, int | None]:
    """test_ID -> attempt of success (0 = verifies without hints), None for `failed`. One-line
    DataErrors for a missing file, a folder, a binary or non-CSV file, and bad values."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{shorten(path)}: is a folder without results_summary.csv")
    if not path.is_file():
        raise DataError(f"{shorten(path)}: no such results file")
    try:
        text = read_data_text(path)
    except DataError as error:
        raise DataError(f"{error} (expected a results_summary CSV)") from error
    if "\x00" in text:
        raise DataError(f"{shorten(path)}: a binary file, not a results_summary CSV")
    outcomes: dict[str, int | None] = {}
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        if reader.fieldnames is None or not {"test_ID", "success_on_attempt_#"} <= set(reader.fieldnames):
            raise DataError(
                f"{shorten(path)}: not a results_summary CSV (needs test_ID and success_on_attempt_#)"
            )
        for row in reader:
            test_id, value = (row["test_ID"] or "").strip(), (row["success_on_attempt_#"] or "").strip()
            if not test_id:
                raise DataError(f"{shorten(path)}: line {reader.line_num} has no test_ID")
            outcomes[f"{int(test_id):03d}" if test_id.isdigit() else test_id] = _attempt(
                value, path, reader.line_num
            )
    except csv.Error as error:
        raise DataError(f"{shorten(path)}: not a readable CSV ({error})") from error
    return outcomes


def _attempt(value: str, path: Path, line: int) -> int | None:
    if value in ("failed", ""):
        return None
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not (number.is_integer() and 0 <= number <= MAX_ATTEMPT):
        raise DataError(f"{shorten(path)}: line {line}: success_on_attempt_# must be a whole number 0-{MAX_ATTEMPT} "
                        f"or `failed`, got {shorten(value, 40)!r}")  # fmt: skip
    return int(number)


def success_at(outcomes: dict[str, int | None], k: int, *, without_trivial: bool = False) -> float:
    """Fraction of tasks solved within k attempts (tasks that verify without hints count as solved
    unless `without_trivial`, which leaves them out)."""
    values = [v for v in outcomes.values() if not (without_trivial and v == 0)]
    if not values:
        return float("nan")
    return sum(v is not None and v <= k for v in values) / len(values)


def success_curve(
    outcomes: dict[str, int | None], max_k: int = 10, *, without_trivial: bool = False
) -> list[float]:
    return [success_at(outcomes, k, without_trivial=without_trivial) for k in range(1, max_k + 1)]


def quartile_table(outcomes: dict[str, int | None], measure: dict[str, float], *, k: int = 10,
                   without_trivial: bool = False) -> list[dict]:  # fmt: skip
    """Success@k in each quartile of `measure` (e.g. program length or hint characters)."""
    ids = [t for t in outcomes if t in measure and not (without_trivial and outcomes[t] == 0)]
    if len(ids) < 4:
        return []
    values = np.array([measure[t] for t in ids], dtype=float)
    edges = np.quantile(values, [0.25, 0.5, 0.75])
    bins = np.searchsorted(edges, values, side="right")
    rows = []
    for q in range(4):
        members = [t for t, b in zip(ids, bins) if b == q]
        solved = sum(outcomes[t] is not None and outcomes[t] <= k for t in members)
        low = float(values[bins == q].min()) if members else float("nan")
        high = float(values[bins == q].max()) if members else float("nan")
        rows.append({"quartile": q + 1, "range": [low, high], "tasks": len(members),
                     "success": solved / len(members) if members else float("nan")})  # fmt: skip
    return rows


def task_measures(tasks: list[Task]) -> tuple[dict[str, float], dict[str, float]]:
    """Per task: program length (characters of the hints-removed program) and hint characters."""
    lengths = {t.test_id: float(len(t.hints_removed)) for t in tasks}
    hints = {t.test_id: float(count_hint_chars(t.ground_truth)) for t in tasks}
    return lengths, hints


def read_published(folder: str | Path, model: str) -> tuple[dict[str, int | None], dict[str, str]]:
    """A published model's outcomes and its final programs (test_ID -> text)."""
    folder = Path(folder)
    outcomes = read_results_csv(folder / f"{model}_results.csv")
    try:
        raw = json.loads(read_data_text(folder / f"{model}_outputs.json"))  # or its .gz
    except json.JSONDecodeError as error:
        raise DataError(f"{shorten(folder / model)}_outputs.json: not a JSON file ({error})") from error
    if not isinstance(raw, dict):
        raise DataError(f"{shorten(folder / model)}_outputs.json: expected an object test_ID -> output")
    programs = {}
    for test_id, record in raw.items():
        text = record.get("llm_output", "") if isinstance(record, dict) else str(record)
        try:
            programs[f"{int(test_id):03d}" if test_id.isdigit() else test_id] = extract_program(text)
        except DataError:
            programs[test_id] = text
    return outcomes, programs


def rescore(tasks: list[Task], outcomes: dict[str, int | None], programs: dict[str, str], verifier,  # noqa: ANN001
            *, workers: int = 2, executor: str = "process", verify: bool = True) -> dict:  # fmt: skip
    """Re-score a published model's successes: does its final program verify with our verifier, and
    pass the paper's and the strict check? Tasks solved at attempt 0 are re-checked by verifying the
    hints-removed program itself. Returns counts and per-task rows."""
    by_id = {t.test_id: t for t in tasks}
    claimed = [t for t, v in outcomes.items() if v is not None and t in by_id]
    sources = [by_id[t].hints_removed if outcomes[t] == 0 else programs.get(t, "") for t in claimed]
    verdicts = (
        verifier.verify_many(sources, workers=workers, executor=executor) if verify else [None] * len(claimed)
    )
    rows = []
    for test_id, source, verdict in zip(claimed, sources, verdicts):
        task = by_id[test_id]
        paper = paper_check(task.hints_removed, source)
        strict = strict_check(task.hints_removed, source, ground_truth=task.ground_truth)
        rows.append({"test_id": test_id, "attempt": outcomes[test_id],
                     "verifies": None if verdict is None else verdict.ok,
                     "status": None if verdict is None else verdict.status,
                     "paper_check": paper.ok, "strict_check": strict.ok, "strict_reasons": strict.reasons})  # fmt: skip
    count = len([t for t in outcomes if t in by_id])

    def rate(predicate) -> float:  # noqa: ANN001
        return sum(1 for r in rows if predicate(r)) / count if count else float("nan")

    summary = {
        "tasks": count,
        "paper_success": len(claimed) / count if count else float("nan"),
        "paper_success_count": len(claimed),
        "strict_check_pass_count": sum(r["strict_check"] for r in rows),
        "strict_check_rejects": [r["test_id"] for r in rows if not r["strict_check"]],
        # the run's own check accepted every success, so a stored program it rejects is not the program
        # that was checked (in the published outputs: another task's program, filed under this task)
        "stored_program_fails_paper_check": [
            r["test_id"] for r in rows if r["attempt"] and not r["paper_check"]
        ],
    }
    if verify:
        summary.update(
            ours_paper_check=rate(lambda r: r["verifies"] and r["paper_check"]),
            ours_strict_check=rate(lambda r: r["verifies"] and r["strict_check"]),
            verifies_count=sum(bool(r["verifies"]) for r in rows),
        )
    return {"summary": summary, "rows": rows}


def plot_success_curves(curves: dict[str, list[float]], path: str | Path, title: str = "") -> Path:
    """success@k against k for several models (the paper's Figure 3 shape)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), [100 * v for v in curve], marker="o", ms=3, label=name)
    ax.set_xlabel("attempts (with verifier feedback)")
    ax.set_ylabel("success rate (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_quartiles(tables: dict[str, list[dict]], path: str | Path, xlabel: str) -> Path:
    """Success by quartile (the paper's Figure 4 shape)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    width = 0.8 / max(len(tables), 1)
    for index, (name, rows) in enumerate(tables.items()):
        ax.bar([r["quartile"] + index * width for r in rows], [100 * r["success"] for r in rows], width=width,
               label=name)  # fmt: skip
    ax.set_xticks([q + 0.4 - width / 2 for q in range(1, 5)], ["Q1", "Q2", "Q3", "Q4"])
    ax.set_xlabel(xlabel)
    ax.set_ylabel("success rate (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)
