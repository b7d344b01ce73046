from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from intelligible.core import Claim, ConfigError, OutputError, Report, registry, run_reproductions


def _install_study(monkeypatch, module_name: str, reproduce) -> None:
    # A fake study module, importable by name, as the registry imports real ones.
    module = types.ModuleType(module_name)
    module.reproduce = reproduce
    monkeypatch.setitem(sys.modules, module_name, module)


def _good_reproduce(preset: str, out_dir: Path) -> Report:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "marker.txt").write_text(preset)
    return Report(
        study="good",
        title="A study that works",
        preset=preset,
        claims=[Claim("it works", 1.0, 1.0, True)],
        figures={},
    )


def _broken_reproduce(preset: str, out_dir: Path) -> Report:
    raise RuntimeError("boom <here>")


def _bad_input_reproduce(preset: str, out_dir: Path) -> Report:
    raise ConfigError("bad input for the study")


@pytest.fixture
def studies(monkeypatch):
    _install_study(monkeypatch, "fake_good_study", _good_reproduce)
    _install_study(monkeypatch, "fake_broken_study", _broken_reproduce)
    _install_study(monkeypatch, "fake_bad_input_study", _bad_input_reproduce)
    modules = {"good": "fake_good_study", "broken": "fake_broken_study", "bad_input": "fake_bad_input_study"}
    fake = {
        name: registry.Study(name, f"{name} study", 1, experiment=module) for name, module in modules.items()
    }
    monkeypatch.setattr(registry, "STUDIES", fake)
    return fake


def test_registry_lists_the_studies_with_their_modules():
    assert list(registry.STUDIES)[:5] == ["stages", "kan", "sae", "mips", "dafnybench"]
    stages = registry.STUDIES["stages"]
    assert stages.experiment == "intelligible.stages.experiment" and stages.cli == "intelligible.stages.cli"
    assert registry.STUDIES["sae"].produces == ("sae",)


def test_runs_a_study_and_writes_the_page(tmp_path, studies):
    reports, html_path = run_reproductions("quick", tmp_path / "out", only=["good"])
    assert html_path == tmp_path / "out" / "report.html"
    assert [r.study for r in reports] == ["good"]
    assert reports[0].elapsed_s is not None and reports[0].elapsed_s >= 0
    assert (tmp_path / "out" / "good" / "marker.txt").read_text() == "quick"
    assert "A study that works" in html_path.read_text()
    combined = json.loads((tmp_path / "out" / "report.json").read_text())
    assert [r["study"] for r in combined["reports"]] == ["good"]


def test_a_crashing_study_becomes_a_failed_claim(tmp_path, studies):
    reports, html_path = run_reproductions("paper", tmp_path, only=["broken", "good"])
    broken, good = reports
    assert good.claims[0].holds is True
    assert broken.study == "broken" and broken.preset == "paper"
    assert len(broken.claims) == 1
    assert broken.claims[0].holds is False
    assert "RuntimeError: boom <here>" in broken.claims[0].measured_value
    assert "Traceback" in broken.notes
    assert broken.elapsed_s is not None
    page = html_path.read_text()
    assert "boom &lt;here&gt;" in page and "0 / 1" in page


def test_a_module_that_cannot_import_is_a_failed_claim(tmp_path, monkeypatch):
    ghost = registry.Study("ghost", "ghost", 1, experiment="intelligible_no_such_module_xyz")
    monkeypatch.setattr(registry, "STUDIES", {"ghost": ghost})
    (report,), _ = run_reproductions("quick", tmp_path)
    assert report.claims[0].holds is False
    assert "ModuleNotFoundError" in report.claims[0].measured_value


def test_a_user_error_in_one_study_keeps_the_others(tmp_path, studies):
    reports, html_path = run_reproductions(
        "quick", tmp_path, only=["good", "bad_input"], log=lambda line: None
    )
    good, bad = reports
    assert good.claims[0].holds is True
    assert (
        bad.claims[0].holds is False
        and bad.claims[0].measured_value == "ConfigError: bad input for the study"
    )
    assert bad.notes == ""  # a user error is one line, not a traceback
    combined = json.loads((tmp_path / "report.json").read_text())
    assert [r["study"] for r in combined["reports"]] == ["good", "bad_input"]
    assert "bad input for the study" in html_path.read_text()


def test_unknown_study_lists_valid_ones(tmp_path, studies):
    with pytest.raises(ConfigError) as info:
        run_reproductions("quick", tmp_path, only=["good", "nope"])
    assert "'nope'" in str(info.value)
    assert "valid studies: good, broken, bad_input" in str(info.value)


def test_bad_preset_lists_valid_ones(tmp_path, studies):
    with pytest.raises(ConfigError, match="unknown preset 'huge'; valid presets: quick, paper"):
        run_reproductions("huge", tmp_path)


def test_unwritable_out_dir(tmp_path, studies):
    blocker = tmp_path / "afile"
    blocker.write_text("")
    with pytest.raises(OutputError, match="afile"):
        run_reproductions("quick", blocker / "sub", only=["good"])
