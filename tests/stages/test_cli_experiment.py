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


# ----------------------------------------------------------------------------- issue 13: run folders
def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def finished_sweep(tmp_path):
    """A folder holding a finished sweep: config, metrics, a sweep state checkpoint, results."""
    from intelligible.core.runs import RunDir

    config = experiment.StagesConfig(n_tokens=240, seq_len=24)
    run = RunDir.create(tmp_path / "done", config, 0, kind="stages-sweep")
    run.log_metrics(0, name="delete 0", retained_accuracy=0.5)
    run.save_checkpoint({}, {"batches_done": 1}, name="sweep_state")
    run.write_json("sweep.json", {"rows": []})
    return run.path


@pytest.fixture
def no_loading(monkeypatch):
    """Fail the test if a command reaches the (expensive) model load."""

    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the command was refused")

    monkeypatch.setattr(experiment, "load_model", refuse)


@pytest.mark.parametrize("verb", ["sweep", "diagnose", "reproduce"])
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "gpt-17"], "unknown model 'gpt-17'"),
        (["--layers", "2,99"], "layer index 99 is out of range: this model has layers 0..5"),
        (["--device", "bogus"], "unknown device 'bogus'; valid devices here: cpu"),
        (["--n-tokens", "1e30"], "n_tokens"),
        (["--n-tokens", "100000000"], "text too short"),
        (["--seq-len", "200"], "seq_len must be at most 128"),
        (["--text", "/no/such/file.txt"], "no such file or folder"),
    ],
)
def test_a_rejected_command_leaves_an_earlier_run_alone(
    capsys, finished_sweep, tiny_args, no_loading, verb, extra, message
):
    if verb == "reproduce" and extra[0] == "--layers":
        message = "the full experiment needs a deletion of every layer"
    before = _snapshot(finished_sweep)
    code, _, err = run_cli(capsys, "stages", verb, "--out", finished_sweep, "--overwrite", *tiny_args, *extra)
    _one_line_error(code, err, message)
    assert _snapshot(finished_sweep) == before


def test_an_earlier_run_needs_overwrite(capsys, finished_sweep, tiny_args, no_loading):
    before = _snapshot(finished_sweep)
    for verb in ("sweep", "diagnose", "reproduce"):
        code, _, err = run_cli(capsys, "stages", verb, "--out", finished_sweep, *tiny_args)
        _one_line_error(code, err, "holds an earlier run", "--overwrite to replace it")
    code, _, err = run_cli(
        capsys, "stages", "sweep", "--out", finished_sweep, "--resume", "--overwrite", *tiny_args
    )
    _one_line_error(code, err, "give one of them")
    assert _snapshot(finished_sweep) == before


def test_overwrite_replaces_an_earlier_run(capsys, finished_sweep, tiny_args):
    code, _, err = run_cli(capsys, "stages", "sweep", "--out", finished_sweep, "--overwrite", "--kinds", "delete",
                           *tiny_args)  # fmt: skip
    assert code == 0, err
    metrics = [json.loads(line) for line in (finished_sweep / "metrics.jsonl").read_text().splitlines()]
    assert [row["name"] for row in metrics] == [f"delete {i}" for i in range(6)]


def test_resume_logs_each_row_once_and_counts_every_part(capsys, tmp_path, tiny_args, monkeypatch):
    out = tmp_path / "sweep"

    def crash(*args, **kwargs):
        raise RuntimeError("killed while drawing")

    # the first part dies after its rows were logged, while drawing the figures
    monkeypatch.setattr(experiment, "plot_kl", crash)
    with pytest.raises(RuntimeError, match="killed while drawing"):
        main(["stages", "sweep", "--out", str(out), "--kinds", "delete", *map(str, tiny_args)])
    first = json.loads((out / "sweep_state.json").read_text())
    assert first["parts"] == 1 and first["seconds"] > 0
    monkeypatch.undo()
    code, _, err = run_cli(
        capsys, "stages", "sweep", "--out", out, "--kinds", "delete", "--resume", *tiny_args
    )
    assert code == 0, err
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["step"] for row in metrics] == list(range(6))
    result = json.loads((out / "sweep.json").read_text())
    assert result["parts"] == 2 and result["seconds"] >= first["seconds"]


