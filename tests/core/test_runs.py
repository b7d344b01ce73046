from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from intelligible.core import (
    ConfigError,
    DataError,
    OutputError,
    RunDir,
    atomic_write_bytes,
    atomic_write_text,
    ensure_writable_dir,
    interrupt_guard,
    package_versions,
)


@dataclass
class TrainConfig:
    steps: int = 10
    layers: tuple[int, ...] = (1, 2)
    out: Path = Path("runs/x")


def _leftover_temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_package_versions_has_the_essentials():
    versions = package_versions()
    assert versions["python"].count(".") == 2
    for name in ("intelligible", "torch", "numpy", "safetensors"):
        assert name in versions


def test_create_writes_config_with_seed_and_versions(tmp_path):
    run = RunDir.create(tmp_path / "a" / "b", TrainConfig(), seed=5)
    assert run.path == tmp_path / "a" / "b"
    record = json.loads((run.path / "config.json").read_text())
    assert record["config"] == {"steps": 10, "layers": [1, 2], "out": "runs/x"}
    assert record["seed"] == 5
    assert record["versions"]["torch"] == package_versions()["torch"]
    assert "T" in record["created"]
    assert isinstance(record["command"], str)
    assert run.read_config() == record


def test_create_accepts_a_plain_dict(tmp_path):
    run = RunDir.create(tmp_path, {"alpha": 0.5}, seed=0)
    assert run.read_config()["config"] == {"alpha": 0.5}


def test_unwritable_folder_raises_output_error(tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError) as info:
        RunDir.create(blocker / "sub", TrainConfig(), seed=0)
    message = str(info.value)
    assert str(blocker / "sub") in message
    assert "\n" not in message
    with pytest.raises(OutputError):
        ensure_writable_dir(blocker / "sub")


def test_metrics_round_trip(tmp_path):
    run = RunDir.create(tmp_path, TrainConfig(), seed=0)
    assert run.read_metrics() == []
    run.log_metrics(0, loss=1.5, note="start")
    run.log_metrics(1, loss=torch.tensor(0.25), l0=torch.tensor(3))
    assert run.read_metrics() == [
        {"step": 0, "loss": 1.5, "note": "start"},
        {"step": 1, "loss": 0.25, "l0": 3},
    ]
    # A line cut off by a crash is skipped, not fatal.
    with open(run.metrics_path, "a") as file:
        file.write('{"step": 2, "lo')
    assert len(run.read_metrics()) == 2


def test_checkpoint_round_trip(tmp_path):
    run = RunDir.create(tmp_path, TrainConfig(), seed=0)
    assert run.load_checkpoint() is None
    tensors = {"weight": torch.randn(3, 4), "bias": torch.arange(4).t()}
    run.save_checkpoint(tensors, {"step": 7, "layers": (1, 2)}, name="model")
    loaded, state = run.load_checkpoint("model")
    assert state == {"step": 7, "layers": [1, 2]}
    assert set(loaded) == {"weight", "bias"}
    assert torch.equal(loaded["weight"], tensors["weight"])
    assert json.loads((tmp_path / "model.json").read_text()) == state
    assert _leftover_temp_files(tmp_path) == []


@pytest.mark.parametrize("failing_call", [1, 2])
def test_crash_while_saving_keeps_previous_checkpoint(tmp_path, monkeypatch, failing_call):
    run = RunDir.create(tmp_path, TrainConfig(), seed=0)
    run.save_checkpoint({"w": torch.zeros(2)}, {"step": 1})

    real_replace = os.replace
    calls = []

    def crashing_replace(src, dst):
        calls.append(dst)
        if len(calls) == failing_call:
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", crashing_replace)
    with pytest.raises(OutputError, match="No space left"):
        run.save_checkpoint({"w": torch.ones(2)}, {"step": 2})
    monkeypatch.setattr(os, "replace", real_replace)

    tensors, state = run.load_checkpoint()
    assert state == {"step": 1}
    assert torch.equal(tensors["w"], torch.zeros(2))
    assert _leftover_temp_files(tmp_path) == []


def test_interrupted_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def interrupted(src, dst):
        raise KeyboardInterrupt

    atomic_write_text(tmp_path / "keep.txt", "old")
    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(tmp_path / "keep.txt", b"new")
    assert (tmp_path / "keep.txt").read_text() == "old"
    assert _leftover_temp_files(tmp_path) == []


def test_resume_keeps_config_and_checks_it(tmp_path):
    run = RunDir.create(tmp_path, TrainConfig(steps=10), seed=3)
    run.log_metrics(0, loss=1.0)
    run.save_checkpoint({"w": torch.ones(1)}, {"step": 0})
    created = run.read_config()["created"]

    resumed = RunDir.create(tmp_path, TrainConfig(steps=10), seed=3, resume=True)
    assert resumed.read_config()["created"] == created
    assert resumed.read_metrics() == [{"step": 0, "loss": 1.0}]
    assert resumed.load_checkpoint() is not None

    with pytest.raises(ConfigError) as info:
        RunDir.create(tmp_path, TrainConfig(steps=20), seed=4, resume=True)
    message = str(info.value)
    assert "steps (saved 10, now 20)" in message
    assert "seed (saved 3, now 4)" in message
    assert "layers" not in message


def _finished_run(path):
    run = RunDir.create(path, TrainConfig(), seed=0)
    run.log_metrics(0, loss=1.0)
    run.save_checkpoint({"w": torch.ones(1)}, {"step": 0})
    run.write_json("summary.json", {"loss": 1.0})
    return run


