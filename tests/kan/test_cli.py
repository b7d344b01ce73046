"""`intelligible kan fit`: a run folder with config, metrics, model; one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from intelligible.cli import main
from intelligible.kan import KAN


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_kan_fit_writes_a_run(capsys, tmp_path):
    out = tmp_path / "fit"
    code, stdout, err = run_cli(
        capsys, "kan", "fit", "--function", "x0*x1 + sin(x0)", "--width", "2,3,1", "--steps", 5,
        "--train-num", 200, "--test-num", 100, "--out", out,
    )  # fmt: skip
    assert code == 0, err
    assert stdout.startswith("test RMSE")
    assert json.loads((out / "config.json").read_text())["config"]["function"] == "x0*x1 + sin(x0)"
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 5
    model = KAN.load(out / "model")
    assert model(torch.zeros(1, 2)).shape == (1, 1)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["test_rmse"] < 0.5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--function", "__import__('os').getcwd()"], "unknown function"),
        (["--function", "x0 + x2", "--width", "2,3,1"], "variable x2 is out of range"),
        (["--lib", "x,sinh"], "unknown symbolic function(s) ['sinh']"),
        (["--width", "2,3,2"], "width must go from the number of variables to 1 output"),
        (["--opt", "SGD"], "opt must be 'LBFGS' or 'Adam'"),
        (["--grid", "0"], "grid must be an integer >= 1, got 0"),
    ],
)
def test_kan_fit_errors(capsys, tmp_path, args, message):
    code, _, err = run_cli(capsys, "kan", "fit", "--out", tmp_path / "x", "--steps", 1, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err
