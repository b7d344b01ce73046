"""The top-level CLI over the registry: fast help, lazy and isolated study imports, a study added with
nothing but its own package and one registry line, artifacts passed from producers to consumers,
and every command and option of earlier releases still there."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

from intelligible.cli import cli, main
from intelligible.core import registry
from intelligible.core.artifacts import save_artifact
from intelligible.core.registry import STUDIES, Study

SURFACE_V01 = Path(__file__).parent / "data" / "cli_surface_v0.1.json"


def test_help_lists_every_study_without_importing_any(tmp_path):
    # a fresh interpreter: what `intelligible --help` imports is what a user waits for
    probe = textwrap.dedent(
        """
        import json, sys
        from intelligible.cli import main
        code = main(["--help"])
        studies = sys.argv[1].split(",")
        loaded = sorted(m for m in sys.modules if m.split(".")[:2] in [["intelligible", s] for s in studies])
        print(json.dumps({"code": code, "loaded": loaded, "torch": "torch" in sys.modules,
                          "numpy": "numpy" in sys.modules}))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, ",".join(STUDIES)], capture_output=True, text=True, check=True
    ).stdout
    facts = json.loads(out.strip().splitlines()[-1])
    assert facts == {"code": 0, "loaded": [], "torch": False, "numpy": False}
    for name, entry in STUDIES.items():
        assert name in out
        assert entry.summary.split()[0] in out


