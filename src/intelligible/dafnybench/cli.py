"""`intelligible dafnybench ...`: verify, strip-hints, run, score, rescore-published, reproduce."""

from __future__ import annotations

from pathlib import Path

import click

from intelligible.core.cli import HELP, add_reproduce_command, out_option
from intelligible.core.registry import study

MAX_ATTEMPTS = 100
MAX_TOKENS = 1_000_000


@click.group(name="dafnybench", help=study("dafnybench").summary, context_settings=HELP)
def cli() -> None:
    pass


def _verifier(dafny: str | None, time_limit: float, cache: Path | None = None):  # noqa: ANN202
    from intelligible.dafnybench.verifier import Verifier

    return Verifier(dafny=dafny, time_limit=time_limit, cache_dir=cache)


def _read_program(path: Path) -> str:
    """A Dafny source file's text; one-line DataErrors for a folder, a missing, binary or empty file."""
    from intelligible.core.errors import DataError
    from intelligible.dafnybench.data import read_data_text, shorten
    from intelligible.dafnybench.source import has_code

    text = read_data_text(path)  # one-line errors: missing, a folder, unreadable, not UTF-8
    if "\x00" in text:
        raise DataError(f"{shorten(path)}: a binary file, not a Dafny program")
    if not has_code(text):
        raise DataError(f"{shorten(path)}: empty (no code outside comments); nothing to verify")
    return text


def _time_limit(ctx: click.Context, param: click.Parameter, value: float) -> float:
    from intelligible.core.errors import ConfigError
    from intelligible.dafnybench.verifier import check_seconds

    try:
        return check_seconds("--time-limit", value)
    except ConfigError as error:
        raise click.BadParameter(str(error).removeprefix("--time-limit "), ctx, param) from error


DAFNY_OPTION = click.option("--dafny", default=None, help="The dafny executable (default: dafny on PATH).")
TIME_OPTION = click.option(
    "--time-limit",
    type=float,
    default=120.0,
    show_default=True,
    callback=_time_limit,
    help="Wall-clock seconds per program (the compatibility layer included), at most one day.",
)
WORKERS_OPTION = click.option(
    "--workers", type=click.IntRange(1, 256), default=2, show_default=True, help="Parallel workers."
)


@cli.command(name="verify", context_settings=HELP)
@click.argument("file", type=click.Path(path_type=Path))
@DAFNY_OPTION
@TIME_OPTION
@click.option("--show-legacy", is_flag=True, help="Print the program as given to a legacy (pre-4) verifier.")
def dafnybench_verify(file: Path, dafny: str | None, time_limit: float, show_legacy: bool) -> None:
    """Verify a Dafny 4 FILE (through the compatibility layer on a legacy verifier); exit 1 unless verified."""
    source = _read_program(file)
    verifier = _verifier(dafny, time_limit)
    if show_legacy:
        click.echo(verifier.prepare(source))
    verdict = verifier.verify(source)
    for line in verdict.messages:
        click.echo(line.replace("program.dfy", str(file)))
    click.echo(f"{verdict.status}: {verdict.verified} verified, {verdict.errors} errors "
               f"(Dafny {verifier.version}{', legacy' if verifier.legacy else ''}, {verdict.seconds:.1f} s)")  # fmt: skip
    if not verdict.ok:
        raise SystemExit(1)


@cli.command(name="strip-hints", context_settings=HELP)
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write here instead of stdout.")
def dafnybench_strip_hints(file: Path, out: Path | None) -> None:
    """FILE without its hints (assert, invariant, decreases; whole statements): a new task."""
    from intelligible.core.errors import DataError
    from intelligible.core.runs import atomic_write_text
    from intelligible.dafnybench.data import shorten
    from intelligible.dafnybench.hints import strip_hints
    from intelligible.dafnybench.source import tokens

    if out is not None:
        _check_output_file(out)
    source = _read_program(file)
    if not any(t in ("method", "function", "predicate", "lemma", "class", "datatype", "module")
               for t, _ in tokens(source)):  # fmt: skip
        raise DataError(f"{shorten(file)}: not a Dafny program (no method, function, lemma, class or module)")
    stripped = strip_hints(source)
    if out is None:
        click.echo(stripped, nl=False)
    else:
        atomic_write_text(out, stripped)  # the old file or the new one, never half of one


