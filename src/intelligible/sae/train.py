"""Training SAEs: the Switch/TopK papers' recipe, with checkpoints that resume the same trajectory.

Adam (fused where torch has it), lr = 2e-4 / sqrt(M / 2^14) unless given, linear warmup, linear
decay over the last `decay_fraction` of the steps, gradient clipping at 1, decoder rows renormalised
every step with the gradient component along each row removed, decoder bias (and Switch router
centre) initialised at the geometric median of the first batch. Dead latents: a latent that has not
fired for `dead_after_tokens` tokens counts as dead.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from intelligible.core.errors import ConfigError, DataError
from intelligible.core.progress import progress
from intelligible.core.runs import RunDir, interrupt_guard
from intelligible.lm.saes.models import Code, SparseAutoencoder, SwitchSAE


@dataclass
class TrainConfig:
    """Schedule and bookkeeping of one SAE training run."""

    steps: int = 1000
    batch: int = 4096
    lr: float = 0.0  # 0: the papers' rule 2e-4 / sqrt(M / 2^14)
    warmup_steps: int = 0
    decay_fraction: float = 0.2
    grad_clip: float = 1.0
    dead_after_tokens: int = 1_000_000
    checkpoint_every: int = 100
    seed: int = 0
    # Until-flat training: every `eval_every` steps the held-out MSE is measured (the learning curve);
    # when it improved by less than `plateau_tol` (relative) over the last `plateau_window`
    # evaluations, the lr decay starts, lasting decay_fraction of the run. `steps` is then a cap.
    eval_every: int = 0
    plateau_tol: float = 0.0
    plateau_window: int = 2

    def validate(self) -> None:
        """Range checks: a nan, a negative or an absurd value fails here, before any data is touched."""
        if not 1 <= self.steps <= MAX_STEPS:
            raise ConfigError(f"steps must be in 1..{MAX_STEPS:,}, got {self.steps}")
        if not 1 <= self.batch <= MAX_BATCH:
            raise ConfigError(f"batch must be in 1..{MAX_BATCH:,}, got {self.batch}")
        if not 0 <= self.lr <= MAX_LR:
            raise ConfigError(
                f"lr must be >= 0 (0 picks 2e-4 / sqrt(M / 2^14)) and at most {MAX_LR}, got {self.lr}"
            )
        if not 0 <= self.decay_fraction <= 1:
            raise ConfigError(f"decay_fraction must be in [0, 1], got {self.decay_fraction}")
        if not (0 <= self.warmup_steps <= MAX_STEPS and 1 <= self.checkpoint_every <= MAX_STEPS):
            raise ConfigError(
                f"warmup_steps must be >= 0 and checkpoint_every >= 1 (both at most {MAX_STEPS:,}), "
                f"got {self.warmup_steps}, {self.checkpoint_every}"
            )
        if not 0 < self.grad_clip <= 1e6:
            raise ConfigError(f"grad_clip must be in (0, 1e6], got {self.grad_clip}")
        if not 1 <= self.dead_after_tokens <= 2**62:
            raise ConfigError(f"dead_after_tokens must be in 1..2**62, got {self.dead_after_tokens}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be in 0..{MAX_SEED} (2**32 - 1), got {self.seed}")
        if not (
            0 <= self.eval_every <= MAX_STEPS
            and 0 <= self.plateau_tol < 1
            and 1 <= self.plateau_window <= 1000
        ):
            raise ConfigError(
                f"eval_every must be >= 0, plateau_tol in [0, 1) and plateau_window in 1..1000, got "
                f"{self.eval_every}, {self.plateau_tol}, {self.plateau_window}"
            )
        if self.plateau_tol and not self.eval_every:
            raise ConfigError("plateau_tol needs eval_every > 0 (the held-out MSE it watches)")
        if self.plateau_tol and self.decay_fraction >= 1:
            raise ConfigError("until-flat training needs decay_fraction < 1 (the decay follows the plateau)")

    @property
    def until_flat(self) -> bool:
        return self.plateau_tol > 0


# Plausibility limits: far beyond any real run, so a value past them is a typo (`1e30`), not a plan.
MAX_STEPS = 10**9
MAX_BATCH = 2**24
MAX_LR = 1.0
MAX_SEED = 2**32 - 1


def base_learning_rate(n_latents: int) -> float:
    """The Switch/TopK papers' rule: 2e-4 at M = 2^14 latents, scaled by 1 / sqrt(M / 2^14)."""
    return 2e-4 / math.sqrt(n_latents / 2**14)


