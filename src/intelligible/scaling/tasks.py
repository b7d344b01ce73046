"""Toy regression tasks as data generators: one subtask, subtasks in parallel, a composite in series.

A task has `n_inputs` input variables x0..x{n-1} and one output per subtask. Each subtask is a formula
(parsed by the project's bounded parser, so a user's formula is either valid or a one-line error)
that reads some of the inputs; the inputs it reads and the output it writes are what the neuron
count of `allocation.py` uses to decide which subtask a neuron serves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError
from intelligible.symbolic.parse import Formula, parse_formula

# name -> (subtask formulas, intermediate formula or None, default number of hidden layers)
BUILTIN_TASKS: dict[str, tuple[tuple[str, ...], str | None, int]] = {
    # a single 1-D regression, y = x^2
    "square": (("x0**2",), None, 1),
    # two subtasks side by side, (x1, x2) -> (x1^2, x2^2), weighted beta and 1 - beta
    "parallel": (("x0**2", "x1**2"), None, 1),
    # a composite in series, y = sqrt(g) with g = (x1 - x2)^2 + (x3 - x4)^2, through a deeper MLP
    "series": (("sqrt((x0 - x1)**2 + (x2 - x3)**2)",), "(x0 - x1)**2 + (x2 - x3)**2", 2),
}
TASK_NAMES = (*BUILTIN_TASKS, "function")
MAX_INPUTS = 64


@dataclass
class Subtask:
    """One output of a task: its formula and the input variables the formula reads."""

    formula: Formula
    inputs: tuple[int, ...]

    @property
    def text(self) -> str:
        return self.formula.text


@dataclass
class Task:
    """A regression task: inputs x0..x{n_inputs-1}, one output per subtask, an optional intermediate."""

    name: str
    n_inputs: int
    subtasks: list[Subtask]
    intermediate: Formula | None = None
    default_depth: int = 1
    texts: tuple[str, ...] = field(default=())

    @property
    def n_outputs(self) -> int:
        return len(self.subtasks)

    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, n_outputs): each subtask's value at the points `x` (batch, n_inputs)."""
        return torch.stack([s.formula(x) for s in self.subtasks], dim=1).to(x.dtype)

    def sample(
        self, n: int, low: float, high: float, seed: int, dtype: torch.dtype = torch.float32
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`n` points drawn uniformly from [low, high]^n_inputs (seeded) and their targets.

        Raises ConfigError when a subtask is not finite somewhere on the sample (log(x0) on
        negative inputs, 1/x0 at 0), naming the subtask and a point where it fails.
        """
        generator = torch.Generator().manual_seed(int(seed))
        x = low + (high - low) * torch.rand(n, self.n_inputs, generator=generator, dtype=torch.float64)
        y = self.targets(x)
        bad = ~torch.isfinite(y)
        if bad.any():
            row, column = (int(i) for i in bad.nonzero()[0])
            point = ", ".join(f"x{i}={float(v):.3g}" for i, v in enumerate(x[row]))
            raise ConfigError(
                f"the function {shown(self.subtasks[column].text)} is not finite at {point} inside the "
                f"input range [{low:g}, {high:g}]; choose another --x-low/--x-high or another function"
            )
        return x.to(dtype), y.to(dtype)


def _subtask(text: str, n_var: int | None = None) -> Subtask:
    formula = parse_formula(text, n_var)
    used = sorted(int(str(symbol)[1:]) for symbol in formula.sympy.free_symbols)
    return Subtask(formula=formula, inputs=tuple(used))


def make_task(name: str, functions: tuple[str, ...] | list[str] = ()) -> Task:
    """The task `name` (square, parallel, series), or `function` with one subtask per formula.

    Formulas are in x0, x1, ... (e.g. "sin(pi*x0)", "x0*x1"); the task's inputs are x0 up to the
    highest variable any of them reads.
    """
    if name in BUILTIN_TASKS:
        if functions:
            raise ConfigError(
                f"--functions apply to --task function only; task {name!r} has its own "
                f"({', '.join(BUILTIN_TASKS[name][0])})"
            )
        texts, intermediate, depth = BUILTIN_TASKS[name]
        subtasks = [_subtask(text) for text in texts]
        n_inputs = max(max(s.inputs) for s in subtasks) + 1
        inter = parse_formula(intermediate) if intermediate else None
        return Task(name, n_inputs, subtasks, inter, depth, tuple(texts))
    if name != "function":
        raise ConfigError(f"unknown task {shown(name)}; valid tasks: {', '.join(TASK_NAMES)}")
    if not functions:
        raise ConfigError(
            'task "function" needs --functions, e.g. --functions "sin(pi*x0)" (one per subtask)'
        )
    subtasks = [_subtask(text) for text in functions]
    n_inputs = max(max(s.inputs) for s in subtasks) + 1
    if n_inputs > MAX_INPUTS:
        raise ConfigError(f"the functions read {n_inputs} inputs; at most {MAX_INPUTS} are supported")
    return Task("function", n_inputs, subtasks, None, 1, tuple(functions))


def subtask_weights(n_subtasks: int, beta: float) -> list[float]:
    """Loss weights: subtask 0 gets beta, the others share 1 - beta equally (1 for a single subtask)."""
    if n_subtasks == 1:
        return [1.0]
    rest = (1.0 - beta) / (n_subtasks - 1)
    return [beta] + [rest] * (n_subtasks - 1)
