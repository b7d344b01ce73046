"""`intelligible sae train|eval|reproduce` on a tiny saved Llama: run folders, summaries, one-line errors."""

from __future__ import annotations

import json

import pytest

from intelligible.cli import main


def _train_args(model_dir, text, out, *extra):
    return ["sae", "train", "--out", str(out), "--model", str(model_dir), "--text", str(text), "--layer", "1",
            "--seq-len", "16", "--n-windows", "64", "--eval-windows", "4", "--latents", "64", "--k", "4",
            "--steps", "20", "--batch", "128", "--lr", "0.003", *extra]  # fmt: skip


@pytest.mark.parametrize("arch", ["switch", "topk", "relu"])
def test_sae_train_and_eval(capsys, tmp_path, tiny_model_dir, sample_text_file, arch):
    out = tmp_path / arch
    code = main(_train_args(tiny_model_dir, sample_text_file, out, "--arch", arch, "--experts", "4"))
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert "held-out MSE" in stdout and "CE recovered" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arch"] == arch and summary["tokens"] == 4 * 15 and 0 <= summary["dead_fraction"] <= 1
    assert (out / "sae.json").exists() and (out / "metrics.jsonl").read_text().count("\n") == 20
    if arch == "switch":
        assert len(summary["expert_load"]) == 4
    assert main(["sae", "eval", str(out)]) == 0
    evaluated = json.loads((out / "eval.json").read_text())
    assert evaluated["mse"] == pytest.approx(summary["mse"], rel=1e-5)