def _snapshot(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_create_refuses_to_clear_an_earlier_run_and_leaves_it_untouched(tmp_path):
    _finished_run(tmp_path)
    before = _snapshot(tmp_path)
    with pytest.raises(OutputError) as caught:
        RunDir.create(tmp_path, TrainConfig(steps=99), seed=1)
    message = str(caught.value)
    assert "a finished run" in message and "checkpoints (checkpoint)" in message
    assert "1 logged steps" in message
    assert "--resume" in message and "--overwrite" in message
    assert _snapshot(tmp_path) == before
    # check() is the same verdict with no writes, for commands that validate before loading
    with pytest.raises(OutputError):
        RunDir.check(tmp_path, TrainConfig(steps=99), seed=1)
    assert _snapshot(tmp_path) == before


def test_overwrite_clears_previous_metrics_and_checkpoints(tmp_path):
    _finished_run(tmp_path)
    # A user's own safetensors file is not ours to delete.
    (tmp_path / "other.safetensors").write_bytes(b"not a checkpoint")

    again = RunDir.create(tmp_path, TrainConfig(steps=99), seed=1, overwrite=True)
    assert again.read_metrics() == []
    assert again.load_checkpoint() is None
    assert not (tmp_path / "checkpoint.json").exists()
    assert not (tmp_path / "summary.json").exists()
    assert (tmp_path / "other.safetensors").exists()
    assert again.read_config()["config"]["steps"] == 99


def test_a_rerunnable_kind_replaces_its_own_runs_only(tmp_path):
    run = RunDir.create(tmp_path, {"a": 1}, seed=0, kind="kan-reproduce", rerunnable=True)
    run.write_json("summary.json", {})
    again = RunDir.create(tmp_path, {"a": 2}, seed=0, kind="kan-reproduce", rerunnable=True)
    assert again.read_config()["config"] == {"a": 2}
    assert not (tmp_path / "summary.json").exists()
    again.write_json("summary.json", {})
    with pytest.raises(OutputError, match="holds an earlier run"):
        RunDir.create(tmp_path, {"a": 2}, seed=0, kind="sae-reproduce", rerunnable=True)


def test_a_folder_with_only_a_config_is_not_a_run_to_keep(tmp_path):
    RunDir.create(tmp_path, TrainConfig(), seed=0)  # crashed before its first step
    assert RunDir.create(tmp_path, TrainConfig(steps=5), seed=0).read_config()["config"]["steps"] == 5


@pytest.mark.parametrize("bad", ["", "  "])
def test_an_empty_out_is_refused(bad, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OutputError, match="output folder is empty"):
        RunDir.create(bad, TrainConfig(), seed=0)
    with pytest.raises(OutputError, match="output folder is empty"):
        ensure_writable_dir(bad)
    assert list(tmp_path.iterdir()) == []


def test_out_that_is_a_file_is_refused_without_writing(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="it is a file"):
        RunDir.check(blocker, {}, seed=0)
    with pytest.raises(OutputError, match="which is a file"):
        RunDir.check(blocker / "sub", {}, seed=0)
    assert blocker.read_text() == "x"


@pytest.mark.parametrize("text", ["[1, 2]", '"a string"', '{"config": [1]}', "not json"])
def test_a_config_that_is_not_an_object_is_a_data_error(tmp_path, text):
    (tmp_path / "config.json").write_text(text)
    with pytest.raises(DataError, match="config"):
        RunDir(tmp_path).read_config()
    with pytest.raises(DataError):
        RunDir.check(tmp_path, {}, seed=0, resume=True)


def test_truncate_metrics_drops_steps_after_the_checkpoint(tmp_path):
    run = RunDir.create(tmp_path, {}, seed=0)
    for step in range(6):
        run.log_metrics(step, loss=float(step))
    with run.metrics_path.open("a") as file:
        file.write('{"step": 6, "lo')  # cut off by the crash
    assert run.truncate_metrics(3) == 3
    assert [row["step"] for row in run.read_metrics()] == [0, 1, 2, 3]
    assert run.truncate_metrics(3) == 0
    run.log_metrics(4, loss=4.0)
    assert [row["step"] for row in run.read_metrics()] == [0, 1, 2, 3, 4]


def test_save_figure_text_and_json(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = RunDir.create(tmp_path, TrainConfig(), seed=0)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = run.save_figure(fig, "curve")
    assert path == tmp_path / "figures" / "curve.png"
    assert path.read_bytes().startswith(b"\x89PNG")
    assert not plt.fignum_exists(fig.number)

    assert run.write_text("report.md", "# hi\n").read_text() == "# hi\n"
    written = run.write_json("sub/result.json", {"p": Path("x"), "t": (1, 2)})
    assert json.loads(written.read_text()) == {"p": "x", "t": [1, 2]}


def test_interrupt_guard_calls_handler_then_reraises():
    saved = []
    with pytest.raises(KeyboardInterrupt), interrupt_guard(lambda: saved.append("checkpoint")):
        raise KeyboardInterrupt
    assert saved == ["checkpoint"]

    with interrupt_guard(lambda: saved.append("never")):
        pass
    with pytest.raises(ValueError), interrupt_guard(lambda: saved.append("never")):
        raise ValueError("not an interrupt")
    assert saved == ["checkpoint"]


def test_command_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["intelligible", "stages", "run", "--out", "a b"])
    run = RunDir.create(tmp_path, {}, seed=0)
    assert run.read_config()["command"] == "intelligible stages run --out 'a b'"


def test_atomic_write_gives_normal_permissions(tmp_path):
    import os
    import stat

    from intelligible.core.runs import atomic_write_text

    path = atomic_write_text(tmp_path / "report.html", "<html></html>")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
