"""DafnyBench (Loughridge et al. 2024): a harness for LLM-written Dafny verification hints — data and
its defects, hint removal, a verifier wrapper with a Dafny 4 -> legacy compatibility layer, the
paper's and a strict spec check, the feedback loop, and the analysis of results."""

from intelligible.dafnybench.analysis import (
    read_published,
    read_results_csv,
    rescore,
    success_at,
    success_curve,
)
from intelligible.dafnybench.checks import CheckResult, paper_check, strict_check
from intelligible.dafnybench.compat import to_legacy
from intelligible.dafnybench.data import Defect, Task, data_defects, load_tasks
from intelligible.dafnybench.experiment import default_tasks, reproduce, self_check
from intelligible.dafnybench.hints import find_hints, strip_hints
from intelligible.dafnybench.prompts import extract_program, feedback_message, first_messages
from intelligible.dafnybench.runner import RunConfig, TaskResult, run, solve_task
from intelligible.dafnybench.verifier import Verdict, Verifier, dafny_version, find_dafny

__all__ = [
    "CheckResult",
    "Defect",
    "RunConfig",
    "Task",
    "TaskResult",
    "Verdict",
    "Verifier",
    "dafny_version",
    "data_defects",
    "default_tasks",
    "extract_program",
    "feedback_message",
    "find_dafny",
    "find_hints",
    "first_messages",
    "load_tasks",
    "paper_check",
    "read_published",
    "read_results_csv",
    "rescore",
    "reproduce",
    "run",
    "self_check",
    "solve_task",
    "strict_check",
    "strip_hints",
    "success_at",
    "success_curve",
    "to_legacy",
]
