"""The benchmark loop: feedback turns, per-task problems recorded without stopping the run, resuming,
the official results CSV, and a real HTTP round trip through the OpenAI-protocol client."""

from __future__ import annotations

import json

import pytest
from tests.chat_server import FakeServer
from tests.dafnybench.conftest import LOOP, VERIFIED

from intelligible.core.errors import ConfigError
from intelligible.dafnybench.analysis import read_results_csv, success_at
from intelligible.dafnybench.data import Task
from intelligible.dafnybench.hints import strip_hints
from intelligible.dafnybench.prompts import extract_program
from intelligible.dafnybench.runner import RunConfig, run
from intelligible.lm.chat import ChatError, ChatReply, OpenAIChat

LOOP_TASK = Task("001", "double.dfy", LOOP, strip_hints(LOOP))
TRIVIAL_TASK = Task("002", "abs.dfy", VERIFIED, VERIFIED)  # verifies without hints: attempt 0
WRONG = LOOP.replace("    invariant s == 2 * i\n", "    invariant s == 2 * i + 0 * s\n    invariant s >= 1\n")


class Scripted:
    """A chat client whose replies are written in advance; it records every conversation it saw."""

    def __init__(self, replies: list) -> None:
        self.replies, self.seen = list(replies), []

    def chat(self, messages, *, max_tokens=4096, temperature=0.3):  # noqa: ANN001, ANN201
        self.seen.append([dict(m) for m in messages])
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return ChatReply(reply, "scripted", 10, 20, None, False, 0.0)


def test_feedback_turns_until_the_answer_verifies(tmp_path, verifier):
    client = Scripted(["", "I am not sure.", f"```dafny\n{WRONG}```", f"<answer>\n{LOOP}</answer>"])
    results = run([LOOP_TASK], tmp_path, RunConfig(attempts=5, workers=1), client=client, verifier=verifier,
                  progress=False)  # fmt: skip
    assert results[0].success_on_attempt == 4 and results[0].attempts == 4
    attempts = [json.loads(line) for line in (tmp_path / "attempts.jsonl").read_text().splitlines()]
    assert [a["status"] for a in attempts] == ["no_program", "no_program", "failed", "verified"]
    assert attempts[0]["error"] == "empty reply" and attempts[1]["error"] == "the reply holds no Dafny code"
    # the third conversation ends with the verifier's error, as in the paper's feedback turn
    last_turn = client.seen[3][-1]["content"]
    assert last_turn.startswith("This answer got Dafny verification error:") and "invariant" in last_turn
    assert client.seen[0][0]["role"] == "system" and LOOP_TASK.hints_removed in client.seen[0][1]["content"]
    assert (tmp_path / "results_summary.csv").read_text() == (
        "test_ID,test_file,success_on_attempt_#\n001,double.dfy,4\n"
    )


def test_a_cheating_answer_is_not_a_success_and_gets_the_reason_back(tmp_path, verifier):
    cheat = LOOP.replace("  s := 0;\n", "  s := 0;\n  assume {:axiom} false;\n")
    client = Scripted([cheat, cheat])
    results = run([LOOP_TASK], tmp_path, RunConfig(attempts=2, workers=1), client=client, verifier=verifier,
                  progress=False)  # fmt: skip
    assert results[0].success_on_attempt is None
    feedback = client.seen[1][-1]["content"]
    assert "adds assume" in feedback and "{:verify false} or assume false" in feedback
    paper = run([LOOP_TASK], tmp_path / "paper", RunConfig(attempts=1, workers=1, check="paper"),
                client=Scripted([cheat]), verifier=verifier, progress=False)  # fmt: skip
    assert paper[0].success_on_attempt == 1  # the official check lets `assume {:axiom} false` through


def test_an_api_error_is_recorded_for_its_task_and_the_run_goes_on(tmp_path, verifier):
    tasks = [LOOP_TASK, TRIVIAL_TASK, Task("003", "again.dfy", LOOP, strip_hints(LOOP))]
    client = Scripted([ChatError("HTTP 500 from the server: overloaded", status=500), LOOP])
    results = run(tasks, tmp_path, RunConfig(attempts=3, workers=1), client=client, verifier=verifier,
                  progress=False)  # fmt: skip
    by_id = {r.test_id: r for r in results}
    assert by_id["001"].success_on_attempt is None and "overloaded" in by_id["001"].error
    assert by_id["002"].success_on_attempt == 0 and by_id["002"].attempts == 0  # no model call needed
    assert by_id["003"].success_on_attempt == 1
    outcomes = read_results_csv(tmp_path / "results_summary.csv")
    assert outcomes == {"001": None, "002": 0, "003": 1}
    assert success_at(outcomes, 1) == pytest.approx(2 / 3)
    assert success_at(outcomes, 1, without_trivial=True) == pytest.approx(1 / 2)


def test_a_rerun_resumes_and_refuses_a_different_config(tmp_path, verifier):
    run([LOOP_TASK], tmp_path, RunConfig(attempts=2, workers=1), client=Scripted([LOOP]), verifier=verifier,
        progress=False)  # fmt: skip
    untouched = Scripted([])  # would raise if asked anything
    results = run([LOOP_TASK, TRIVIAL_TASK], tmp_path, RunConfig(attempts=2, workers=1), client=untouched,
                  verifier=verifier, progress=False)  # fmt: skip
    assert [r.success_on_attempt for r in results] == [1, 0] and untouched.seen == []
    with pytest.raises(ConfigError, match="different attempts"):
        run([LOOP_TASK], tmp_path, RunConfig(attempts=5, workers=1), client=untouched, verifier=verifier)
    with pytest.raises(ConfigError, match="check must be one of strict, paper"):
        run([LOOP_TASK], tmp_path / "x", RunConfig(check="lenient"), client=untouched, verifier=verifier)


def test_end_to_end_over_http_with_usage_accounting(tmp_path, verifier):
    server = FakeServer(replies=[f"Here you go:\n```dafny\n{WRONG}```", f"```\n{LOOP}```"])
    try:
        client = OpenAIChat(
            "my-model", base_url=f"{server.url}/v1", cache_dir=tmp_path / "cache", prices=(1.0, 2.0)
        )
        results = run([LOOP_TASK], tmp_path / "run", RunConfig(model="openai:my-model", attempts=3, workers=1),
                      client=client, verifier=verifier, progress=False)  # fmt: skip
    finally:
        server.close()
    assert results[0].success_on_attempt == 2
    assert [r["path"] for r in server.requests] == ["/v1/chat/completions"] * 2
    second = server.requests[1]["body"]["messages"]
    assert [m["role"] for m in second] == ["system", "user", "assistant", "user"]
    assert second[2]["content"] == extract_program(f"```dafny\n{WRONG}```")
    usage = json.loads((tmp_path / "run" / "usage.json").read_text())
    assert usage["requests"] == 2 and usage["input_tokens"] == 22 and usage["output_tokens"] == 6
    assert usage["cost_usd"] == pytest.approx(2 * (11 * 1.0 + 3 * 2.0) / 1e6)


def test_extraction_follows_the_papers_order():
    program = "method M() {}\n"
    assert extract_program(f"text <answer>\n{program}</answer> more ```dafny\nx\n```") == program
    assert extract_program(f"```python\nprint(1)\n```\n```dafny\n{program}```") == program
    assert extract_program(f"```\n{program}```") == program
    assert extract_program(program) == program
    from intelligible.core.errors import DataError

    with pytest.raises(DataError, match="empty reply"):
        extract_program("   \n")
    with pytest.raises(DataError, match="no Dafny code"):
        extract_program("Sorry, I cannot help with that.")