@pytest.mark.parametrize("content", ["[1, 2]", '"a string"', '{"config": 3}'])
def test_resume_from_a_config_that_is_not_an_object(capsys, tmp_path, tiny_args, no_loading, content):
    out = tmp_path / "odd"
    out.mkdir()
    (out / "config.json").write_text(content)
    code, _, err = run_cli(capsys, "stages", "sweep", "--out", out, "--resume", *tiny_args)
    _one_line_error(code, err, "is not a run's config")


# ----------------------------------------------------------------------------- files and messages
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("/", "inside text folder '/'"),
        ("", "text is empty"),
        ("/dev/null", "is neither a regular file nor a folder"),
    ],
)
def test_text_sources_that_are_no_text(
    capsys, tmp_path, tiny_model_dir, no_loading, text, message, monkeypatch
):
    from intelligible.lm import text as text_module

    monkeypatch.setattr(text_module, "MAX_FOLDER_ENTRIES", 2000)  # '/' stops early either way
    code, _, err = run_cli(capsys, "stages", "sweep", "--model", tiny_model_dir, "--text", text, "--n-tokens", 240,
                           "--seq-len", 24, "--out", tmp_path / "x")  # fmt: skip
    if text == "/":  # an unreadable folder (/proc) or too many entries, whichever the walk meets first
        assert code == 2 and ("inside text folder '/'" in err or "text folder '/' holds more than" in err), (
            err
        )
        assert len(err.strip().splitlines()) == 1
    else:
        _one_line_error(code, err, message)
    assert not (tmp_path / "x").exists()


def test_a_folder_without_text_is_named_a_folder(capsys, tmp_path, tiny_model_dir, no_loading):
    (tmp_path / "docs").mkdir()
    code, _, err = run_cli(capsys, "stages", "sweep", "--model", tiny_model_dir, "--text", tmp_path / "docs",
                           "--n-tokens", 240, "--seq-len", 24, "--out", tmp_path / "x")  # fmt: skip
    _one_line_error(code, err, "holds no text files")


def test_huge_inputs_are_not_repeated(capsys, tmp_path, no_loading):
    huge = "x" * 10_000
    for args in (["--model", huge], ["--text", huge], ["--kinds", huge], ["--device", huge]):
        code, _, err = run_cli(capsys, "stages", "sweep", *args, "--out", tmp_path / "x")
        _one_line_error(code, err)
        assert len(err) < 400, err


def test_unknown_hub_model_without_network_is_one_line(tmp_path):
    # no HF_HUB_OFFLINE, and an endpoint that refuses connections: no retry noise, one line, quickly
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"))
    for proxy in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(proxy, None)
    proc = subprocess.run(
        [sys.executable, "-m", "intelligible.cli", "stages", "sweep", "--model", "someone/no-such-model",
         "--out", str(tmp_path / "x")],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: model 'someone/no-such-model' is neither a local path nor reachable on the hub: "
        "http://127.0.0.1:9 cannot be reached and it is not in the local Hugging Face cache. "
        "Known offline names: smollm2-135m"
    ]
    assert not (tmp_path / "x").exists()


def test_memory_is_checked_before_loading(capsys, tmp_path, tiny_args, no_loading, monkeypatch):
    from intelligible.core import memory

    monkeypatch.setattr(memory, "available_memory", lambda device="cpu": 1 << 16)
    code, _, err = run_cli(capsys, "stages", "sweep", "--out", tmp_path / "x", *tiny_args)
    _one_line_error(code, err, "of memory, but only 64.0 KiB is available", "lower --n-tokens")


# ----------------------------------------------------------------------------- numbers
NUMERIC_OPTIONS = ["n-tokens", "seq-len", "batch-size", "attention-windows", "kurtosis-threshold",
                   "detok-fraction", "lens-fraction", "seed", "layers"]  # fmt: skip


@pytest.mark.parametrize("option", NUMERIC_OPTIONS)
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e30", "-1", "1e12"])
def test_numbers_out_of_range_are_refused_before_loading(capsys, tmp_path, no_loading, option, value):
    for verb in ("sweep", "diagnose", "reproduce"):
        code, _, err = run_cli(capsys, "stages", verb, f"--{option}", value, "--out", tmp_path / "x")
        if verb == "reproduce" and option == "layers" and code == 2:
            continue  # the reproduction edits every layer: any --layers is refused
        _one_line_error(code, err)
        assert "Traceback" not in err and len(err) < 400, err
    assert not (tmp_path / "x").exists()
