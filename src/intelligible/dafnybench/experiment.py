"""DafnyBench reproduction: the harness's self-check, the published models' results (and how many of
their successes survive the strict check), and a short real run of the bundled local model.

Presets: `quick` (minutes: a sample for the self-check, no re-verification of published programs, the
bundled SmolLM2 on the shortest task with 2 attempts); `paper` (the whole development split,
published successes re-verified, and a run of the model named by $INTELLIGIBLE_DAFNYBENCH_MODEL,
e.g. `anthropic:claude-3-opus-20240229`, when set).
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

from intelligible.core.errors import ConfigError, DataError
from intelligible.core.report import Claim, Report
from intelligible.core.runs import ensure_writable_dir
from intelligible.dafnybench.analysis import (
    PUBLISHED_MODELS,
    plot_quartiles,
    plot_success_curves,
    quartile_table,
    read_published,
    rescore,
    success_at,
    success_curve,
    task_measures,
)
from intelligible.dafnybench.checks import strict_check
from intelligible.dafnybench.data import (
    BUNDLED_DATA,
    TASK_FILES,
    Task,
    data_defects,
    load_tasks,
    task_file,
)
from intelligible.dafnybench.hints import strip_hints
from intelligible.dafnybench.runner import RunConfig, run
from intelligible.dafnybench.source import has_code
from intelligible.dafnybench.verifier import Verifier

PAPER = "Loughridge et al. 2024, DafnyBench: A Benchmark for Formal Software Verification"
DATA_ENV = "INTELLIGIBLE_DAFNYBENCH_DATA"
MODEL_ENV = "INTELLIGIBLE_DAFNYBENCH_MODEL"
# the paper's figures over all 782 tasks
PAPER_BEST_AT_10, PAPER_BEST_AT_1, PAPER_TRIVIAL = 0.678, 0.538, 208 / 782
SELF_CHECK_SAMPLE = 24  # ground truths verified by the quick preset


def default_data_dir() -> Path:
    """The DafnyBench folder: $INTELLIGIBLE_DAFNYBENCH_DATA if set (a folder holding test.json or
    test_dev.json, either maybe gzipped, and optionally published_results/), else the development
    split bundled with the package (`data.BUNDLED_DATA`)."""
    override = os.environ.get(DATA_ENV, "").strip()
    if not override:
        return BUNDLED_DATA
    folder = Path(override).expanduser()
    if not folder.is_dir():
        what = "is a file" if folder.is_file() else "does not exist"
        raise DataError(f"${DATA_ENV}={override[:80]!r} {what}: it must name a folder with test.json or "
                        "test_dev.json (unset it to use the bundled development split)")  # fmt: skip
    if task_file(folder) is None:
        raise DataError(f"${DATA_ENV}={override[:80]!r}: the folder holds no {', '.join(TASK_FILES)} "
                        "(unset it to use the bundled development split)")  # fmt: skip
    return folder


def default_tasks(path: str | Path | None = None) -> list[Task]:
    """Tasks from `path` (see `data.load_tasks`), or from `default_data_dir()`."""
    return load_tasks(default_data_dir() if path is None else path)


@dataclass
class SelfCheck:
    """Ground truths through our verifier and the strict check."""

    tasks: int
    verified: int
    strict_accepted: int
    both: int
    failures: dict[str, list[str]]  # status -> test ids
    stripped_parse: int | None = None
    seconds: float = 0.0


def self_check(tasks: list[Task], verifier: Verifier, *, workers: int = 2, executor: str = "process",
               parse_stripped: bool = False) -> SelfCheck:  # fmt: skip
    """With the ground truth as the answer: does it verify, and does the strict check accept it?"""
    start = time.perf_counter()
    verdicts = verifier.verify_many([t.ground_truth for t in tasks], workers=workers, executor=executor)
    accepted = [strict_check(t.hints_removed, t.ground_truth, ground_truth=t.ground_truth).ok for t in tasks]
    failures: dict[str, list[str]] = {}
    for task, verdict in zip(tasks, verdicts):
        if not verdict.ok:
            failures.setdefault(verdict.status, []).append(task.test_id)
    parsed = None
    if parse_stripped:
        results = verifier.parse_many([strip_hints(t.ground_truth) for t in tasks], workers=workers)
        parsed = sum(r.status not in ("parse_error", "resolution_error") for r in results)
    return SelfCheck(len(tasks), sum(v.ok for v in verdicts), sum(accepted),
                     sum(v.ok and a for v, a in zip(verdicts, accepted)), failures, parsed,
                     time.perf_counter() - start)  # fmt: skip


def reproduce(preset: str = "quick", out_dir: str | Path = "runs/dafnybench") -> Report:
    """The DafnyBench report (see the module docstring)."""
    if preset not in ("quick", "paper"):
        raise ConfigError(f"unknown preset {preset!r}; valid presets: quick, paper")
    start = time.perf_counter()
    out = ensure_writable_dir(out_dir)
    folder = default_data_dir()
    tasks = default_tasks()
    verifier = Verifier(cache_dir=out / "verdict-cache")
    report = Report(
        study="dafnybench", title="DafnyBench: LLM-written verification hints", preset=preset, claims=[]
    )
    source = "the bundled development split" if folder == BUNDLED_DATA else str(folder)
    report.notes = (f"data: {len(tasks)} tasks from {source}; verifier: Dafny {verifier.version}"
                    f"{' through the compatibility layer' if verifier.legacy else ''}")  # fmt: skip

    # 1. harness self-check
    sample = (
        tasks if preset == "paper" else random.Random(0).sample(tasks, min(SELF_CHECK_SAMPLE, len(tasks)))
    )
    # a ground truth that is all comments verifies nothing: a data defect, not the harness's to accept
    empty = [t.test_id for t in sample if not has_code(t.ground_truth)]
    with_code = [t for t in sample if t.test_id not in empty]
    check = self_check(with_code, verifier, parse_stripped=True)
    rate = check.both / check.tasks if check.tasks else 0.0
    report.claims.append(Claim(
        "the harness accepts the benchmark's own ground truths (verifier + strict spec check)",
        paper_value="100% (the ground truths verify on Dafny 4)", measured_value=f"{100 * rate:.1f}% of {check.tasks}",
        holds=rate >= 0.9, detail=f"failures by verdict: {check.failures}; hint removal output parses: "
                                  f"{check.stripped_parse}/{check.tasks}"
                                  + (f"; left out, all comments (no code): {', '.join(empty)}" if empty else "")))  # fmt: skip
    defects = [d for t in tasks for d in data_defects(t)]
    report.tables["data_defects"] = [d.to_dict() for d in defects if d.kind != "assumption"]

    # 2. published results, re-scored
    lengths, hints = task_measures(tasks)
    curves, rows, length_q, hint_q = {}, [], {}, {}
    published = folder / "published_results"
    for model in PUBLISHED_MODELS:
        try:
            outcomes, programs = read_published(published, model)
        except DataError:
            continue
        curves[model] = success_curve(outcomes)
        length_q[model] = quartile_table(outcomes, lengths)
        hint_q[model] = quartile_table(outcomes, hints)
        scored = rescore(tasks, outcomes, programs, verifier, verify=preset == "paper")["summary"]
        rows.append({"model": model, "success@1": round(success_at(outcomes, 1), 3),
                     "success@10": round(success_at(outcomes, 10), 3),
                     "success@10 without trivial": round(success_at(outcomes, 10, without_trivial=True), 3),
                     "paper successes": scored["paper_success_count"],
                     "pass strict check": scored["strict_check_pass_count"],
                     **({"verify here + paper check": round(scored["ours_paper_check"], 3),
                         "verify here + strict check": round(scored["ours_strict_check"], 3)} if "ours_paper_check" in scored
                        else {})})  # fmt: skip
    if rows:
        report.tables["published_models"] = rows
        best = max(rows, key=lambda r: r["success@10"])
        report.claims.append(Claim(
            "the best model (Claude 3 Opus) verifies most programs with 10 attempts",
            paper_value=f"{100 * PAPER_BEST_AT_10:.1f}% (all 782)", measured_value=f"{best['model']} "
            f"{100 * best['success@10']:.1f}% on this split", holds=best["model"] == "claude-3-opus",
            detail="from the published per-task results"))  # fmt: skip
        survived = best["pass strict check"] / best["paper successes"]
        report.claims.append(Claim(
            "the official spec check lets through answers that change more than hints: fewer of the best "
            "model's successes pass the strict check", paper_value="not measured by the paper",
            measured_value=f"{best['pass strict check']}/{best['paper successes']} ({100 * survived:.1f}%) pass",
            holds=survived < 1.0, detail="the rest change code, signatures or specifications"))  # fmt: skip
        report.figures["success_vs_attempts"] = (plot_success_curves(curves, out / "success_vs_attempts.png",
                                                                        "published results, this split"))  # fmt: skip
        report.figures["success_by_length"] = (plot_quartiles(length_q, out / "success_by_length.png",
                                                                 "program length quartile"))  # fmt: skip
        report.figures["success_by_hints"] = (plot_quartiles(hint_q, out / "success_by_hints.png",
                                                                "hint quantity quartile"))  # fmt: skip

    # 3. a real run
    model = os.environ.get(MODEL_ENV) if preset == "paper" else None
    # quick: the shortest task only (two attempts of 256 tokens each), its share of `make demo`
    run_tasks = tasks if model else _shortest_unsolved(tasks, verifier, 1)
    cfg = RunConfig(model=model or "local:smollm2", attempts=10 if model else 2, max_tokens=4096 if model else 256,
                    workers=2 if model else 1)  # fmt: skip
    results = run(run_tasks, out / "run", cfg, verifier=verifier, progress=False)
    solved = sum(r.success_on_attempt is not None for r in results)
    report.claims.append(Claim(
        f"a real model run end to end ({cfg.model}, {cfg.attempts} attempts, {len(run_tasks)} tasks)",
        paper_value="CodeLlama-7b: 28.0% (a 7B model)", measured_value=f"{solved}/{len(results)} solved",
        holds=len(results) == len(run_tasks), detail=f"per-attempt log in {out / 'run' / 'attempts.jsonl'}"))  # fmt: skip
    report.elapsed_s = time.perf_counter() - start
    report.save(out)
    return report


def _shortest_unsolved(tasks: list[Task], verifier: Verifier, count: int) -> list[Task]:
    """The shortest tasks whose hints-removed program does not verify as it is."""
    chosen = []
    for task in sorted(tasks, key=lambda t: len(t.hints_removed)):
        if not verifier.verify(task.hints_removed).ok:
            chosen.append(task)
        if len(chosen) == count:
            break
    return chosen
