"""MIPS: program synthesis via mechanistic interpretability (Michaud et al. 2024).

Train a small RNN on an algorithmic sequence task, then distil what it learned into Python code.
This package starts with the benchmark: the paper's 62 tasks as seeded generators
(`TASKS`, `get_task`, `split`) and a reader for a user's own task files (`load_task_file`).
"""

from intelligible.mips.tasks import TASKS, Task, get_task, load_task_file, split, task_names

__all__ = ["TASKS", "Task", "get_task", "load_task_file", "split", "task_names"]
