"""The sweep: a widths x alphas x betas x seeds grid of MLPs on one task, trained as batched programs,
then measured (losses per subtask, neurons allocated per subtask by weights and by ablation, the
intermediate variable of a series task)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError
from intelligible.core.memory import check_fits
from intelligible.scaling.allocation import (
    ablation_losses,
    agreement,
    allocated_by_ablation,
    allocated_by_weights,
    intermediate_correlation,
)
from intelligible.scaling.mlp import ACTIVATIONS, BatchedMLP, Spec, fused_reason, train_batched
from intelligible.scaling.tasks import TASK_NAMES, Task, make_task, subtask_weights

SEED_LIMIT = 2**32
MAX_WIDTH = 100_000
MAX_DEPTH = 8
MAX_STEPS = 10_000_000
MAX_RUNS = 100_000
MAX_POINTS = 10_000_000
# floats of hidden activations trained at once; a larger grid is split into several batched programs.
# Measured on 2 cores: 16 models of width 1000 on 256 points (4M floats) cost 10.5 ms per model-step,
# 50 at once 18 ms (out of cache), so a group stops near 4M
GROUP_ELEMENTS = 2**22


@dataclass
class SweepConfig:
    """A sweep of MLPs on one task. Lists are comma-separated on the command line.

    task: square | parallel | series | function (then give --functions, one formula per subtask).
    widths, alphas, betas, seeds: the grid (every combination is one model). betas weight subtask 0
      against the rest (loss beta MSE_0 + (1 - beta) MSE_1); a single-subtask task ignores them.
    depth: hidden layers (0: the task's own, 1 for square/parallel/function, 2 for series).
    l1: weight of the sparsity penalty sum |W| over all weight matrices (0: a plain width sweep).
    threshold: a weight counts when its magnitude exceeds this (the paper: 1e-3).
    ablation_tol: zeroing a counted neuron must raise its subtask's MSE by this fraction to confirm it.
    steps, lr, lr_final: full-batch Adam, learning rate decayed by cosine to lr * lr_final.
    n_train, n_test, x_low, x_high, data_seed: the data, uniform on [x_low, x_high]^inputs.
    """

    task: str = "square"
    functions: tuple[str, ...] = ()
    widths: tuple[int, ...] = (100,)
    alphas: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0)
    betas: tuple[float, ...] = (0.5,)
    seeds: tuple[int, ...] = (0, 1, 2)
    depth: int = 0
    activation: Literal["relu", "silu", "tanh"] = "relu"
    l1: float = 1e-3
    threshold: float = 1e-3
    ablation_tol: float = 0.01
    steps: int = 2000
    lr: float = 1e-2
    lr_final: float = 0.01
    n_train: int = 256
    n_test: int = 2048
    x_low: float = -1.0
    x_high: float = 1.0
    data_seed: int = 0
    device: str = "cpu"

    def validate(self) -> Task:
        """Check every value (ConfigError naming it); return the parsed task."""
        for name in ("widths", "alphas", "seeds"):
            values = getattr(self, name)
            if not values:
                raise ConfigError(
                    f"the sweep is empty: --{name} lists no value; give at least one, e.g. --{name} 1,2"
                )
        for width in self.widths:
            if isinstance(width, bool) or not isinstance(width, int) or not 1 <= width <= MAX_WIDTH:
                raise ConfigError(f"widths must be whole numbers from 1 to {MAX_WIDTH}, got {shown(width)}")
        for alpha in self.alphas:
            if not (isinstance(alpha, int | float) and math.isfinite(alpha) and alpha > 0):
                raise ConfigError(f"alphas must be positive numbers, got {shown(alpha)}")
        for seed in self.seeds:
            _check_seed(seed, "seeds")
        _check_seed(self.data_seed, "data_seed")
        if self.task not in TASK_NAMES:
            raise ConfigError(f"unknown task {shown(self.task)}; valid tasks: {', '.join(TASK_NAMES)}")
        task = make_task(self.task, tuple(self.functions))
        if task.n_outputs > 1 and not self.betas:
            raise ConfigError("the sweep is empty: --betas lists no value; give e.g. --betas 0.5,0.9")
        for beta in self.betas:
            if not (isinstance(beta, int | float) and 0 < beta < 1):
                raise ConfigError(f"betas must lie strictly between 0 and 1, got {shown(beta)}")
        if not 0 <= self.depth <= MAX_DEPTH:
            raise ConfigError(
                f"depth must be 0 (the task's own) to {MAX_DEPTH} hidden layers, got {self.depth}"
            )
        if self.activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation must be one of {', '.join(ACTIVATIONS)}, got {shown(self.activation)}"
            )
        _check_float("l1", self.l1, low=0.0)
        _check_float("threshold", self.threshold, low=0.0, strict=True)
        _check_float("ablation_tol", self.ablation_tol, low=0.0, strict=True)
        _check_float("lr", self.lr, low=0.0, strict=True)
        _check_float("lr_final", self.lr_final, low=0.0, high=1.0)
        for name, high in (("steps", MAX_STEPS), ("n_train", MAX_POINTS), ("n_test", MAX_POINTS)):
            value = getattr(self, name)
            if not 1 <= value <= high:
                raise ConfigError(f"{name} must be a whole number from 1 to {high}, got {value}")
        if not self.x_low < self.x_high:
            raise ConfigError(f"x_low must be below x_high, got x_low={self.x_low:g}, x_high={self.x_high:g}")
        n_runs = len(self.specs(task))
        if n_runs > MAX_RUNS:
            raise ConfigError(
                f"the sweep has {n_runs} models; at most {MAX_RUNS}: give fewer widths, alphas, betas or seeds"
            )
        if self.device != "cpu" and not self.device.startswith("cuda"):
            raise ConfigError(f"device must be cpu or cuda[:N], got {shown(self.device)}")
        if self.device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(
                f"device {shown(self.device)} asked for, but torch sees no CUDA device; use --device cpu"
            )
        group = min(n_runs, max(1, GROUP_ELEMENTS // (self.n_train * max(self.widths))))
        # activations and their gradients for one group (about 8 copies), plus the test pass
        needed = 8 * 4 * group * max(self.n_train, self.n_test) * max(self.widths) * self.hidden_layers(task)
        check_fits(needed, f"{group} models of width {max(self.widths)} on {max(self.n_train, self.n_test)} points",
                   "lower --n-train/--n-test or the widths", device=self.device)  # fmt: skip
        # finite on the range? The first k points of a sample are the k-point sample of the same seed,
        # so checking a prefix of the training and the test sets checks what the run will draw.
        task.sample(min(self.n_train, 100_000), self.x_low, self.x_high, self.data_seed)
        task.sample(min(self.n_test, 100_000), self.x_low, self.x_high, self.data_seed + 1)
        return task

    def hidden_layers(self, task: Task) -> int:
        return self.depth or task.default_depth

    def specs(self, task: Task) -> list[Spec]:
        """The grid, one Spec per model, widest last (so groups of similar width pad little)."""
        betas = self.betas if task.n_outputs > 1 else (None,)
        grid = itertools.product(self.widths, self.alphas, betas, self.seeds)
        specs = [
            Spec(
                int(w), float(a), tuple(subtask_weights(task.n_outputs, b if b is not None else 0.5)), int(s)
            )
            for w, a, b, s in grid
        ]
        return sorted(specs, key=lambda spec: spec.width)


def _check_seed(value: object, option: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEED_LIMIT:
        raise ConfigError(f"{option}: a seed must be a whole number from 0 to 2^32 - 1, got {shown(value)}")


def _check_float(
    name: str, value: float, *, low: float, high: float | None = None, strict: bool = False
) -> None:
    bad = value <= low if strict else value < low
    if bad or (high is not None and value > high) or not math.isfinite(value):
        bound = f"above {low:g}" if strict else f"at least {low:g}"
        if high is not None:
            bound += f" and at most {high:g}"
        raise ConfigError(f"{name} must be {bound}, got {value!r}")


def group_specs(specs: list[Spec], n_points: int, depth: int) -> list[list[Spec]]:
    """Split a grid (sorted by width) into batched programs of at most GROUP_ELEMENTS hidden activations."""
    groups: list[list[Spec]] = []
    for spec in specs:
        if groups:
            group = groups[-1]
            if (len(group) + 1) * n_points * spec.width * depth <= GROUP_ELEMENTS:
                group.append(spec)
                continue
        groups.append([spec])
    return groups


def check_fused(fused: bool | None, depth: int, device: str, activation: str = "relu") -> None:
    """With `fused=True`, refuse (ConfigError, before any training) a grid the fused trainer cannot train."""
    reason = fused_reason(depth, device, activation) if fused else None
    if reason is not None:
        raise ConfigError(
            f"the fused trainer cannot train this sweep: {reason}; leave fused unset to use torch"
        )


def train_groups(
    config: SweepConfig,
    task: Task,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    specs: list[Spec] | None = None,
    fused: bool | None = None,
    disable_progress: bool | None = None,
) -> Iterator[BatchedMLP]:
    """Train the grid (`specs`, default the config's) group by group; yield each trained BatchedMLP.

    The groups bound the memory of the torch trainer and of `measure`. fused: None uses the fused
    CPU kernel wherever it applies (one hidden layer on the CPU), True insists on it, False uses torch.
    """
    depth = config.hidden_layers(task)
    check_fused(fused, depth, config.device, config.activation)
    for group in group_specs(specs if specs is not None else config.specs(task), x.shape[0], depth):
        net = BatchedMLP(task.n_inputs, task.n_outputs, depth, group, config.activation, config.device)
        train_batched(net, x, y, steps=config.steps, lr=config.lr, l1=config.l1, lr_final=config.lr_final,
                      desc=f"{task.name}: {len(group)} models", disable_progress=disable_progress,
                      fused=fused)  # fmt: skip
        yield net


def run_grid(
    config: SweepConfig,
    task: Task | None = None,
    *,
    disable_progress: bool | None = None,
    fused: bool | None = None,
) -> list[dict]:
    """Train the whole grid (as few batched programs as memory allows) and measure every model.

    Returns one record per model: its width, alpha, beta, seed, the test MSE of each subtask and
    the weighted loss, the neurons allocated to each subtask by weights and by ablation, their
    agreement, and for a task with an intermediate the best |r| of a hidden unit with it.
    fused: as in `train_groups` (None: the fused CPU kernel where it applies, else torch).
    """
    task = task or config.validate()
    check_fused(fused, config.hidden_layers(task), config.device, config.activation)
    x, y = task.sample(config.n_train, config.x_low, config.x_high, config.data_seed)
    x_test, y_test = task.sample(config.n_test, config.x_low, config.x_high, config.data_seed + 1)
    g_test = task.intermediate(x_test.double()).float() if task.intermediate is not None else None
    records = []
    for net in train_groups(config, task, x, y, fused=fused, disable_progress=disable_progress):
        records.extend(measure(net, task, config, x_test, y_test, g_test))
    return records


@torch.no_grad()
def measure(net: BatchedMLP, task: Task, config: SweepConfig, x: torch.Tensor, y: torch.Tensor,
            g: torch.Tensor | None) -> list[dict]:  # fmt: skip
    """Losses and allocations of every model of a trained BatchedMLP on test data."""
    device = net.weights[0].device
    x, y = x.to(device), y.to(device)
    subtasks = [(s.inputs, k) for k, s in enumerate(task.subtasks)]
    by_weights = allocated_by_weights(net.weights, subtasks, config.threshold)
    base, ablated = ablation_losses(net.weights, net.biases, net.masks, net.act, x, y)
    by_ablation = allocated_by_ablation(base, ablated, config.ablation_tol)
    # only real neurons: padded ones never count
    real = torch.stack(net.masks, dim=1)[:, None, :, 0, :].bool()
    by_weights &= real
    by_ablation &= real
    agree = agreement(by_weights, by_ablation)
    correlations = None
    if g is not None:
        _, pres, posts = net.forward(x, keep=True)  # type: ignore[misc]
        correlations = intermediate_correlation(pres, posts, g.to(device), net.masks)
    records = []
    for m, spec in enumerate(net.specs):
        weights = torch.tensor(spec.weights, device=device)
        per_subtask = by_weights[m].sum(dim=(1, 2))
        record = {
            "width": spec.width, "alpha": spec.alpha, "beta": spec.weights[0] if task.n_outputs > 1 else None,
            "seed": spec.seed, "mse": [float(v) for v in base[m]], "loss": float((weights * base[m]).sum()),
            "allocated": [int(v) for v in per_subtask],
            "allocated_total": int(by_weights[m].any(dim=0).sum()),
            "shared": int((by_weights[m].sum(dim=0) > 1).sum()),
            "allocated_ablation": [int(v) for v in by_ablation[m].sum(dim=(1, 2))],
            "agreement": float(agree[m]),
        }  # fmt: skip
        if correlations is not None:
            record["intermediate"] = correlations[m]
        records.append(record)
    return records
