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


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--arch", "moe"], "arch must be one of relu, topk, switch, got 'moe'"),
        (["--arch", "switch", "--experts", "5"], "n_experts must be an integer >= 1 that divides n_latents"),
        (["--arch", "switch", "--experts", "4", "--k", "32"], r"k must be an integer in 1..16"),
        (["--arch", "topk", "--expert-parallel"], "expert_parallel needs arch 'switch', got 'topk'"),
        (["--layer", "9"], r"layer must be in 0..5 for .*, got 9"),
        (["--batch", "100000"], "training tokens are fewer than one batch"),
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
    assert len(report.claims) == 6 and report.claims[-1].holds is None
    names = [row["run"] for row in report.tables["runs"]]
    assert names == ["topk", "switch2-flop", "switch4-flop", "switch8-flop", "switch16-width",
                     "switch16-width-no-lb", "switch16-width-heaviside", "relu"]  # fmt: skip
    assert (tmp_path / "sae" / "report.json").exists()
    # a second call resumes every finished part instead of training again
    parts = sorted((tmp_path / "sae" / "parts").iterdir())
    stamps = [p.stat().st_mtime_ns for p in parts]
    reproduce("quick", tmp_path / "sae", base=base)
    assert [p.stat().st_mtime_ns for p in parts] == stamps


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
