"""`intelligible multidim ...`: indices, discover, circles, reproduce."""

from __future__ import annotations

from pathlib import Path

import click

from intelligible.core.cli import HELP, ConfigCommand, add_reproduce_command, config_from_args, out_option
from intelligible.core.registry import study


@click.group(name="multidim", help=study("multidim").summary, context_settings=HELP)
def cli() -> None:
    pass


@cli.command(name="indices", cls=ConfigCommand, config="intelligible.multidim.experiment:IndicesConfig",
             options_metavar="POINTS.npy [OPTIONS]")  # fmt: skip
@click.argument("file", metavar="POINTS.npy", type=click.Path(path_type=Path))
@click.pass_context
def indices(ctx: click.Context, file: Path) -> None:
    """Separability S (bits) and the eps-mixture index of the points in POINTS.npy: (N, 2) for one feature,
    (features, N, 2) for many, or (N, d) for the PCA planes of one d-dimensional feature."""
    from intelligible.multidim.experiment import IndicesConfig, indices_of_points, read_points

    cfg = config_from_args(IndicesConfig, ctx.args)
    rows = indices_of_points(read_points(file), cfg)
    click.echo(f"{'feature':<12} {'S (bits)':>9} {'M_eps':>7}  reading")
    for row in rows:
        click.echo(
            f"{row['feature']:<12} {row['separability_bits']:>9.4f} {row['mixture']:>7.4f}  {row['reading']}"
        )


@cli.command(name="discover", cls=ConfigCommand, config="intelligible.multidim.experiment:DiscoverRunConfig")
@click.option("--sae", "sae_path", required=True, type=click.Path(path_type=Path),
              help="An SAE: the .json of `intelligible sae train` output, or a SAELens folder.")  # fmt: skip
@out_option("runs/multidim-discover")
@click.pass_context
def discover(ctx: click.Context, sae_path: Path, out: Path) -> None:
    """Cluster an SAE's decoder directions, score each cluster's reconstructions by reducibility
    ((1 - M_eps) * S over its PCA planes) on the model's activations at --layer, and list the best.

    Activations come from --text: 'calendar' (templated sentences naming weekdays and months, the default)
    or a text file or folder.
    """
    from intelligible.multidim.experiment import DiscoverRunConfig, discover_run

    cfg = config_from_args(DiscoverRunConfig, ctx.args)
    result = discover_run(cfg, sae_path, out)
    click.echo(f"{len(result['clusters'])} clusters of two or more latents; {result['tokens']} tokens")
    for row in result["rows"]:
        click.echo(f"#{row['rank']:<3} score {row['score']:.3f}  {row['latents']} latents, {row['tokens']} tokens, "
                   f"weekday/month/number share {row['cyclic_share']:.0%}: {row['top_tokens']}")  # fmt: skip
    click.echo(f"clusters: {out / 'clusters.json'}; figure: {result['figure']}")


@cli.command(name="circles", cls=ConfigCommand, config="intelligible.multidim.experiment:CirclesConfig")
@click.pass_context
def circles(ctx: click.Context) -> None:
    """Weekday (49) and month (144) prompts: at every layer, is the residual at the start word a circle in
    cyclic order (against a permutation null)? The task score, and circle patching when the model is
    competent (at least --gate of the answers right)."""
    from intelligible.multidim.experiment import CirclesConfig, circles_run

    cfg = config_from_args(CirclesConfig, ctx.args)
    results = circles_run(cfg)
    for name, entry in results.items():
        click.echo(
            f"{name}: {entry['correct']}/{entry['prompts']} answered; strongest circle at layer {entry['best_layer']}"
        )
        click.echo(f"  {'layer':>5} {'r':>6} {'null p99':>9} {'p':>7} {'R2 circle':>9}")
        for r in entry["layers"]:
            click.echo(f"  {r['layer']:>5} {r['correlation']:>6.3f} {r['null_p99']:>9.3f} {r['p_value']:>7.4f} "
                       f"{r['r2_circle']:>9.3f}")  # fmt: skip
        if entry["patch"] is None:
            click.echo(f"  circle patching not run: {entry['patch_skipped']}")
        else:
            patch = entry["patch"]
            click.echo(f"  circle patching to the next item: {patch['moved']:.0%} of answers moved by one "
                       f"(unpatched {patch['unpatched']:.0%})")  # fmt: skip


add_reproduce_command(
    cli, "multidim",
    "Indices on the reference shapes, weekday/month circles in SmolLM2, SAE discovery, the toy intervention.",
)  # fmt: skip