def test_study_group_help_and_version(capsys):
    assert main(["--version"]) == 0
    assert main(["kan", "--help"]) == 0
    out = capsys.readouterr().out
    assert "fit" in out and "reproduce" in out
    assert main(["stages", "sweep", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Config options (fields of StagesConfig)" in out and "--n-tokens" in out


def test_reproduce_only_nothing_is_an_error_not_everything(tmp_path, capsys):
    assert main(["reproduce", "--only", "", "--out", str(tmp_path / "r")]) == 2
    assert "no study selected; valid studies: stages" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_unknown_command_is_one_line(capsys):
    assert main(["nostudy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "nostudy" in err


def test_a_study_that_cannot_import_does_not_break_the_others(monkeypatch, capsys):
    broken = Study(
        "broken", "A study whose module is missing.", 10, cli="intelligible_no_such_module_xyz.cli"
    )
    monkeypatch.setattr(registry, "STUDIES", {**STUDIES, "broken": broken})
    assert main(["--help"]) == 0
    assert "broken" in capsys.readouterr().out
    assert main(["broken", "reproduce", "--preset", "quick"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (
        "study 'broken' cannot be loaded: ModuleNotFoundError" in err
        and "intelligible_no_such_module_xyz" in err
    )
    assert main(["mips", "tasks"]) == 0  # another study's command still runs
    assert "Sum_All" in capsys.readouterr().out


def _cli_surface(command: click.Command, path: list[str], ctx: click.Context) -> dict[str, dict]:
    if isinstance(command, click.Group):
        found: dict[str, dict] = {}
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            found.update(_cli_surface(sub, [*path, name], click.Context(sub, info_name=name, parent=ctx)))
        return found
    params = []
    for param in command.params:
        if isinstance(param, click.Option):
            default = None if param.default is None else str(param.default)
            params.append(
                {"opts": sorted(param.opts + param.secondary_opts), "default": default, "flag": param.is_flag}
            )
        else:
            params.append({"argument": param.name, "required": param.required})
    return {
        " ".join(path): {
            "params": params,
            "extra_args": bool(command.context_settings.get("allow_extra_args")),
        }
    }


def test_every_command_and_option_of_v0_1_is_still_there():
    # the surface recorded from the single-file CLI before the studies got their own cli.py
    before = json.loads(SURFACE_V01.read_text())
    now = _cli_surface(cli, [], click.Context(cli, info_name="intelligible"))
    assert set(before) <= set(now), set(before) - set(now)
    for command, spec in before.items():
        assert now[command]["extra_args"] == spec["extra_args"], command  # `--key value` config options
        for param in spec["params"]:
            if "argument" in param and not param["required"] and now[command]["extra_args"]:
                continue  # an optional positional now read from the extra arguments (mips solve TASK)
            assert param in now[command]["params"], (command, param)


# --------------------------------------------------------------------------- a study added from outside
STUDY_CLI = '''
import click
from intelligible.core.cli import HELP, ConfigCommand, add_reproduce_command, config_from_args, out_option
from intelligible.core.registry import study


@click.group(name="toy", help=study("toy").summary, context_settings=HELP)
def cli() -> None:
    pass


@cli.command(name="square", cls=ConfigCommand, config="toy_study.experiment:ToyConfig")
@out_option("runs/toy")
@click.pass_context
def square(ctx, out):
    """Print value squared."""
    from toy_study.experiment import ToyConfig

    config = config_from_args(ToyConfig, ctx.args)
    click.echo(f"{config.value ** 2}")


add_reproduce_command(cli, "toy", "The toy claim.")
'''

STUDY_EXPERIMENT = """
from dataclasses import dataclass
from intelligible.core.errors import ConfigError
from intelligible.core.report import Claim, Report
from intelligible.core.runs import ensure_writable_dir


@dataclass
class ToyConfig:
    value: int = 3

    def validate(self):
        if self.value < 0:
            raise ConfigError(f"value must be >= 0, got {self.value}")


def reproduce(preset="quick", out_dir="runs/toy"):
    out = ensure_writable_dir(out_dir)
    report = Report(study="toy", title="A toy study", preset=preset, claims=[Claim("2 + 2 = 4", 4, 2 + 2, True)])
    report.save(out)
    return report
"""


@pytest.fixture
def toy_study(tmp_path, monkeypatch):
    package = tmp_path / "pkgs" / "toy_study"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "cli.py").write_text(STUDY_CLI)
    (package / "experiment.py").write_text(STUDY_EXPERIMENT)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    # the one registry line a new study adds
    toy = Study(
        "toy", "A toy study added from outside.", 5, experiment="toy_study.experiment", cli="toy_study.cli"
    )
    monkeypatch.setattr(registry, "STUDIES", {**STUDIES, "toy": toy})
    yield
    for name in [m for m in sys.modules if m.startswith("toy_study")]:
        del sys.modules[name]


def test_a_new_study_needs_only_its_package_and_a_registry_line(toy_study, tmp_path, capsys):
    assert main(["--help"]) == 0
    assert "A toy study added from outside." in capsys.readouterr().out
    assert main(["toy", "square", "--value", "7"]) == 0
    assert capsys.readouterr().out.strip() == "49"
    assert main(["toy", "square", "--value", "-1"]) == 2
    assert "value must be >= 0, got -1" in capsys.readouterr().err
    assert main(["toy", "square", "--valeu", "2"]) == 2
    assert "valeu" in capsys.readouterr().err
    assert main(["toy", "square", "--help"]) == 0
    assert "Config options (fields of ToyConfig)" in capsys.readouterr().out
    assert main(["toy", "reproduce", "--out", str(tmp_path / "one")]) == 0
    assert "[holds] 2 + 2 = 4" in capsys.readouterr().out
    assert main(["reproduce", "--only", "toy", "--out", str(tmp_path / "all")]) == 0
    page = (tmp_path / "all" / "report.html").read_text()
    assert 'href="#study-toy"' in page and "A toy study" in page


# --------------------------------------------------------------------------- artifacts between studies
PRODUCER = """
import torch
from intelligible.core.artifacts import save_artifact
from intelligible.core.report import Claim, Report
from intelligible.core.runs import ensure_writable_dir

CALLS = []


def reproduce(preset="quick", out_dir="runs/maker"):
    CALLS.append(str(out_dir))
    out = ensure_writable_dir(out_dir)
    path = save_artifact(out / "saes" / "dictionary", "sae", {"d": 2}, {"W": torch.eye(2)})
    report = Report(study="maker", title="maker", preset=preset, claims=[Claim("made", None, "yes", True)],
                    artifacts={"sae": path})
    report.save(out)
    return report
"""

CONSUMER = """
from intelligible.core.artifacts import load_artifact
from intelligible.core.report import Claim, Report

SEEN = []


def reproduce(preset="quick", out_dir="runs/user", *, artifacts):
    SEEN.append(artifacts)
    _, config, tensors = load_artifact(artifacts["sae"], kind="sae")
    return Report(study="user", title="user", preset=preset,
                  claims=[Claim("got the dictionary", None, float(tensors["W"].sum()), True)])
"""

CONSUMER_CLI = """
import click
from intelligible.core.cli import HELP, add_reproduce_command


@click.group(name="user", context_settings=HELP)
def cli() -> None:
    pass


add_reproduce_command(cli, "user", "Uses an SAE.")
"""


@pytest.fixture
def pipeline(tmp_path, monkeypatch):
    package = tmp_path / "pkgs" / "pipeline_studies"
    package.mkdir(parents=True)
    for name, text in {"__init__": "", "maker": PRODUCER, "user": CONSUMER, "user_cli": CONSUMER_CLI}.items():
        (package / f"{name}.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    studies = {
        # the consumer is listed first: the registry must still run the producer before it
        "user": Study("user", "Consumes an SAE.", 5, consumes=("sae",), experiment="pipeline_studies.user",
                      cli="pipeline_studies.user_cli"),
        "maker": Study("maker", "Produces an SAE.", 5, produces=("sae",), experiment="pipeline_studies.maker"),
    }  # fmt: skip
    monkeypatch.setattr(registry, "STUDIES", studies)
    import pipeline_studies.maker
    import pipeline_studies.user

    yield pipeline_studies.maker, pipeline_studies.user
    for name in [m for m in sys.modules if m.startswith("pipeline_studies")]:
        del sys.modules[name]


def test_producers_run_first_and_pass_the_path(pipeline, tmp_path):
    maker, user = pipeline
    lines = []
    reports, _ = registry.run_reproductions("quick", tmp_path / "out", log=lines.append)
    assert [r.study for r in reports] == ["maker", "user"]
    assert [{"sae": tmp_path / "out" / "maker" / "saes" / "dictionary.json"}] == user.SEEN
    assert reports[1].claims[0].measured_value == 2.0
    assert any("[1/2] reproducing maker" in line and "budget" in line for line in lines)
    combined = json.loads((tmp_path / "out" / "report.json").read_text())
    assert combined["reports"][0]["artifacts"] == {
        "sae": str(tmp_path / "out" / "maker" / "saes" / "dictionary.json")
    }


def test_a_consumer_alone_pulls_in_its_producer_then_reuses_its_artifact(pipeline, tmp_path):
    maker, user = pipeline
    lines = []
    reports, _ = registry.run_reproductions("quick", tmp_path / "out", only=["user"], log=lines.append)
    assert [r.study for r in reports] == ["maker", "user"]
    assert "user needs a 'sae' artifact: running maker first" in lines
    lines.clear()
    reports, _ = registry.run_reproductions("quick", tmp_path / "out", only=["user"], log=lines.append)
    assert [r.study for r in reports] == ["user"] and len(maker.CALLS) == 1
    assert any("uses the 'sae' artifact of an earlier run" in line for line in lines)


def test_an_artifact_given_up_front_is_used_and_checked(pipeline, tmp_path, capsys):
    maker, user = pipeline
    path = save_artifact(tmp_path / "mine", "sae", {}, {"W": __import__("torch").ones(2, 2)})
    reports, _ = registry.run_reproductions("quick", tmp_path / "out", only=["user"], artifacts={"sae": path})
    assert [r.study for r in reports] == ["user"] and maker.CALLS == []
    assert reports[0].claims[0].measured_value == 4.0
    wrong = save_artifact(tmp_path / "other", "kan", {}, {"W": __import__("torch").ones(1)})
    assert (
        main(["reproduce", "--only", "user", "--artifact", f"sae={wrong}", "--out", str(tmp_path / "o")]) == 2
    )
    assert "holds a 'kan' artifact, not a 'sae'" in capsys.readouterr().err
    assert main(["reproduce", "--only", "user", "--artifact", "sae", "--out", str(tmp_path / "o")]) == 2
    assert "--artifact takes KIND=PATH" in capsys.readouterr().err
    assert (
        main(["reproduce", "--only", "user", "--artifact", f"nope={path}", "--out", str(tmp_path / "o")]) == 2
    )
    assert "unknown artifact kind 'nope'; valid kinds: sae" in capsys.readouterr().err


def test_a_consumer_run_alone_takes_the_path_or_says_what_to_run(pipeline, tmp_path, capsys):
    maker, user = pipeline
    assert main(["user", "reproduce", "--out", str(tmp_path / "u")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "user reproduce needs --sae PATH" in err
    assert "`intelligible maker reproduce`" in err and "`intelligible reproduce --only maker,user`" in err
    assert (
        main(["user", "reproduce", "--sae", str(tmp_path / "absent.json"), "--out", str(tmp_path / "u")]) == 2
    )
    assert "no artifact at" in capsys.readouterr().err
    path = save_artifact(tmp_path / "mine", "sae", {}, {"W": __import__("torch").ones(3, 3)})
    assert main(["user", "reproduce", "--sae", str(path), "--out", str(tmp_path / "u")]) == 0
    assert "[holds] got the dictionary: 9.0" in capsys.readouterr().out


def test_when_the_producer_crashes_the_consumer_is_reported_not_run(pipeline, tmp_path, monkeypatch):
    maker, user = pipeline

    def crash(preset="quick", out_dir="x"):
        raise RuntimeError("producer broke")

    monkeypatch.setattr(maker, "reproduce", crash)
    reports, html = registry.run_reproductions("quick", tmp_path / "out", log=lambda line: None)
    assert [r.study for r in reports] == ["maker", "user"]
    assert reports[0].claims[0].holds is False
    assert reports[1].claims[0].holds is None and "not run" in reports[1].claims[0].measured_value
    assert user.SEEN == []
    assert "user (not run)" in html.read_text()


def test_registry_rejects_unknown_kinds_and_cycles(monkeypatch):
    with pytest.raises(ValueError, match="unknown artifact kind 'dictionary'"):
        Study("x", "x", 1, consumes=("dictionary",))
    cyclic = {"a": Study("a", "a", 1, produces=("sae",), consumes=("sae",)),
              "b": Study("b", "b", 1, produces=("sae",), consumes=("sae",))}  # fmt: skip
    monkeypatch.setattr(registry, "STUDIES", cyclic)
    with pytest.raises(registry.ConfigError, match="cycle"):
        registry.order_studies(["a", "b"])
