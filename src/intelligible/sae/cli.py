"""`intelligible sae ...`: train, eval, reproduce (also under torchrun: `-m intelligible.cli sae train`)."""

from __future__ import annotations

from pathlib import Path

import click

from intelligible.core.cli import HELP, OVERRIDES, add_reproduce_command, config_from_args, out_option
from intelligible.core.registry import study


@click.group(name="sae", help=study("sae").summary, context_settings=HELP)
def cli() -> None:
    pass


@cli.command(name="train", context_settings=OVERRIDES)
@out_option("runs/sae-train")
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out from its last checkpoint.")
@click.option("--overwrite", is_flag=True, help="Replace an earlier run in --out (refused otherwise).")
@click.pass_context
def train(ctx: click.Context, out: Path, resume: bool, overwrite: bool) -> None:
    """Train one SAE, e.g. --arch switch --experts 16 --latents 16384 --k 32 --layer 15.

    Options: --model, --layer, --text (pydoc, python-docs, a file or a folder), --seq-len, --n-windows, --eval-windows, --normalize,
    --arch relu|topk|switch, --latents, --k, --experts, --lb-alpha, --heaviside, --l1-coeff,
    --steps, --batch, --lr (0: 2e-4 / sqrt(M / 2^14)), --cache-dir, --eval-every, --plateau-tol, --seed.

    --cache-dir keeps the activations on disk in shards (the LM runs only up to --layer) and reuses
    them; an interrupted caching resumes after its last shard. --eval-every N logs the held-out MSE
    every N steps; with --plateau-tol T the run trains until that MSE is less than T (relative)
    better than two evaluations earlier, then decays the lr and stops (--steps is then a cap).

    --resume continues an interrupted run from its last checkpoint (same options; the steps after the
    checkpoint are trained and logged again, once); --overwrite replaces a run already in --out.

    Data-parallel over N processes: torchrun --nproc-per-node N -m intelligible.cli sae train ...;
    add --expert-parallel to shard a Switch SAE's experts over them (tokens exchanged all-to-all).
    """
    from intelligible.sae.experiment import SAERunConfig, train_run

    summary = train_run(config_from_args(SAERunConfig, ctx.args), out, resume=resume, overwrite=overwrite)
    click.echo(
        f"held-out MSE {summary['mse']:.4g}, FVU {summary['fvu']:.4f}, L0 {summary['l0']:.1f}, "
        f"dead {100 * summary['dead_fraction']:.1f}%, CE recovered {summary['ce_recovered']:.3f} "
        f"(delta CE {summary['delta_ce']:.4f} nats)"
    )
    if summary.get("lm_tokens_per_s"):
        click.echo(
            f"activations: {summary['lm_tokens_per_s']:,.0f} tokens/s through the LM (layers 0..layer only)"
        )
    if summary.get("flattened") is not None:
        state = "flattened" if summary["flattened"] else "still falling at the step cap"
        click.echo(f"held-out MSE {state} after {summary['train_steps']:,} steps")
    click.echo(f"sae: {out / 'sae.json'}")


@cli.command(name="eval", context_settings=HELP)
@click.argument("run_dir", type=click.Path(path_type=Path))
def evaluate(run_dir: Path) -> None:
    """Evaluate a trained run folder's SAE on its held-out tokens (writes RUN_DIR/eval.json)."""
    from intelligible.sae.experiment import eval_run

    summary = eval_run(run_dir)
    for key in ("mse", "fvu", "l0", "dead_fraction", "ce_recovered", "delta_ce"):
        click.echo(f"{key:14s} {summary[key]:.5g}")


add_reproduce_command(
    cli,
    "sae",
    "FLOP- and width-matched Switch vs TopK vs ReLU, load balancing, p-scaling, duplicates.\n\n"
    "The TopK SAE is kept as OUT/saes/topk.json: the 'sae' artifact other studies consume.",
)
