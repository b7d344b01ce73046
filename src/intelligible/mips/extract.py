"""From an RNN's hidden states to integer state variables (MIPS step 2: "RNN to finite-state machine").

Two readers, tried in order:

- **Finite-state machine** (Boolean-like tasks): visited hidden states are merged by behaviour —
  the RNN itself is run from each on every input string up to a depth, and states with the same
  outputs are one machine state (Myhill-Nerode). Accepted when every (state, input) pair has one
  successor: the machine then *is* the RNN's algorithm, with `n_states` integer labels.
- **Integer lattice** (counters, sums, memories): hidden states are an affine image of an integer
  vector s, h = h_0 + K s. For a linear recurrence h' = A h + B x + c, K is the Krylov basis
  [B, AB, A^2 B, ..., c, Ac, ...] (independent columns kept); otherwise `find_lattice` builds the
  lattice from the states' differences by a vector GCD (exact integer echelon forms of rational
  relations) and LLL-reduces it. Accepted when every coordinate is within `tolerance` of an
  integer on all training states.

Both return a `StateTrace`: integer states s_t (t = 0..T) for every training sequence, the inputs
and the outputs, ready for regression.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from intelligible.mips.rnn import RNN


@dataclass
class StateTrace:
    """Integer states (n, T + 1, r), inputs (n, T, d_in), outputs (n, T, d_out), how they were read."""

    states: np.ndarray
    inputs: np.ndarray
    outputs: np.ndarray
    method: str  # "fsm" or "lattice"
    detail: dict


@torch.no_grad()
def hidden_trace(model: RNN, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hidden states (n, T + 1, H) float64, the RNN's rounded outputs (n, T, d_out) int64)."""
    y, hidden = model(torch.as_tensor(inputs, dtype=torch.float32), return_hidden=True)
    return hidden.double().numpy(), y.round().long().numpy()


# --------------------------------------------------------------------------- finite-state machines
# start states x input strings the behavioural test may run at one depth: a compute budget (a few
# seconds, a few hundred MB), not a property of any task
_FUTURES_BUDGET = 4_000_000


@torch.no_grad()
def _futures(model: RNN, states: np.ndarray, alphabet: np.ndarray, depth: int) -> np.ndarray:
    """Rounded outputs of every state on every input string of length `depth` (which also covers
    every shorter string, as outputs are emitted along the way): (states, strings * depth * d_out)."""
    strings = np.array(list(itertools.product(range(len(alphabet)), repeat=depth)), dtype=np.int64)
    h = torch.as_tensor(states, dtype=torch.float32).repeat_interleave(len(strings), dim=0)
    outs = []
    for step in range(depth):
        x = torch.as_tensor(alphabet[np.tile(strings[:, step], len(states))], dtype=torch.float32)
        h = model.step(h, x)
        outs.append(model.readout(h).round())
    futures = torch.stack(outs, dim=1).reshape(len(states), -1)
    return futures.long().numpy()


