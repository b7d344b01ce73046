"""`intelligible dafnybench ...`: verify, strip-hints, run, score, rescore-published, reproduce."""

from __future__ import annotations

from pathlib import Path

import click

from intelligible.core.cli import HELP, add_reproduce_command
from intelligible.core.registry import study


@click.group(name="dafnybench", help=study("dafnybench").summary, context_settings=HELP)
def cli() -> None:
    pass


def _verifier(dafny: str | None, time_limit: float, cache: Path | None = None):  # noqa: ANN202
    from intelligible.dafnybench.verifier import Verifier

    return Verifier(dafny=dafny, time_limit=time_limit, cache_dir=cache)


def _read_program(path: Path) -> str:
    from intelligible.core.errors import DataError

    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        return path.read_text()
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not a text file ({error})") from error


DAFNY_OPTION = click.option("--dafny", default=None, help="The dafny executable (default: dafny on PATH).")
TIME_OPTION = click.option(
    "--time-limit", default=120.0, show_default=True, help="Wall-clock seconds per program."
)


@cli.command(name="verify", context_settings=HELP)
@click.argument("file", type=click.Path(path_type=Path))
@DAFNY_OPTION
@TIME_OPTION
@click.option("--show-legacy", is_flag=True, help="Print the program as given to a legacy (pre-4) verifier.")
def dafnybench_verify(file: Path, dafny: str | None, time_limit: float, show_legacy: bool) -> None:
    """Verify a Dafny 4 FILE (through the compatibility layer on a legacy verifier); exit 1 unless verified."""
    verifier = _verifier(dafny, time_limit)
    source = _read_program(file)
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
    from intelligible.dafnybench.hints import strip_hints
    from intelligible.dafnybench.source import tokens

    source = _read_program(file)
    if not any(t in ("method", "function", "predicate", "lemma", "class", "datatype", "module")
               for t, _ in tokens(source)):  # fmt: skip
        raise DataError(f"{file}: not a Dafny program (no method, function, lemma, class or module)")
    stripped = strip_hints(source)
    if out is None:
        click.echo(stripped, nl=False)
    else:
        out.write_text(stripped)


@cli.command(name="run", context_settings=HELP)
@click.option(
    "--model", required=True, help="openai:<model>, anthropic:<model> or local:<smollm2|HF id|path>."
)
@click.option(
    "--attempts", default=10, show_default=True, help="Tries per task, with the verifier's feedback."
)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    default=None,
    help="test.json or folder (default: shared copy).",
)
@click.option("--tasks", "task_ids", default="", help="Comma-separated test IDs (default: all).")
@click.option("--limit", default=0, help="Only the first N tasks.")
@click.option("--check", type=click.Choice(["strict", "paper"]), default="strict", show_default=True)
@click.option("--workers", default=2, show_default=True)
@click.option(
    "--base-url", default="", help="For an OpenAI-compatible local server (vLLM, llama.cpp, Ollama)."
)
@click.option("--max-tokens", default=4096, show_default=True)
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("runs/dafnybench-run"), show_default=True
)
@DAFNY_OPTION
@TIME_OPTION
def dafnybench_run(model: str, attempts: int, data: Path | None, task_ids: str, limit: int, check: str, workers: int,
                   base_url: str, max_tokens: int, out: Path, dafny: str | None, time_limit: float) -> None:  # fmt: skip
    """Run a model on the benchmark (resumable: rerun with the same --out to continue)."""
    from intelligible.core.errors import DataError
    from intelligible.dafnybench.experiment import default_tasks
    from intelligible.dafnybench.runner import RunConfig, run

    tasks = default_tasks(data)
    if task_ids:
        wanted = {t.strip() for t in task_ids.split(",") if t.strip()}
        unknown = wanted - {t.test_id for t in tasks}
        if unknown:
            raise DataError(f"unknown test IDs: {', '.join(sorted(unknown))}")
        tasks = [t for t in tasks if t.test_id in wanted]
    if limit:
        tasks = tasks[:limit]
    cfg = RunConfig(model=model, attempts=attempts, check=check, workers=workers, base_url=base_url,
                    max_tokens=max_tokens)  # fmt: skip
    results = run(tasks, out, cfg, verifier=_verifier(dafny, time_limit, out / "verdict-cache"))
    solved = sum(r.success_on_attempt is not None for r in results)
    click.echo(f"solved {solved}/{len(results)}; results: {out / 'results_summary.csv'}")


@cli.command(name="score", context_settings=HELP)
@click.argument("run_dir", type=click.Path(path_type=Path))
def dafnybench_score(run_dir: Path) -> None:
    """success@k of a run folder (or a results_summary CSV), with and without trivially verifying tasks."""
    from intelligible.dafnybench.analysis import read_results_csv, success_at

    path = run_dir / "results_summary.csv" if run_dir.is_dir() else run_dir
    outcomes = read_results_csv(path)
    trivial = sum(v == 0 for v in outcomes.values())
    click.echo(f"{len(outcomes)} tasks, {trivial} verify without hints")
    for k in (1, 2, 3, 5, 10):
        click.echo(f"success@{k:<2}: {100 * success_at(outcomes, k):5.1f}%   "
                   f"without trivial: {100 * success_at(outcomes, k, without_trivial=True):5.1f}%")  # fmt: skip


@cli.command(name="rescore-published", context_settings=HELP)
@click.option("--data", type=click.Path(path_type=Path), default=None, help="Folder with published_results/.")
@click.option("--verify/--no-verify", default=True, show_default=True, help="Re-verify the programs here.")
@click.option("--workers", default=2, show_default=True)
@click.option("--executor", type=click.Choice(["process", "ray"]), default="process", show_default=True)
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("runs/dafnybench-rescore"), show_default=True
)
@DAFNY_OPTION
@TIME_OPTION
def dafnybench_rescore(data: Path | None, verify: bool, workers: int, executor: str, out: Path, dafny: str | None,
                       time_limit: float) -> None:  # fmt: skip
    """The published models' final programs, re-scored with our verifier and both spec checks."""
    import json

    from intelligible.core.runs import atomic_write_text, ensure_writable_dir
    from intelligible.dafnybench.analysis import PUBLISHED_MODELS, read_published, rescore
    from intelligible.dafnybench.experiment import default_data_dir, default_tasks

    folder = data or default_data_dir()
    tasks = default_tasks(
        folder / "test_dev.json" if (folder / "test_dev.json").is_file() else folder / "test.json"
    )
    out = ensure_writable_dir(out)
    verifier = _verifier(dafny, time_limit, out / "verdict-cache") if verify else None
    table = {}
    for model in PUBLISHED_MODELS:
        outcomes, programs = read_published(folder / "published_results", model)
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
