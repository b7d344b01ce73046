"""The benchmark loop: for each task, ask a model for hints, verify, check the spec, feed errors back.

A run directory holds `config.json`, `attempts.jsonl` (every attempt: reply size, tokens, verdict,
check, reasons), `results.jsonl` (one line per finished task) and, when the run ends,
`results_summary.csv` in the official format (`test_ID,test_file,success_on_attempt_#`, with 0 for
a program that verifies without hints and `failed` otherwise). A rerun on the same directory skips
finished tasks, so an interrupted run resumes. Problems with one task (an API error, an empty reply,
a reply with no code) are recorded for that task and the run goes on.
"""

from __future__ import annotations

import csv
import io
import json
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from intelligible.core.errors import ConfigError, DataError, IntelligibleError
from intelligible.core.runs import atomic_write_text, ensure_writable_dir, package_versions
from intelligible.dafnybench.checks import paper_check, strict_check
from intelligible.dafnybench.data import Task
from intelligible.dafnybench.prompts import extract_program, feedback_message, first_messages
from intelligible.dafnybench.verifier import Verifier

CHECKS = ("strict", "paper")


@dataclass
class RunConfig:
    """How a model is run on the benchmark."""

    model: str = "local:smollm2"  # a chat_client spec: openai:<model>, anthropic:<model>, local:<id or path>
    attempts: int = 10  # the published runs' number of tries with feedback
    check: str = "strict"
    max_tokens: int = 4096
    temperature: float = 0.3
    workers: int = 2  # tasks in flight at once (model calls and verifier runs overlap)
    base_url: str = ""  # for OpenAI-compatible local servers (vLLM, llama.cpp, Ollama, sglang)

    def validate(self) -> None:
        for name, low, high in (("attempts", 1, 100), ("workers", 1, 256), ("max_tokens", 1, 1_000_000)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name} must be a whole number in {low}..{high}, got {str(value)[:40]!r}")
        if self.check not in CHECKS:
            raise ConfigError(f"check must be one of {', '.join(CHECKS)}, got {str(self.check)[:40]!r}")
        temperature = self.temperature
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature)
            or not 0 <= temperature <= 2
        ):
            raise ConfigError(f"temperature must be a number in 0..2, got {str(temperature)[:40]!r}")


def check_answer(check: str, task: Task, answer: str) -> tuple[bool, list[str]]:
    """(passes, reasons) under the named spec check."""
    if check == "paper":
        result = paper_check(task.hints_removed, answer)
    else:
        result = strict_check(task.hints_removed, answer, ground_truth=task.ground_truth)
    return result.ok, result.reasons


@dataclass
class TaskResult:
    """The outcome of one task."""

    test_id: str
    test_file: str
    success_on_attempt: int | None  # 0: verifies without hints; None: failed
    attempts: int
    error: str | None = None
    final_program: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def solve_task(task: Task, client, verifier: Verifier, cfg: RunConfig, log=None) -> TaskResult:  # noqa: ANN001
    """Run one task: verify the hints-removed program first (0 attempts if it already verifies), then
    up to `cfg.attempts` replies with the verifier's errors and the check's reasons fed back."""
    log = log or (lambda record: None)
    if verifier.verify(task.hints_removed).ok:
        return TaskResult(task.test_id, task.test_file, 0, 0, final_program=task.hints_removed)
    messages = first_messages(task.hints_removed)
    result = TaskResult(task.test_id, task.test_file, None, 0)
    for attempt in range(1, cfg.attempts + 1):
        result.attempts = attempt
        record: dict = {"test_id": task.test_id, "attempt": attempt}
        try:
            reply = client.chat(messages, max_tokens=cfg.max_tokens, temperature=cfg.temperature)
        except IntelligibleError as error:  # an API error ends this task, not the run
            result.error = f"model error: {error}"
            log({**record, "status": "model_error", "error": str(error)})
            return result
        result.input_tokens += reply.input_tokens
        result.output_tokens += reply.output_tokens
        record.update(input_tokens=reply.input_tokens, output_tokens=reply.output_tokens, cached=reply.cached)
        try:
            program = extract_program(reply.text)
        except DataError as error:
            result.error = str(error)
            log({**record, "status": "no_program", "error": str(error), "reply_chars": len(reply.text)})
            messages += [{"role": "assistant", "content": reply.text or "(empty)"},
                         {"role": "user", "content": "Your reply contained no Dafny program. Please return the "
                                                     "complete program with the hints added."}]  # fmt: skip
            continue
        result.error = None
        result.final_program = program
        verdict = verifier.verify(program)
        passes, reasons = check_answer(cfg.check, task, program)
        log({**record, "status": verdict.status, "verifier_errors": verdict.errors, "check_ok": passes,
             "reasons": reasons, "seconds": round(verdict.seconds, 2)})  # fmt: skip
        if verdict.ok and passes:
            result.success_on_attempt = attempt
            return result
        messages += [
            {"role": "assistant", "content": program},
            feedback_message(None if verdict.ok else "\n".join(verdict.messages) or verdict.output,
                             spec_reasons=reasons if not passes else None),
        ]  # fmt: skip
    return result


