"""`intelligible mips ...`: tasks, solve, benchmark, reproduce."""

from __future__ import annotations

from pathlib import Path

import click

from intelligible.core.cli import HELP, ConfigCommand, add_reproduce_command, out_option, split_words
from intelligible.core.registry import study

CONFIG = "intelligible.mips.experiment:MipsConfig"


@click.group(name="mips", help=study("mips").summary, context_settings=HELP)
def cli() -> None:
    pass


def _config(options: list[str], *, task_file: bool = False):  # noqa: ANN202 - MipsConfig, imported lazily
    from intelligible.core.config import config_from_dict, parse_cli_overrides
    from intelligible.core.errors import ConfigError
    from intelligible.mips.experiment import _TASK_ONLY, MipsConfig

    overrides = parse_cli_overrides(options)
    if task_file:
        # a task file brings its own sequences; sizes for generated ones would be silently ignored
        given = [key for key in _TASK_ONLY if key in overrides]
        if given:
            names = ", ".join("--" + key.replace("_", "-") for key in given)
            raise ConfigError(f"{names} apply to a named TASK only; a --file is split by --file-holdout")
    cfg = config_from_dict(MipsConfig, overrides)
    cfg.validate()
    return cfg


@cli.command(name="tasks", context_settings=HELP)
def tasks() -> None:
    """The 62 tasks, with what each one asks."""
    from intelligible.mips.tasks import TASKS

    for name, task in TASKS.items():
        click.echo(
            f"{name:<26} in {task.input_dim}, out {task.output_dim}, T={task.length}: {task.description}"
        )


@cli.command(name="solve", cls=ConfigCommand, config=CONFIG, options_metavar="[TASK] [OPTIONS]")
@click.option(
    "--file", "task_file", type=click.Path(path_type=Path), help="A task file (.npz/.json) instead of TASK."
)
@click.pass_context
def solve(ctx: click.Context, task_file: Path | None) -> None:
    """Solve one TASK (e.g. Sum_All, or beyond the benchmark: Sum_Last10, Add_Mod_17) or a --file:
    train the smallest RNN, read it, print the program and what it was verified on.

    Every choice is made on the validation split (--n-val); the program is then checked once on an
    untouched test split (--n-test) and on --n-long sequences --long-factor times longer. The
    options below combine with TASK or --file; the sizes of generated sets (--n-train, --n-val,
    --n-test, --n-long, --long-factor, --length) apply to a TASK, a file is split by --file-holdout.
    """
    from intelligible.core.errors import ConfigError
    from intelligible.mips.experiment import solve, solve_file, verification_lines

    words, options = split_words(ctx.args)
    if len(words) > 1:
        shown = " ".join(words)[:80]
        raise ConfigError(
            f"give one TASK, got {len(words)} words: {shown} (options take the form --key value)"
        )
    task = words[0] if words else None
    if (task is None) == (task_file is None):
        raise ConfigError("give a TASK name (see `intelligible mips tasks`) or --file, not both")
    cfg = _config(options, task_file=task_file is not None)
    record = solve(task, cfg) if task else solve_file(task_file, cfg)
    if record["solved"]:
        click.echo(record["program"].rstrip())
        click.echo(f"# solved: {record['method']}, RNN {record['rnn']}, {record['seconds']:.1f} s")
    else:
        if record.get("program"):
            click.echo(record["program"].rstrip())
        click.echo(f"unsolved: {record['reason']}")
    for line in verification_lines(record):
        click.echo(line)


@cli.command(name="benchmark", cls=ConfigCommand, config=CONFIG)
@click.option("--tasks", "names", default="", help="Comma-separated task names; default: all 62.")
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder of per-task results to resume from [default: OUT/tasks].",
)
@out_option("runs/mips")
@click.pass_context
def benchmark(ctx: click.Context, names: str, cache_dir: Path | None, out: Path) -> None:
    """Solve many tasks in parallel (--workers N, --executor process|ray); finished tasks are cached,
    and a cached file that cannot be read is recomputed (with a warning naming it)."""
    from intelligible.core.errors import ConfigError
    from intelligible.mips.experiment import benchmark, describe

    words, options = split_words(ctx.args)
    if words:
        raise ConfigError(f"unexpected word {words[0][:80]!r}; name tasks with --tasks A,B")
    records = benchmark(
        [n.strip() for n in names.split(",") if n.strip()] or None, _config(options), out, cache_dir=cache_dir
    )
    click.echo(describe(records))
    click.echo(
        f"solved {sum(bool(r.get('solved')) for r in records)}/{len(records)}; "
        f"results: {cache_dir or out / 'tasks'}"
    )


add_reproduce_command(
    cli, "mips", "The paper's count of solved tasks: 4 representative tasks (quick) or all 62 (paper)."
)
