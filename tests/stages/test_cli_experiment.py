"""The stages CLI end to end on a tiny saved model, and every user-facing error path (one line, exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from intelligible.cli import main
from intelligible.stages import experiment


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def tiny_args(tiny_model_dir, sample_text_file):
    return [
        "--model",
        tiny_model_dir,
        "--text",
        sample_text_file,
        "--n-tokens",
        240,
        "--seq-len",
        24,
        "--batch-size",
        4,
    ]


def test_stages_reproduce_end_to_end(capsys, tmp_path, tiny_args):
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "stages", "reproduce", "--out", out, *tiny_args)
    assert code == 0, err
    assert stdout.count("] ") == 4  # four claims printed, whether they hold or not on a tiny model
    record = json.loads((out / "config.json").read_text())
    assert record["seed"] == 0 and record["config"]["n_tokens"] == 240 and "torch" in record["versions"]
    report = json.loads((out / "report.json").read_text())
    assert len(report["claims"]) == 4 and len(report["tables"]["per layer"]) == 6
    for name in ("overview", "retained_accuracy", "kl", "diagnostics"):
        assert (out / "figures" / f"{name}.png").stat().st_size > 5000
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 6 + 5  # six deletions, five swaps
    stages = json.loads((out / "stages.json").read_text())
    assert stages["labels"] == sorted(stages["labels"]) and len(stages["labels"]) == 6


def test_sweep_then_resume(capsys, tmp_path, tiny_args):
    out = tmp_path / "sweep"
    code, stdout, err = run_cli(capsys, "stages", "sweep", "--out", out, "--kinds", "delete", *tiny_args)
    assert code == 0, err
    assert "delete 5" in stdout and "swap" not in stdout
    first = json.loads((out / "sweep.json").read_text())
    code, _, err = run_cli(
        capsys, "stages", "sweep", "--out", out, "--kinds", "delete", "--resume", *tiny_args
    )
    assert code == 0, err
    assert json.loads((out / "sweep.json").read_text())["rows"] == first["rows"]
    code, _, err = run_cli(
        capsys,
        "stages",
        "sweep",
        "--out",
        out,
        "--kinds",
        "delete",
        "--resume",
        *tiny_args[:-2],
        "--batch-size",
        2,
    )
    assert code == 2 and "cannot resume" in err and "batch_size" in err


def test_diagnose_command(capsys, tmp_path, tiny_args):
    code, stdout, err = run_cli(capsys, "stages", "diagnose", "--out", tmp_path / "d", *tiny_args)
    assert code == 0, err
    assert stdout.splitlines()[0].startswith("layer")
    assert len(json.loads((tmp_path / "d" / "diagnostics.json").read_text())["lens_entropy"]) == 6


def test_top_level_reproduce_writes_html(capsys, tmp_path, monkeypatch, tiny_model_dir, sample_text_file):
    tiny = experiment.StagesConfig(
        model=str(tiny_model_dir), text=str(sample_text_file), n_tokens=240, seq_len=24
    )
    monkeypatch.setitem(experiment.PRESETS, "quick", tiny)
    code, stdout, err = run_cli(capsys, "reproduce", "--only", "stages", "--out", tmp_path / "all")
    assert code == 0, err
    html_path = tmp_path / "all" / "report.html"
    assert f"report: {html_path}" in stdout
    html = html_path.read_text()
    assert "data:image/png;base64," in html and "Stages of inference" in html
    assert json.loads((tmp_path / "all" / "report.json").read_text())["reports"][0]["study"] == "stages"


def _one_line_error(code, err, *fragments):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_unknown_model_name(capsys, tmp_path, sample_text_file):
    code, _, err = run_cli(
        capsys, "stages", "sweep", "--model", "gpt-17", "--text", sample_text_file, "--out", tmp_path / "x"
    )
    _one_line_error(code, err, "unknown model 'gpt-17'", "smollm2-135m")


def test_layer_out_of_range(capsys, tmp_path, tiny_args):
    code, _, err = run_cli(capsys, "stages", "sweep", "--layers", "2,9", "--out", tmp_path / "x", *tiny_args)
    _one_line_error(code, err, "layer index 9 is out of range", "0..5")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"w1 w2 w3", "text too short"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00", "not a text file"),
    ],
)
def test_bad_text(capsys, tmp_path, tiny_model_dir, content, message):
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    code, _, err = run_cli(
        capsys, "stages", "sweep", "--model", tiny_model_dir, "--text", path, "--seq-len", 24, "--n-tokens", 240,
        "--out", tmp_path / "x",
    )  # fmt: skip
    _one_line_error(code, err, message)


def test_unwritable_output_folder(capsys, tmp_path, tiny_args):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for command in (["stages", "sweep"], ["stages", "reproduce"], ["reproduce"]):
        extra = [] if command == ["reproduce"] else tiny_args
        code, _, err = run_cli(capsys, *command, "--out", blocker / "sub", *extra)
        _one_line_error(code, err, str(blocker / "sub"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["stages", "sweep", "--bogus", "1"], "unknown key 'bogus'"),
        (["stages", "sweep", "--n-tokens", "many"], "n_tokens"),
        (["stages", "sweep", "--kinds", "shuffle"], "kinds must be a subset of delete, swap"),
        (["stages", "sweep", "--seq-len", "4"], "seq_len must be in 7..1,048,576, got 4"),
        (["reproduce", "--only", "nope"], "unknown study 'nope'"),
        (["reproduce", "--preset", "huge"], "huge"),
        (["stages", "frobnicate"], "No such command"),
    ],
)
def test_bad_options(capsys, args, message):
    code, _, err = run_cli(capsys, *args)
    _one_line_error(code, err, message)


def test_console_script_exit_code(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "intelligible.cli", "stages", "sweep", "--model", "nope", "--out", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: unknown model 'nope'") and "Traceback" not in proc.stderr


def test_help_lists_config_fields(capsys):
    code, stdout, _ = run_cli(capsys, "stages", "sweep", "--help")
    assert code == 0
    assert "--n-tokens" in stdout and "--kurtosis-threshold" in stdout and "default: smollm2-135m" in stdout