def run(tasks: list[Task], out_dir: str | Path, cfg: RunConfig, *, client=None, verifier: Verifier | None = None,  # noqa: ANN001
        progress: bool = True) -> list[TaskResult]:  # fmt: skip
    """Run (or resume) the benchmark over `tasks` into `out_dir`; results in task order."""
    cfg.validate()
    out = ensure_writable_dir(out_dir)
    if client is None:
        from intelligible.lm.chat import chat_client

        kwargs = {"base_url": cfg.base_url} if cfg.base_url else {}
        client = chat_client(cfg.model, cache_dir=str(out / "chat-cache"), **kwargs)
    verifier = verifier or Verifier(cache_dir=out / "verdict-cache")
    config_file = out / "config.json"
    config = {
        "config": asdict(cfg),
        "dafny": verifier.version,
        "legacy": verifier.legacy,
        "versions": package_versions(),
    }
    if config_file.is_file():
        saved = json.loads(config_file.read_text()).get("config", {})
        changed = [k for k in ("model", "attempts", "check") if saved.get(k) != asdict(cfg)[k]]
        if changed:
            raise ConfigError(f"{out} holds a run with different {', '.join(changed)}; use a new folder")
    atomic_write_text(config_file, json.dumps(config, indent=2))
    done = {r["test_id"]: r for r in read_jsonl(out / "results.jsonl")}
    lock = threading.Lock()

    def append(name: str, record: dict) -> None:
        with lock, open(out / name, "a") as handle:  # one line per write: a crash loses at most this line
            handle.write(json.dumps(record) + "\n")

    todo = [t for t in tasks if t.test_id not in done]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=cfg.workers) as pool:
        futures = {pool.submit(solve_task, task, client, verifier, cfg, lambda r: append("attempts.jsonl", r)): task
                   for task in todo}  # fmt: skip
        for count, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            append("results.jsonl", result.to_dict())
            done[result.test_id] = result.to_dict()
            if progress:
                outcome = (
                    "failed" if result.success_on_attempt is None else f"attempt {result.success_on_attempt}"
                )
                print(f"[{count}/{len(todo)}] {result.test_id} {outcome} ({time.perf_counter() - start:.0f} s)",
                      flush=True)  # fmt: skip
    results = [TaskResult(**done[t.test_id]) for t in tasks if t.test_id in done]
    atomic_write_text(out / "results_summary.csv", summary_csv(results))
    usage = getattr(client, "usage", None)
    if usage is not None:
        atomic_write_text(out / "usage.json", json.dumps(usage.as_dict(), indent=2))
    return results


def read_jsonl(path: Path) -> list[dict]:
    """Records of a JSONL file; a torn last line (a crash mid-write) is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def summary_csv(results: list[TaskResult]) -> str:
    """The official `results_summary` CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["test_ID", "test_file", "success_on_attempt_#"])
    for r in results:
        writer.writerow(
            [r.test_id, r.test_file, "failed" if r.success_on_attempt is None else r.success_on_attempt]
        )
    return buffer.getvalue()
