"""`intelligible stages ...`: sweep, diagnose, reproduce."""

from __future__ import annotations

from pathlib import Path

import click

from intelligible.core.cli import (
    HELP,
    ConfigCommand,
    config_from_args,
    echo_report,
    out_option,
    preset_option,
)
from intelligible.core.registry import study

CONFIG = "intelligible.stages.experiment:StagesConfig"


@click.group(name="stages", help=study("stages").summary, context_settings=HELP)
def cli() -> None:
    pass


def _config(args: list[str], base: object | None = None):  # noqa: ANN202 - StagesConfig, imported lazily
    from intelligible.stages.experiment import StagesConfig

    return config_from_args(StagesConfig, args, base)


@cli.command(
    cls=ConfigCommand,
    config=CONFIG,
    epilog="Any StagesConfig field, e.g. --model smollm2-135m --n-tokens 2048 --kinds delete,swap",
)
@out_option("runs/stages-sweep")
@click.option("--resume", is_flag=True, help="Continue an interrupted sweep in --out from its last batch.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier run in --out (refused otherwise).")
@click.pass_context
def sweep(ctx: click.Context, out: Path, resume: bool, overwrite: bool) -> None:
    """Delete each layer and swap each adjacent pair; measure retained accuracy, KL, loss, entropy.

    --resume continues an interrupted sweep from the running sums saved after every batch (same
    options); --overwrite replaces a run already in --out.
    """
    from intelligible.stages.experiment import sweep_run

    result, run = sweep_run(_config(ctx.args), out, resume=resume, overwrite=overwrite)
    click.echo(f"baseline top-1 accuracy {result.baseline['accuracy']:.4f} over {result.tokens} tokens")
    for row in result.rows:
        click.echo(
            f"{row['name']:>12}  retained {row['retained_accuracy']:.3f}  KL {row['kl']:.3f}  dloss {row['loss_change']:+.3f}"
        )
    click.echo(f"results: {run.path / 'sweep.json'}")


@cli.command(
    cls=ConfigCommand,
    config=CONFIG,
    epilog="Any StagesConfig field, e.g. --n-tokens 1024 --kurtosis-threshold 10",
)
@out_option("runs/stages-diagnose")
@click.option("--overwrite", is_flag=True, help="Replace an earlier run in --out (refused otherwise).")
@click.pass_context
def diagnose(ctx: click.Context, out: Path, overwrite: bool) -> None:
    """Per-layer stage signals: local attention, logit-lens entropy/KL, prediction/suppression neurons."""
    from intelligible.stages.experiment import diagnose_run

    diag, run = diagnose_run(_config(ctx.args), out, overwrite=overwrite)
    click.echo("layer  attn-prev5  lens-entropy  lens-KL  pred  supp")
    for layer in range(diag.n_layers):
        click.echo(
            f"{layer:5d}  {diag.local_attention[layer][-1]:10.3f}  {diag.lens_entropy[layer]:12.3f}  "
            f"{diag.lens_kl_to_final[layer]:7.3f}  {diag.prediction_neurons[layer]:4d}  {diag.suppression_neurons[layer]:4d}"
        )
    click.echo(f"results: {run.path / 'diagnostics.json'}")


@cli.command(
    name="reproduce", cls=ConfigCommand, config=CONFIG, epilog="StagesConfig fields override the preset."
)
@preset_option()
@out_option("runs/stages")
@click.option("--resume", is_flag=True, help="Continue an interrupted sweep in --out.")
@click.option(
    "--overwrite", is_flag=True, help="Replace another kind of run in --out (a reproduction is rerun over)."
)
@click.pass_context
def reproduce(ctx: click.Context, preset: str, out: Path, resume: bool, overwrite: bool) -> None:
    """Sweep, diagnose, assign the four stages and check the paper's claims."""
    from intelligible.stages.experiment import preset_config, run_experiment

    config = _config(ctx.args, base=preset_config(preset))
    report = run_experiment(config, out, preset=preset, resume=resume, overwrite=overwrite)
    echo_report(report, out)
