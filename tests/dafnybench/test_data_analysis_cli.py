"""Loading tasks and their defects, the analysis of results, re-scoring, reproduce, and the CLI."""

from __future__ import annotations

import json

import pytest
from tests.dafnybench.conftest import FAILED, LOOP, VERIFIED

from intelligible.cli import main
from intelligible.core.errors import DataError
from intelligible.dafnybench.analysis import quartile_table, read_results_csv, rescore, success_curve
from intelligible.dafnybench.data import Task, data_defects, load_tasks
from intelligible.dafnybench.hints import strip_hints


def test_load_tasks_from_json_and_folder(tmp_path):
    records = [{"test_ID": 7, "test_file": "a.dfy", "ground_truth": LOOP, "hints_removed": strip_hints(LOOP)}]
    (tmp_path / "test.json").write_text(json.dumps(records))
    [task] = load_tasks(tmp_path / "test.json")
    assert task.test_id == "007" and task.hints_removed == strip_hints(LOOP)
    folder = tmp_path / "pairs"
    (folder / "ground_truth").mkdir(parents=True)
    (folder / "hints_removed").mkdir()
    (folder / "ground_truth" / "double.dfy").write_text(LOOP)
    (folder / "hints_removed" / "double_no_hints.dfy").write_text(strip_hints(LOOP))
    [pair] = load_tasks(folder)
    assert pair.test_file == "double.dfy" and pair.ground_truth == LOOP


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a JSON file"),
    ("[]", "non-empty JSON list"),
    ('[{"test_ID": 1, "test_file": "a.dfy"}]', "record 0 lacks ground_truth, hints_removed"),
])  # fmt: skip
def test_bad_task_files_are_one_line_errors(tmp_path, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(DataError, match=message):
        load_tasks(bad)
    with pytest.raises(DataError, match="no such file or folder"):
        load_tasks(tmp_path / "missing.json")
    with pytest.raises(DataError, match="ground_truth/ and hints_removed/"):
        load_tasks(tmp_path)


def test_data_defects_are_found():
    dangling = Task(
        "1", "x.dfy", LOOP, LOOP.replace("    invariant 0 <= i <= n\n", "                 && true\n")
    )
    assert [d.kind for d in data_defects(dangling)] == ["dangling_lines"]
    hatch = Task("2", "y.dfy", FAILED, FAILED.replace("  y := x;\n", "  assume false;\n  y := x;\n"))
    kinds = [d.kind for d in data_defects(hatch)]
    assert "escape_hatch" in kinds and "dangling_lines" in kinds
    assert data_defects(Task("3", "z.dfy", LOOP, strip_hints(LOOP))) == []


def test_dev_split_defects(dev_tasks):
    defects = [d for t in dev_tasks for d in data_defects(t)]
    dangling = {d.test_id for d in defects if d.kind == "dangling_lines"}
    hatches = {d.test_id for d in defects if d.kind == "escape_hatch"}
    assert 10 < len(dangling) < 70 and 0 < len(hatches) <= 8


def test_success_curves_and_quartiles():
    outcomes = {"a": 0, "b": 1, "c": 3, "d": None, "e": 10, "f": None, "g": 2, "h": 1}
    curve = success_curve(outcomes, 10)
    assert curve[0] == pytest.approx(3 / 8) and curve[-1] == pytest.approx(6 / 8)
    assert all(x <= y for x, y in zip(curve, curve[1:]))
    table = quartile_table(outcomes, {k: float(i) for i, k in enumerate(outcomes)})
    assert [row["tasks"] for row in table] == [2, 2, 2, 2]
    assert [row["success"] for row in table] == [1.0, 0.5, 0.5, 1.0]


def test_rescore_counts_strict_survivors_and_reverifies(verifier):
    tasks = [Task("001", "a.dfy", LOOP, strip_hints(LOOP)), Task("002", "b.dfy", VERIFIED, VERIFIED),
             Task("003", "c.dfy", LOOP, strip_hints(LOOP)), Task("004", "d.dfy", LOOP, strip_hints(LOOP))]  # fmt: skip
    cheat = LOOP.replace("  s := 0;\n", "  s := 0;\n  assume {:axiom} false;\n")
    outcomes = {"001": 1, "002": 0, "003": 2, "004": None}
    programs = {"001": LOOP, "003": cheat, "004": FAILED}
    scored = rescore(tasks, outcomes, programs, verifier, workers=1)
    summary = scored["summary"]
    assert summary["paper_success_count"] == 3 and summary["strict_check_pass_count"] == 2
    assert summary["strict_check_rejects"] == ["003"]
    assert summary["ours_paper_check"] == pytest.approx(
        3 / 4
    )  # the cheat verifies and passes the paper's check
    assert summary["ours_strict_check"] == pytest.approx(2 / 4)
    assert summary["stored_program_fails_paper_check"] == []
    # a success whose stored program is another task's (its specification differs) is flagged
    mixed_up = rescore(tasks, {"001": 1}, {"001": VERIFIED}, verifier, verify=False)["summary"]
    assert (
        mixed_up["stored_program_fails_paper_check"] == ["001"] and mixed_up["strict_check_pass_count"] == 0
    )


def test_read_results_csv_errors(tmp_path):
    with pytest.raises(DataError, match="no such results file"):
        read_results_csv(tmp_path / "none.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="not a results_summary CSV"):
        read_results_csv(bad)


# ------------------------------------------------------------------------------------------ CLI
def test_cli_verify_and_strip_hints(tmp_path, capsys):
    good, bad = tmp_path / "good.dfy", tmp_path / "bad.dfy"
    good.write_text(LOOP)
    bad.write_text(FAILED)
    assert main(["dafnybench", "verify", str(good)]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("verified: ")
    with pytest.raises(SystemExit) as exit_info:
        main(["dafnybench", "verify", str(bad)])
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert f"{bad}(" in out and "postcondition" in out and "failed:" in out
    assert main(["dafnybench", "strip-hints", str(good)]) == 0
    assert capsys.readouterr().out == strip_hints(LOOP)


def test_cli_errors_are_one_line(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("Remember to buy milk.\n")
    cases = [
        (["dafnybench", "verify", str(tmp_path / "missing.dfy")], "no such file"),
        (["dafnybench", "strip-hints", str(text)], "not a Dafny program"),
        (["dafnybench", "verify", str(text), "--dafny", "/no/dafny"], "apt-get install -y dafny"),
        (["dafnybench", "score", str(tmp_path)], "no such results file"),
    ]
    for args, message in cases:
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (args, err)


def test_cli_score(tmp_path, capsys):
    (tmp_path / "results_summary.csv").write_text(
        "test_ID,test_file,success_on_attempt_#\n000,a.dfy,0\n001,b.dfy,2\n002,c.dfy,failed\n"
    )
    assert main(["dafnybench", "score", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3 tasks, 1 verify without hints" in out and "success@1 :  33.3%" in out


@pytest.mark.slow(seconds=60)
def test_reproduce_quick_with_a_scripted_model(tmp_path, monkeypatch, dev_tasks):
    """The quick preset end to end, with the model replaced by one that returns the ground truth (the
    real bundled model is exercised by `make demo`)."""
    from intelligible.dafnybench import experiment
    from intelligible.lm.chat import ChatReply

    by_hints = {t.hints_removed: t.ground_truth for t in dev_tasks}

    class Oracle:
        def chat(self, messages, **_):  # noqa: ANN001, ANN003, ANN201
            program = messages[1]["content"].split("Below is the program:\n", 1)[1]
            return ChatReply(f"```dafny\n{by_hints[program]}```", "oracle", 1, 1, 0.0, False, 0.0)

    real_run = experiment.run
    monkeypatch.setattr(experiment, "run", lambda tasks, out, cfg, **kw: real_run(tasks, out, cfg, client=Oracle(),
                                                                                   **kw))  # fmt: skip
    monkeypatch.setattr(experiment, "SELF_CHECK_SAMPLE", 6)
    report = experiment.reproduce("quick", tmp_path)
    statements = [c.statement for c in report.claims]
    assert len(statements) == 4 and report.claims[0].holds is not None
    assert "published_models" in report.tables and len(report.tables["published_models"]) == 5
    assert report.claims[-1].holds and report.claims[-1].measured_value.startswith("1/1")  # the shortest task
    assert (tmp_path / "success_vs_attempts.png").is_file() and (tmp_path / "report.md").is_file()
