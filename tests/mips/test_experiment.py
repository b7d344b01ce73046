"""MIPS end to end on easy tasks: solve, the cached benchmark, reproduce, and the CLI's one-line errors."""

from __future__ import annotations

import json

import pytest

from intelligible.cli import main
from intelligible.core.errors import ConfigError
from intelligible.mips import experiment
from intelligible.mips.experiment import MipsConfig, benchmark, solve

TINY = MipsConfig(n_train=512, n_test=1000, n_extract=200, steps=600, seeds=(0,), workers=1)


def test_solve_current_number_end_to_end():
    record = solve("Current_Number", TINY)
    assert record["solved"], record["reason"]
    assert record["rnn"]["hidden"] == 1 and record["method"] == "LR"
    namespace: dict = {}
    exec(record["program"], namespace)  # noqa: S102 - the program we just emitted
    assert namespace["f"]([[3], [7], [0]]) == [[3], [7], [0]]


def test_benchmark_caches_finished_tasks(tmp_path):
    records = benchmark(["Current_Number", "Bitwise_Not"], TINY, tmp_path, show_progress=False)
    assert [r["task"] for r in records] == ["Current_Number", "Bitwise_Not"]
    assert all(r["solved"] for r in records), [r["reason"] for r in records]
    files = sorted((tmp_path / "tasks").iterdir())
    stamps = [f.stat().st_mtime_ns for f in files]
    again = benchmark(["Current_Number", "Bitwise_Not"], TINY, tmp_path, show_progress=False)
    assert again == records and [f.stat().st_mtime_ns for f in files] == stamps
    # a different configuration is a different experiment: not taken from the cache
    saved = json.loads(files[0].read_text())
    assert saved["config"]["steps"] == 600 and "workers" not in saved["config"]


def test_reproduce_writes_a_report(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "preset_config", lambda preset: (["Current_Number", "Bitwise_Not"], TINY))
    report = experiment.reproduce("quick", tmp_path)
    assert report.claims[0].measured_value == "2/2" and report.claims[0].holds
    assert [row["task"] for row in report.tables["tasks"]] == ["Current_Number", "Bitwise_Not"]
    assert (tmp_path / "report.md").exists()


def test_config_errors():
    with pytest.raises(ConfigError, match="executor must be one of process, ray, got 'slurm'"):
        MipsConfig(executor="slurm").validate()
    with pytest.raises(ConfigError, match="unknown preset 'huge'; valid presets: quick, paper"):
        experiment.preset_config("huge")


def test_cli_tasks_and_solve(capsys):
    assert main(["mips", "tasks"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 62 and lines[0].startswith("Binary_Addition")
    args = ["mips", "solve", "Current_Number", "--n-train", "512", "--n-test", "1000", "--n-extract", "200",
            "--steps", "600", "--seeds", "0"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "def f(xs: list[list[int]]) -> list[list[int]]:" in out and "# solved: LR" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["mips", "solve", "Sum_Everything"],
            "unknown task 'Sum_Everything'; valid tasks: Binary_Addition, ",
        ),
        (["mips", "solve"], "give a TASK name"),
        (["mips", "benchmark", "--executor", "slurm"], "executor must be one of process, ray"),
    ],
)
def test_cli_errors_are_one_line(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_cli_task_file_with_inconsistent_lengths(capsys, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"inputs": [[1, 2, 3], [1, 2, 3]], "outputs": [[1, 2, 3], [1, 2]]}))
    assert main(["mips", "solve", "--file", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert "sequence 1 has input length 3 but output length 2" in err and len(err.splitlines()) == 1


def test_ray_executor_without_ray(capsys, tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("no ray")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    args = ["mips", "benchmark", "--tasks", "Current_Number", "--executor", "ray", "--out", str(tmp_path)]
    assert main(args) == 2
    assert "--executor ray needs ray" in capsys.readouterr().err


def test_a_wrong_program_leaves_the_task_unsolved(monkeypatch):
    from intelligible.mips.program import Program

    # every reading yields the same plausible but wrong program: off by one from the 2nd step on
    wrong = Program(["s0"], [0], ["x0"], ["s0 % 9"], input_dim=1, methods=["LR"])
    monkeypatch.setattr(experiment, "programs_from_trace", lambda trace: [wrong])
    monkeypatch.setattr(experiment, "sparsify", lambda *args, **kwargs: None)
    record = solve("Current_Number", TINY)
    assert record["rnn"] is not None and not record["solved"]
    assert record["reason"].startswith("every candidate program failed a held-out sequence")


def test_sparsify_keeps_a_perfect_rnn_perfect_and_sparse():
    import numpy as np

    from intelligible.mips.rnn import RNN, train_rnn
    from intelligible.mips.simplify import sparsify
    from intelligible.mips.tasks import split

    x_train, y_train, x_test, y_test = split("Sum_Last2", 1024, 1000, 0)
    model = RNN(1, 2, 1, seed=0)
    assert train_rnn(model, (x_train, y_train), (x_test, y_test), steps=1500).test_accuracy == 1.0
    sparse = sparsify(model, (x_train, y_train), (x_test, y_test))
    assert sparse is not None
    weights = np.concatenate(
        [p.detach().numpy().ravel() for n, p in sparse.named_parameters() if "weight" in n]
    )
    assert (weights == 0).sum() >= 1  # something was pruned, and the copy stayed perfect