def lr_factor(step: int, cfg: TrainConfig, decay_start: int | None = None) -> float:
    """Multiplier of the base rate at `step`: linear warmup, constant, linear decay to 0 at the end.

    The decay starts at `decay_start` when given (until-flat training: where the plateau was found),
    else at (1 - decay_fraction) of cfg.steps; it ends at `decay_end(decay_start, cfg)`.
    """
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    start = decay_start if decay_start is not None else int(cfg.steps * (1 - cfg.decay_fraction))
    end = decay_end(start, cfg)
    if step >= start and cfg.decay_fraction > 0 and end > start:
        return max(end - step, 0) / (end - start)
    return 1.0


def decay_end(decay_start: int, cfg: TrainConfig) -> int:
    """The last step + 1 of a run whose decay starts at `decay_start`: the decay is decay_fraction
    of the whole run (capped at cfg.steps)."""
    if decay_start >= int(cfg.steps * (1 - cfg.decay_fraction)) or cfg.decay_fraction >= 1:
        return cfg.steps
    length = max(round(decay_start * cfg.decay_fraction / (1 - cfg.decay_fraction)), 1)
    return min(decay_start + length, cfg.steps)


def plateau_reached(curve: list[tuple[int, float]], cfg: TrainConfig) -> bool:
    """True when the last held-out MSE is less than plateau_tol (relative) below the one
    plateau_window evaluations earlier."""
    if not cfg.until_flat or len(curve) <= cfg.plateau_window:
        return False
    before, now = curve[-1 - cfg.plateau_window][1], curve[-1][1]
    return before - now < cfg.plateau_tol * abs(before)


@torch.no_grad()
def heldout_mse(model: SparseAutoencoder, values: Tensor, chunk: int = 8192) -> float:
    """Mean squared reconstruction error (summed over d) of `values`, in chunks."""
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, values.shape[0], chunk):
        x = values[start : start + chunk]
        total += float((model(x)[0] - x).pow(2).sum())
    model.train(was_training)
    return total / max(values.shape[0], 1)


@torch.no_grad()
def geometric_median(points: Tensor, max_iter: int = 100, tol: float = 1e-5) -> Tensor:
    """Weiszfeld's iteration for the point minimising the sum of Euclidean distances to `points`."""
    guess = points.mean(dim=0)
    for _ in range(max_iter):
        distances = (points - guess).norm(dim=1).clamp_min(1e-12)
        weights = 1 / distances
        new = (weights[:, None] * points).sum(0) / weights.sum()
        if (new - guess).norm() < tol:
            return new
        guess = new
    return guess


class TensorBatches:
    """Batches from an in-memory activation matrix, reshuffled each epoch by a seeded permutation.

    `batch_at(step)` depends only on (seed, step), so a resumed run sees the same data as an
    uninterrupted one.
    """

    def __init__(self, activations: Tensor, batch: int, seed: int = 0) -> None:
        if activations.dim() != 2 or activations.shape[0] < batch:
            raise DataError(
                f"need an activation matrix (tokens, d) with at least batch = {batch} rows, got {tuple(activations.shape)}"
            )
        self.activations, self.batch, self.seed = activations, batch, seed
        self.per_epoch = activations.shape[0] // batch
        self._epoch, self._perm = -1, None

    def batch_at(self, step: int) -> Tensor:
        epoch, index = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._perm = torch.randperm(self.activations.shape[0], generator=generator)
            self._epoch = epoch
        return self.activations[self._perm[index * self.batch : (index + 1) * self.batch]]


class TrainHistory(list):
    """One metrics dict per step trained by this call (a list), plus what describes the whole run
    across resumed parts: `start_step` (where this part began), `parts` (1 for an uninterrupted run),
    `train_seconds` (wall time of every part together) and `final` (the last step's metrics, even
    when this part trained no step)."""

    def __init__(self, start_step: int = 0, parts: int = 1, seconds_before: float = 0.0,
                 final: dict[str, float] | None = None) -> None:  # fmt: skip
        super().__init__()
        self.start_step, self.parts, self.seconds_before = start_step, parts, seconds_before
        self.train_seconds = seconds_before
        self._final = final
        # until-flat training: (step, held-out MSE) of every evaluation, where the decay began,
        # whether a plateau began it (False: the step cap did), and the steps trained in all
        self.curve: list[tuple[int, float]] = []
        self.decay_start: int | None = None
        self.flattened: bool | None = None
        self.steps: int | None = None

    @property
    def final(self) -> dict[str, float] | None:
        return self[-1] if self else self._final


