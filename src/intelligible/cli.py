"""Command line: `intelligible <study> <verb> [--key value ...]` and `intelligible reproduce`.

A thin layer over the library: options map onto each study's config dataclass (unknown keys are an
error). User errors print one line, `error: ...`, and exit with code 2, without a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from intelligible import __version__
from intelligible.core.config import config_from_dict, config_to_dict, parse_cli_overrides
from intelligible.core.errors import IntelligibleError

OVERRIDES = {"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": ["-h", "--help"]}


class StagesCommand(click.Command):
    """A command whose help lists the StagesConfig fields it accepts (imported only when help is shown)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        import dataclasses

        from intelligible.stages.experiment import StagesConfig

        rows = [
            (f"--{f.name.replace('_', '-')}", f"default: {f.default}")
            for f in dataclasses.fields(StagesConfig)
        ]
        with formatter.section("Config options (fields of StagesConfig)"):
            formatter.write_dl(rows)
        super().format_epilog(ctx, formatter)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="intelligible")
def cli() -> None:
    """intelligible: the physics-of-AI methods as fast, tested tools."""


@cli.command()
@click.option("--preset", type=click.Choice(["quick", "paper"]), default="quick", show_default=True)
@click.option("--only", multiple=True, help="Study to run (repeatable or comma-separated); default: all.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/reproduce"), show_default=True)
def reproduce(preset: str, only: tuple[str, ...], out: Path) -> None:
    """Reproduce every study's headline claims; writes one HTML page and report.json."""
    from intelligible.core.registry import run_reproductions

    studies = [name.strip() for item in only for name in item.split(",") if name.strip()] or None
    reports, html = run_reproductions(preset, out, only=studies)
    for report in reports:
        click.echo(
            f"{report.study}: {report.n_holding}/{len(report.claims)} claims hold ({report.elapsed_s or 0:.0f} s)"
        )
    click.echo(f"report: {html}")


# --------------------------------------------------------------------------- stages
@cli.group()
def stages() -> None:
    """Stages of inference: layer deletion/swap sweeps and the four stages (Lad et al. 2024)."""


def _stages_config(args: list[str], base: object | None = None):  # noqa: ANN202 - StagesConfig, imported lazily
    from intelligible.stages.experiment import StagesConfig

    values = config_to_dict(base) if base is not None else {}
    values.update(parse_cli_overrides(args))
    config = config_from_dict(StagesConfig, values)
    config.validate()
    return config


@stages.command(
    cls=StagesCommand,
    context_settings=OVERRIDES,
    epilog="Any StagesConfig field, e.g. --model smollm2-135m --n-tokens 2048 --kinds delete,swap",
)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/stages-sweep"), show_default=True)
@click.option("--resume", is_flag=True, help="Continue an interrupted sweep in --out.")
@click.pass_context
def sweep(ctx: click.Context, out: Path, resume: bool) -> None:
    """Delete each layer and swap each adjacent pair; measure retained accuracy, KL, loss, entropy."""
    from intelligible.stages.experiment import sweep_run

    config = _stages_config(ctx.args)
    result, run = sweep_run(config, out, resume=resume)
    click.echo(f"baseline top-1 accuracy {result.baseline['accuracy']:.4f} over {result.tokens} tokens")
    for row in result.rows:
        click.echo(
            f"{row['name']:>12}  retained {row['retained_accuracy']:.3f}  KL {row['kl']:.3f}  dloss {row['loss_change']:+.3f}"
        )
    click.echo(f"results: {run.path / 'sweep.json'}")


@stages.command(
    cls=StagesCommand,
    context_settings=OVERRIDES,
    epilog="Any StagesConfig field, e.g. --n-tokens 1024 --kurtosis-threshold 10",
)
@click.option(
    "--out", type=click.Path(path_type=Path), default=Path("runs/stages-diagnose"), show_default=True
)
@click.pass_context
def diagnose(ctx: click.Context, out: Path) -> None:
    """Per-layer stage signals: local attention, logit-lens entropy/KL, prediction/suppression neurons."""
    from intelligible.stages.experiment import diagnose_run

    config = _stages_config(ctx.args)
    diag, run = diagnose_run(config, out)
    click.echo("layer  attn-prev5  lens-entropy  lens-KL  pred  supp")
    for layer in range(diag.n_layers):
        click.echo(
            f"{layer:5d}  {diag.local_attention[layer][-1]:10.3f}  {diag.lens_entropy[layer]:12.3f}  "
            f"{diag.lens_kl_to_final[layer]:7.3f}  {diag.prediction_neurons[layer]:4d}  {diag.suppression_neurons[layer]:4d}"
        )
    click.echo(f"results: {run.path / 'diagnostics.json'}")


