"""`intelligible worldmodel ...`: train, probe, reproduce."""

from __future__ import annotations

from pathlib import Path

import click

from intelligible.core.cli import (
    HELP,
    ConfigCommand,
    OutFolder,
    add_reproduce_command,
    config_from_args,
    out_option,
)

# the registry's one-line summary (repeated here so the group loads before and without the registry line)
SUMMARY = "World models (Kantamneni et al. 2024): probe, rank and intervene on a network's intermediates."


@click.group(name="worldmodel", help=SUMMARY, context_settings=HELP)
def cli() -> None:
    pass


@cli.command(name="train", cls=ConfigCommand, config="intelligible.worldmodel.train:TrainConfig")
@out_option("runs/worldmodel-train")
@click.option(
    "--resume", is_flag=True, help="Continue the interrupted run in --out from its last checkpoint."
)
@click.option("--overwrite", is_flag=True, help="Replace an earlier run in --out.")
@click.pass_context
def train(ctx: click.Context, out: Path, resume: bool, overwrite: bool) -> None:
    """Train the small transformer on a task (e.g. --task sho-undamped --layers 3 --hidden 16).

    Weights go to OUT/model.safetensors, snapshots along training to OUT/snapshot-*.safetensors,
    the loss to OUT/metrics.jsonl; a checkpoint is written every --checkpoint-every steps and on
    Ctrl-C, and --resume continues from it.
    """
    from intelligible.worldmodel.train import TrainConfig
    from intelligible.worldmodel.train import train as train_model

    summary = train_model(config_from_args(TrainConfig, ctx.args), out, resume=resume, overwrite=overwrite)
    click.echo(f"val MSE {summary['val_mse']:.4g}, out-of-distribution MSE {summary['ood_mse']:.4g}")
    click.echo(f"run: {out}")


@cli.command(name="probe", cls=ConfigCommand, config="intelligible.worldmodel.experiment:ProbeConfig")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--out", type=OutFolder(), default=None, help="Where to write [default: RUN_DIR/probe].")
@click.pass_context
def probe(ctx: click.Context, run_dir: Path, out: Path | None) -> None:
    """Test hypotheses on a trained RUN_DIR: held-out ridge and CCA probes and reverse probes at every
    site and position (--hypotheses, --sites to choose; --snapshots adds criterion 2 over the run's
    snapshots). Writes probe.json and heatmaps."""
    from intelligible.worldmodel.experiment import ProbeConfig, probe_run

    config = config_from_args(ProbeConfig, ctx.args)
    summary = probe_run(run_dir, config, out)
    for row in summary["table"]:
        extra = f", CCA {row['cca_r2']:.3f}" if "cca_r2" in row else ""
        click.echo(
            f"{row['hypothesis']:<22} best site {row['best_site']:<12} R^2 {row['r2']:.3f}{extra}, "
            f"variance explained {row['variance_explained']:.3f}"
        )
    for name, corr in summary.get("criterion_2", {}).get("correlation", {}).items():
        click.echo(f"criterion 2 {name}: rho {corr['rho']:.2f} ({corr['low']:.2f} to {corr['high']:.2f})")
    click.echo(f"probe: {summary['out']}/probe.json")


add_reproduce_command(
    cli,
    "worldmodel",
    "The undamped oscillator's intermediates (four criteria), in-context regression, the damped cases.",
)
