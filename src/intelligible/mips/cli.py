"""`intelligible mips ...`: tasks, solve, benchmark, reproduce."""

from __future__ import annotations

from pathlib import Path

import click

from intelligible.core.cli import HELP, OVERRIDES, add_reproduce_command, out_option
from intelligible.core.registry import study


@click.group(name="mips", help=study("mips").summary, context_settings=HELP)
def cli() -> None:
    pass


def _config(ctx: click.Context):  # noqa: ANN202 - MipsConfig, imported lazily
    from intelligible.core.config import config_from_dict, parse_cli_overrides
    from intelligible.mips.experiment import MipsConfig

    overrides = parse_cli_overrides(ctx.args)
    if "seeds" in overrides:
        overrides["seeds"] = tuple(int(v) for v in overrides["seeds"].split(","))
    return config_from_dict(MipsConfig, overrides)


@cli.command(name="tasks", context_settings=HELP)
def tasks() -> None:
    """The 62 tasks, with what each one asks."""
    from intelligible.mips.tasks import TASKS

    for name, task in TASKS.items():
        click.echo(
            f"{name:<26} in {task.input_dim}, out {task.output_dim}, T={task.length}: {task.description}"
        )


@cli.command(name="solve", context_settings=OVERRIDES)
@click.argument("task", required=False)
@click.option(
    "--file", "task_file", type=click.Path(path_type=Path), help="A task file (.npz/.json) instead of TASK."
)
@click.pass_context
def solve(ctx: click.Context, task: str | None, task_file: Path | None) -> None:
    """Solve one TASK (e.g. Sum_All) or a --file: train the smallest RNN, read it, print the program.

    Options: --n-train, --n-test (the held-out split every program is verified on), --n-extract,
    --steps, --seeds 0,1, --length, --seed.
    """
    from intelligible.core.errors import ConfigError
    from intelligible.mips.experiment import solve, solve_file

    if (task is None) == (task_file is None):
        raise ConfigError("give a TASK name (see `intelligible mips tasks`) or --file, not both")
    cfg = _config(ctx)
    record = solve(task, cfg) if task else solve_file(task_file, cfg)
    if record["solved"]:
        click.echo(record["program"].rstrip())
        click.echo(f"# solved: {record['method']}, RNN {record['rnn']}, {record['seconds']:.1f} s")
    else:
        click.echo(f"unsolved: {record['reason']}")


@cli.command(name="benchmark", context_settings=OVERRIDES)
@click.option("--tasks", "names", default="", help="Comma-separated task names; default: all 62.")
@out_option("runs/mips")
@click.pass_context
def benchmark(ctx: click.Context, names: str, out: Path) -> None:
    """Solve many tasks in parallel (--workers N, --executor process|ray); finished tasks are cached."""
    from intelligible.mips.experiment import benchmark, describe

    records = benchmark([n.strip() for n in names.split(",") if n.strip()] or None, _config(ctx), out)
    click.echo(describe(records))
    click.echo(
        f"solved {sum(bool(r.get('solved')) for r in records)}/{len(records)}; results: {out / 'tasks'}"
    )


add_reproduce_command(
    cli, "mips", "The paper's count of solved tasks: 10 representative tasks (quick) or all 62 (paper)."
)
