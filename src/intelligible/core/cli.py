"""What every study's commands share, written once: config options from `--key value`, the one-line
error contract (exit code 2), the `reproduce` verb, and the lazy top-level group.

A study's `cli.py` builds a click group with these helpers; `intelligible.cli` finds the groups
through the registry and imports a study's `cli` module only when one of its commands runs.
"""

from __future__ import annotations

import dataclasses
import importlib
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from intelligible.core.config import config_from_dict, config_to_dict, parse_cli_overrides, shown
from intelligible.core.errors import IntelligibleError

# Settings for a command that takes config fields as `--key value`: click passes them on in ctx.args.
OVERRIDES: dict[str, Any] = {
    "ignore_unknown_options": True,
    "allow_extra_args": True,
    "help_option_names": ["-h", "--help"],
}
HELP = {"help_option_names": ["-h", "--help"]}


class StudyUnavailableError(IntelligibleError):
    """A study's commands cannot be loaded (a missing dependency or a broken module)."""


def _import_attr(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


class ConfigCommand(click.Command):
    """A command that accepts any field of a config dataclass as `--key value`.

    `config` is "module:ClassName"; it is imported only to print the help, whose epilog lists the
    fields and their defaults, so a command's module stays cheap to import.
    """

    def __init__(self, *args: Any, config: str, **kwargs: Any) -> None:
        kwargs["context_settings"] = {**OVERRIDES, **(kwargs.get("context_settings") or {})}
        super().__init__(*args, **kwargs)
        self.config_spec = config

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        cls = _import_attr(self.config_spec)
        rows = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else "(required)"
            if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
                default = f.default_factory()  # type: ignore[misc]
            rows.append((f"--{f.name.replace('_', '-')}", f"default: {default}"))
        with formatter.section(f"Config options (fields of {cls.__name__})"):
            formatter.write_dl(rows)
        super().format_epilog(ctx, formatter)


def config_from_args(cls: type, args: list[str], base: Any = None) -> Any:
    """Build config dataclass `cls` from `--key value` strings over `base`; call its `validate()` if any."""
    values = config_to_dict(base) if base is not None else {}
    values.update(parse_cli_overrides(args))
    config = config_from_dict(cls, values)
    if callable(getattr(config, "validate", None)):
        config.validate()
    return config


def echo_report(report: Any, out: Path) -> None:
    """One line per claim of a study's Report, its artifacts, then where the report was written."""
    for claim in report.claims:
        mark = {True: "holds", False: "FAILS", None: "untested"}[claim.holds]
        click.echo(f"[{mark}] {claim.statement}: {claim.measured_value}")
    for kind, path in getattr(report, "artifacts", {}).items():
        click.echo(f"artifact {kind}: {path}")
    click.echo(f"report: {out / 'report.md'}")


class OutFolder(click.ParamType):
    """An output folder: not empty (which would silently mean the working directory), not a file."""

    name = "folder"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        if isinstance(value, Path):
            return value
        text = str(value)
        if not text.strip():
            self.fail("the output folder is empty; give a folder name", param, ctx)
        path = Path(text)
        if path.exists() and not path.is_dir():
            self.fail(f"{shown(text)} is a file, not a folder", param, ctx)
        return path


def out_option(default: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The `--out` folder option every writing verb has."""
    return click.option("--out", type=OutFolder(), default=Path(default), show_default=True)


def split_words(args: list[str]) -> tuple[list[str], list[str]]:
    """(positional words, `--key value` options) from the extra arguments click passed on.

    A `--key` takes the next word as its value unless it has `=` or the next word is an option, the
    rule `parse_cli_overrides` applies, so `mips solve --seeds 0 Sum_All` and `mips solve Sum_All
    --seeds 0` both read Sum_All as the word."""
    words, options = [], []
    i = 0
    while i < len(args):
        token = args[i]
        if token.startswith("--") and token != "--":
            options.append(token)
            if "=" not in token and i + 1 < len(args) and not args[i + 1].startswith("--"):
                options.append(args[i + 1])
                i += 1
        else:
            words.append(token)
        i += 1
    return words, options


def preset_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`--preset quick|paper`."""
    from intelligible.core.registry import PRESETS

    return click.option("--preset", type=click.Choice(PRESETS), default="quick", show_default=True)


def add_reproduce_command(group: click.Group, study: str, help: str) -> click.Command:
    """Register `intelligible STUDY reproduce`: the study's `experiment.reproduce(preset, out_dir)`.

    For each artifact kind the study consumes (registry), the command takes `--<kind> PATH`; when
    it is missing, the error says what to run to make one.
    """
    from intelligible.core.artifacts import check_artifact
    from intelligible.core.registry import missing_artifact_hint
    from intelligible.core.registry import study as registered

    entry = registered(study)

    def command(preset: str, out: Path, **paths: Path | None) -> None:
        artifacts = {}
        for kind in entry.consumes:
            path = paths.get(kind.replace("-", "_"))
            if path is None:
                raise click.UsageError(
                    f"{study} reproduce needs --{kind} PATH: {missing_artifact_hint(kind, study)}"
                )
            artifacts[kind] = check_artifact(path, kind)
        echo_report(entry.reproduce(preset, out, artifacts), out)

    command.__doc__ = help
    for kind in entry.consumes:
        command = click.option(
            f"--{kind}", type=click.Path(path_type=Path), default=None, help=f"The '{kind}' artifact to use."
        )(command)
    command = out_option(f"runs/{study}")(command)
    command = preset_option()(command)
    return group.command(name="reproduce", context_settings=HELP)(command)


class LazyStudyGroup(click.Group):
    """The top-level group: built-in commands plus one lazily imported group per registered study.

    Help lists the studies from the registry's one-line summaries without importing any of them; a
    study whose module fails to import gets a stand-in command that explains the failure in one
    line, so the other studies' commands keep working.
    """

    def list_commands(self, ctx: click.Context) -> list[str]:
        from intelligible.core.registry import STUDIES

        return [*super().list_commands(ctx), *STUDIES]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        from intelligible.core.registry import STUDIES

        if name in self.commands:
            return self.commands[name]
        if name not in STUDIES:
            return None
        try:
            group = _import_attr(f"{STUDIES[name].cli}:cli")
        except Exception as error:  # any failure: the other studies must stay usable
            return _unavailable(name, error)
        if not isinstance(group, click.Command):
            return _unavailable(name, TypeError(f"{STUDIES[name].cli}.cli is not a click command"))
        return group

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from intelligible.core.registry import STUDIES

        limit = formatter.width - 6 - max(len(name) for name in [*self.commands, *STUDIES])
        builtins = [(name, cmd.get_short_help_str(limit)) for name, cmd in sorted(self.commands.items())]
        studies = [(name, entry.summary) for name, entry in STUDIES.items()]
        with formatter.section("Commands"):
            formatter.write_dl(builtins)
        with formatter.section("Studies (intelligible STUDY --help)"):
            formatter.write_dl(studies)


def _unavailable(name: str, error: Exception) -> click.Command:
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame else ""
    reason = f"{type(error).__name__}: {error}{where}"

    def fail(args: tuple[str, ...]) -> None:
        raise StudyUnavailableError(f"study {name!r} cannot be loaded: {reason}")

    return click.Command(
        name,
        callback=fail,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
        help=f"(unavailable: {reason})",
        short_help=f"(unavailable: {reason})",
    )


def run_cli(group: click.Command, argv: list[str] | None, prog_name: str = "intelligible") -> int:
    """Run a click command, turning user errors into one line on stderr and exit code 2."""
    try:
        group.main(args=argv, prog_name=prog_name, standalone_mode=False)
    except IntelligibleError as error:
        click.echo(f"error: {error}", err=True)
        return 2
    except click.ClickException as error:
        click.echo(f"error: {error.format_message()}", err=True)
        return 2
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted", err=True)
        return 130
    return 0
