"""`intelligible kan fit` run folders: validation before writing, --overwrite, --resume, checkpoints."""

from __future__ import annotations

import json

import pytest
import torch

from intelligible.cli import main
from intelligible.core.runs import RunDir
from intelligible.kan import KAN

FIT = ["kan", "fit", "--function", "x0*x1 + sin(x0)", "--width", "2,3,1", "--train-num", "150",
       "--test-num", "50", "--checkpoint-every", "2"]  # fmt: skip


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_rejected_command_leaves_an_earlier_run_as_it_was(capsys, tmp_path):
    out = tmp_path / "run"
    assert run_cli(capsys, *FIT, "--steps", 3, "--out", out)[0] == 0
    before = snapshot(out)
    assert len(RunDir(out).read_metrics()) == 3
    for bad in (["--grid", "0"], ["--grid", "0", "--overwrite"], ["--function", "1/0", "--overwrite"],
                ["--lr", "nan", "--overwrite"], ["--steps", "4"], ["--steps", "4", "--resume", "--overwrite"]):  # fmt: skip
        code, _, err = run_cli(capsys, *FIT, "--steps", 3, "--out", out, *bad)
        assert code == 2 and len(err.strip().splitlines()) == 1, (bad, err)
        assert snapshot(out) == before, bad
    # the same config again is refused too (the folder holds a finished run) ...
    code, _, err = run_cli(capsys, *FIT, "--steps", 3, "--out", out)
    assert code == 2 and "holds an earlier run" in err and "--overwrite" in err
    # ... and replaced with --overwrite
    assert run_cli(capsys, *FIT, "--steps", 2, "--out", out, "--overwrite")[0] == 0
    assert [row["step"] for row in RunDir(out).read_metrics()] == [0, 1]


def _interrupt_at(monkeypatch, step):
    """Make the run raise KeyboardInterrupt (as Ctrl-C would) when it logs `step`."""
    original = RunDir.log_metrics

    def log_metrics(self, logged, **values):
        if logged == step:
            raise KeyboardInterrupt
        original(self, logged, **values)

    monkeypatch.setattr(RunDir, "log_metrics", log_metrics)


@pytest.mark.parametrize(
    ("extra", "stop"),
    [([], 4), (["--symbolic", "--lib", "x,sin"], 7)],  # the plain fit; the symbolic recipe, refined stage
)
def test_a_resumed_fit_logs_each_step_once_and_ends_as_an_uninterrupted_one(
    capsys, tmp_path, monkeypatch, extra, stop
):
    args = [*FIT, "--steps", 3 if extra else 6, *extra]
    assert run_cli(capsys, *args, "--out", tmp_path / "whole")[0] == 0
    with monkeypatch.context() as patch:
        _interrupt_at(patch, stop)
        code, _, err = run_cli(capsys, *args, "--out", tmp_path / "cut")
    assert code == 130 and "interrupted" in err
    run = RunDir(tmp_path / "cut")
    assert [row["step"] for row in run.read_metrics()] == list(range(stop))
    assert run.load_checkpoint()[1]["sessions"] == 1
    first_part = run.load_checkpoint()[1]["elapsed_s"]
    assert not (tmp_path / "cut" / "summary.json").exists()

    code, stdout, err = run_cli(capsys, *args, "--out", tmp_path / "cut", "--resume")
    assert code == 0, err
    whole, cut = RunDir(tmp_path / "whole"), RunDir(tmp_path / "cut")
    steps = len(whole.read_metrics())
    assert [row["step"] for row in cut.read_metrics()] == list(range(steps))
    # resuming restores the optimiser, mini-batch generator and grids: the same numbers, bit for bit
    assert cut.read_metrics() == whole.read_metrics()
    a, b = KAN.load(tmp_path / "whole" / "model"), KAN.load(tmp_path / "cut" / "model")
    for (key, left), right in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(left, right), key
    summary = json.loads((tmp_path / "cut" / "summary.json").read_text())
    expected = json.loads((tmp_path / "whole" / "summary.json").read_text())
    assert summary["steps"] == expected["steps"] == steps and summary["sessions"] == 2
    assert summary["elapsed_s"] > first_part  # both parts
    for key in ("test_rmse", "formula", "edges", "symbolic_test_rmse", "formula_check"):
        assert summary.get(key) == expected.get(key), key
    if extra:  # the displayed formula is checked against the model on the test points
        assert summary["formula_check"]["passed"] and summary["formula_check"]["points"] > 0
        assert "displayed formula vs model on test points" in stdout
    # a finished run resumes to its summary without training again
    assert run_cli(capsys, *args, "--out", tmp_path / "cut", "--resume")[0] == 0
    assert len(cut.read_metrics()) == steps


