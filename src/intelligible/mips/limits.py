"""How far to search, derived from the task's own data rather than from the benchmark's sizes.

The RNN search, the state readers and the regressions each need a limit (how many hidden units,
how many steps of lookback, how many machine states, which moduli). Constants tuned to the 62
tasks (8 linear units, 8 steps, moduli up to 16) fail one step past them (a window of 10, a sum
mod 20), so every limit here comes from the training data:

- **length** T and **input_dim** d: no causal task needs more than the whole history, T*d numbers
  (plus a "started" flag), so `max_hidden = T*d + 1` bounds every search.
- **lookback**: the number of recent steps the outputs depend on. Exactly linear tasks (y_t an
  affine function of the input history: sums, delays, the Newton tasks) give it as the support of
  their least-squares kernel; otherwise it is the shortest window whose contents (with the step
  index, up to the window) determine every output on the training data, accepted only where the
  data see each window twice on average (a window of 100-valued inputs that no two sequences share
  proves nothing). Without such a window the task has unbounded memory: lookback = T.
- **linear_readout**: whether any affine function of the input history is within 1/2 of every
  output (a linear program on a sample of the rows). A linear RNN with a linear readout computes
  exactly such a function, so when none exists every linear-readout architecture is skipped
  untried (parities, mod adders): their training could only fail.
- **alphabet**: the distinct input vectors; a linear recurrence with unbounded memory holds at
  most one count per input symbol that matters.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# rows of the (step, history) table the linear checks look at: enough to pin a kernel of a few
# dozen lags, small enough that the check stays well under a second
_SAMPLE_SEQUENCES = 2048
_LP_ROWS = 1500
# a window is trusted when the data hold at least this many rows per distinct window
_COVERAGE = 2.0


@dataclass(frozen=True)
class Limits:
    """What the search and the readers may need for one task, derived by `derive_limits`."""

    length: int
    input_dim: int
    output_dim: int
    alphabet: int
    lookback: int
    exact_linear: bool
    linear_readout: bool
    max_hidden: int

    @property
    def windowed(self) -> bool:
        """Whether the outputs depend on a bounded window of recent inputs."""
        return self.lookback < self.length

    @property
    def linear_hidden(self) -> int:
        """Largest linear recurrence worth training: the window (or one count per input symbol
        when memory is unbounded), plus room for the start flags, within the whole history."""
        need = self.lookback * self.input_dim + 2 if self.windowed or self.exact_linear else self.alphabet + 1
        return max(1, min(self.max_hidden, need))

    def to_dict(self) -> dict:
        return asdict(self)


def derive_limits(inputs: np.ndarray, outputs: np.ndarray) -> Limits:
    """The limits of the task whose training data are `inputs` (n, T, d_in) and `outputs` (n, T, d_out)."""
    n, length, input_dim = inputs.shape
    output_dim = outputs.shape[-1]
    rng = np.random.default_rng(0)
    rows = (
        rng.choice(n, size=min(n, _SAMPLE_SEQUENCES), replace=False) if n > _SAMPLE_SEQUENCES else slice(None)
    )
    x, y = inputs[rows].astype(np.int64), outputs[rows].astype(np.int64)
    alphabet = len(np.unique(inputs.reshape(-1, input_dim), axis=0))
    design = _history_design(x)
    targets = y.reshape(-1, output_dim).astype(np.float64)
    exact, support = True, 0
    for j in range(output_dim):
        kernel = _exact_kernel(design, targets[:, j], length, input_dim)
        if kernel is None:
            exact = False
            break
        support = max(support, kernel)
    if exact:
        lookback, linear = max(1, min(support, length)), True
    else:
        lookback = _window_lookback(x, y)
        linear = all(_within_half(design, targets[:, j], rng) for j in range(output_dim))
    return Limits(length=length, input_dim=input_dim, output_dim=output_dim, alphabet=alphabet,
                  lookback=lookback, exact_linear=exact, linear_readout=linear,
                  max_hidden=length * input_dim + 1)  # fmt: skip


def widths(top: int, *, start: int = 1, dense: int = 4) -> list[int]:
    """Hidden sizes to try from `start` to `top`: every size up to `dense`, then about 1.4x apart,
    always ending at `top` (the search is for the smallest RNN, but not one size at a time for ever)."""
    sizes = list(range(start, min(top, dense) + 1))
    size = max(sizes[-1] if sizes else start, dense)
    while size < top:
        size = min(top, max(size + 1, int(round(size * 1.4))))
        sizes.append(size)
    return [s for s in sizes if s >= start]


def architectures(limits: Limits) -> tuple[tuple, ...]:
    """The search order (hidden, f_depth, g_depth[, width, lr]) for a task with these limits.

    Linear recurrences first (cheap, and the easiest to read) when a linear readout can work at
    all, then a linear recurrence with a nonlinear readout, then nonlinear recurrences up to the
    whole history, then two wider ones at a lower learning rate (a mod-4 adder was never learnt
    with 16 ReLU units at lr 1e-2 but was with 64 at 3e-3).
    """
    order: list[tuple] = []
    if limits.linear_readout:
        order += [(h, 1, 1) for h in widths(limits.linear_hidden, dense=8)]
    order += [(h, 1, 2) for h in widths(limits.linear_hidden)]
    order += [(h, 2, 2) for h in widths(limits.max_hidden, start=2, dense=4)]
    order += [(2, 2, 2, 64, 3e-3), (min(8, limits.max_hidden), 3, 2, 32, 3e-3)]
    return tuple(order)


# --------------------------------------------------------------------------- the checks
def _history_design(x: np.ndarray) -> np.ndarray:
    """Rows (sequence, step t): the inputs at lags 0..T-1 (zeros before the start) and a one-hot of t."""
    n, length, dim = x.shape
    lags = np.zeros((n, length, length, dim))
    for lag in range(length):
        lags[:, lag:, lag] = x[:, : length - lag]
    steps = np.broadcast_to(np.eye(length), (n, length, length))
    return np.concatenate([lags.reshape(n * length, length * dim), steps.reshape(n * length, length)], axis=1)


def _exact_kernel(design: np.ndarray, target: np.ndarray, length: int, dim: int) -> int | None:
    """Steps of history an exactly linear output reads (1 + the last non-zero lag), or None."""
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    scale = max(1.0, float(np.abs(target).max()))
    if np.abs(design @ solution - target).max() > 1e-6 * scale:
        return None
    kernel = np.abs(solution[: length * dim].reshape(length, dim)).max(axis=1)
    used = np.flatnonzero(kernel > 1e-6 * scale)
    return int(used[-1]) + 1 if len(used) else 0


def _within_half(design: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> bool:
    """Whether some affine function of the history is within 1/2 of the target on every row.

    Solved as a linear program (minimise the largest error) on a sample of distinct rows: an
    infeasible sample proves the whole table infeasible, so a False answer is never wrong; a
    margin of 1e-6 treats knife-edge fits, which rounding in float32 would not keep, as infeasible.
    """
    from scipy.optimize import linprog

    table, index = np.unique(np.column_stack([design, target]), axis=0, return_index=True)
    if len(table) > _LP_ROWS:
        table = table[rng.choice(len(table), size=_LP_ROWS, replace=False)]
    a, b = table[:, :-1], table[:, -1]
    rows, columns = a.shape
    ones = np.ones((rows, 1))
    bound = np.vstack([np.hstack([a, -ones]), np.hstack([-a, -ones])])
    cost = np.zeros(columns + 1)
    cost[-1] = 1.0
    found = linprog(cost, A_ub=bound, b_ub=np.concatenate([b, -b]), bounds=[(None, None)] * columns + [(0, None)],
                    method="highs")  # fmt: skip
    if found.status != 0:
        return True  # the solver could not decide: do not prune
    return float(found.fun) < 0.5 - 1e-6


def _window_lookback(x: np.ndarray, y: np.ndarray) -> int:
    """The shortest window k whose last k inputs and step index (up to k) determine every output."""
    n, length, dim = x.shape
    flat_y = y.reshape(n * length, -1)
    step = np.broadcast_to(np.arange(length), (n, length)).reshape(-1)
    # windows compared by a random 64-bit hash of their contents (wrapping arithmetic): one column
    # to sort instead of k*d, and a collision between different windows is vanishingly unlikely
    multipliers = np.random.default_rng(1).integers(1, 2**62, size=(length, dim + 1), dtype=np.int64) | 1
    content = np.zeros(n * length, dtype=np.int64)
    for k in range(1, length):
        shifted = np.zeros((n, length, dim), dtype=np.int64)
        shifted[:, k - 1 :] = x[:, : length - k + 1]
        with np.errstate(over="ignore"):
            content += shifted.reshape(-1, dim) @ multipliers[k - 1, :dim]
            keys = content + np.minimum(step, k) * multipliers[k - 1, dim]
        distinct, inverse = np.unique(keys, return_inverse=True)
        if len(keys) < _COVERAGE * len(distinct):
            return length  # too few repeats to tell: assume the whole history matters
        consistent = True
        for j in range(flat_y.shape[1]):
            low = np.full(len(distinct), np.iinfo(np.int64).max)
            high = np.full(len(distinct), np.iinfo(np.int64).min)
            np.minimum.at(low, inverse, flat_y[:, j])
            np.maximum.at(high, inverse, flat_y[:, j])
            consistent &= bool((low == high).all())
        if consistent:
            return k
    return length
