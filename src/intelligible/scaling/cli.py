"""`intelligible scaling ...`: sweep, fit, transformer, reproduce."""

from __future__ import annotations

from pathlib import Path

import click

from intelligible.core.cli import HELP, ConfigCommand, add_reproduce_command, config_from_args, out_option
from intelligible.core.registry import study


@click.group(name="scaling", help=study("scaling").summary, context_settings=HELP)
def cli() -> None:
    pass


@cli.command(name="sweep", cls=ConfigCommand, config="intelligible.scaling.sweep:SweepConfig")
@out_option("runs/scaling-sweep")
@click.option("--overwrite", is_flag=True, help="Replace an earlier sweep in --out.")
@click.option("--n-boot", type=click.IntRange(1, 1_000_000), default=1000, show_default=True,
              help="Bootstrap resamples for the intervals.")  # fmt: skip
@click.pass_context
def sweep(ctx: click.Context, out: Path, overwrite: bool, n_boot: int) -> None:
    """Train a widths x alphas x betas x seeds grid of MLPs on one task as batched programs, count the
    neurons each subtask gets, and fit loss against neurons with bootstrap intervals.

    e.g. `intelligible scaling sweep --task square --alphas 1,2,4,8,16,32,64,128,256,512`;
    `--task parallel --betas 0.5,0.75,0.9`; `--task series`; `--task function --functions "sin(pi*x0),x1**2"`;
    `--l1 0 --widths 2,4,8,16,32` for a plain width sweep. Writes OUT/results.json, OUT/fit.json, OUT/figures/.
    """
    from intelligible.scaling.experiment import FitOptions, describe, sweep_run
    from intelligible.scaling.sweep import SweepConfig

    config = config_from_args(SweepConfig, ctx.args)
    analysis = sweep_run(config, out, overwrite=overwrite, options=FitOptions(n_boot=n_boot))
    for line in describe(analysis):
        click.echo(line)
    click.echo(f"results: {out / 'results.json'}; fits: {out / 'fit.json'}")


@cli.command(name="fit", cls=ConfigCommand, config="intelligible.scaling.experiment:FitOptions")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.pass_context
def fit(ctx: click.Context, run_dir: Path) -> None:
    """Fit the sweep in RUN_DIR (a `scaling sweep` --out folder) again, e.g. on a range of neurons
    (--n-min 2 --n-max 56) or with more resamples (--n-boot 5000); rewrites RUN_DIR/fit.json and figures."""
    from intelligible.scaling.experiment import FitOptions, describe, fit_run

    options = config_from_args(FitOptions, ctx.args)
    for line in describe(fit_run(run_dir, options)):
        click.echo(line)
    click.echo(f"fits: {run_dir / 'fit.json'}")


@cli.command(
    name="transformer", cls=ConfigCommand, config="intelligible.scaling.experiment:TransformerConfig"
)
@out_option("runs/scaling-transformer")
@click.option("--overwrite", is_flag=True, help="Replace an earlier run in --out.")
@click.pass_context
def transformer(ctx: click.Context, out: Path, overwrite: bool) -> None:
    """Train one-layer transformers on a mixture of algorithmic subtasks at several MLP widths and
    test homogeneous growth of the neurons each subtask gets (e.g. --subtasks first,max,add --widths 16,32,64)."""
    from intelligible.scaling.experiment import TransformerConfig, transformer_run

    config = config_from_args(TransformerConfig, ctx.args)
    result = transformer_run(config, out, overwrite=overwrite)
    for row in result["records"]:
        counts = ", ".join(f"{n} {c}" for n, c in zip(result["subtasks"], row["allocated"]))
        click.echo(f"width {row['width']}, seed {row['seed']}: {counts}")
    for row in result["growth"]:
        if "exponent" in row:
            click.echo(f"{row['subtask']}: N_k ~ N_total^{row['exponent']:.3g} [{row['low']:.3g}, {row['high']:.3g}] "
                       "(1 = homogeneous growth)")  # fmt: skip
        else:
            click.echo(f"{row['subtask']}: no fit: {row['error']}")
    click.echo(f"results: {out / 'results.json'}")


add_reproduce_command(
    cli,
    "scaling",
    "l ~ N^-1, allocation against alpha and beta, homogeneous growth, additivity, the series task, "
    "a small transformer and the N_p^-1/3 prediction, beside the paper's numbers.",
)
