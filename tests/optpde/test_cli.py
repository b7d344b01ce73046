"""`intelligible optpde ...`: output, one-line errors, run folders; the quick reproduction (slow)."""

from __future__ import annotations

import json

import pytest

from intelligible.cli import main


def _run(argv, capsys):
    code = main(["optpde", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_count_prints_the_proved_quantities(capsys):
    code, out, err = _run(["count", "u_xxx + 6*u*u_x", "--n-curves", "30", "--n-points", "300"], capsys)
    assert code == 0, err
    assert "n_CQ = 3 (3 proved exactly)" in out and "u**3 - u_x**2/2  [proved]" in out


def test_count_takes_a_coefficient_vector(capsys):
    from intelligible.optpde import family_monomials

    vector = ["0"] * 33
    vector[[str(m) for m in family_monomials()].index("u_xxx")] = "2.5"
    code, out, err = _run(
        ["count", "--coefficients", ",".join(vector), "--n-curves", "30", "--n-points", "300"], capsys
    )
    assert code == 0, err
    assert "n_CQ = 4 (4 proved exactly)" in out


def test_count_takes_options_before_the_pde(capsys):
    code, out, err = _run(["count", "--n-curves", "30", "--n-points", "300", "u*u_x"], capsys)
    assert code == 0, err
    assert "n_CQ = 3" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["count", "u_xxx +* 6"], "cannot parse the PDE"),
        (["count", "__import__('os').system('ls')"], "unknown symbol '__import__'"),
        (["count", "u_xxx + 6*v*u_x"], "unknown symbol 'v'"),
        (["count", "u_x**3", "--degree", "9"], "beyond this tool's limit"),
        (["count", "u_x**3", "--degree", "7", "--order", "4"], "candidate monomials"),
        (["count", "u_x**3", "--threshold", "nan"], "threshold"),
        (["count"], "give one PDE"),
        (["count", "u_x", "u_xx"], "give one PDE"),
        (["count", "--coefficients", ",".join(["nan"] + ["0"] * 32)], "coefficients"),
        (["count", "--coefficients", "1,2,3"], "33 numbers"),
        (["count", "--coefficients", ",".join(["0"] * 33)], "all coefficients are zero"),
        (["count", "u_xxx", "--coefficients", ",".join(["1"] * 33)], "not both"),
        (["search", "--starts", "0"], "starts"),
        (["search", "--lr", "nan"], "lr"),
        (["breaking", "--n-points", "3"], "n_points"),
    ],
)
def test_bad_input_is_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err
    assert not any(tmp_path.iterdir())  # nothing written


def test_search_writes_its_run_and_keeps_an_earlier_one(capsys, tmp_path):
    out = tmp_path / "search"
    argv = ["search", "--starts", "4", "--steps", "5", "--batch", "4", "--n-curves", "20", "--n-points", "200",
            "--max-families", "1", "--out", str(out)]  # fmt: skip
    code, printed, err = _run(argv, capsys)
    assert code == 0, err
    assert "4 optima; n_CQ histogram" in printed
    optima = json.loads((out / "optima.json").read_text())
    assert len(optima["coefficients"]) == 4 and len(optima["members"]) == 33
    before = (out / "optima.json").read_bytes()
    code, _, err = _run(argv, capsys)
    assert code == 2 and "holds an earlier run" in err
    assert (out / "optima.json").read_bytes() == before
    code, _, err = _run([*argv, "--overwrite"], capsys)
    assert code == 0, err


def test_breaking_reports_the_time(capsys):
    code, out, err = _run(["breaking", "--n-points", "500", "--t-final-over-tb", "3"], capsys)
    assert code == 0, err
    assert "exact 1/(24 pi^3) = 0.00134381" in out and "max u" in out


@pytest.mark.slow(seconds=45)
def test_the_quick_reproduction(tmp_path):
    from intelligible.optpde.experiment import reproduce

    report = reproduce("quick", tmp_path / "optpde")
    table = [claim for claim in report.claims if claim.statement.startswith("n_CQ of")]
    assert len(table) == 11 and all(claim.holds for claim in table)
    assert all(c.holds for c in report.claims if "breaks at" in c.statement or "decays" in c.statement)
    assert [c.holds for c in report.claims if "for every a" in c.statement] == [True]
    assert [c.holds for c in report.claims if "13-function basis" in c.statement] == [True]
    assert (tmp_path / "optpde" / "report.md").exists() and report.figures["optpde"].exists()
