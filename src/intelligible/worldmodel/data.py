"""Seeded, vectorised sequence generators: in-context linear regression and the harmonic oscillator.

Every generator returns a `SequenceBatch`: the model's inputs, its next-token targets, which
positions count in the loss, and the ground-truth parameters of each sequence, from which the
hypotheses (intermediates) are computed. The ranges are those of Kantamneni et al. 2024.

Oscillator convention: x'' + 2 gamma x' + omega^2 x = 0, so gamma = omega is critical damping (the
paper's underdamped gamma ~ U(0, omega) and overdamped gamma ~ U(omega, omega + pi/4) fit it).
The state s = (x, v) evolves as s' = A s with A = [[0, 1], [-omega^2, -2 gamma]], so one step is
s_{t+1} = e^{A dt} s_t. The generators use the textbook closed forms, not the matrix exponential,
so the two can be checked against each other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from intelligible.core.errors import ConfigError, DataError

TASKS = ("sho-undamped", "sho-underdamped", "sho-overdamped", "regression")
SPLITS = ("train", "test", "ood")
# sequence lengths (states per sequence; regression: (x, y) pairs), from the paper
DEFAULT_LENGTH = {"sho-undamped": 65, "sho-underdamped": 32, "sho-overdamped": 32, "regression": 65}


@dataclass
class SequenceBatch:
    """Sequences for a next-token model, with the parameters that generated them.

    inputs: (n, T, d_in) tokens the model reads; targets: (n, T, d_out) what it should output at each
    position; loss_mask: (T,) bool, the positions whose prediction counts; params: name -> (n,) array of
    per-sequence ground truth (omega, gamma, dt, x0, v0 or w); states: (n, T + 1, d) the full
    trajectory (inputs then the last target), kept for hypotheses that need the current state.
    """

    task: str
    inputs: torch.Tensor
    targets: torch.Tensor
    loss_mask: torch.Tensor
    params: dict[str, np.ndarray]
    states: torch.Tensor | None = None
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.inputs.shape[0])

    @property
    def positions(self) -> int:
        return int(self.inputs.shape[1])

    def subset(self, index: np.ndarray | slice) -> SequenceBatch:
        """The sequences at `index` (an index array or a slice), same task and mask."""
        idx = torch.as_tensor(np.arange(len(self))[index])
        return replace(
            self,
            inputs=self.inputs[idx],
            targets=self.targets[idx],
            params={k: np.asarray(v)[idx.numpy()] for k, v in self.params.items()},
            states=None if self.states is None else self.states[idx],
        )

    def check(self) -> None:
        """Raise DataError for NaN/inf values or shapes that do not agree."""
        if self.inputs.ndim != 3 or self.targets.ndim != 3:
            raise DataError(
                f"inputs and targets must be (sequences, positions, features); got shapes "
                f"{tuple(self.inputs.shape)} and {tuple(self.targets.shape)}"
            )
        n, t = self.inputs.shape[:2]
        if tuple(self.targets.shape[:2]) != (n, t):
            raise DataError(
                f"targets {tuple(self.targets.shape)} do not match inputs {tuple(self.inputs.shape)} "
                "in sequences and positions"
            )
        if self.loss_mask.shape != (t,):
            raise DataError(
                f"loss_mask must have one entry per position ({t}), got {tuple(self.loss_mask.shape)}"
            )
        for name, tensor in (("inputs", self.inputs), ("targets", self.targets)):
            bad = ~torch.isfinite(tensor)
            if bool(bad.any()):
                raise DataError(
                    f"the data's {name} hold {int(bad.sum())} NaN or infinite values (first in sequence "
                    f"{int(bad.nonzero()[0, 0])}); remove or regenerate those sequences"
                )
        for name, values in self.params.items():
            values = np.asarray(values)
            if values.shape[:1] != (n,):
                raise DataError(f"parameter {name!r} has {values.shape[:1]} values for {n} sequences")
            if values.dtype.kind in "fc" and not np.isfinite(values).all():
                raise DataError(
                    f"parameter {name!r} holds NaN or infinite values; remove or regenerate those sequences"
                )


def _check_count(n: int, name: str = "n") -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"{name} must be a whole number >= 1, got {str(n)[:80]}")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"unknown split {str(split)[:80]!r}; valid splits: {', '.join(SPLITS)}")


def linear_regression(n: int, *, pairs: int = 65, split: str = "train", seed: int = 0) -> SequenceBatch:
    """`n` sequences of `pairs` (x, y = w x) pairs interleaved as scalar tokens x1, y1, x2, y2, ...

    x, w ~ U(-1, 1); the `ood` split draws |x| and |w| from [0.75, 1] with random signs (`test` is
    in-distribution). The model reads all tokens but the last; its output at each x token is scored
    against the following y (loss_mask), as in the paper.
    """
    _check_count(n)
    _check_count(pairs, "pairs")
    _check_split(split)
    rng = np.random.default_rng(seed)
    if split == "ood":
        w = rng.uniform(0.75, 1.0, n) * rng.choice([-1.0, 1.0], n)
        x = rng.uniform(0.75, 1.0, (n, pairs)) * rng.choice([-1.0, 1.0], (n, pairs))
    else:
        w = rng.uniform(-1.0, 1.0, n)
        x = rng.uniform(-1.0, 1.0, (n, pairs))
    y = w[:, None] * x
    tokens = np.stack([x, y], axis=2).reshape(n, 2 * pairs)
    tokens_t = torch.tensor(tokens, dtype=torch.float32)
    mask = torch.zeros(2 * pairs - 1, dtype=torch.bool)
    mask[0::2] = True  # the model's output at an x token predicts the next y
    return SequenceBatch(
        task="regression",
        inputs=tokens_t[:, :-1, None],
        targets=tokens_t[:, 1:, None],
        loss_mask=mask,
        params={"w": w},
        states=tokens_t[:, :, None],
        meta={"split": split, "seed": seed},
    )


# omega ranges (in units of pi) for training and the two out-of-distribution test bands
_OMEGA_TRAIN = (0.5, 1.0)
_OMEGA_TEST = ((0.25, 0.5), (1.0, 1.25))


def _draw_omega(rng: np.random.Generator, n: int, split: str) -> np.ndarray:
    if split == "train":
        low, high = _OMEGA_TRAIN
        return math.pi * rng.uniform(low, high, n)
    # the paper tests on both sides of the training band, half each
    band = rng.integers(0, 2, n)
    lows = np.array([b[0] for b in _OMEGA_TEST])[band]
    highs = np.array([b[1] for b in _OMEGA_TEST])[band]
    return math.pi * rng.uniform(lows, highs)


def sho(
    n: int,
    *,
    kind: str = "undamped",
    length: int | None = None,
    split: str = "train",
    seed: int = 0,
    omega: np.ndarray | None = None,
    gamma: np.ndarray | None = None,
    dt: np.ndarray | None = None,
) -> SequenceBatch:
    """`n` oscillator trajectories of `length` states (x, v) at equal steps dt, in closed form.

    kind: undamped (gamma = 0), underdamped (gamma ~ U(0, omega)) or overdamped
    (gamma ~ U(omega, omega + pi/4)). omega ~ U[pi/2, pi] for `train`, from U[pi/4, pi/2] or
    U[pi, 5 pi/4] for `test`/`ood`; dt ~ U(0, 2 pi / omega); x0, v0 ~ U(-1, 1). `omega`, `gamma`,
    `dt` override the draws (for counterfactuals). Inputs are states 0..T-2, targets 1..T-1.
    """
    _check_count(n)
    if kind not in ("undamped", "underdamped", "overdamped"):
        raise ConfigError(
            f"unknown oscillator kind {str(kind)[:80]!r}; valid: undamped, underdamped, overdamped"
        )
    task = f"sho-{kind}"
    length = DEFAULT_LENGTH[task] if length is None else length
    if isinstance(length, bool) or not isinstance(length, int) or length < 2:
        raise ConfigError(f"length must be a whole number >= 2 (states per sequence), got {str(length)[:80]}")
    _check_split(split)
    rng = np.random.default_rng(seed)
    w = (
        _draw_omega(rng, n, split)
        if omega is None
        else np.broadcast_to(np.asarray(omega, float), (n,)).copy()
    )
    if gamma is not None:
        g = np.broadcast_to(np.asarray(gamma, float), (n,)).copy()
    elif kind == "undamped":
        g = np.zeros(n)
    elif kind == "underdamped":
        g = rng.uniform(0.0, 1.0, n) * w
    else:
        g = w + rng.uniform(0.0, math.pi / 4, n)
    step = (
        rng.uniform(0.0, 1.0, n) * (2 * math.pi / w)
        if dt is None
        else np.broadcast_to(np.asarray(dt, float), (n,)).copy()
    )
    x0 = rng.uniform(-1.0, 1.0, n)
    v0 = rng.uniform(-1.0, 1.0, n)
    times = step[:, None] * np.arange(length)[None, :]
    x, v = oscillator_closed_form(x0[:, None], v0[:, None], w[:, None], g[:, None], times)
    states = torch.tensor(np.stack([x, v], axis=2), dtype=torch.float32)
    return SequenceBatch(
        task=task,
        inputs=states[:, :-1],
        targets=states[:, 1:],
        loss_mask=torch.ones(length - 1, dtype=torch.bool),
        params={"omega": w, "gamma": g, "dt": step, "x0": x0, "v0": v0},
        states=states,
        meta={"split": split, "seed": seed},
    )


def oscillator_closed_form(
    x0: np.ndarray, v0: np.ndarray, omega: np.ndarray, gamma: np.ndarray, t: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Position and velocity of x'' + 2 gamma x' + omega^2 x = 0 at times `t` (broadcast), in float64.

    Three textbook cases: underdamped (gamma < omega: a decaying rotation), critical, overdamped (two
    decaying exponentials, written with cosh/sinh so that it stays accurate near critical damping).
    """
    x0, v0, omega, gamma, t = np.broadcast_arrays(*(np.asarray(a, float) for a in (x0, v0, omega, gamma, t)))
    x = np.empty_like(t)
    v = np.empty_like(t)
    decay = np.exp(-gamma * t)
    under = gamma < omega
    over = gamma > omega
    crit = ~(under | over)
    if under.any():
        wd = np.sqrt(omega[under] ** 2 - gamma[under] ** 2)
        c, s = np.cos(wd * t[under]), np.sin(wd * t[under])
        a, b = x0[under], (v0[under] + gamma[under] * x0[under]) / wd
        x[under] = decay[under] * (a * c + b * s)
        # d/dt of e^{-g t}(a cos + b sin)
        v[under] = decay[under] * ((b * wd - gamma[under] * a) * c - (a * wd + gamma[under] * b) * s)
    if over.any():
        r = np.sqrt(gamma[over] ** 2 - omega[over] ** 2)
        ch, sh = np.cosh(r * t[over]), np.sinh(r * t[over])
        a, b = x0[over], (v0[over] + gamma[over] * x0[over]) / r
        x[over] = decay[over] * (a * ch + b * sh)
        v[over] = decay[over] * ((b * r - gamma[over] * a) * ch + (a * r - gamma[over] * b) * sh)
    if crit.any():
        a, b = x0[crit], v0[crit] + gamma[crit] * x0[crit]
        x[crit] = decay[crit] * (a + b * t[crit])
        v[crit] = decay[crit] * (b - gamma[crit] * (a + b * t[crit]))
    return x, v


