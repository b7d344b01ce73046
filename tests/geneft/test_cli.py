"""`intelligible geneft ...`: output of the verbs, and one-line errors for every bad input the issue lists."""

from __future__ import annotations

import json

import numpy as np
import pytest

from intelligible.cli import main


def _files(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_bound_prints_the_static_numbers(capsys):
    assert (
        main(
            [
                "geneft",
                "bound",
                "--relation",
                "mod3",
                "--n",
                "30",
                "--fractions",
                "0.1,0.3",
                "--mc-seeds",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "b = log2(n!/|Aut|) = 39.75 bits" in out and "p_c (alpha = 0.9) = 0.1004" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["bound", "--n", "1"], "n must be a whole number from 2"),
     (["bound", "--relation", "mod4", "--n", "30"], "mod 4 needs k to divide n = 30"),
     (["bound", "--fractions", "0.1,1.5"], "fractions must be a share of the n^2 pairs in (0, 1], got 1.5"),
     (["bound", "--fractions", "0"], "in (0, 1], got 0.0"),
     (["sweep", "--lr-encoder", "0"], "lr_encoder must be a finite number above 0, got 0.0"),
     (["sweep", "--lr-decoder", "-0.01"], "lr_decoder must be a finite number above 0, got -0.01"),
     (["sweep", "--fractions", "1.2"], "got 1.2"),
     (["sweep", "--n", "1"], "n must be a whole number from 2"),
     (["phases", "--lr-max", "0"], "lr_max must be a finite number above 0"),
     (["phases", "--fraction", "0"], "fraction must be a share"),
     (["phases", "--relation", "mod7"], "mod 7 needs k to divide n = 30"),
     (["phases", "--lr-min", "-1"], "lr_min must be a finite number above 0")],
)  # fmt: skip
def test_bad_input_is_one_line_and_writes_nothing(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = ["--out", str(tmp_path / "o")] if argv[0] != "bound" else []
    assert main(["geneft", *argv, *out]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and message in err, err
    assert not (tmp_path / "o").exists() and _files(tmp_path) == {}


def test_bad_relation_matrices(tmp_path, capsys):
    wide = tmp_path / "wide.npy"
    np.save(wide, np.zeros((3, 4), dtype=bool))
    counts = tmp_path / "counts.txt"
    counts.write_text("0 1 2\n1 0 1\n2 1 0\n")
    small = tmp_path / "small.csv"
    small.write_text("1,0\n0,1\n")
    cases = [(wide, "3", "must be square, n x n; got shape (3, 4)"),
             (counts, "3", "entry '2' is not boolean"),
             (small, "30", "is 2 x 2 but n is 30; pass --n 2")]  # fmt: skip
    for path, n, message in cases:
        assert main(["geneft", "bound", "--relation", str(path), "--n", n]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and message in err, err
    assert main(["geneft", "bound", "--relation", str(small), "--n", "2", "--mc-seeds", "1"]) == 0
    assert "|Aut| = 2 " in capsys.readouterr().out


def test_sweep_and_phases_write_their_run_folders(tmp_path, capsys):
    tiny = ["--n", "6", "--steps", "20", "--eval-every", "10", "--seeds", "0,1", "--width", "4"]
    out = tmp_path / "sweep"
    argv = [
        "geneft",
        "sweep",
        "--relations",
        "mod2,greater",
        "--fractions",
        "0.4,0.8",
        *tiny,
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    assert "mod2: b = " in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    assert set(results["relations"]) == {"mod2", "greater"}
    assert (out / "figures" / "accuracy_vs_fraction.png").is_file() and (out / "summary.json").is_file()
    before = _files(out)
    assert main(argv) == 2  # an earlier run is not replaced silently
    assert "holds an earlier run" in capsys.readouterr().err and _files(out) == before
    phases_out = tmp_path / "phases"
    assert main(["geneft", "phases", "--relation", "mod3", "--grid", "2", "--lr-min", "0.001", "--lr-max", "0.01",
                 *tiny, "--out", str(phases_out)]) == 0  # fmt: skip
    assert "boundary slope" in capsys.readouterr().out
    assert (phases_out / "figures" / "phases.png").is_file() and (
        phases_out / "figures" / "repons.png"
    ).is_file()
