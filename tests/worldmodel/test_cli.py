"""`intelligible worldmodel train / probe / reproduce`: runs, one-line errors, and (slow) the quick preset."""

from __future__ import annotations

import json

import pytest

from intelligible.cli import main


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_train_then_probe(capsys, tmp_path):
    run = tmp_path / "run"
    code, out, err = run_cli(
        capsys, "worldmodel", "train", "--task", "regression", "--layers", 1, "--hidden", 4, "--steps", 6,
        "--length", 4, "--n-val", 16, "--snapshots", 3, "--out", run,
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("val MSE") and (run / "model.safetensors").is_file()
    code, out, err = run_cli(
        capsys, "worldmodel", "probe", run, "--n-sequences", 40, "--sites", "inp,mlp-res-0", "--cca-degree", 2,
        "--hypotheses", "w,w^i x", "--snapshots",
    )  # fmt: skip
    assert code == 0, err
    assert "CCA" in out and "criterion 2 w^i x" in out
    probe = json.loads((run / "probe" / "probe.json").read_text())
    assert probe["sites"] == ["inp", "mlp-res-0"] and probe["hypotheses"] == ["w", "w^i x"]
    assert len(probe["criterion_2"]["points"]) == 3
    assert {p.name for p in (run / "probe" / "figures").iterdir()} == {
        "r2.png",
        "variance.png",
        "cca.png",
        "r2_vs_mse.png",
    }
    # the same command again replaces its own output; the train run is untouched
    assert run_cli(capsys, "worldmodel", "probe", run, "--n-sequences", 40, "--sites", "inp")[0] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "--task", "pendulum"], "'task' must be one of 'sho-undamped'"),
        (["train", "--layers", 0], "layers must be a whole number from 1"),
        (["train", "--hiden", 4], "unknown key 'hiden' (did you mean 'hidden'?)"),
        (["probe", "RUN", "--holdout", 1.5], "holdout must be a fraction"),
        (["probe", "RUN", "--n-sequences", 2], "n_sequences must be a whole number from 8"),
        (["probe", "RUN"], "is not a folder"),
    ],
)
def test_one_line_errors(capsys, tmp_path, args, message):
    args = [str(tmp_path / "nowhere") if a == "RUN" else a for a in args]
    code, _, err = run_cli(
        capsys, "worldmodel", *args, *(["--out", tmp_path / "o"] if args[0] == "train" else [])
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "o").exists()


def test_probe_names_the_valid_sites_and_hypotheses(capsys, tmp_path):
    run = tmp_path / "run"
    assert run_cli(capsys, "worldmodel", "train", "--layers", 1, "--hidden", 4, "--steps", 2, "--length", 5,
                   "--n-val", 8, "--out", run)[0] == 0  # fmt: skip
    code, _, err = run_cli(capsys, "worldmodel", "probe", run, "--sites", "mlp-9")
    assert code == 2 and "valid sites: inp, attn-0, attn-res-0, mlp-0, mlp-res-0" in err
    code, _, err = run_cli(capsys, "worldmodel", "probe", run, "--hypotheses", "w")
    assert code == 2 and "valid: linear-multistep, taylor, matrix-exponential" in err
    assert not (run / "probe").exists()


@pytest.mark.slow(seconds=60)
def test_quick_reproduction(capsys, tmp_path):
    code, out, err = run_cli(capsys, "worldmodel", "reproduce", "--out", tmp_path / "rep")
    assert code == 0, err
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["study"] == "worldmodel" and len(report["claims"]) >= 8
    assert "[holds]" in out or "[FAILS]" in out
    assert (tmp_path / "rep" / "figures" / "r2_heatmaps.png").is_file()
