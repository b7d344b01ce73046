"""Tasks, the sweep's config checks (one-line errors for every bad input) and a tiny sweep end to end."""

from __future__ import annotations

import json

import pytest
import torch

from intelligible.core.errors import ConfigError, DataError, OutputError
from intelligible.core.runs import RunDir
from intelligible.scaling.experiment import FitOptions, analyse, fit_run, sweep_run
from intelligible.scaling.sweep import SweepConfig, run_grid
from intelligible.scaling.tasks import make_task, subtask_weights


def test_builtin_tasks_compute_their_targets():
    x = torch.tensor([[0.5, -0.25, 0.1, 0.4]])
    assert make_task("square").targets(x[:, :1]).tolist() == [[0.25]]
    assert make_task("parallel").targets(x[:, :2]).tolist() == [[0.25, 0.0625]]
    series = make_task("series")
    g = (0.75**2) + (0.3**2)
    assert series.targets(x.double()).item() == pytest.approx(g**0.5)
    assert series.intermediate(x.double()).item() == pytest.approx(g)
    assert series.default_depth == 2


def test_user_functions_become_subtasks_with_their_own_inputs():
    task = make_task("function", ("sin(pi*x0)", "x2*x1", "exp(x3)"))
    assert task.n_inputs == 4 and task.n_outputs == 3
    assert [s.inputs for s in task.subtasks] == [(0,), (1, 2), (3,)]
    assert subtask_weights(3, 0.6) == pytest.approx([0.6, 0.2, 0.2])
    assert subtask_weights(1, 0.6) == [1.0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"alphas": (1.0, 0.0)}, "alphas must be positive"),
        ({"alphas": (-2.0,)}, "alphas must be positive"),
        ({"widths": (0,)}, "widths must be whole numbers from 1"),
        ({"widths": (8, -4)}, "widths must be whole numbers from 1"),
        ({"task": "parallel", "betas": (0.5, 1.0)}, "betas must lie strictly between 0 and 1"),
        ({"task": "parallel", "betas": (0.0,)}, "betas must lie strictly between 0 and 1"),
        ({"betas": (1.5,)}, "betas must lie strictly between 0 and 1"),
        ({"alphas": ()}, "the sweep is empty: --alphas"),
        ({"widths": ()}, "the sweep is empty: --widths"),
        ({"seeds": ()}, "the sweep is empty: --seeds"),
        ({"task": "parallel", "betas": ()}, "the sweep is empty: --betas"),
        ({"task": "cube"}, "unknown task 'cube'; valid tasks: square, parallel, series, function"),
        ({"task": "function"}, "needs --functions"),
        ({"task": "square", "functions": ("x0**3",)}, "apply to --task function only"),
        ({"task": "function", "functions": ("x0 +* 2",)}, "cannot parse the function"),
        ({"task": "function", "functions": ("__import__('os')",)}, "__import__"),
        ({"task": "function", "functions": ("log(x0)",)}, "is not finite at x0="),
        ({"threshold": 0.0}, "threshold must be above 0"),
        ({"x_low": 1.0}, "x_low must be below x_high"),
        ({"steps": 0}, "steps must be a whole number from 1"),
        ({"seeds": (2**32,)}, "a seed must be a whole number"),
        ({"depth": 99}, "depth must be 0"),
        ({"widths": (10**9,)}, "widths must be whole numbers"),
    ],
)
def test_a_bad_sweep_is_a_one_line_config_error(changes, message):
    config = SweepConfig(**changes)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("*", r"\*")) as caught:
        config.validate()
    text = str(caught.value)
    assert "\n" not in text and len(text) < 400


def test_a_long_formula_is_not_repeated_in_full():
    config = SweepConfig(task="function", functions=("x0 +" + " x0 +" * 300 + " )",))
    with pytest.raises(ConfigError) as caught:
        config.validate()
    assert len(str(caught.value)) < 300


def _tiny(**changes) -> SweepConfig:
    base = {"task": "parallel", "widths": (8, 12), "alphas": (2.0, 64.0), "betas": (0.5, 0.9), "seeds": (0, 1),
            "steps": 150, "n_train": 64, "n_test": 256}  # fmt: skip
    return SweepConfig(**{**base, **changes})


def test_a_tiny_parallel_grid_counts_neurons_per_subtask():
    records = run_grid(_tiny(), disable_progress=True)
    assert len(records) == 16
    for r in records:
        assert len(r["mse"]) == 2 and len(r["allocated"]) == 2
        assert max(r["allocated"]) <= r["width"]
        assert r["allocated_total"] <= sum(r["allocated"]) and r["shared"] <= min(r["allocated"])
        assert 0.0 <= r["agreement"] <= 1.0
        assert r["loss"] == pytest.approx(r["beta"] * r["mse"][0] + (1 - r["beta"]) * r["mse"][1])
    # a larger alpha keeps more neurons (same width, beta and seed)
    for r in records:
        if r["alpha"] == 2.0:
            twin = next(q for q in records if q["alpha"] == 64.0 and
                        (q["width"], q["beta"], q["seed"]) == (r["width"], r["beta"], r["seed"]))  # fmt: skip
            assert twin["allocated_total"] >= r["allocated_total"]
    analysis = analyse(records, FitOptions(n_boot=50))
    assert {row["beta"] for row in analysis["ratios"]} == {0.5, 0.9}
    assert "loss_vs_width" in analysis and "combined" in analysis["loss_vs_neurons"]


def test_the_series_task_reports_its_intermediate():
    config = SweepConfig(
        task="series", widths=(8,), alphas=(16.0,), seeds=(0,), steps=50, n_train=64, n_test=128
    )
    (record,) = run_grid(config, disable_progress=True)
    assert 0.0 < record["intermediate"]["r"] <= 1.0 and record["intermediate"]["layer"] in (0, 1)


def test_sweep_run_writes_a_run_folder_that_fit_reads_again(tmp_path):
    out = tmp_path / "sweep"
    config = _tiny(task="square", widths=(8,), alphas=(1.0, 8.0, 64.0), betas=(0.5,), steps=100)
    analysis = sweep_run(config, out, options=FitOptions(n_boot=50), disable_progress=True)
    assert (out / "results.json").is_file() and (out / "fit.json").is_file()
    assert (out / "figures" / "loss_vs_neurons.png").is_file()
    assert "subtask 0" in analysis["loss_vs_neurons"] or analysis["errors"]
    refit = fit_run(out, FitOptions(n_boot=20, confidence=0.8))
    assert json.loads((out / "fit.json").read_text())["n_runs"] == refit["n_runs"] == 6
    # an earlier sweep is not replaced silently
    with pytest.raises(OutputError, match="holds an earlier run"):
        sweep_run(config, out, disable_progress=True)


def test_fit_refuses_a_folder_of_another_study(tmp_path):
    other = RunDir.create(tmp_path / "kan-run", {"width": [2, 1]}, 0, kind="kan-fit")
    with pytest.raises(DataError, match="not a scaling sweep"):
        fit_run(other.path)
    with pytest.raises(DataError, match="not a folder"):
        fit_run(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no config.json"):
        fit_run(tmp_path / "empty")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"n_boot": 0}, "n_boot"),
        ({"confidence": 1.0}, "confidence"),
        ({"n_min": 10.0, "n_max": 5.0}, "n_min"),
    ],
)
def test_bad_fit_options_are_config_errors(options, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        fit_run(tmp_path, FitOptions(**options))
