"""Train the small transformer on a task, in a run folder with checkpoints, snapshots and --resume.

Adam (lr 1e-3), batches of 64 fresh sequences, MSE on the next state (regression: on the y
predictions only), as the authors. Each step's batch is drawn from a stream seeded by (seed, step),
so a resumed run sees the same batches as an uninterrupted one. Besides the resume checkpoint, the
run keeps `snapshots` copies of the weights spread over training (`snapshot-<step>`), which
criterion 2 probes to relate encoding quality to performance along training.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from intelligible.core.errors import ConfigError, DataError
from intelligible.core.memory import check_fits
from intelligible.core.progress import progress
from intelligible.core.runs import RunDir, interrupt_guard
from intelligible.core.seeding import seed_everything
from intelligible.worldmodel.data import DEFAULT_LENGTH, TASKS, SequenceBatch, generate
from intelligible.worldmodel.model import MAX_HIDDEN, MAX_LAYERS, PhysicsTransformer

KIND = "worldmodel-train"
MAX_STEPS = 10_000_000
MAX_BATCH = 1 << 16
MAX_LENGTH = 4096
SEED_LIMIT = 2**32
Task = Literal["sho-undamped", "sho-underdamped", "sho-overdamped", "regression"]


@dataclass
class TrainConfig:
    """One model: task, size, schedule."""

    task: Task = "sho-undamped"
    layers: int = 3
    hidden: int = 16
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    length: int = 0  # states per sequence (regression: pairs); 0: the task's default (65 or 32)
    n_val: int = 512  # held-out sequences for the validation and out-of-distribution MSE
    snapshots: int = 5  # weight snapshots spread over training, for criterion 2
    checkpoint_every: int = 500
    seed: int = 0
    device: str = "cpu"

    def validate(self) -> None:
        """ConfigError for a value out of range, before anything is written."""
        if self.task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {str(self.task)[:80]!r}")
        _check_int("layers", self.layers, 1, MAX_LAYERS)
        _check_int("hidden", self.hidden, 1, MAX_HIDDEN)
        _check_int("steps", self.steps, 1, MAX_STEPS)
        _check_int("batch_size", self.batch_size, 1, MAX_BATCH)
        _check_int("length", self.length, 0, MAX_LENGTH)
        if self.length == 1:
            raise ConfigError("length must be at least 2 (or 0 for the task's default)")
        _check_int("n_val", self.n_val, 8, 1 << 20)
        _check_int("snapshots", self.snapshots, 0, 1000)
        _check_int("checkpoint_every", self.checkpoint_every, 1, MAX_STEPS)
        _check_int("seed", self.seed, 0, SEED_LIMIT - 1)
        if not (isinstance(self.lr, float | int) and math.isfinite(self.lr) and 0 < self.lr <= 10):
            raise ConfigError(f"lr must be a number above 0 and at most 10, got {str(self.lr)[:80]}")
        check_device(self.device)

    @property
    def seq_length(self) -> int:
        return self.length or DEFAULT_LENGTH[self.task]

    @property
    def positions(self) -> int:
        """Tokens the model reads per sequence."""
        return 2 * self.seq_length - 1 if self.task == "regression" else self.seq_length - 1


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high:,}, got {str(value)[:80]}")


def check_device(device: str) -> torch.device:
    """The torch device for `device` ("cpu", "cuda", "cuda:1"); ConfigError when unknown or absent."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device must be cpu or cuda[:N], got {str(device)[:80]!r}") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device {device!r} was asked for, but no CUDA device is available; use --device cpu"
        )
    if parsed.type not in ("cpu", "cuda"):
        raise ConfigError(f"device must be cpu or cuda[:N], got {str(device)[:80]!r}")
    return parsed


def build_model(config: TrainConfig) -> PhysicsTransformer:
    """The transformer for `config`'s task and size (seeded by config.seed)."""
    torch.manual_seed(config.seed)
    width = 1 if config.task == "regression" else 2
    return PhysicsTransformer(
        width, width, layers=config.layers, hidden=config.hidden, max_len=config.positions
    )


def batch_for_step(config: TrainConfig, step: int, n: int | None = None) -> SequenceBatch:
    """The training batch of `step`: depends on (seed, step) only."""
    seed = int(np.random.SeedSequence([config.seed, step]).generate_state(1)[0])
    return generate(config.task, n or config.batch_size, split="train", seed=seed, length=config.seq_length)