def read_fsm(model: RNN, hidden: np.ndarray, inputs: np.ndarray, outputs: np.ndarray, *,
             max_states: int | None = None, max_strings: int = 256) -> StateTrace | None:  # fmt: skip
    """Minimal Moore machine of the RNN, states merged by behaviour (Myhill-Nerode up to a depth), or None.

    The limits follow from the data, not from the benchmark: a machine is accepted only when the
    observed transitions could have shown each (state, input symbol) pair once on average
    (`max_states`, default: transitions / symbols), and the behavioural test runs the RNN from each
    visited state on every input string of a depth only while that stays within `_FUTURES_BUDGET`
    RNN steps.

    Hidden states of a trained RNN drift: the same machine state is visited at slightly different
    points, so geometric clustering either splits or mixes states. Instead each visited hidden state
    is run, with the RNN itself, on every input string up to a depth; states with the same outputs
    on all of them (and the same own output) are one machine state. The machine is accepted when
    every observed (state, input) pair then has one successor; the emitted program is verified later,
    which catches states that differ only beyond the depth.
    """
    n, steps_plus_one, size = hidden.shape
    alphabet, symbol = np.unique(inputs.reshape(-1, inputs.shape[-1]), axis=0, return_inverse=True)
    if max_states is None:
        max_states = max(2, (n * (steps_plus_one - 1)) // len(alphabet))
    deepest = max(1, int(np.floor(np.log(max_strings) / np.log(max(len(alphabet), 2)))))
    flat = hidden.reshape(-1, size)
    distinct, visit = np.unique(np.round(flat, 5), axis=0, return_inverse=True)
    with torch.no_grad():
        own = model.readout(torch.as_tensor(distinct, dtype=torch.float32)).round().long().numpy()
    visit = visit.reshape(n, steps_plus_one)
    initial = visit[0, 0]
    # the initial state emits nothing (unless the RNN comes back to it later): its own output is a
    # don't-care, so it may join any state with the same futures
    silent = not (visit[:, 1:] == initial).any()
    if silent:
        own[initial] = np.iinfo(np.int64).min
    symbols = symbol.reshape(n, steps_plus_one - 1)
    # the shallowest depth whose machine is deterministic: deeper looks run the RNN further past the
    # lengths it was trained on, where its outputs stop being reliable
    for depth in range(1, deepest + 1):
        if len(distinct) * len(alphabet) ** depth > _FUTURES_BUDGET:
            return None  # deterministic at no affordable depth
        futures = _futures(model, distinct, alphabet, depth)
        _, cls = np.unique(np.concatenate([own, futures], axis=1), axis=0, return_inverse=True)
        cls = cls.ravel()
        if silent:
            match = np.flatnonzero((futures == futures[initial]).all(axis=1))
            others = [c for c in np.unique(cls[match]) if c != cls[initial]]
            if others:
                cls[initial] = others[0]
        _, cls = np.unique(cls, return_inverse=True)
        n_states = int(cls.max()) + 1
        if n_states > max_states:
            return None
        states = cls[visit]
        transitions = np.unique(np.stack([states[:, :-1].ravel(), symbols.ravel(), states[:, 1:].ravel()], 1),
                                axis=0)  # fmt: skip
        if len(np.unique(transitions[:, :2], axis=0)) == len(transitions):
            break
    else:
        return None  # some (state, input) keeps two successors: not a machine at any depth tried
    # an ordering hint for labelling: states sorted along the main axis of their mean hidden vectors
    # (an RNN that stores a count stores it along a line, and that order makes the formulas linear)
    means = np.stack([distinct[cls == c].mean(axis=0) for c in range(n_states)])
    centred = means - means.mean(axis=0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0] if n_states > 1 else np.ones(size)
    pc_order = np.argsort(centred @ axis, kind="stable").tolist()
    return StateTrace(states=states[..., None], inputs=inputs, outputs=outputs, method="fsm",
                      detail={"n_states": n_states, "depth": depth, "visited": len(distinct),
                              "symbols": len(alphabet), "pc_order": pc_order})  # fmt: skip


# --------------------------------------------------------------------------- integer lattices
def _independent_columns(vectors: list[np.ndarray], tolerance: float) -> np.ndarray:
    # unit columns: a large bias vector must not hide a small input direction (or vice versa)
    kept: list[np.ndarray] = []
    for v in vectors:
        if len(kept) == len(v):  # the space is spanned
            break
        candidate = np.stack([*kept, v], axis=1)
        candidate = candidate / np.maximum(np.linalg.norm(candidate, axis=0), 1e-12)
        singular = np.linalg.svd(candidate, compute_uv=False)
        if singular[-1] > tolerance * max(singular[0], 1e-12):
            kept.append(v)
    return np.stack(kept, axis=1) if kept else np.zeros((vectors[0].shape[0], 0))


def krylov_basis(model: RNN, tolerance: float = 0.05) -> np.ndarray | None:
    """Columns [B, AB, A^2 B, ..., c, Ac, ...] of a linear recurrence h' = A h + B x + c."""
    if model.f_depth != 1:
        return None
    layer = model.f[0]
    weight, bias = layer.weight.detach().double().numpy(), layer.bias.detach().double().numpy()
    size = model.hidden
    a, b = weight[:, :size], weight[:, size:]
    vectors = []
    for start in [*(b[:, j] for j in range(b.shape[1])), bias]:
        v = start
        for _ in range(size):
            if np.linalg.norm(v) < 1e-6:
                break
            vectors.append(v)
            v = a @ v
    if not vectors:
        return None
    basis = _independent_columns(vectors, tolerance)
    return basis if basis.shape[1] else None


def _as_integers(coords: np.ndarray, tolerance: float) -> np.ndarray | None:
    rounded = np.round(coords)
    if np.abs(coords - rounded).max() > tolerance:
        return None
    return rounded.astype(np.int64)


def _hermite_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows spanning the same integer lattice as `matrix`'s rows, in echelon form (integer Euclid)."""
    a = [list(map(int, row)) for row in matrix]
    rows, cols = len(a), len(a[0])
    pivot_row = 0
    for col in range(cols):
        # gcd-combine every row below into the pivot row, column by column
        for r in range(pivot_row + 1, rows):
            while a[r][col] != 0:
                q = a[pivot_row][col] // a[r][col]
                a[pivot_row] = [x - q * y for x, y in zip(a[pivot_row], a[r])]
                a[pivot_row], a[r] = a[r], a[pivot_row]
        if pivot_row < rows and a[pivot_row][col] != 0:
            if a[pivot_row][col] < 0:
                a[pivot_row] = [-x for x in a[pivot_row]]
            # Hermite reduction: entries above the pivot into [0, pivot), so numbers stay small
            for r in range(pivot_row):
                q = a[r][col] // a[pivot_row][col]
                a[r] = [x - q * y for x, y in zip(a[r], a[pivot_row])]
            pivot_row += 1
    kept = [row for row in a if any(row)]
    if max(abs(x) for row in kept for x in row) > 2**52:
        raise ArithmeticError("lattice basis entries grew too large")
    return np.array(kept, dtype=np.int64)


def _lll(basis: np.ndarray, delta: float = 0.75) -> np.ndarray:
    """LLL-reduce the rows of a real basis (short, nearly orthogonal rows: the natural variables)."""
    b = basis.astype(float).copy()
    n = len(b)

    def gram_schmidt() -> tuple[np.ndarray, np.ndarray]:
        ortho = np.zeros_like(b)
        mu = np.zeros((n, n))
        for i in range(n):
            ortho[i] = b[i]
            for j in range(i):
                mu[i, j] = b[i] @ ortho[j] / (ortho[j] @ ortho[j])
                ortho[i] -= mu[i, j] * ortho[j]
        return ortho, mu

    ortho, mu = gram_schmidt()
    k = 1
    for _ in range(1000):
        if k >= n:
            break
        for j in range(k - 1, -1, -1):
            q = round(mu[k, j])
            if q:
                b[k] -= q * b[j]
                ortho, mu = gram_schmidt()
        if ortho[k] @ ortho[k] >= (delta - mu[k, k - 1] ** 2) * (ortho[k - 1] @ ortho[k - 1]):
            k += 1
        else:
            b[[k, k - 1]] = b[[k - 1, k]]
            ortho, mu = gram_schmidt()
            k = max(k - 1, 1)
    return b


def find_lattice(points: np.ndarray, *, tolerance: float = 0.1, max_denominator: int = 12
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:  # fmt: skip
    """Origin o, basis rows K (r, D) and integer coordinates S with points == o + S K, or None.

    The GCD step generalised to vectors: start from r independent differences, and whenever a
    point's coordinates are fractions p/q, the lattice generated by the basis and that point is
    computed exactly (integer echelon form of the scaled generators) and becomes the new basis.
    The result is LLL-reduced, so its coordinates are the short, natural variables.
    """
    from fractions import Fraction

    origin = points[0]
    diffs = points - origin
    scale = max(float(np.abs(diffs).max()), 1e-12)
    unique = np.unique(np.round(diffs / (1e-4 * scale)).astype(np.int64), axis=0) * (1e-4 * scale)
    unique = unique[np.abs(unique).max(axis=1) > 1e-3 * scale]
    if len(unique) == 0:
        return origin, np.zeros((0, points.shape[1])), np.zeros((len(points), 0), dtype=np.int64)
    _, singular, vt = np.linalg.svd(unique, full_matrices=False)
    rank = int((singular > 1e-3 * singular[0]).sum())
    frame = vt[:rank]  # orthonormal frame of the lattice's span
    local = unique @ frame.T
    order = np.argsort(np.linalg.norm(local, axis=1))
    basis: list[np.ndarray] = []
    for index in order:  # r short independent differences
        candidate = np.array([*basis, local[index]])
        if np.linalg.matrix_rank(candidate, tol=1e-3 * singular[0]) == len(candidate):
            basis.append(local[index])
        if len(basis) == rank:
            break
    if len(basis) < rank:
        return None
    basis_matrix = np.array(basis)
    for _ in range(50):
        coords = local @ np.linalg.inv(basis_matrix)
        off = np.abs(coords - np.round(coords)).max(axis=1)
        if off.max() <= tolerance:
            break
        row = coords[int(np.argmax(off))]
        fractions = [Fraction(float(c)).limit_denominator(max_denominator) for c in row]
        if max(abs(float(f) - c) for f, c in zip(fractions, row)) > tolerance / max_denominator:
            return None  # not a rational combination: these points are not on a lattice
        q = int(np.lcm.reduce([f.denominator for f in fractions]))
        generators = np.vstack([q * np.eye(rank, dtype=np.int64), [int(f * q) for f in fractions]])
        try:
            reduced = _hermite_rows(generators)
        except ArithmeticError:
            return None
        basis_matrix = (reduced / q) @ basis_matrix
    else:
        return None
    basis_matrix = _lll(basis_matrix)
    coords = (diffs @ frame.T) @ np.linalg.inv(basis_matrix)
    rounded = np.round(coords)
    if np.abs(coords - rounded).max() > tolerance:
        return None
    # refit origin and basis on every point (the differences above were de-duplicated on a grid)
    design = np.concatenate([np.ones((len(points), 1)), rounded], axis=1)
    solution, *_ = np.linalg.lstsq(design, points, rcond=None)
    return solution[0], solution[1:], rounded.astype(np.int64)


def memory_length(model: RNN, *, threshold: float = 0.02, longest: int | None = None) -> int | None:
    """k when a linear recurrence forgets its inputs after k steps (||A^k [B c]|| small), else None.

    `longest` defaults to the RNN's hidden size plus one: a recurrence that forgets at all (A
    nilpotent) does so within that many steps; callers pass the sequence length when it is longer."""
    if model.f_depth != 1:
        return None
    layer = model.f[0]
    weight = layer.weight.detach().double().numpy()
    a = weight[:, : model.hidden]
    drive = np.concatenate([weight[:, model.hidden :], layer.bias.detach().double().numpy()[:, None]], axis=1)
    size = np.linalg.norm(drive)
    power = drive
    longest = model.hidden + 1 if longest is None else longest
    for k in range(1, longest + 1):
        power = a @ power
        if np.linalg.norm(power) < threshold * size:
            return k
    return None


def read_shift_register(model: RNN, hidden: np.ndarray, inputs: np.ndarray, outputs: np.ndarray
                        ) -> StateTrace | None:  # fmt: skip
    """The Toeplitz reading of a linear recurrence that forgets after k steps: its state is a linear
    function of the last k inputs, so those inputs are the program's state variables."""
    # no window longer than the sequences can be seen, and none longer than the RNN can hold
    k = memory_length(model, longest=max(model.hidden + 1, inputs.shape[1]))
    if k is None:
        return None
    n, steps, d_in = inputs.shape
    states = np.zeros((n, steps + 1, k * d_in + k), dtype=np.int64)
    for lag in range(k):  # state (lag, i) at time t holds input i of step t - lag
        states[:, lag + 1 :, lag * d_in : (lag + 1) * d_in] = inputs[:, : steps - lag]
    # the bias's own chain c, Ac, ... marks the first k steps: flag j is 1 once more than j steps
    # were seen (a program that needs "no previous input yet" reads it; unused flags are pruned)
    for j in range(k):
        states[:, j + 1 :, k * d_in + j] = 1
    return StateTrace(states=states, inputs=inputs, outputs=outputs, method="lattice",
                      detail={"basis": "shift-register", "dims": k * d_in,
                              "flags": list(range(k * d_in, k * d_in + k))})  # fmt: skip


def read_lattice(model: RNN, hidden: np.ndarray, inputs: np.ndarray, outputs: np.ndarray, *,
                 tolerance: float = 0.15) -> StateTrace | None:  # fmt: skip
    """Integer coordinates of the hidden states in a lattice basis, or None."""
    n, steps_plus_one, size = hidden.shape
    origin = hidden[0, 0]  # h_0, the same for every sequence
    centred = (hidden - origin).reshape(-1, size)
    candidates: list[tuple[str, np.ndarray]] = []
    if np.abs(hidden - np.round(hidden)).max() < 1e-3:  # an integer RNN (see simplify.py): states as they are
        candidates.append(("integer", hidden.reshape(-1, size)))
    basis = krylov_basis(model)
    if basis is not None:
        coords, *_ = np.linalg.lstsq(basis, centred.T, rcond=None)
        candidates.append(("krylov", coords.T))
    found = find_lattice(centred)
    if found is not None and found[2].shape[1] > 0:
        candidates.append(("gcd", found[2].astype(float)))
    for name, coords in candidates:
        states = _as_integers(coords, tolerance)
        if states is None:
            continue
        used = np.abs(states).max(axis=0) > 0
        states = states[:, used] if used.any() else states[:, :1]
        return StateTrace(states=states.reshape(n, steps_plus_one, -1), inputs=inputs, outputs=outputs,
                          method="lattice", detail={"basis": name, "dims": int(states.shape[1])})  # fmt: skip
    return None
