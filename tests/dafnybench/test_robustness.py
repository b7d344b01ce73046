"""Every check, hint removal and the compatibility layer return an answer for ANY text: random
truncations, deletions, stray brackets and garbage in real programs never raise."""

from __future__ import annotations

import random

import pytest

from intelligible.dafnybench.checks import forbidden_constructs, paper_check, skeleton, strict_check
from intelligible.dafnybench.compat import to_legacy
from intelligible.dafnybench.data import Task, data_defects
from intelligible.dafnybench.hints import count_hint_chars, find_hints, strip_hints
from intelligible.dafnybench.runner import check_answer
from intelligible.dafnybench.source import clause_end, mask, statement_end, tokens

_PIECES = ["{", "}", "(", ")", "[", "]", '"', "'", "/*", "*/", "//", "by", "by {", "calc {", "assert", "invariant",
           "decreases", "match", "case", "=>", "|", "for i := 0 to", "{:trigger", ":", ";", "\n", "ghost var g",
           "datatype D = A {", "function", "by method", "expect", "import opened", "\x00", "é", "@\""]  # fmt: skip


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 4)):
        k = rng.randint(0, len(text))
        roll = rng.random()
        if roll < 0.3:
            text = text[:k]
        elif roll < 0.6:
            text = text[:k] + rng.choice(_PIECES) + text[k:]
        elif roll < 0.8:
            text = text[:k] + text[k + rng.randint(1, 50) :]
        else:
            text = (
                text[:k] + "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(1, 20))) + text[k:]
            )
    return text


def test_an_unbalanced_task_still_gets_a_verdict(dev_tasks):
    """The strict check raised `ValueError: unbalanced bracket` on a hints-removed program with more
    `{` than `}`; the harness, the self-check and the runner all stopped there."""
    task = min(dev_tasks, key=lambda t: len(t.ground_truth))
    broken = task.hints_removed.replace("}", "", 1) + "\nlemma L() { assert true by {\n"
    for answer in (task.ground_truth, broken, "calc {", "assert x by {"):
        result = strict_check(broken, answer, ground_truth=task.ground_truth)
        assert isinstance(result.ok, bool) and (result.ok or result.reasons)
        assert check_answer("strict", Task("x", "x", task.ground_truth, broken), answer)[1] is not None
    assert find_hints("method M() { calc { 1; } assert x by { y; ")[-1].end == len(
        "method M() { calc { 1; } assert x by { y; "
    )


def test_fuzzed_programs_never_raise(dev_tasks):
    rng = random.Random(0)
    sample = rng.sample(dev_tasks, 40)
    for round_ in range(80):
        task = sample[round_ % len(sample)]
        removed, answer, truth = (
            _mutate(rng, t) for t in (task.hints_removed, task.ground_truth, task.ground_truth)
        )
        result = strict_check(removed, answer, ground_truth=truth)
        assert isinstance(result.ok, bool) and (result.ok or result.reasons), round_
        assert all(isinstance(r, str) and "\n" not in r for r in result.reasons)
        assert isinstance(paper_check(removed, answer).ok, bool)
        for text in (removed, answer):
            masked = mask(text)
            assert len(masked) == len(text)
            strip_hints(text)
            count_hint_chars(text)
            skeleton(text)
            tokens(text)
            forbidden_constructs(text)
            assert isinstance(to_legacy(text), str)
            k = rng.randint(0, len(text))
            assert 0 <= statement_end(masked, k) <= len(text) and 0 <= clause_end(masked, k) <= len(text)
        data_defects(Task("x", "x.dfy", truth, removed))


@pytest.mark.parametrize("text", ["", " ", "{", "}", "{{{{", "))))", "assert", "assert x by {", "calc {", "invariant",
                                  "ghost var", "'", '"', "/*", "@\"", "\x00", "é" * 5, "case =>", "{:", "}{"])  # fmt: skip
def test_tiny_and_degenerate_texts(text):
    assert isinstance(strict_check(text, text).ok, bool)
    assert isinstance(strict_check("method M() {}", text, ground_truth=text).ok, bool)
    assert isinstance(to_legacy(text), str) and isinstance(strip_hints(text), str)
