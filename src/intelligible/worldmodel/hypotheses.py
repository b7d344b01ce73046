"""Hypotheses: intermediates a network might compute, as plain functions of a batch's ground truth.

A `Hypothesis` is a name and a function `fn(batch) -> array` returning, for each sequence, the
values of its intermediates: shape (n,) or (n, k) when they are the same at every position (a
matrix of the sequence's parameters), or (n, T, k) when they change along the sequence (w x for the
latest x). Users add their own the same way:

    Hypothesis("omega^2 dt", lambda batch: batch.params["omega"] ** 2 * batch.params["dt"])

Built in, for the oscillator (A = [[0, 1], [-omega^2, -2 gamma]], one step s_{t+1} = e^{A dt} s_t):
linear multistep (the entries of A dt; with back-steps, the increments A dt s_{t-j} the method
adds), Taylor (the entries of (A dt)^k, k = 1..5), matrix exponential (the entries of e^{k A dt});
for in-context regression: w, w^i, w^i x, w^i x^i (i = 1..3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError, DataError
from intelligible.worldmodel.data import SequenceBatch, sho_matrix


@dataclass(frozen=True)
class Hypothesis:
    """A named intermediate: `fn(batch)` gives its values, (n,), (n, k) or (n, T, k)."""

    name: str
    fn: Callable[[SequenceBatch], np.ndarray]
    description: str = ""

    def values(self, batch: SequenceBatch) -> np.ndarray:
        """The intermediates as float64 (n, T, k), broadcast over positions; DataError if malformed."""
        try:
            raw = self.fn(batch)
        except KeyError as error:
            raise DataError(
                f"hypothesis {self.name!r} needs the parameter {error.args[0]!r}, which the data lacks "
                f"(it has: {', '.join(batch.params) or 'none'})"
            ) from None
        if isinstance(raw, torch.Tensor):
            raw = raw.detach().cpu().numpy()
        values = np.asarray(raw, dtype=np.float64)
        n, t = len(batch), batch.positions
        if values.ndim == 0 or values.shape[0] != n:
            got = "a scalar" if values.ndim == 0 else f"{values.shape[0]} rows (shape {values.shape})"
            raise DataError(
                f"hypothesis {self.name!r} returned {got} for a batch of {n} sequences; it must return "
                "one row per sequence: (n,), (n, k) or (n, positions, k)"
            )
        if values.ndim == 1:
            values = values[:, None]
        if values.ndim == 2:
            values = np.broadcast_to(values[:, None, :], (n, t, values.shape[1]))
        if values.ndim != 3 or values.shape[1] != t:
            raise DataError(
                f"hypothesis {self.name!r} returned shape {values.shape}; a per-position hypothesis must be "
                f"(n, {t}, k) for {t} positions"
            )
        if not np.isfinite(values).all():
            raise DataError(f"hypothesis {self.name!r} returned NaN or infinite values")
        return values


def _entries(matrices: np.ndarray) -> np.ndarray:
    """(n, ..., 2, 2) matrices -> (n, 4 * ...) entries."""
    return matrices.reshape(matrices.shape[0], -1)


def _a_dt(batch: SequenceBatch) -> np.ndarray:
    p = batch.params
    return sho_matrix(p["omega"], p["gamma"]) * np.asarray(p["dt"], float)[:, None, None]


def linear_multistep(back_steps: int = 0) -> Hypothesis:
    """The entries of A dt; with `back_steps` = b > 0 also the increments A dt s_{t-j}, j < b, that
    a linear multistep method combines (per position; 0 before the sequence starts)."""

    def fn(batch: SequenceBatch) -> np.ndarray:
        a_dt = _a_dt(batch)
        matrix = _entries(a_dt)
        if back_steps == 0:
            return matrix
        states = batch.inputs.double().numpy()  # (n, T, 2): the state the model reads at each position
        n, t = states.shape[:2]
        columns = [np.broadcast_to(matrix[:, None, :], (n, t, matrix.shape[1]))]
        for j in range(back_steps):
            shifted = np.zeros_like(states)
            shifted[:, j:] = states[:, : t - j]
            columns.append(np.einsum("nab,ntb->nta", a_dt, shifted))
        return np.concatenate(columns, axis=2)

    name = "linear-multistep" if back_steps == 0 else f"linear-multistep-{back_steps}"
    return Hypothesis(
        name, fn, "entries of A dt" + (f" and A dt s(t-j), j < {back_steps}" if back_steps else "")
    )


def taylor(order: int = 5) -> Hypothesis:
    """The entries of (A dt)^k for k = 1..order (the terms a truncated Taylor series sums)."""

    def fn(batch: SequenceBatch) -> np.ndarray:
        a_dt = _a_dt(batch)
        power, columns = np.broadcast_to(np.eye(2), a_dt.shape).copy(), []
        for _ in range(order):
            power = power @ a_dt
            columns.append(_entries(power))
        return np.concatenate(columns, axis=1)

    return Hypothesis(
        "taylor" if order == 5 else f"taylor-{order}", fn, f"entries of (A dt)^k, k = 1..{order}"
    )


def matrix_exponential(steps: int = 1) -> Hypothesis:
    """The entries of e^{k A dt} for k = 1..steps (k > 1: the maps from the states k steps back)."""

    def fn(batch: SequenceBatch) -> np.ndarray:
        a_dt = torch.from_numpy(_a_dt(batch))
        mats = [torch.linalg.matrix_exp(k * a_dt).numpy() for k in range(1, steps + 1)]
        return np.concatenate([_entries(m) for m in mats], axis=1)

    name = "matrix-exponential" if steps == 1 else f"matrix-exponential-{steps}"
    return Hypothesis(name, fn, f"entries of e^(k A dt), k = 1..{steps}")


def _latest_x(batch: SequenceBatch) -> np.ndarray:
    """In a regression batch, the most recent x token at each position: (n, T)."""
    tokens = batch.inputs[..., 0].double().numpy()
    latest = tokens.copy()
    latest[:, 1::2] = tokens[:, 0:-1:2]  # at a y token the latest x is the token before it
    return latest


def regression_hypotheses(powers: int = 3) -> list[Hypothesis]:
    """w, and w^i, w^i x, w^i x^i for i = 1..powers (x: the latest x token)."""
    orders = np.arange(1, powers + 1)

    def w_powers(batch: SequenceBatch) -> np.ndarray:
        return batch.params["w"][:, None] ** orders

    def w_powers_x(batch: SequenceBatch) -> np.ndarray:
        x = _latest_x(batch)
        return batch.params["w"][:, None, None] ** orders * x[..., None]

    def w_powers_x_powers(batch: SequenceBatch) -> np.ndarray:
        x = _latest_x(batch)
        return (batch.params["w"][:, None, None] * x[..., None]) ** orders

    return [
        Hypothesis("w", lambda batch: batch.params["w"], "the weight w"),
        Hypothesis("w^i", w_powers, f"w^i, i = 1..{powers}"),
        Hypothesis("w^i x", w_powers_x, f"w^i x, i = 1..{powers}"),
        Hypothesis("w^i x^i", w_powers_x_powers, f"(w x)^i, i = 1..{powers}"),
    ]


def builtin_hypotheses(task: str) -> dict[str, Hypothesis]:
    """The named hypotheses for a task (the `--hypotheses` names of the CLI)."""
    if task == "regression":
        found = regression_hypotheses()
    else:
        found = [
            linear_multistep(),
            taylor(),
            matrix_exponential(),
            linear_multistep(2),
            matrix_exponential(3),
        ]
    return {h.name: h for h in found}


DEFAULT_HYPOTHESES = {
    "sho": ("linear-multistep", "taylor", "matrix-exponential"),
    "regression": ("w", "w^i", "w^i x", "w^i x^i"),
}


def default_names(task: str) -> tuple[str, ...]:
    """The hypotheses compared by default for a task."""
    return DEFAULT_HYPOTHESES["regression" if task == "regression" else "sho"]


def resolve(task: str, names: tuple[str, ...] | list[str]) -> list[Hypothesis]:
    """Built-in hypotheses by name; ConfigError listing the valid names otherwise."""
    known = builtin_hypotheses(task)
    chosen = []
    for name in names or default_names(task):
        if name not in known:
            raise ConfigError(
                f"unknown hypothesis {shown(name)} for task {task!r}; valid: {', '.join(known)}"
            )
        chosen.append(known[name])
    return chosen
