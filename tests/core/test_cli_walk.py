"""Every command, every option: a bad option or a bad value is one line `error: ...`, exit 2, fast,
and nothing written. The walk is built from the commands themselves, so a new verb or option is
covered the day it is added."""

from __future__ import annotations

import dataclasses
import importlib
import signal
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import click
import pytest

from intelligible.cli import cli as top_level
from intelligible.cli import main
from intelligible.core.cli import OutFolder
from intelligible.core.registry import STUDIES

# A command must refuse a bad value before it loads a model or starts work; this is generous for
# imports on a busy machine and far below any real run.
FAIL_FAST_S = 60

# Config-taking commands that read `--key value` pairs into a dataclass without being a
# ConfigCommand: which class they read.
CONFIG_OF = {
    ("kan", "fit"): "intelligible.kan.experiment:FitRunConfig",
    ("sae", "train"): "intelligible.sae.experiment:SAERunConfig",
}

# Arguments a command reads from its extra arguments rather than declaring them.
EXTRA_ARGS = {("mips", "solve"): ["Sum_All"]}

# Fields whose type admits any text (names, formulas) have no universally bad value.
UNTESTABLE_TYPES = (str, Path)


def _import_attr(spec: str) -> Any:
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def _leaves(command: click.Command, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from _leaves(sub, (*path, name))
    else:
        yield path, command


def _all_commands() -> list[tuple[tuple[str, ...], click.Command]]:
    found = [(("reproduce",), top_level.commands["reproduce"])]
    for name in STUDIES:
        group = importlib.import_module(f"intelligible.{name}.cli").cli
        found.extend(_leaves(group, (name,)))
    return found


COMMANDS = _all_commands()


def _required_args(command: click.Command, tmp: Path, path: tuple[str, ...] = ()) -> list[str]:
    """Plausible values for a command's required arguments, so that an option's value is what fails."""
    args = list(EXTRA_ARGS.get(path, []))
    for param in command.params:
        if isinstance(param, click.Option) and param.required:
            args += [max(param.opts, key=len), "placeholder"]
            continue
        if not isinstance(param, click.Argument) or not param.required:
            continue
        name = param.name or ""
        if name == "file":
            program = tmp / "program.dfy"
            program.write_text("method M() { }\n")
            args.append(str(program))
        elif name == "run_dir":
            args.append(str(tmp / "no-run-here"))
        elif name == "task":
            args.append("Sum_All")
        else:  # pragma: no cover - a new argument kind: the walk says so instead of guessing
            raise AssertionError(f"no plausible value known for argument {name!r} of {command.name}")
    return args


def _bad_click_values(param: click.Option, tmp: Path) -> list[str]:
    kind = param.type
    if isinstance(kind, click.Choice):
        return ["no-such-choice"]
    if isinstance(kind, click.types.IntParamType):
        return ["abc", "1e30"]
    if isinstance(kind, click.types.FloatParamType):
        return ["abc", "nan", "inf"]
    if isinstance(kind, OutFolder):
        blocker = tmp / "a-file"
        blocker.write_text("not a folder\n")
        return ["", str(blocker)]
    if param.name == "out":  # an output file
        return ["", str(tmp)]
    if isinstance(kind, click.Path) and kind.exists:
        return [str(tmp / "no" / "such" / "path")]
    if isinstance(kind, click.Path) and (not kind.file_okay or (param.name or "").endswith("dir")):
        blocker = tmp / "a-file"
        blocker.write_text("not a folder\n")
        return [str(blocker)]
    return []  # a path that need not exist yet (an output file, a cache to create)


def _bad_field_values(tp: Any) -> list[str]:
    origin = get_origin(tp)
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        options = [arg for arg in get_args(tp) if arg is not type(None)]
        return _bad_field_values(options[0]) if len(options) == 1 else []
    if origin is Literal:
        return ["no-such-choice"]
    if origin in (list, tuple):
        item = get_args(tp)[0] if get_args(tp) else Any
        return ["x,y"] if item in (int, float) else []
    if tp is bool:
        return ["maybe"]
    if tp is int:
        return ["abc", "1e30", "2.5"]
    if tp is float:
        return ["abc", "nan", "inf"]
    return []


def _config_class(path: tuple[str, ...], command: click.Command) -> type | None:
    spec = getattr(command, "config_spec", None) or CONFIG_OF.get(path)
    return _import_attr(spec) if spec else None


def _cases() -> list[Any]:
    cases = []
    for path, command in COMMANDS:
        for param in command.params:
            if isinstance(param, click.Option) and not param.is_flag:
                flag = max(param.opts, key=len)
                cases.append(pytest.param(path, flag, "option", id=f"{' '.join(path)} {flag}"))
        if path[-1] == "reproduce" and len(path) == 2:
            continue  # a study's reproduce takes a preset, not config fields
        cls = _config_class(path, command)
        if cls is None:
            continue
        hints = typing.get_type_hints(cls)
        for field in dataclasses.fields(cls):
            if field.init and _bad_field_values(hints[field.name]):
                flag = f"--{field.name.replace('_', '-')}"
                cases.append(pytest.param(path, flag, "field", id=f"{' '.join(path)} {flag}"))
    return cases


class _TooSlow(BaseException):  # not an Exception: no handler in the code under test may swallow it
    pass


def _run(argv: list[str]) -> int:
    def alarm(signum: int, frame: Any) -> None:
        raise _TooSlow(f"{' '.join(argv)} did not fail within {FAIL_FAST_S} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(FAIL_FAST_S)
    try:
        return main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _assert_one_line_error(code: int, err: str, argv: list[str]) -> None:
    assert code == 2, f"{argv}: exit {code}, stderr {err[-500:]!r}"
    lines = err.strip("\n").splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), f"{argv}: {err[-800:]!r}"
    assert "Traceback" not in err
    assert len(lines[0]) < 600, f"{argv}: a {len(lines[0])}-character error line"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_an_unknown_option_is_one_line(path, command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    argv = [*path, *_required_args(command, tmp_path, path), "--no-such-option", "1"]
    before = _files(tmp_path)
    code = _run(argv)
    _assert_one_line_error(code, capsys.readouterr().err, argv)
    assert _files(tmp_path) == before


@pytest.mark.parametrize(("path", "flag", "source"), _cases())
def test_a_bad_value_is_one_line_and_writes_nothing(path, flag, source, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    command = dict(COMMANDS)[path]
    if source == "option":
        param = next(p for p in command.params if isinstance(p, click.Option) and flag in p.opts)
        values = _bad_click_values(param, tmp_path)
    else:
        cls = _config_class(path, command)
        field = flag[2:].replace("-", "_")
        values = _bad_field_values(typing.get_type_hints(cls)[field])
    if not values:
        pytest.skip(f"{flag} takes any text")
    for value in values:
        # the run folder goes to a fresh path, so only the bad value can be what fails
        out = [] if flag == "--out" or "out" not in _option_names(command) else ["--out", str(tmp_path / "o")]
        argv = [*path, *_required_args(command, tmp_path, path), *out, flag, value]
        before = _files(tmp_path)
        code = _run(argv)
        err = capsys.readouterr().err
        _assert_one_line_error(code, err, argv)
        named = {flag, flag[2:], flag[2:].replace("-", "_"), "output folder", "--out"}
        assert any(name in err for name in named), f"{argv}: the error does not name {flag}: {err!r}"
        assert _files(tmp_path) == before, f"{argv} changed files"
        assert not (tmp_path / "o").exists(), f"{argv} created its output folder"


def _option_names(command: click.Command) -> set[str]:
    return {p.name or "" for p in command.params if isinstance(p, click.Option)}


def test_the_walk_covers_every_study():
    studies = {path[0] for path, _ in COMMANDS}
    assert set(STUDIES) <= studies
    assert len(_cases()) > 30