def masked_loss(output: torch.Tensor, batch: SequenceBatch) -> torch.Tensor:
    """MSE at the loss positions (every position for the oscillator, the y predictions for regression)."""
    return ((output - batch.targets.to(output.device)) ** 2)[:, batch.loss_mask.to(output.device)].mean()


def evaluate(model: torch.nn.Module, batch: SequenceBatch, batch_size: int = 512) -> float:
    """The model's MSE on `batch` at its loss positions."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for start in range(0, len(batch), batch_size):
            part = batch.subset(slice(start, start + batch_size))
            total += float(masked_loss(model(part.inputs.to(device)), part)) * len(part)
            count += len(part)
    model.train(was_training)
    return total / count


def validation_sets(config: TrainConfig) -> dict[str, SequenceBatch]:
    """Held-out sets: in-distribution validation and out-of-distribution test (fixed seeds)."""
    return {
        "val": generate(
            config.task, config.n_val, split="train", seed=config.seed + 10_007, length=config.seq_length
        ),
        "ood": generate(
            config.task, config.n_val, split="ood", seed=config.seed + 20_011, length=config.seq_length
        ),
    }


def snapshot_steps(config: TrainConfig) -> list[int]:
    """The steps after which a snapshot is kept: spread geometrically, the last one at the end."""
    if config.snapshots == 0:
        return []
    points = np.unique(
        np.round(np.geomspace(max(1, config.steps / 50), config.steps, config.snapshots)).astype(int)
    )
    return [int(p) for p in points]


def train(config: TrainConfig, out_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
          quiet: bool | None = None) -> dict:  # fmt: skip
    """Train one model in run folder `out_dir`; returns the summary (also in summary.json).

    The config and folder are checked before anything is written; a checkpoint is written every
    `checkpoint_every` steps and on Ctrl-C, and `resume=True` continues from it.
    """
    if resume and overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it; give only one")
    config.validate()
    # activations kept for the backward pass (about 40 floats per token and hidden unit per layer, and
    # the attention matrices), and the validation sets
    tokens = config.batch_size * config.positions
    needed = 4 * config.layers * (40 * tokens * config.hidden + 3 * config.batch_size * config.positions**2)
    needed += 2 * 4 * config.n_val * (config.positions + 1) * 2
    check_fits(needed, f"training batches of {config.batch_size} x {config.positions} tokens",
               "lower --batch-size, --length or --hidden", device=config.device)  # fmt: skip
    RunDir.check(out_dir, config, config.seed, resume=resume, overwrite=overwrite, kind=KIND)
    existing = RunDir(out_dir)
    if resume and existing.config_path.is_file() and (existing.path / "summary.json").is_file():
        return json.loads((existing.path / "summary.json").read_text(encoding="utf-8"))
    saved = existing.load_checkpoint() if resume and existing.config_path.is_file() else None
    device = check_device(config.device)
    seed_everything(config.seed)
    model = build_model(config).to(device)
    optimiser = Adam(list(model.parameters()), lr=config.lr)
    step, elapsed_before = 0, 0.0
    if saved is not None:
        tensors, state = saved
        try:
            model.load_state_dict(
                {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
            )
            optimiser.load(tensors, state["optimiser"])
            step, elapsed_before = int(state["step"]), float(state["elapsed_s"])
        except (KeyError, RuntimeError, TypeError, ValueError) as error:
            raise DataError(f"the checkpoint in {existing.path} cannot be resumed: {error}") from None
    run = RunDir.create(out_dir, config, config.seed, resume=resume, overwrite=overwrite, kind=KIND)
    run.truncate_metrics(step)
    held_out = validation_sets(config)
    keep = set(snapshot_steps(config))
    started = time.perf_counter()

    def save(at_step: int) -> None:
        tensors, state = optimiser.state()
        tensors.update({f"model.{k}": v for k, v in model.state_dict().items()})
        elapsed = elapsed_before + time.perf_counter() - started
        run.save_checkpoint(tensors, {"step": at_step, "optimiser": state, "elapsed_s": elapsed})

    bar = progress(total=config.steps, desc=f"train {config.task}", disable=quiet)
    bar.update(step)
    with few_threads(device, config.hidden):
        _train_loop(model, optimiser, config, run, held_out, keep, bar, device, save, step)
    bar.close()
    summary = {
        "task": config.task, "layers": config.layers, "hidden": config.hidden, "steps": config.steps,
        "val_mse": evaluate(model, held_out["val"]), "ood_mse": evaluate(model, held_out["ood"]),
        "elapsed_s": elapsed_before + time.perf_counter() - started,
    }  # fmt: skip
    run.save_checkpoint(dict(model.state_dict()), {"step": config.steps, "model": model.config}, name="model")
    (run.path / "checkpoint.safetensors").unlink(missing_ok=True)
    (run.path / "checkpoint.json").unlink(missing_ok=True)
    run.write_json("summary.json", summary)
    return summary


@contextlib.contextmanager
def few_threads(device: torch.device, hidden: int) -> Iterator[None]:
    """One torch thread for the small models' steps on a CPU: their matrices (tokens x H, H <= 256) are
    too small to split, and a second thread that the machine's other work keeps waiting made each
    step several times slower when we measured (2 threads under load)."""
    if device.type != "cpu" or hidden > 256:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _train_loop(model, optimiser, config, run, held_out, keep, bar, device, save, step) -> None:  # noqa: ANN001
    """The steps from `step` to config.steps, with snapshots, checkpoints and Ctrl-C saving."""
    state = {"step": step}

    def save_here() -> None:
        save(state["step"])

    model.train()
    with interrupt_guard(save_here):
        while state["step"] < config.steps:
            batch = batch_for_step(config, state["step"])
            loss = masked_loss(model(batch.inputs.to(device)), batch)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            state["step"] += 1
            step = state["step"]
            bar.update(1)
            if step % 50 == 0 or step == config.steps:
                value = float(loss.detach())
                bar.set_postfix(loss=f"{value:.2e}")
                run.log_metrics(step, loss=value)
            if step in keep:
                val = evaluate(model, held_out["val"])
                run.log_metrics(step, snapshot=True, val_mse=val)
                run.save_checkpoint(
                    dict(model.state_dict()), {"step": step, "val_mse": val}, name=f"snapshot-{step:08d}"
                )
            if step % config.checkpoint_every == 0 and step < config.steps:
                save(step)


class Adam:
    """Adam (Kingma & Ba; torch.optim.Adam's update with its defaults), written out because the first
    `torch.optim` optimiser of a process imports torch._dynamo, seconds that the demo cannot spare."""

    def __init__(self, params: list[torch.nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:  # fmt: skip
        self.params, self.lr, self.betas, self.eps = list(params), lr, betas, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        correction1, correction2 = 1 - beta1**self.steps, 1 - beta2**self.steps
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m.mul_(beta1).add_(p.grad, alpha=1 - beta1)
            v.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
            denom = (v.sqrt() / math.sqrt(correction2)).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / correction1)

    def state(self) -> tuple[dict[str, torch.Tensor], dict]:
        """Moments as tensors, the step count as JSON."""
        tensors = {f"optim.m.{i}": m for i, m in enumerate(self.m)} | {
            f"optim.v.{i}": v for i, v in enumerate(self.v)
        }
        return tensors, {"steps": self.steps}

    def load(self, tensors: dict[str, torch.Tensor], state: dict) -> None:
        for i in range(len(self.params)):
            self.m[i].copy_(tensors[f"optim.m.{i}"])
            self.v[i].copy_(tensors[f"optim.v.{i}"])
        self.steps = int(state["steps"])


def load_run(run_dir: str | Path, snapshot: str = "model") -> tuple[PhysicsTransformer, TrainConfig]:
    """The trained model (or one of its snapshots, by checkpoint name) and the config of a train run."""
    from intelligible.core.config import config_from_dict

    run = RunDir(run_dir)
    if not run.path.is_dir():
        raise DataError(
            f"{run.path} is not a folder; give the --out folder of `intelligible worldmodel train`"
        )
    record = run.read_config()
    if record.get("kind") != KIND:
        raise DataError(f"{run.path} is not a `worldmodel train` run (its kind is {record.get('kind')!r})")
    config = config_from_dict(TrainConfig, record["config"])
    saved = run.load_checkpoint(snapshot)
    if saved is None:
        names = sorted(p.stem for p in run.path.glob("*.safetensors"))
        raise DataError(
            f"{run.path} has no {snapshot!r} weights (the run may not have finished: resume it with "
            f"`worldmodel train --resume`); it holds: {', '.join(names) or 'none'}"
        )
    tensors, _ = saved
    model = build_model(config)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        raise DataError(
            f"{run.path}/{snapshot}.safetensors does not fit the run's model: {str(error)[:200]}"
        ) from None
    return model.eval(), config


def snapshots_of(run_dir: str | Path) -> list[str]:
    """The snapshot names a train run kept, in step order."""
    return sorted(p.stem for p in Path(run_dir).glob("snapshot-*.safetensors"))