@stages.command(
    name="reproduce",
    cls=StagesCommand,
    context_settings=OVERRIDES,
    epilog="StagesConfig fields override the preset.",
)
@click.option("--preset", type=click.Choice(["quick", "paper"]), default="quick", show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/stages"), show_default=True)
@click.option("--resume", is_flag=True, help="Continue an interrupted sweep in --out.")
@click.pass_context
def stages_reproduce(ctx: click.Context, preset: str, out: Path, resume: bool) -> None:
    """Sweep, diagnose, assign the four stages and check the paper's claims."""
    from intelligible.stages.experiment import preset_config, run_experiment

    config = _stages_config(ctx.args, base=preset_config(preset))
    report = run_experiment(config, out, preset=preset, resume=resume)
    _echo_report(report, out)


def _echo_report(report: object, out: Path) -> None:
    """One line per claim of a study's Report, then where the report was written."""
    for claim in report.claims:
        mark = {True: "holds", False: "FAILS", None: "untested"}[claim.holds]
        click.echo(f"[{mark}] {claim.statement}: {claim.measured_value}")
    click.echo(f"report: {out / 'report.md'}")


def _reproduce_command(group: click.Group, study: str) -> None:
    """Register `intelligible STUDY reproduce`: the study's `experiment.reproduce(preset, out)`, whose
    docstring is the command's help."""
    import importlib

    def command(preset: str, out: Path) -> None:
        module = importlib.import_module(f"intelligible.{study}.experiment")
        report = module.reproduce(preset, out)
        _echo_report(report, out)

    command.__doc__ = _REPRODUCE_HELP[study]
    command = click.option(
        "--out", type=click.Path(path_type=Path), default=Path(f"runs/{study}"), show_default=True
    )(command)
    command = click.option(
        "--preset", type=click.Choice(["quick", "paper"]), default="quick", show_default=True
    )(command)
    group.command(name="reproduce")(command)


_REPRODUCE_HELP = {
    "kan": """Symbolic recovery, grid extension, Feynman/special-function table and Poisson equation vs MLPs.

    Finished parts are kept in OUT/parts/ and skipped when the same command runs again.
    """,
    "sae": "FLOP- and width-matched Switch vs TopK vs ReLU, load balancing, p-scaling, duplicates.",
    "mips": "The paper's count of solved tasks: 10 representative tasks (quick) or all 62 (paper).",
    "dafnybench": "Self-check of the harness, the published results re-scored, and a short real model run.",
}


# --------------------------------------------------------------------------- kan
@cli.group()
def kan() -> None:
    """Kolmogorov-Arnold networks (Liu et al. 2024): fit, prune, distil to formulas."""


@kan.command(name="fit", context_settings=OVERRIDES)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/kan-fit"), show_default=True)
@click.pass_context
def kan_fit(ctx: click.Context, out: Path) -> None:
    """Fit a KAN to --function (e.g. "exp(sin(pi*x0)+x1**2)"); --symbolic distils it to a formula.

    Options: --function, --width 2,5,1, --grid, --k, --opt LBFGS|Adam, --steps, --lr, --batch,
    --lamb, --train-num, --test-num, --range-low, --range-high, --symbolic, --lib x,x^2,exp,sin, --seed.
    """
    from intelligible.kan.experiment import FitRunConfig, fit_run

    config = config_from_dict(FitRunConfig, parse_cli_overrides(ctx.args))
    summary = fit_run(config, out)
    click.echo(f"test RMSE {summary['test_rmse']:.3e}")
    if "formula" in summary:
        click.echo(f"formula: {summary['formula']}  (test RMSE {summary['symbolic_test_rmse']:.3e})")
    click.echo(f"model: {out / 'model.json'}")


_reproduce_command(kan, "kan")


# --------------------------------------------------------------------------- sae
@cli.group()
def sae() -> None:
    """Sparse autoencoders (ReLU, TopK, Switch) on LM activations: train, evaluate, reproduce."""


@sae.command(name="train", context_settings=OVERRIDES)
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/sae-train"), show_default=True)
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.pass_context
def sae_train(ctx: click.Context, out: Path, resume: bool) -> None:
    """Train one SAE, e.g. --arch switch --experts 16 --latents 16384 --k 32 --layer 15.

    Options: --model, --layer, --text, --seq-len, --n-windows, --eval-windows, --normalize,
    --arch relu|topk|switch, --latents, --k, --experts, --lb-alpha, --heaviside, --l1-coeff,
    --steps, --batch, --lr (0: 2e-4 / sqrt(M / 2^14)), --cache-dir, --seed.

    Data-parallel over N processes: torchrun --nproc-per-node N -m intelligible.cli sae train ...;
    add --expert-parallel to shard a Switch SAE's experts over them (tokens exchanged all-to-all).
    """
    from intelligible.sae.experiment import SAERunConfig, train_run

    config = config_from_dict(SAERunConfig, parse_cli_overrides(ctx.args))
    summary = train_run(config, out, resume=resume)
    click.echo(
        f"held-out MSE {summary['mse']:.4g}, FVU {summary['fvu']:.4f}, L0 {summary['l0']:.1f}, "
        f"dead {100 * summary['dead_fraction']:.1f}%, CE recovered {summary['ce_recovered']:.3f} "
        f"(delta CE {summary['delta_ce']:.4f} nats)"
    )
    click.echo(f"sae: {out / 'sae.json'}")


@sae.command(name="eval")
@click.argument("run_dir", type=click.Path(path_type=Path))
def sae_eval(run_dir: Path) -> None:
    """Evaluate a trained run folder's SAE on its held-out tokens (writes RUN_DIR/eval.json)."""
    from intelligible.sae.experiment import eval_run

    summary = eval_run(run_dir)
    for key in ("mse", "fvu", "l0", "dead_fraction", "ce_recovered", "delta_ce"):
        click.echo(f"{key:14s} {summary[key]:.5g}")


_reproduce_command(sae, "sae")


# --------------------------------------------------------------------------- mips
@cli.group()
def mips() -> None:
    """MIPS (Michaud et al. 2024): distil trained RNNs into verified Python programs."""


def _mips_config(ctx: click.Context):  # noqa: ANN202
    from intelligible.mips.experiment import MipsConfig

    overrides = parse_cli_overrides(ctx.args)
    if "seeds" in overrides:
        overrides["seeds"] = tuple(int(v) for v in overrides["seeds"].split(","))
    return config_from_dict(MipsConfig, overrides)


@mips.command(name="tasks")
def mips_tasks() -> None:
    """The 62 tasks, with what each one asks."""
    from intelligible.mips.tasks import TASKS

    for name, task in TASKS.items():
        click.echo(
            f"{name:<26} in {task.input_dim}, out {task.output_dim}, T={task.length}: {task.description}"
        )


@mips.command(name="solve", context_settings=OVERRIDES)
@click.argument("task", required=False)
@click.option(
    "--file", "task_file", type=click.Path(path_type=Path), help="A task file (.npz/.json) instead of TASK."
)
@click.pass_context
def mips_solve(ctx: click.Context, task: str | None, task_file: Path | None) -> None:
    """Solve one TASK (e.g. Sum_All) or a --file: train the smallest RNN, read it, print the program.

    Options: --n-train, --n-test (the held-out split every program is verified on), --n-extract,
    --steps, --seeds 0,1, --length, --seed.
    """
    from intelligible.core.errors import ConfigError
    from intelligible.mips.experiment import solve, solve_file

    if (task is None) == (task_file is None):
        raise ConfigError("give a TASK name (see `intelligible mips tasks`) or --file, not both")
    cfg = _mips_config(ctx)
    record = solve(task, cfg) if task else solve_file(task_file, cfg)
    if record["solved"]:
        click.echo(record["program"].rstrip())
        click.echo(f"# solved: {record['method']}, RNN {record['rnn']}, {record['seconds']:.1f} s")
    else:
        click.echo(f"unsolved: {record['reason']}")


@mips.command(name="benchmark", context_settings=OVERRIDES)
@click.option("--tasks", "names", default="", help="Comma-separated task names; default: all 62.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs/mips"), show_default=True)
@click.pass_context
def mips_benchmark(ctx: click.Context, names: str, out: Path) -> None:
    """Solve many tasks in parallel (--workers N, --executor process|ray); finished tasks are cached."""
    from intelligible.mips.experiment import benchmark, describe

    records = benchmark([n.strip() for n in names.split(",") if n.strip()] or None, _mips_config(ctx), out)
    click.echo(describe(records))
    click.echo(
        f"solved {sum(bool(r.get('solved')) for r in records)}/{len(records)}; results: {out / 'tasks'}"
    )


_reproduce_command(mips, "mips")


@cli.group()
def dafnybench() -> None:
    """DafnyBench (Loughridge et al. 2024): LLM-written Dafny verification hints, checked strictly."""


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


@dafnybench.command(name="verify")
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


@dafnybench.command(name="strip-hints")
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


@dafnybench.command(name="run")
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


@dafnybench.command(name="score")
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


@dafnybench.command(name="rescore-published")
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


_reproduce_command(dafnybench, "dafnybench")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning user errors into one line on stderr and exit code 2."""
    try:
        cli.main(args=argv, prog_name="intelligible", standalone_mode=False)
    except IntelligibleError as error:
        click.echo(f"error: {error}", err=True)
        return 2
    except click.ClickException as error:
        click.echo(f"error: {error.format_message()}", err=True)
        return 2
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