def test_a_resume_refuses_another_config_and_starts_a_missing_run(capsys, tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        _interrupt_at(patch, 1)
        assert run_cli(capsys, *FIT, "--steps", 3, "--out", tmp_path / "cut")[0] == 130
    code, _, err = run_cli(capsys, *FIT, "--steps", 5, "--out", tmp_path / "cut", "--resume")
    assert code == 2 and "config differs from the saved one in steps (saved 3, now 5)" in err
    assert run_cli(capsys, *FIT, "--steps", 2, "--out", tmp_path / "new", "--resume")[0] == 0
    assert len(RunDir(tmp_path / "new").read_metrics()) == 2


def test_a_metrics_are_written_as_training_goes(capsys, tmp_path, monkeypatch):
    seen = []
    original = RunDir.log_metrics

    def log_metrics(self, step, **values):
        seen.append(len(self.read_metrics()))  # lines already on disk when this step is logged
        original(self, step, **values)

    monkeypatch.setattr(RunDir, "log_metrics", log_metrics)
    assert run_cli(capsys, *FIT, "--steps", 3, "--out", tmp_path / "run")[0] == 0
    assert seen == [0, 1, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "nan"], "'lr' must be a finite float"),
        (["--lr", "1e9"], "lr must be between 0 and 100"),
        (["--lr", "-1"], "lr must be > 0"),
        (["--steps", "1e30"], "'steps' must be an int"),
        (["--steps", "1e12"], "steps must be between 1 and 1e+07"),
        (["--train-num", "999999999999"], "train_num must be between 1 and 1e+09"),
        (["--train-num", "900000000", "--test-num", "900000000"], "of memory, but only"),
        (["--width", "2,100000,1", "--grid", "10000"], "of memory, but only"),
        (["--seed", "-1"], "seed must be an integer in 0..2**63-1, got -1"),
        (["--seed", "abc"], "'seed' must be an int"),
        (["--range-low", "1", "--range-high", "1"], "range_low must be below range_high"),
        (["--range-high", "1e300"], "range_high must be between"),
        (["--checkpoint-every", "0"], "checkpoint_every must be between 1"),
        (["--lamb", "-0.1"], "lamb must be between 0"),
        (["--history-size", "0"], "history_size must be between 1 and 1000, got 0"),
        (["--k", "50"], "k must be between 1 and 10"),
        (["--width", "2,0,1"], "each width entry must be between 1"),
        (["--grid", "0"], "grid must be between 1 and 10000, got 0"),
        (["--function", "log(x0)"], "'log(x0)' is NaN or infinite at"),
    ],
)
def test_c_bad_numbers_are_one_line_errors_before_anything_is_written(capsys, tmp_path, args, message):
    code, _, err = run_cli(capsys, *FIT, "--out", tmp_path / "x", *args)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize(
    ("function", "message"),
    [
        ("1/0", "division by zero"),
        ("0/0", "division by zero"),
        ("log(0)", "'log(0)' is undefined"),
        ("sin(1)", "uses no input variable"),
        ("2**10000", "too large"),
        ("(-8)**(1/3)", "is not a real number"),
        ("+".join(["x0"] * 3000), "characters long"),
        ("9**999999999", "too large"),
        ("x0 + 1e999", "too large"),
    ],
)
def test_b_bad_formulas_are_one_line_errors(capsys, tmp_path, function, message):
    code, _, err = run_cli(capsys, *FIT, "--out", tmp_path / "x", "--function", function)
    assert code == 2 and err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert message in err and len(err) < 400, err
    assert not (tmp_path / "x").exists()


def test_a_history_size_reaches_every_stage():
    from intelligible.kan.experiment import FitRunConfig

    stages = FitRunConfig(symbolic=True, history_size=7).stages()
    assert [cfg.history_size for _, cfg in stages] == [7, 7, 7, 7]
    assert FitRunConfig().stages()[0][1].history_size == 50
