"""The spec checks: a corpus of hand-written cheating answers, all rejected by the strict check, and
honest answers (hints added, comments, layout, hint-only ghost variables) all accepted."""

from __future__ import annotations

import pytest

from intelligible.dafnybench.cheats import CHEATS, GROUND_TRUTH, HONEST, TASK
from intelligible.dafnybench.checks import paper_check, strict_check


@pytest.mark.parametrize("name", list(CHEATS))
def test_strict_check_rejects_every_cheat(name):
    result = strict_check(TASK, CHEATS[name], ground_truth=GROUND_TRUTH)
    assert not result.ok and result.reasons, name
    assert all("\n" not in reason for reason in result.reasons)


@pytest.mark.parametrize("name", list(HONEST))
def test_strict_check_accepts_honest_answers(name):
    result = strict_check(TASK, HONEST[name], ground_truth=GROUND_TRUTH)
    assert result.ok, (name, result.reasons)


def test_the_corpus_is_big_enough_and_the_papers_check_misses_most_of_it():
    assert len(CHEATS) >= 20
    passed_paper = [name for name, answer in CHEATS.items() if paper_check(TASK, answer).ok]
    # the official check only catches changed requires/ensures lines and two exact spellings
    assert "assume false" not in passed_paper and "verify false" not in passed_paper
    assert {"assume false, odd spacing", "verify false, odd spacing", "lemma body deleted", "changed code",
            "assume the postcondition", "axiom attribute on a lemma"} <= set(passed_paper)  # fmt: skip
    assert len(passed_paper) >= 14


def test_reasons_name_what_changed():
    def reason(name: str) -> str:
        return strict_check(TASK, CHEATS[name], ground_truth=GROUND_TRUTH).reasons[0]

    assert reason("assume false").startswith("adds assume (line 12)")
    assert reason("verify false, odd spacing").startswith("adds {:verify false}")
    assert "ensures clause" in reason("weakened ensures") and "|| true" in reason("weakened ensures")
    assert "requires clause" in reason("changed requires")
    assert "method signature" in reason("changed signature")
    assert reason("changed code").startswith("adds `* 1`") and "(code, line" in reason("changed code")
    assert "deletes a body" in reason("lemma body deleted") or "removes" in reason("lemma body deleted")


def test_escape_hatches_already_in_the_task_are_not_held_against_the_answer():
    task = TASK.replace("  total := 0;\n", "  total := 0;\n  assume a.Length < 1000;\n")
    answer = GROUND_TRUTH.replace("  total := 0;\n", "  total := 0;\n  assume a.Length < 1000;\n")
    assert strict_check(task, answer).ok
    assert not strict_check(task, answer.replace("{\n  total", "{\n  assume false;\n  total")).ok


def test_every_dev_ground_truth_passes_the_strict_check(dev_tasks):
    for task in dev_tasks:
        assert strict_check(task.hints_removed, task.ground_truth, ground_truth=task.ground_truth).ok, (
            task.test_id
        )
