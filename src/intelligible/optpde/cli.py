"""`intelligible optpde ...`: count, search, breaking, reproduce."""

from __future__ import annotations

from pathlib import Path

import click

from intelligible.core.cli import (
    HELP,
    ConfigCommand,
    add_reproduce_command,
    config_from_args,
    out_option,
    split_words,
)
from intelligible.core.registry import study


@click.group(name="optpde", help=study("optpde").summary, context_settings=HELP)
def cli() -> None:
    pass


@cli.command(name="count", cls=ConfigCommand, config="intelligible.optpde.experiment:CountConfig",
             options_metavar="PDE [OPTIONS]")  # fmt: skip
@click.pass_context
def count(ctx: click.Context) -> None:
    """Count the conserved quantities of PDE and prove each one exactly.

    PDE is a right-hand side in u ("u_xxx + 6*u*u_x") or a system ("u_t = -v_xx/2 - (u**2+v**2)*v;
    v_t = u_xx/2 + (u**2+v**2)*u"); parameters take values with --params a=0.5 (the proofs keep them
    symbolic). The basis is all monomials up to --degree in the fields and derivatives up to --order,
    reduced modulo total derivatives (--basis paper: the paper's 13 functions, unreduced). Instead of
    PDE, --coefficients gives 33 numbers over the search family (u, u_xx, u_xxx, u**2, ...).
    """
    from intelligible.core.errors import ConfigError
    from intelligible.optpde.experiment import CountConfig, count_pde, describe_count

    words, options = split_words(ctx.args)
    config = config_from_args(CountConfig, options)
    if len(words) > 1 or (not words and not config.coefficients):
        raise ConfigError(
            f'give one PDE in quotes, e.g. intelligible optpde count "u_xxx + 6*u*u_x" (got {len(words)} words), '
            "or --coefficients c1,...,c33"
        )
    for line in describe_count(count_pde(words[0] if words else None, config)):
        click.echo(line)


@cli.command(name="search", cls=ConfigCommand, config="intelligible.optpde.search:SearchConfig")
@click.option("--overwrite", is_flag=True, help="Replace an earlier search in --out.")
@out_option("runs/optpde-search")
@click.pass_context
def search_command(ctx: click.Context, overwrite: bool, out: Path) -> None:
    """Search the 33-coefficient family u_t = F(u, u_x, u_xx, u_xxx) for equations with conserved
    quantities: Adam on the soft count from --starts random points, pruning, an exact polish, families
    (support, PCA) and a proved member of each. Writes optima.json and families.json to --out."""
    from intelligible.optpde.experiment import describe_search, search_run
    from intelligible.optpde.search import SearchConfig

    config = config_from_args(SearchConfig, ctx.args)
    for line in describe_search(search_run(config, out, overwrite=overwrite)):
        click.echo(line)


@cli.command(name="breaking", cls=ConfigCommand, config="intelligible.optpde.breaking:BreakingConfig")
@click.pass_context
def breaking(ctx: click.Context) -> None:
    """Solve u_t = u_x**3 from sin(2 pi x) past breaking: the breaking time against 1/(24 pi^3) and max u."""
    import math

    from intelligible.optpde.breaking import BreakingConfig, solve_breaking

    config = config_from_args(BreakingConfig, ctx.args)
    result = solve_breaking(config.n_points, config.t_final_over_tb, config.cfl)
    click.echo(f"breaking time {result.breaking_time:.6g} (exact 1/(24 pi^3) = {result.exact_breaking_time:.6g}, "
               f"{result.relative_error:.1%} off)")  # fmt: skip
    for factor in (0.5, 1, 2, 5, 10, 20):
        if factor <= config.t_final_over_tb:
            index = min(
                int(abs(result.times - factor * result.exact_breaking_time).argmin()), len(result.times) - 1
            )
            click.echo(f"t = {factor:g} t_b: max u = {result.max_u[index]:.4f}")
    if math.isfinite(result.decay_exponent):
        click.echo(f"late decay of max u ~ t^{result.decay_exponent:.2f}")


add_reproduce_command(
    cli,
    "optpde",
    "The n_CQ table with exact proofs, the paper's basis, the search for families, wave breaking.",
)