def _reduce_terms(terms: dict[str, Tensor], n_local: int, world: int) -> dict[str, float]:
    """The loss terms of the whole batch: each rank's per-token means weighted by its token count,
    summed over ranks (one all_reduce), so the logged numbers equal a single process's.

    Every rank gets the same numbers, so a non-finite loss on any rank is seen by all of them.
    """
    names = list(terms)
    reference = terms[names[0]]
    values = torch.stack(
        [terms[name].detach().to(reference.device, torch.float64).reshape(()) for name in names]
    )
    if world > 1:
        import torch.distributed as dist

        count = torch.tensor([float(n_local)], dtype=torch.float64, device=reference.device)
        packed = torch.cat([values * n_local, count])
        dist.all_reduce(packed)
        values = packed[:-1] / packed[-1]
    return dict(zip(names, values.tolist()))


def _world() -> tuple[int, int]:
    """(rank, world size) of an initialised torch.distributed group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _sharded(model: SparseAutoencoder) -> set[str]:
    """Names of parameters split over ranks by expert parallelism (empty otherwise)."""
    if getattr(model, "expert_shard", None) is None:
        return set()
    from intelligible.sae.parallel import SHARDED

    return set(SHARDED)


def _average_gradients(model: SparseAutoencoder, world: int) -> None:
    # data parallelism: every rank holds the same weights and a slice of the batch; averaging the
    # gradients makes the update the one a single process computes on the whole batch (the DDP rule)
    import torch.distributed as dist

    sharded = _sharded(model)
    grads = []
    for name, p in model.named_parameters():
        if p.grad is None:
            continue
        if name in sharded:
            # an expert's gradient already sums every rank's tokens (they came by all-to-all)
            p.grad /= world
        else:
            grads.append(p.grad)
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= world
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def _optimizer(model: SparseAutoencoder, lr: float) -> torch.optim.Optimizer:
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, TypeError):  # fused Adam is missing on some builds and devices
        return torch.optim.Adam(model.parameters(), lr=lr)


def _clip_gradients(model: SparseAutoencoder, max_norm: float) -> None:
    """clip_grad_norm_ over the whole model when some parameters are split over ranks."""
    sharded = _sharded(model)
    if not sharded:
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        return
    import torch.distributed as dist

    replicated_sq, sharded_sq = torch.zeros((), dtype=torch.float64), torch.zeros((), dtype=torch.float64)
    for name, p in model.named_parameters():
        if p.grad is not None:
            square = p.grad.double().pow(2).sum()
            if name in sharded:
                sharded_sq += square
            else:
                replicated_sq += square
    dist.all_reduce(sharded_sq)  # each rank holds different rows; replicated ones are counted once
    total = float((replicated_sq + sharded_sq).sqrt())
    coefficient = min(max_norm / (total + 1e-6), 1.0)  # torch's rule
    for p in model.parameters():
        if p.grad is not None:
            p.grad.mul_(coefficient)


def _fired(code: Code, n_latents: int) -> Tensor:
    if code.indices is None:
        return (code.values > 0).any(dim=0)
    fired = torch.zeros(n_latents, dtype=torch.bool, device=code.values.device)
    fired[code.indices[code.values > 0]] = True
    return fired


def _checkpoint_tensors(
    model: SparseAutoencoder, optimizer: torch.optim.Optimizer, since_fired: Tensor
) -> dict:
    """Model, Adam state and dead-latent counters; expert-parallel shards are gathered (a collective),
    so a checkpoint always holds the whole model and resumes on any number of processes."""
    sharded = _sharded(model)
    names = [name for name, _ in model.named_parameters()]
    if sharded:
        from intelligible.sae.parallel import gather_rows
    tensors = {}
    for key, value in model.state_dict().items():
        tensors[f"model.{key}"] = gather_rows(value) if key in sharded else value
    for index, state in optimizer.state_dict()["state"].items():
        for key, value in state.items():
            value = value if torch.is_tensor(value) else torch.tensor(value)
            if names[index] in sharded and value.dim() > 0:
                value = gather_rows(value)
            tensors[f"opt.{index}.{key}"] = value
    tensors["tokens_since_fired"] = since_fired
    return tensors


def _restore(model: SparseAutoencoder, optimizer: torch.optim.Optimizer, tensors: dict) -> Tensor:
    sharded = _sharded(model)
    names = [name for name, _ in model.named_parameters()]
    if sharded:
        from intelligible.sae.parallel import local_rows

        tensors = dict(tensors)
        for key, value in list(tensors.items()):
            weight = key.startswith("model.") and key[6:] in sharded
            adam_state = (
                key.startswith("opt.") and names[int(key.split(".")[1])] in sharded and value.dim() > 0
            )
            if weight or adam_state:
                tensors[key] = local_rows(value, model)
    model.load_state_dict({key[6:]: value for key, value in tensors.items() if key.startswith("model.")})
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("opt."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    saved = optimizer.state_dict()
    saved["state"] = state
    optimizer.load_state_dict(saved)
    return tensors["tokens_since_fired"]


def train(
    model: SparseAutoencoder,
    batches: TensorBatches,
    cfg: TrainConfig,
    *,
    run: RunDir | None = None,
    resume: bool = False,
    show_progress: bool | None = None,
    heldout: Tensor | None = None,
) -> TrainHistory:
    """Train `model` for cfg.steps steps on batches.batch_at(step); returns one metrics dict per step.

    With `run`, metrics go to metrics.jsonl and a checkpoint (model, Adam state, dead-latent counters,
    step, wall time so far, last metrics) is written every `checkpoint_every` steps, at the end and
    on Ctrl-C; `resume=True` continues from it: metrics.jsonl is cut back to the checkpoint's step
    (the steps after it are trained and logged again, once), and the returned TrainHistory's
    `train_seconds`, `parts` and `final` describe the whole run, not only the resumed part.

    With cfg.eval_every, the held-out MSE on `heldout` is logged every eval_every steps (the
    learning curve, `history.curve`); with cfg.plateau_tol too, the run trains until that curve
    flattens, then decays the lr (see TrainConfig), and `history.flattened` says whether it did
    before cfg.steps. Both survive a resume.

    Under torch.distributed (e.g. `torchrun --nproc-per-node N`), each rank trains on its 1/N slice
    of every batch and gradients are averaged, so the run follows the single-process trajectory
    (the Switch load-balance term counts expert loads over the whole batch). A Switch SAE sharded
    with `intelligible.sae.parallel.shard_experts` trains expert-parallel the same way. The logged
    terms are reduced over ranks (they equal the single-process numbers), and a non-finite loss on
    any rank stops every rank with the same error. Only rank 0 writes metrics and checkpoints; pass
    `run` on every rank.
    """
    cfg.validate()
    if cfg.eval_every and (heldout is None or heldout.dim() != 2 or heldout.shape[0] == 0):
        raise ConfigError("eval_every needs held-out activations (a non-empty (tokens, d) matrix)")
    rank, world = _world()
    if world > 1 and cfg.batch % world:
        raise ConfigError(f"batch {cfg.batch} must be divisible by the number of processes ({world})")
    if batches.batch != cfg.batch:
        raise ConfigError(f"the batch source yields {batches.batch} rows but cfg.batch is {cfg.batch}")
    base_lr = cfg.lr or base_learning_rate(model.n_latents)
    optimizer = _optimizer(model, base_lr)
    since_fired = torch.zeros(model.n_latents, dtype=torch.long)
    history = TrainHistory()
    if resume and run is not None:
        saved = run.load_checkpoint()
        if saved is not None:
            tensors, state = saved
            since_fired = _restore(model, optimizer, tensors)
            history = TrainHistory(int(state["step"]), int(state.get("parts", 1)) + 1,
                                   float(state.get("train_seconds", 0.0)), state.get("final"))  # fmt: skip
            history.curve = [(int(step), float(mse)) for step, mse in state.get("curve", [])]
            history.decay_start = state.get("decay_start")
        if rank == 0:
            # the steps after the checkpoint were logged by the crashed part; they are trained again
            run.truncate_metrics(history.start_step - 1)
    start = history.start_step
    sharded = bool(_sharded(model))
    clock = time.perf_counter()

    def checkpoint(step: int) -> None:
        history.train_seconds = history.seconds_before + time.perf_counter() - clock
        if run is None or (rank != 0 and not sharded):
            return
        tensors = _checkpoint_tensors(model, optimizer, since_fired)  # every rank gathers shards
        if rank == 0:
            state = {"step": step, "parts": history.parts, "train_seconds": history.train_seconds,
                     "final": history.final, "curve": history.curve, "decay_start": history.decay_start}  # fmt: skip
            run.save_checkpoint(tensors, state)

    def on_interrupt() -> None:
        # gathering shards needs every rank at the same point, which Ctrl-C does not promise; an
        # expert-parallel run resumes from its last periodic checkpoint instead
        if not sharded:
            checkpoint(done)

    model.train()
    done = start  # steps finished and logged: what a Ctrl-C checkpoint records
    bar = progress(range(start, cfg.steps), desc=f"sae {model.kind}",
                   disable=None if show_progress is None else not show_progress)  # fmt: skip
    end = decay_end(history.decay_start, cfg) if history.decay_start is not None else cfg.steps
    with interrupt_guard(on_interrupt):
        for step in bar:
            if step >= end:
                break
            if (
                cfg.until_flat
                and history.decay_start is None
                and step >= int(cfg.steps * (1 - cfg.decay_fraction))
            ):
                history.decay_start, end = step, cfg.steps  # the cap came before a plateau
            x = batches.batch_at(step)
            if step == 0:  # on the whole batch, identical on every rank
                with torch.no_grad():
                    median = geometric_median(x)
                    model.b_dec.copy_(median)
                    if isinstance(model, SwitchSAE):
                        model.b_router.copy_(median)
            for group in optimizer.param_groups:
                group["lr"] = base_lr * lr_factor(step, cfg, history.decay_start if cfg.until_flat else None)
            model.normalize_decoder()
            if world > 1:
                x = x[rank * (cfg.batch // world) : (rank + 1) * (cfg.batch // world)]
            terms = model.loss(x)
            # reduced before the backward pass, on every rank: all see the same loss and stop together
            metrics = _reduce_terms(terms, x.shape[0], world)
            if not math.isfinite(metrics["loss"]):
                raise DataError(f"training diverged at step {step} (loss {metrics['loss']}); lower the lr")
            optimizer.zero_grad(set_to_none=True)
            terms["loss"].backward()
            if world > 1:
                _average_gradients(model, world)
            _clip_gradients(model, cfg.grad_clip)
            model.remove_parallel_decoder_grad()
            optimizer.step()
            with torch.no_grad():
                code = model.last_code
                fired = _fired(code, model.n_latents)
                if world > 1:
                    import torch.distributed as dist

                    counts = fired.to(torch.int32)
                    dist.all_reduce(counts)
                    fired = counts > 0
                since_fired += x.shape[0] * world
                since_fired[fired] = 0
                dead = float((since_fired > cfg.dead_after_tokens).float().mean())
            metrics.update(dead_fraction=dead, lr=optimizer.param_groups[0]["lr"])
            if cfg.eval_every and (step + 1) % cfg.eval_every == 0:
                metrics["heldout_mse"] = heldout_mse(model, heldout)
                history.curve.append((step + 1, metrics["heldout_mse"]))
                if history.decay_start is None and plateau_reached(history.curve, cfg):
                    history.decay_start = step + 1
                    end = decay_end(step + 1, cfg)
            history.append(metrics)
            if run is not None and rank == 0:
                run.log_metrics(step, **metrics)
            done = step + 1
            bar.set_postfix(mse=f"{metrics['mse']:.3g}", l0=f"{metrics['l0']:.1f}", dead=f"{100 * dead:.1f}%")
            if (step + 1) % cfg.checkpoint_every == 0:
                checkpoint(step + 1)
    model.normalize_decoder()
    history.steps = max(done, start)
    if cfg.until_flat:
        history.flattened = history.decay_start is not None and history.decay_start < int(
            cfg.steps * (1 - cfg.decay_fraction)
        )
    checkpoint(history.steps)
    return history


def checkpoint_step(run: RunDir, steps: int) -> int | None:
    """The step of `run`'s checkpoint (None when there is none), read and checked before any loading:
    a damaged file or a step outside 0..steps is a DataError."""
    saved = run.load_checkpoint()
    if saved is None:
        return None
    tensors, state = saved
    step = state.get("step") if isinstance(state, dict) else None
    if not isinstance(step, int) or not 0 <= step <= steps or "tokens_since_fired" not in tensors:
        raise DataError(
            f"the checkpoint in {run.path} is not one this run can resume (step {step!r} of {steps}); "
            "drop --resume and add --overwrite to start over"
        )
    return step


def save_path(run: RunDir) -> Path:
    """Where a finished run keeps its model (safetensors + JSON)."""
    return run.path / "sae"
