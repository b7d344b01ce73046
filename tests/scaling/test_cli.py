"""`intelligible scaling ...`: every bad input the issue lists is one line `error: ...`, exit 2, nothing written."""

from __future__ import annotations

import pytest

from intelligible.cli import main
from intelligible.core.runs import RunDir


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--alphas", "1,0"], "alphas must be positive"),
        (["--alphas", "-1"], "alphas must be positive"),
        (["--widths", "0"], "widths must be whole numbers from 1"),
        (["--widths", "16,-2"], "widths must be whole numbers from 1"),
        (["--task", "parallel", "--betas", "0.5,1.2"], "betas must lie strictly between 0 and 1"),
        (["--task", "parallel", "--betas", "0"], "betas must lie strictly between 0 and 1"),
        (["--alphas", ""], "the sweep is empty: --alphas"),
        (["--widths", ""], "the sweep is empty: --widths"),
        (["--seeds", ""], "the sweep is empty: --seeds"),
        (["--task", "function", "--functions", "x0 ** ** 2"], "cannot parse the function"),
        (["--task", "function", "--functions", "sqrt(x0)"], "is not finite"),
        (["--task", "cube"], "unknown task"),
        (["--alhpas", "1,2"], "did you mean 'alphas'"),
    ],
)
def test_bad_sweeps_are_one_line_errors_that_write_nothing(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["scaling", "sweep", "--out", str(tmp_path / "out"), *argv])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not (tmp_path / "out").exists() and _files(tmp_path) == {}


def test_fit_refuses_a_run_folder_of_another_study(tmp_path, capsys):
    other = RunDir.create(tmp_path / "geneft-run", {"fractions": [0.5]}, 0, kind="geneft-sweep")
    before = _files(tmp_path)
    assert main(["scaling", "fit", str(other.path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "not a scaling sweep" in err and len(err.splitlines()) == 1
    assert main(["scaling", "fit", str(tmp_path / "nothing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert _files(tmp_path) == before


def test_a_tiny_sweep_and_its_refit_through_the_cli(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["scaling", "sweep", "--out", str(out), "--alphas", "1,8,64", "--widths", "8", "--seeds", "0,1",
            "--steps", "80", "--n-train", "64", "--n-test", "128", "--n-boot", "30"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "loss ~ N^s, subtask 0" in printed or "no fit" in printed
    assert main(["scaling", "fit", str(out), "--n-boot", "20", "--confidence", "0.9"]) == 0
    assert "fits:" in capsys.readouterr().out
    # the same command again does not replace the finished sweep
    assert main(argv) == 2
    assert "holds an earlier run" in capsys.readouterr().err


def test_bad_transformer_options_are_one_line_errors(tmp_path, capsys):
    assert main(["scaling", "transformer", "--out", str(tmp_path / "t"), "--subtasks", "first,median"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "unknown subtask 'median'" in err
    assert not (tmp_path / "t").exists()
