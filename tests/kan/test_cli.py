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
        (["--grid", "0"], "grid must be between 1 and 10000, got 0"),
    ],
)
def test_kan_fit_errors(capsys, tmp_path, args, message):
    code, _, err = run_cli(capsys, "kan", "fit", "--out", tmp_path / "x", "--steps", 1, *args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err


def _fake_parts(out, cfg):
    """Finished parts as a resumed run finds them; the report is assembled from these alone."""
    from intelligible.core.config import config_to_dict

    results = {
        "symbolic": {"pruned_width": [[2, 0], [1, 0], [1, 0]], "edges": {}, "spline_test_rmse": 1e-4,
                     "symbolic_test_rmse": 1e-9, "formula_raw": "...", "formula": "exp(y**2)*exp(sin(pi*x))",
                     "largest_constant_error": 1e-8, "equals_truth": True},
        "grid_extension": {"rows": [{"grid": g, "train_rmse": g**-3.0, "test_rmse": g**-3.0, "params": 3 * g}
                                    for g in (3, 5, 10)], "slope": -3.0, "fitted_up_to_grid": 10, "seed": 0},
        "function_table": [{"task": "t", "formula": "x0", "kan_width": [2, 5, 1], "kan_grid": 10, "kan_params": 225,
                            "kan_test_rmse": 1e-4, "mlp_params": 205, "mlp_test_rmse": 1e-3}],
        "poisson": {"rows": [{"model": "KAN [2,10,1] G=10", "params": 450, "rmse": 1e-4},
                             {"model": "MLP [2,100,100,1] tanh", "params": 10501, "rmse": 1e-2}]},
    }  # fmt: skip
    (out / "parts").mkdir(parents=True)
    for name, result in results.items():
        (out / "parts" / f"{name}.json").write_text(
            json.dumps({"config": config_to_dict(cfg), "result": result})
        )


def test_kan_reproduce_resumes_from_finished_parts(capsys, tmp_path):
    from intelligible.kan.experiment import reproduce_config

    _fake_parts(tmp_path / "kan", reproduce_config("quick"))
    assert main(["kan", "reproduce", "--out", str(tmp_path / "kan")]) == 0
    out = capsys.readouterr().out
    assert out.count("[holds]") == 5
    assert "100.0x more accurate, 23x fewer parameters" in out
    report = json.loads((tmp_path / "kan" / "report.json").read_text())
    assert report["study"] == "kan" and len(report["claims"]) == 5


def test_kan_reproduce_rejects_unknown_preset(capsys, tmp_path):
    assert main(["kan", "reproduce", "--preset", "huge", "--out", str(tmp_path)]) == 2
    assert "'huge' is not one of 'quick', 'paper'" in capsys.readouterr().err
