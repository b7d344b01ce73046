"""Command line: `intelligible <study> <verb> [--key value ...]` and `intelligible reproduce`.

The top level only: each study's commands live in `intelligible/<study>/cli.py` and are found
through the registry (`intelligible.core.registry.STUDIES`), imported when one of them runs. User
errors print one line, `error: ...`, and exit with code 2, without a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from intelligible import __version__
from intelligible.core.cli import HELP, LazyStudyGroup, out_option, preset_option, run_cli


@click.group(cls=LazyStudyGroup, context_settings=HELP)
@click.version_option(__version__, prog_name="intelligible")
def cli() -> None:
    """intelligible: the physics-of-AI methods as fast, tested tools."""


def _artifact_pairs(values: tuple[str, ...]) -> dict[str, Path]:
    pairs = {}
    for value in values:
        kind, sep, path = value.partition("=")
        if not sep or not kind.strip() or not path.strip():
            raise click.UsageError(f"--artifact takes KIND=PATH (e.g. sae=runs/sae/topk.json), got {value!r}")
        pairs[kind.strip()] = Path(path.strip())
    return pairs


@cli.command(context_settings=HELP)
@preset_option()
@click.option("--only", multiple=True, help="Study to run (repeatable or comma-separated); default: all.")
@out_option("runs/reproduce")
@click.option(
    "--artifact",
    "artifact_values",
    multiple=True,
    metavar="KIND=PATH",
    help="Use this file for an artifact kind a study consumes (e.g. sae=runs/sae/topk.json).",
)
def reproduce(preset: str, only: tuple[str, ...], out: Path, artifact_values: tuple[str, ...]) -> None:
    """Reproduce every study's headline claims; writes one HTML page and report.json.

    Studies that consume another's artifact (a trained SAE, ...) run after their producer and get
    its file; with --only, a missing producer is run first unless --artifact gives the file or an
    earlier run in --out left one.
    """
    from intelligible.core.registry import run_reproductions

    studies = [name.strip() for item in only for name in item.split(",") if name.strip()] if only else None
    reports, html = run_reproductions(preset, out, only=studies, artifacts=_artifact_pairs(artifact_values))
    for report in reports:
        click.echo(
            f"{report.study}: {report.n_holding}/{len(report.claims)} claims hold ({report.elapsed_s or 0:.0f} s)"
        )
    click.echo(f"report: {html}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, turning user errors into one line on stderr and exit code 2."""
    return run_cli(cli, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
