"""From an RNN's hidden states to integer state variables (MIPS step 2: "RNN to finite-state machine").

Two readers, tried in order:

- **Finite-state machine** (Boolean-like tasks): hidden states are grouped with a fine tolerance,
  then merged by Moore partition refinement (states that emit the same outputs and move to
  equivalent states on every input are one state). Accepted when every (state, input) pair has one
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
def _fine_clusters(points: np.ndarray, tolerance: float) -> np.ndarray | None:
    """Labels grouping points closer than `tolerance` (single linkage), or None if too many groups."""
    from scipy.cluster.hierarchy import fcluster, linkage

    keys, inverse = np.unique(np.round(points / tolerance).astype(np.int64), axis=0, return_inverse=True)
    if len(keys) > 3000:
        return None
    if len(keys) == 1:
        return np.zeros(len(points), dtype=np.int64)
    groups = fcluster(linkage(keys.astype(float), method="single"), t=1.5, criterion="distance")
    return groups[inverse.ravel()] - 1


def read_fsm(hidden: np.ndarray, inputs: np.ndarray, outputs: np.ndarray, *, max_states: int = 64,
             tolerance: float = 0.02) -> StateTrace | None:  # fmt: skip
    """Minimal Moore machine consistent with the hidden-state trajectories, or None."""
    n, steps_plus_one, size = hidden.shape
    scale = max(float(hidden.std()), 1e-6)
    labels = _fine_clusters(hidden.reshape(-1, size), tolerance * scale)
    if labels is None:
        return None
    labels = labels.reshape(n, steps_plus_one)
    symbols, x_ids = np.unique(inputs.reshape(n * (steps_plus_one - 1), -1), axis=0, return_inverse=True)
    x_ids = x_ids.reshape(n, steps_plus_one - 1)
    if len(symbols) > 32:
        return None
    out_keys, out_ids = np.unique(outputs.reshape(n * (steps_plus_one - 1), -1), axis=0, return_inverse=True)
    out_ids = out_ids.reshape(n, steps_plus_one - 1)
    n_fine = int(labels.max()) + 1
    # output of each fine state (-1: the initial state emits nothing); contradictions end the attempt
    emitted = np.full(n_fine, -1, dtype=np.int64)
    after = labels[:, 1:].ravel()
    out_flat = out_ids.ravel()
    emitted[after] = out_flat
    if (emitted[after] != out_flat).any():
        return None
    prev, sym = labels[:, :-1].ravel(), x_ids.ravel()
    pairs = np.unique(np.stack([prev, sym, after], axis=1), axis=0)
    classes = emitted.copy()
    while True:
        # signature: own class + the classes reached on each input symbol
        successor = {}
        for p, s, a in pairs:
            successor.setdefault((p, s), set()).add(classes[a])
        signature = {}
        new = np.empty_like(classes)
        for state in range(n_fine):
            key = (classes[state],) + tuple(
                tuple(sorted(successor.get((state, s), ()))) for s in range(len(symbols))
            )
            new[state] = signature.setdefault(key, len(signature))
        if len(signature) == len(np.unique(classes)):
            classes = new
            break
        classes = new
    # deterministic machine: one successor class per (class, symbol)
    table: dict[tuple[int, int], int] = {}
    for p, s, a in pairs:
        if table.setdefault((classes[p], s), classes[a]) != classes[a]:
            return None
    n_states = int(classes.max()) + 1
    if n_states > max_states:
        return None
    states = classes[labels][..., None]
    return StateTrace(states=states, inputs=inputs, outputs=outputs, method="fsm",
                      detail={"n_states": n_states, "fine_states": n_fine, "symbols": len(symbols)})  # fmt: skip


# --------------------------------------------------------------------------- integer lattices
def _independent_columns(vectors: list[np.ndarray], tolerance: float) -> np.ndarray:
    kept: list[np.ndarray] = []
    for v in vectors:
        candidate = np.stack([*kept, v], axis=1)
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
            pivot_row += 1
    return np.array([row for row in a if any(row)], dtype=np.int64)


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
        reduced = _hermite_rows(generators)
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


def read_lattice(model: RNN, hidden: np.ndarray, inputs: np.ndarray, outputs: np.ndarray, *,
                 tolerance: float = 0.15) -> StateTrace | None:  # fmt: skip
    """Integer coordinates of the hidden states in a lattice basis, or None."""
    n, steps_plus_one, size = hidden.shape
    origin = hidden[0, 0]  # h_0, the same for every sequence
    centred = (hidden - origin).reshape(-1, size)
    candidates: list[tuple[str, np.ndarray]] = []
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