def generate(
    task: str, n: int, *, split: str = "train", seed: int = 0, length: int | None = None
) -> SequenceBatch:
    """`n` sequences of `task` (one of TASKS) from `split`, seeded."""
    if task not in TASKS:
        raise ConfigError(f"unknown task {str(task)[:80]!r}; valid tasks: {', '.join(TASKS)}")
    if task == "regression":
        return linear_regression(n, pairs=length or DEFAULT_LENGTH[task], split=split, seed=seed)
    return sho(n, kind=task.removeprefix("sho-"), length=length, split=split, seed=seed)


def counterfactual(batch: SequenceBatch, seed: int = 0, change: str = "dt") -> SequenceBatch:
    """The same input states with new oscillator parameters: targets become what one step under the new
    parameters gives from each input state (the "intended answer" of an intervention).

    change: "dt" (a new dt ~ U(0, 2 pi / omega)) or "omega" (a new omega from the training band; for a
    damped task gamma keeps its ratio to omega, so the damping regime stays the same).
    """
    if not batch.task.startswith("sho-"):
        raise ConfigError(
            f"counterfactual parameters are defined for the oscillator tasks, not {batch.task!r}"
        )
    if change not in ("dt", "omega"):
        raise ConfigError(f"change must be 'dt' or 'omega', got {str(change)[:80]!r}")
    rng = np.random.default_rng(seed)
    params = dict(batch.params)
    n = len(batch)
    if change == "omega":
        new = math.pi * rng.uniform(*_OMEGA_TRAIN, n)
        params["gamma"] = params["gamma"] * new / params["omega"]
        params["omega"] = new
    else:
        params["dt"] = rng.uniform(0.0, 1.0, n) * (2 * math.pi / params["omega"])
    states = batch.inputs.double().numpy()
    x, v = oscillator_closed_form(
        states[..., 0],
        states[..., 1],
        params["omega"][:, None],
        params["gamma"][:, None],
        params["dt"][:, None],
    )
    targets = torch.tensor(np.stack([x, v], axis=2), dtype=torch.float32)
    return replace(batch, targets=targets, params=params, states=None, meta={**batch.meta, "changed": change})


def sho_matrix(omega: np.ndarray, gamma: np.ndarray) -> np.ndarray:
    """A = [[0, 1], [-omega^2, -2 gamma]] for each sequence: (n, 2, 2)."""
    omega = np.asarray(omega, float)
    gamma = np.broadcast_to(np.asarray(gamma, float), omega.shape)
    a = np.zeros((*omega.shape, 2, 2))
    a[..., 0, 1] = 1.0
    a[..., 1, 0] = -(omega**2)
    a[..., 1, 1] = -2.0 * gamma
    return a


def energy(batch: SequenceBatch) -> np.ndarray:
    """Oscillator energy v^2/2 + omega^2 x^2/2 along each trajectory: (n, T + 1)."""
    states = batch.states.double().numpy()
    omega = batch.params["omega"][:, None]
    return 0.5 * states[..., 1] ** 2 + 0.5 * omega**2 * states[..., 0] ** 2
