"""`intelligible geneft ...`: bound, sweep, phases, reproduce."""

from __future__ import annotations

from pathlib import Path

import click

from intelligible.core.cli import HELP, ConfigCommand, add_reproduce_command, config_from_args, out_option
from intelligible.core.registry import study


@click.group(name="geneft", help=study("geneft").summary, context_settings=HELP)
def cli() -> None:
    pass


@cli.command(name="bound", cls=ConfigCommand, config="intelligible.geneft.experiment:BoundConfig")
@click.pass_context
def bound(ctx: click.Context) -> None:
    """The static bounds of one relation: |Aut|, b = log2(n!/|Aut|), p_c, and f_UB beside the exact
    (closure) bound at each fraction. --relation is mod3, greater, bipartite10, ... or a file
    holding an n x n boolean matrix (.npy, or .txt/.csv rows of 0/1). Writes nothing."""
    from intelligible.geneft.experiment import BoundConfig, describe_bound
    from intelligible.geneft.experiment import bound as compute

    click.echo(describe_bound(compute(config_from_args(BoundConfig, ctx.args))))


@cli.command(name="sweep", cls=ConfigCommand, config="intelligible.geneft.experiment:SweepConfig")
@out_option("runs/geneft-sweep")
@click.option("--overwrite", is_flag=True, help="Replace an earlier sweep in --out.")
@click.pass_context
def sweep(ctx: click.Context, out: Path, overwrite: bool) -> None:
    """Test accuracy against data fraction for each of --relations (MLP and/or ideal decoder, all runs
    trained as one batch per architecture), beside p_c, f_UB and the exact bound."""
    from intelligible.geneft.experiment import SweepConfig, sweep_run

    swept = sweep_run(config_from_args(SweepConfig, ctx.args), out, overwrite=overwrite)
    for name, entry in swept["relations"].items():
        found = ", ".join(
            f"{kind} {entry[key]:.3f}" if entry.get(key) is not None else f"{kind} never"
            for kind, key in (
                ("exact bound", "exact_critical"),
                ("MLP", "mlp_critical"),
                ("ideal", "ideal_critical"),
            )
            if key in entry
        )
        click.echo(
            f"{name}: b = {entry['bits']:.1f} bits, p_c = {entry['critical_fraction']:.3f}; critical fraction: {found}"
        )
    click.echo(f"results: {out / 'results.json'}")


@cli.command(name="phases", cls=ConfigCommand, config="intelligible.geneft.experiment:PhasesConfig")
@out_option("runs/geneft-phases")
@click.option("--overwrite", is_flag=True, help="Replace an earlier phase diagram in --out.")
@click.pass_context
def phases(ctx: click.Context, out: Path, overwrite: bool) -> None:
    """The phase diagram over (encoder, decoder) learning rates: each run is generalisation, grokking,
    memorisation or confusion; the boundary's slope and ratio; p_r beside the measured share."""
    from intelligible.geneft.experiment import PhasesConfig, describe_phases, phases_run

    click.echo(
        describe_phases(phases_run(config_from_args(PhasesConfig, ctx.args), out, overwrite=overwrite))
    )
    click.echo(f"results: {out / 'results.json'}")


add_reproduce_command(
    cli,
    "geneft",
    "Critical fractions against the information bounds, the Goldilocks depth, the learning-rate phase "
    "diagram and the repon theory.",
)