def test_sae_train_until_flat_with_a_cache(capsys, tmp_path, tiny_model_dir, sample_text_file):
    cache = tmp_path / "cache"
    args = [
        "--arch",
        "topk",
        "--steps",
        "400",
        "--eval-every",
        "5",
        "--plateau-tol",
        "0.05",
        "--cache-dir",
        str(cache),
    ]
    assert main(_train_args(tiny_model_dir, sample_text_file, tmp_path / "flat", *args)) == 0
    stdout = capsys.readouterr().out
    assert "tokens/s through the LM (layers 0..layer only)" in stdout
    summary = json.loads((tmp_path / "flat" / "summary.json").read_text())
    assert (
        summary["flattened"] is True
        and summary["train_steps"] < 320
        and f"after {summary['train_steps']:,} steps" in stdout
    )
    assert [point[0] for point in summary["heldout_curve"]][:3] == [5, 10, 15]
    assert len(list(cache.glob("train/*/shard_*.safetensors"))) == 1  # the next run reuses it


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--arch", "moe"], "arch must be one of relu, topk, switch, got 'moe'"),
        (["--arch", "switch", "--experts", "5"], "n_experts must be an integer >= 1 that divides n_latents"),
        (["--arch", "switch", "--experts", "4", "--k", "32"], r"k must be an integer in 1..16"),
        (["--arch", "topk", "--expert-parallel"], "expert_parallel needs arch 'switch', got 'topk'"),
        (["--layer", "9"], r"layer must be in 0..5 for .*, got 9"),
        (
            ["--batch", "100000"],
            r"960 training tokens \(64 windows x 15\) are fewer than one batch \(100,000\)",
        ),
    ],
)
def test_sae_train_errors(capsys, tmp_path, tiny_model_dir, sample_text_file, extra, message):
    import re

    assert main(_train_args(tiny_model_dir, sample_text_file, tmp_path / "bad", *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert re.search(message, err), err
    assert len(err.splitlines()) == 1


def test_sae_eval_on_a_non_run(capsys, tmp_path):
    assert main(["sae", "eval", str(tmp_path)]) == 2
    assert "is not a run folder (no config.json)" in capsys.readouterr().err


def test_reproduce_pipeline_on_a_tiny_model(tmp_path, tiny_model_dir, sample_text_file):
    from intelligible.sae.experiment import SAERunConfig, reproduce

    base = SAERunConfig(model=str(tiny_model_dir), text=str(sample_text_file), layer=1, seq_len=16, n_windows=64,
                        eval_windows=4, latents=64, k=2, steps=10, batch=128, lr=3e-3)  # fmt: skip
    report = reproduce("quick", tmp_path / "sae", base=base)
    assert len(report.claims) == 7 and report.claims[-1].holds is None
    assert (
        report.claims[-1].statement.startswith("CE loss recovered")
        and "relu " in report.claims[-1].measured_value
    )
    assert report.tables["data"][0]["train_tokens"] == 64 * 15 and "heldout_curves" not in report.tables
    assert (
        len(report.tables["relu_l1_sweep"]) >= 1
        and (tmp_path / "sae" / "figures" / "sae_pareto.png").exists()
    )
    names = [row["run"] for row in report.tables["runs"]]
    assert names == ["topk", "switch2-flop", "switch4-flop", "switch8-flop", "switch16-width",
                     "switch16-width-no-lb", "switch16-width-heaviside", "relu"]  # fmt: skip
    assert (tmp_path / "sae" / "report.json").exists()
    # a second call resumes every finished part instead of training again
    parts = sorted((tmp_path / "sae" / "parts").iterdir())
    stamps = [p.stat().st_mtime_ns for p in parts]
    reproduce("quick", tmp_path / "sae", base=base)
    assert [p.stat().st_mtime_ns for p in parts] == stamps


def test_until_flat_reproduction_caches_curves_and_resumes(tmp_path, tiny_model_dir, sample_text_file):
    from intelligible.sae.experiment import SAERunConfig, reproduce

    base = SAERunConfig(model=str(tiny_model_dir), text=str(sample_text_file), layer=1, seq_len=16, n_windows=64,
                        eval_windows=4, latents=64, k=2, steps=80, batch=128, lr=3e-3, eval_every=5,
                        plateau_tol=0.05)  # fmt: skip
    out = tmp_path / "long"
    report = reproduce("long", out, base=base)
    flat = report.claims[-1]
    assert flat.statement.startswith("every model was trained until its held-out MSE flattened (< 5% better")
    runs = {row["run"] for row in report.tables["heldout_curves"]}
    assert len(runs) == 8 and (out / "figures" / "sae_curves.png").exists()
    assert (out / "parts" / "topk" / "checkpoint.safetensors").exists()  # each model resumable
    assert len(list((out / "activations" / "train").glob("*/manifest.json"))) == 1
    parts = sorted(p for p in (out / "parts").rglob("*") if p.is_file())
    stamps = [p.stat().st_mtime_ns for p in parts]
    again = reproduce("long", out, base=base)  # nothing is trained or cached again
    assert [p.stat().st_mtime_ns for p in parts] == stamps
    assert [c.measured_value for c in again.claims] == [c.measured_value for c in report.claims]


def test_sae_train_under_torchrun(tmp_path, tiny_model_dir, sample_text_file):
    # the documented launch: torchrun --nproc-per-node 2 -m intelligible.cli sae train ...
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    out = tmp_path / "ddp"
    args = _train_args(tiny_model_dir, sample_text_file, out, "--arch", "switch", "--experts", "4",
                       "--expert-parallel")  # fmt: skip
    result = subprocess.run(
        [torchrun, "--nproc-per-node", "2", "--master-port", "29517", "-m", "intelligible.cli", *args],
        capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["arch"] == "switch" and (out / "metrics.jsonl").read_text().count("\n") == 20
    assert len(summary["expert_load"]) == 4 and 0 < summary["fvu"] < 1.5
    assert main(["sae", "eval", str(out)]) == 0  # the saved model holds the whole, gathered dictionary


# ----------------------------------------------------------------------------- issue 13: run folders
def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def finished_run(tmp_path):
    """A folder holding a finished `sae train` run: config, metrics, a checkpoint, a summary."""
    import torch

    from intelligible.core.runs import RunDir
    from intelligible.sae.experiment import SAERunConfig

    run = RunDir.create(tmp_path / "done", SAERunConfig(), 0, kind="sae-train")
    run.log_metrics(0, loss=1.0)
    run.save_checkpoint({"tokens_since_fired": torch.zeros(2)}, {"step": 1})
    run.write_json("summary.json", {"mse": 1.0})
    return run.path


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if a command reaches the (expensive) model load."""
    from intelligible.sae import experiment

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the command was refused")

    monkeypatch.setattr(experiment, "load_model", refuse)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "gpt-17"], "unknown model 'gpt-17'"),
        (["--layer", "99"], r"layer must be in 0..5 for .*, got 99"),
        (["--seq-len", "200"], "seq_len must be at most 128"),
        (
            ["--n-windows", "100000000"],
            r"need about .* of memory, but only .* is available; lower --n-windows",
        ),
        (["--n-windows", "1000"], "text too short"),
        (["--text", "/no/such/file.txt"], "no such file or folder"),
        (["--cache-dir", "FILE"], "cannot hold activations: it is a file"),
        (["--cache-dir", "FILE/sub"], "cannot hold activations: it is inside"),
    ],
)
def test_a_rejected_train_leaves_an_earlier_run_alone(
    capsys, finished_run, tiny_model_dir, sample_text_file, no_loading, extra, message
):
    import re

    extra = [str(sample_text_file) + arg[4:] if arg.startswith("FILE") else arg for arg in extra]
    before = _snapshot(finished_run)
    code = main(_train_args(tiny_model_dir, sample_text_file, finished_run, "--overwrite", *extra))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and re.search(message, err), err
    assert _snapshot(finished_run) == before


def test_an_earlier_run_needs_overwrite_or_a_matching_resume(
    capsys, finished_run, tiny_model_dir, sample_text_file, no_loading
):
    before = _snapshot(finished_run)
    assert main(_train_args(tiny_model_dir, sample_text_file, finished_run)) == 2
    assert "holds an earlier run" in capsys.readouterr().err
    assert main(_train_args(tiny_model_dir, sample_text_file, finished_run, "--resume")) == 2
    err = capsys.readouterr().err
    assert "cannot resume the run" in err and "model (saved 'smollm2-135m'" in err
    assert main(_train_args(tiny_model_dir, sample_text_file, finished_run, "--resume", "--overwrite")) == 2
    assert "give one of them" in capsys.readouterr().err
    assert _snapshot(finished_run) == before


def test_a_damaged_checkpoint_fails_before_loading(
    capsys, tmp_path, tiny_model_dir, sample_text_file, no_loading
):
    from intelligible.core.cli import config_from_args
    from intelligible.core.runs import RunDir
    from intelligible.sae.experiment import SAERunConfig

    out = tmp_path / "run"
    args = _train_args(tiny_model_dir, sample_text_file, out)
    cfg = config_from_args(SAERunConfig, args[4:])
    run = RunDir.create(out, cfg, cfg.seed, kind="sae-train")
    (run.path / "checkpoint.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    assert main([*args, "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: checkpoint") and "cannot be read" in err and len(err.splitlines()) == 1


class _Crash(RuntimeError):
    pass


def test_resume_logs_each_step_once_and_summarises_the_whole_run(
    capsys, tmp_path, tiny_model_dir, sample_text_file, monkeypatch
):
    from intelligible.sae.train import TensorBatches

    straight = tmp_path / "straight"
    assert main(_train_args(tiny_model_dir, sample_text_file, straight, "--arch", "topk")) == 0
    expected = json.loads((straight / "summary.json").read_text())
    real = TensorBatches.batch_at

    def batch_at(self, step):
        if step == 13:  # killed after the step-12 checkpoint, with step 12 already logged
            raise _Crash
        return real(self, step)

    monkeypatch.setattr(TensorBatches, "batch_at", batch_at)
    out = tmp_path / "crashed"
    with pytest.raises(_Crash):
        main(_train_args(tiny_model_dir, sample_text_file, out, "--arch", "topk"))
    first_part = json.loads((out / "checkpoint.json").read_text())["train_seconds"]
    monkeypatch.undo()
    capsys.readouterr()
    assert main(_train_args(tiny_model_dir, sample_text_file, out, "--arch", "topk", "--resume")) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == list(range(20))
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train_steps"] == 20 and summary["train_parts"] == 2 and summary["resumed_at_step"] == 12
    assert summary["train_seconds"] > first_part > 0
    assert summary["final_train_mse"] == pytest.approx(expected["final_train_mse"], rel=1e-4)
    assert summary["mse"] == pytest.approx(expected["mse"], rel=1e-4)
    assert expected["train_parts"] == 1 and expected["resumed_at_step"] is None


# ----------------------------------------------------------------------------- files and messages
def test_sae_eval_says_what_a_folder_is(capsys, tmp_path):
    from intelligible.core.runs import RunDir
    from intelligible.sae.experiment import SAERunConfig

    RunDir.create(tmp_path / "stages", {"model": "smollm2-135m", "n_tokens": 512}, 0, kind="stages-sweep")
    RunDir.create(tmp_path / "kan", {"width": [2, 5, 1], "grid": 5}, 0)
    RunDir.create(tmp_path / "repro", SAERunConfig(), 0, kind="sae-reproduce")
    RunDir.create(tmp_path / "unfinished", SAERunConfig(), 0, kind="sae-train")
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "config.json").write_text("[1, 2, 3]")
    (tmp_path / "a-file").write_text("x")
    cases = {
        "stages": "is not an SAE run: it holds a stages-sweep run (written by `",
        "kan": "is not an SAE run (written by `",
        "repro": "is an SAE reproduction folder, not one trained SAE",
        "unfinished": "holds no trained SAE (sae.json): the run has not finished; continue it with "
        "`intelligible sae train --resume",
        "list": "is not a run's config (expected a JSON object",
        "a-file": "is a file, not a run folder",
        "missing": "no such folder",
    }
    for name, message in cases.items():
        assert main(["sae", "eval", str(tmp_path / name)]) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1, (name, err)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--text", ""], "text is empty; give 'pydoc'"),
        (["--text", "/"], "text folder '/'"),
        (["--text", "/dev/null"], "is neither a regular file nor a folder"),
        (["--model", "x" * 10_000], "unknown model 'xxxxxxxx"),
        (["--arch", "x" * 10_000], "arch must be one of relu, topk, switch, got 'xxxxx"),
        (["--cache-dir", "x" * 10_000], "cache_dir"),
    ],
)
def test_bad_inputs_are_one_short_line(
    capsys, tmp_path, tiny_model_dir, sample_text_file, no_loading, monkeypatch, extra, message
):
    from intelligible.lm import text as text_module

    monkeypatch.setattr(text_module, "MAX_FOLDER_ENTRIES", 2000)  # '/' stops early either way
    out = tmp_path / "x"
    assert main(_train_args(tiny_model_dir, sample_text_file, out, *extra)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1, err
    assert len(err) < 400 and not out.exists()


NUMERIC_OPTIONS = ["layer", "seq-len", "n-windows", "eval-windows", "latents", "k", "experts", "lb-alpha",
                   "l1-coeff", "steps", "batch", "lr", "seed"]  # fmt: skip


@pytest.mark.parametrize("option", NUMERIC_OPTIONS)
def test_numbers_out_of_range_are_refused_before_loading(capsys, tmp_path, no_loading, option):
    for value in ("nan", "inf", "-inf", "1e30", "-1", "1e12"):
        assert main(["sae", "train", f"--{option}", value, "--out", str(tmp_path / "x")]) == 2, value
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and len(err.splitlines()) == 1 and len(err) < 400, (value, err)
    assert not (tmp_path / "x").exists()
