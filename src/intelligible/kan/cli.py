"""`intelligible kan ...`: fit, reproduce."""

from __future__ import annotations

from pathlib import Path

import click

from intelligible.core.cli import HELP, OVERRIDES, add_reproduce_command, config_from_args, out_option
from intelligible.core.registry import study


@click.group(name="kan", help=study("kan").summary, context_settings=HELP)
def cli() -> None:
    pass


@cli.command(name="fit", context_settings=OVERRIDES)
@out_option("runs/kan-fit")
@click.option(
    "--resume", is_flag=True, help="Continue the interrupted run in --out from its last checkpoint."
)
@click.option("--overwrite", is_flag=True, help="Replace an earlier run in --out.")
@click.pass_context
def fit(ctx: click.Context, out: Path, resume: bool, overwrite: bool) -> None:
    """Fit a KAN to --function (e.g. "exp(sin(pi*x0)+x1**2)"); --symbolic distils it to a formula.

    Options: --function, --width 2,5,1, --grid, --k, --opt LBFGS|Adam, --steps, --lr, --batch,
    --lamb, --history-size (LBFGS memory, default 50), --train-num, --test-num, --range-low,
    --range-high, --symbolic, --lib x,x^2,exp,sin, --seed, --checkpoint-every. Each step is logged to OUT/metrics.jsonl as it finishes; a checkpoint is
    written every --checkpoint-every steps and on Ctrl-C, and --resume continues from it.
    """
    from intelligible.kan.experiment import FitRunConfig, fit_run

    summary = fit_run(config_from_args(FitRunConfig, ctx.args), out, resume=resume, overwrite=overwrite)
    click.echo(f"test RMSE {summary['test_rmse']:.3e}")
    if "formula" in summary:
        click.echo(f"formula: {summary['formula']}  (test RMSE {summary['symbolic_test_rmse']:.3e})")
        check = summary.get("formula_check")
        if check:  # runs finished before the check existed have none
            verdict = "within" if check["passed"] else "NOT within"
            click.echo(
                f"displayed formula vs model on test points: relative error {check['error']:.2e}, "
                f"{verdict} the bound {check['bound']:g}"
            )
    click.echo(f"model: {out / 'model.json'}")


add_reproduce_command(
    cli,
    "kan",
    """Symbolic recovery, grid extension, Feynman/special-function table and Poisson equation vs MLPs.

    Finished parts are kept in OUT/parts/ and skipped when the same command runs again.
    """,
)