def _check_output_file(out: Path) -> None:
    """A file may be written at `out`: not a folder, in an existing folder that can be written."""
    import os

    from intelligible.core.errors import OutputError
    from intelligible.dafnybench.data import shorten

    if out.is_dir():
        raise OutputError(f"--out {shorten(out)} is a folder; give a file name")
    if out.exists() and not out.is_file():
        raise OutputError(f"--out {shorten(out)} is not a regular file")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"--out {shorten(out)}: the folder {shorten(parent)} does not exist")
    if not os.access(parent, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise OutputError(f"--out {shorten(out)}: not writable")


@cli.command(name="run", context_settings=HELP)
@click.option(
    "--model", required=True, help="openai:<model>, anthropic:<model> or local:<smollm2|HF id|path>."
)
@click.option(
    "--attempts",
    type=click.IntRange(1, MAX_ATTEMPTS),
    default=10,
    show_default=True,
    help="Tries per task, with the verifier's feedback.",
)
@click.option(
    "--data",
    default=None,
    help="test.json(.gz), a folder with one or with .dfy pairs, or hf:wendy-sun/DafnyBench "
    "(default: $INTELLIGIBLE_DAFNYBENCH_DATA, else the bundled development split).",
)
@click.option("--tasks", "task_ids", default="", help="Comma-separated test IDs (default: all).")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="Only the first N tasks (0: all).")
@click.option("--check", type=click.Choice(["strict", "paper"]), default="strict", show_default=True)
@WORKERS_OPTION
@click.option(
    "--base-url", default="", help="For an OpenAI-compatible local server (vLLM, llama.cpp, Ollama)."
)
@click.option("--max-tokens", type=click.IntRange(1, MAX_TOKENS), default=4096, show_default=True)
@out_option("runs/dafnybench-run")
@DAFNY_OPTION
@TIME_OPTION
def dafnybench_run(model: str, attempts: int, data: str | None, task_ids: str, limit: int, check: str, workers: int,
                   base_url: str, max_tokens: int, out: Path, dafny: str | None, time_limit: float) -> None:  # fmt: skip
    """Run a model on the benchmark (resumable: rerun with the same --out to continue)."""
    from intelligible.core.errors import DataError
    from intelligible.dafnybench.data import shorten
    from intelligible.dafnybench.experiment import default_tasks
    from intelligible.dafnybench.runner import RunConfig, run

    cfg = RunConfig(model=model, attempts=attempts, check=check, workers=workers, base_url=base_url,
                    max_tokens=max_tokens)  # fmt: skip
    cfg.validate()
    tasks = default_tasks(data)
    if task_ids:
        wanted = {t.strip() for t in task_ids.split(",") if t.strip()}
        unknown = wanted - {t.test_id for t in tasks}
        if unknown:
            raise DataError(f"unknown test IDs: {shorten(', '.join(sorted(unknown)))}")
        tasks = [t for t in tasks if t.test_id in wanted]
    if limit:
        tasks = tasks[:limit]
    results = run(tasks, out, cfg, verifier=_verifier(dafny, time_limit, out / "verdict-cache"))
    solved = sum(r.success_on_attempt is not None for r in results)
    click.echo(f"solved {solved}/{len(results)}; results: {out / 'results_summary.csv'}")


@cli.command(name="score", context_settings=HELP)
@click.argument("run_dir", type=click.Path(path_type=Path))
def dafnybench_score(run_dir: Path) -> None:
    """success@k of a run folder (or a results_summary CSV), with and without trivially verifying tasks."""
    from intelligible.core.errors import DataError
    from intelligible.dafnybench.analysis import read_results_csv, success_at
    from intelligible.dafnybench.data import shorten

    path = run_dir / "results_summary.csv" if run_dir.is_dir() else run_dir
    outcomes = read_results_csv(path)
    if not outcomes:
        raise DataError(f"{shorten(path)}: no tasks in the results file")
    trivial = sum(v == 0 for v in outcomes.values())
    click.echo(f"{len(outcomes)} tasks, {trivial} verify without hints")
    for k in (1, 2, 3, 5, 10):
        click.echo(f"success@{k:<2}: {100 * success_at(outcomes, k):5.1f}%   "
                   f"without trivial: {100 * success_at(outcomes, k, without_trivial=True):5.1f}%")  # fmt: skip


@cli.command(name="rescore-published", context_settings=HELP)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder with test.json or test_dev.json and published_results/ (default: the bundled data).",
)
@click.option("--verify/--no-verify", default=True, show_default=True, help="Re-verify the programs here.")
@WORKERS_OPTION
@click.option("--executor", type=click.Choice(["process", "ray"]), default="process", show_default=True)
@out_option("runs/dafnybench-rescore")
@DAFNY_OPTION
@TIME_OPTION
def dafnybench_rescore(data: Path | None, verify: bool, workers: int, executor: str, out: Path, dafny: str | None,
                       time_limit: float) -> None:  # fmt: skip
    """The published models' final programs, re-scored with our verifier and both spec checks."""
    import json

    from intelligible.core.errors import DataError
    from intelligible.core.runs import atomic_write_text, ensure_writable_dir
    from intelligible.dafnybench.analysis import PUBLISHED_MODELS, read_published, rescore
    from intelligible.dafnybench.data import TASK_FILES, shorten, task_file
    from intelligible.dafnybench.experiment import default_data_dir, default_tasks

    folder = data or default_data_dir()
    if not folder.is_dir():
        what = "is a file" if folder.exists() else "does not exist"
        raise DataError(
            f"--data {shorten(folder)} {what}: give a folder with test_dev.json and published_results/"
        )
    found = task_file(folder)
    if found is None:
        raise DataError(f"--data {shorten(folder)}: the folder holds none of {', '.join(TASK_FILES)}")
    tasks = default_tasks(found)
    published = {model: read_published(folder / "published_results", model) for model in PUBLISHED_MODELS}
    out = ensure_writable_dir(out)
    verifier = _verifier(dafny, time_limit, out / "verdict-cache") if verify else None
    table = {}
    for model in PUBLISHED_MODELS:
        outcomes, programs = published[model]
        scored = rescore(
            tasks, outcomes, programs, verifier, workers=workers, executor=executor, verify=verify
        )
        table[model] = scored
        s = scored["summary"]
        line = f"{model:<14} paper {100 * s['paper_success']:5.1f}%  pass strict check {s['strict_check_pass_count']}/{s['paper_success_count']}"
        if verify:
            line += f"  ours+paper check {100 * s['ours_paper_check']:5.1f}%  ours+strict {100 * s['ours_strict_check']:5.1f}%"
        click.echo(line)
    atomic_write_text(out / "rescore.json", json.dumps(table, indent=1))


add_reproduce_command(
    cli,
    "dafnybench",
    "Self-check of the harness, the published results re-scored, and a short real model run.",
)
