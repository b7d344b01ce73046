"""MIPS end to end on easy tasks: solve, the cached benchmark, reproduce, and the CLI's one-line errors."""

from __future__ import annotations

import json

import pytest

from intelligible.cli import main
from intelligible.core.errors import ConfigError
from intelligible.mips import experiment
from intelligible.mips.experiment import MipsConfig, benchmark, solve

TINY = MipsConfig(
    n_train=512, n_val=1000, n_test=1000, n_long=200, n_extract=200, steps=600, seeds=(0,), workers=1
)


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
    assert [(row["test"], row["long"]) for row in report.tables["tasks"]] == [("1000/1000", "200/200")] * 2
    assert "untouched test split" in report.claims[0].statement
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["tables"]["tasks"][0]["test"] == "1000/1000"
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
    args = ["mips", "solve", "Current_Number", "--n-train", "512", "--n-val", "1000", "--n-test", "1000",
            "--n-long", "100", "--n-extract", "200", "--steps", "600", "--seeds", "0"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "def f(xs: list[list[int]]) -> list[list[int]]:" in out and "# solved: LR" in out
    assert "# test: right on 1000/1000 untouched test sequences (length 10)" in out
    assert "# long: right on 100/100 longer sequences (length 30)" in out


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
    assert record["reason"].startswith("every candidate program failed a validation sequence")


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


def _current_number_splits(n_long: int = 100):
    from intelligible.mips.tasks import splits

    return splits("Current_Number", 512, 1000, 1000, seed=0, n_long=n_long, long_length=30)


def test_the_verdict_rests_on_the_untouched_test_split():
    from dataclasses import replace

    from intelligible.mips.experiment import solve_arrays

    data = _current_number_splits()
    x_test, y_test = data.test
    y_wrong = y_test.copy()
    y_wrong[17, 3, 0] += 1  # one test sequence no choice ever saw disagrees with the program
    record = solve_arrays("Current_Number", replace(data, test=(x_test, y_wrong)), cfg=TINY)
    assert record["program"] is not None and not record["solved"]
    checks = record["verification"]
    assert checks["validation"]["wrong"] == 0
    assert checks["test"] == {"sequences": 1000, "length": 10, "wrong": 1, "first_wrong": 17}
    assert record["reason"] == (
        "the program chosen on the validation split is wrong on 1 of 1000 untouched test sequences (first: 17)"
    )
    assert record["rnn_accuracy"]["validation"] == 1.0


def test_a_program_that_only_fits_the_training_length_is_not_solved(monkeypatch):
    from intelligible.mips.program import Program

    # a running sum capped at 990: right on every length-10 sequence of values below 100, wrong later
    capped = Program(["s0"], [0], ["min(s0 + x0, 990)"], ["s0"], input_dim=1, methods=["SR"])
    monkeypatch.setattr(experiment, "programs_from_trace", lambda trace: [capped])
    monkeypatch.setattr(experiment, "sparsify", lambda *args, **kwargs: None)
    record = solve("Sum_All", TINY)
    checks = record["verification"]
    assert checks["validation"]["wrong"] == checks["test"]["wrong"] == 0
    assert checks["long"]["length"] == 30 and checks["long"]["wrong"] > 0
    assert (
        not record["solved"]
        and "wrong on" in record["reason"]
        and "longer sequences (length 30" in record["reason"]
    )


def test_cli_task_file_takes_options(capsys, tmp_path):
    from intelligible.mips.tasks import get_task

    x, _ = get_task("Current_Number").generate(300, seed=3)
    path = tmp_path / "identity.json"
    path.write_text(json.dumps({"inputs": x[:, :, 0].tolist(), "outputs": x[:, :, 0].tolist()}))
    args = ["mips", "solve", "--file", str(path), "--seeds", "0", "--steps", "600", "--n-extract", "100",
            "--file-holdout", "0.25"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "# solved: LR" in out and "# test: right on 75/75 untouched test sequences (length 10)" in out
    # options in any order around TASK; sizes of generated sets do not apply to a file
    assert main(["mips", "solve", "--file", str(path), "--n-train", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: --n-train apply to a named TASK only; a --file is split by --file-holdout"


SEED_RULE = "a seed must be a whole number from 0 to 2^32 - 1, got -1"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["mips", "solve", "Sum_All", "--seeds", "abc"], "'seeds' must be a comma-separated list of ints"),
        (["mips", "solve", "--seeds", "0,-1", "Sum_All"], f"seeds: {SEED_RULE}"),
        (["mips", "solve", "Sum_All", "--seed", "-1"], f"seed: {SEED_RULE}"),
        (["mips", "benchmark", "--seeds", "-1"], f"seeds: {SEED_RULE}"),
        (["mips", "benchmark", "--seed", "-1"], f"seed: {SEED_RULE}"),
        (
            ["mips", "solve", "Sum_All", "--n-train", "999999999999"],
            "Sum_All: the sequences need about",
        ),
        (["mips", "benchmark", "--n-test", "999999999999"], "lower --n-train, --n-val, --n-test, --n-long"),
        (
            ["mips", "solve", "Sum_All", "--long-factor", "nan"],
            "'long_factor' must be a finite float, got 'nan'",
        ),
        (
            ["mips", "solve", "Sum_All", "--long-factor", "inf"],
            "'long_factor' must be a finite float, got 'inf'",
        ),
        (
            ["mips", "solve", "Sum_All", "--long-factor", "1e30"],
            "long_factor must be a finite number above 1.0",
        ),
        (
            ["mips", "solve", "Sum_All", "--long-factor", "0.5"],
            "long_factor must be a finite number above 1.0",
        ),
        (["mips", "solve", "Sum_All", "--file-holdout", "1e30"], "file_holdout must be a finite number"),
        (
            ["mips", "solve", "Sum_All", "--steps", "1e15"],
            "steps must be from 1 to 10,000,000, got 1000000000000000",
        ),
        (["mips", "solve", "Sum_All", "--n-train", "1e30"], "'n_train' must be an int"),
        (["mips", "solve", "Sum_All", "--steps", "inf"], "'steps' must be an int"),
        (["mips", "solve", "Sum_All", "--workers", "nan"], "'workers' must be an int"),
        (
            ["mips", "solve", "Sum_All", "--seed", "1e12"],
            "seed: a seed must be a whole number from 0 to 2^32 - 1",
        ),
        (["mips", "solve", "Sum_All", "Prev1"], "give one TASK, got 2 words: Sum_All Prev1"),
        (["mips", "solve", "Sum_All", "--length", "500000000"], "of memory, but only"),
    ],
)
def test_cli_bad_options_are_one_line_errors(capsys, args, message):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_benchmark_recomputes_a_corrupt_cache_entry(tmp_path):
    cache = tmp_path / "tasks"
    cache.mkdir()
    broken = cache / "Current_Number.json"
    broken.write_text('{"config": {"n_train": 51')  # truncated
    (cache / "Bitwise_Not.json").write_text('["not", "a", "result"]')
    said: list[str] = []
    records = benchmark(
        ["Current_Number", "Bitwise_Not"], TINY, tmp_path, show_progress=False, notify=said.append
    )
    assert all(r["solved"] for r in records)
    assert said[0].startswith(f"warning: cached result {broken} is unreadable (") and said[0].endswith(
        "; recomputing Current_Number"
    )
    assert said[1] == f"warning: cached result {cache / 'Bitwise_Not.json'} is not a MIPS result for Bitwise_Not; " \
        "recomputing Bitwise_Not"  # fmt: skip
    assert json.loads(broken.read_text())["result"]["task"] == "Current_Number"  # rewritten whole


def test_cache_dir_that_is_a_file_is_a_one_line_error(capsys, tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("keep me")
    args = [
        "mips",
        "benchmark",
        "--tasks",
        "Current_Number",
        "--cache-dir",
        str(blocker),
        "--out",
        str(tmp_path),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{blocker} is a file" in err
    assert blocker.read_text() == "keep me"
    assert main(["mips", "benchmark", "--tasks", "Current_Number", "--out", str(blocker)]) == 2
    assert "is a file" in capsys.readouterr().err


def test_process_pool_workers_run_single_threaded(monkeypatch, tmp_path):
    from intelligible.core.threads import single_thread_worker

    seen: dict = {}

    class Pool:  # runs in process; records how the pool was made
        def __init__(self, **kwargs):
            seen.update(kwargs)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, function, argument):
            from concurrent.futures import Future

            future = Future()
            future.set_result(function(argument))
            return future

    monkeypatch.setattr(experiment, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(experiment, "_solve_in_worker", lambda args: {"task": args[0], "solved": False})
    from dataclasses import replace

    benchmark(["Current_Number", "Bitwise_Not"], replace(TINY, workers=2), tmp_path, show_progress=False)
    assert seen["initializer"] is single_thread_worker and seen["max_workers"] == 2
