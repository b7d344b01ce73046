"""Statics: how much data a relation needs before it can be generalised.

- `automorphism_count`: |Aut(G)| of the relation's graph, exactly (a closed form for the built-in
  relations, an orbit-stabiliser search with colour refinement for any other matrix).
- `description_bits`: b = log2(n! / |Aut(G)|), the bits that single out the relation among its
  relabellings; `balls_in_buckets`, `critical_fraction` (p_c) and `accuracy_bound` (f_UB) turn it
  into the paper's estimates.
- `closure` and `monte_carlo_bound`: the exact bound: close a sampled set of pairs under the
  relation's axioms and count what is determined; an undetermined pair is scored as a blind guess.
- `correlated_split` and `training_split`: training sets whose pairs carry overlapping information
  (a share `redundancy` of the draws is a pair the earlier ones already determine): correlated data,
  which should delay generalisation for the bound and for the networks alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError
from intelligible.geneft.data import check_fraction, split_pairs, train_count
from intelligible.geneft.relations import AXIOMS, Relation

# ---------------------------------------------------------------------------------------------
# |Aut(G)|


def automorphism_count(relation: Relation, method: str = "auto") -> int:
    """|Aut(G)|: permutations s of the symbols with R(s(x), s(y)) = R(x, y) for all x, y.

    method: "formula" (built-in relations only), "search" (any matrix), "auto" (formula when there
    is one). Exact integers either way.
    """
    if method not in ("auto", "formula", "search"):
        raise ConfigError(f"method must be auto, formula or search, got {shown(method)}")
    formula = _formula_count(relation)
    if method == "formula":
        if formula is None:
            raise ConfigError(f"no closed form for relation {shown(relation.name)}; use method 'search'")
        return formula
    if method == "auto" and formula is not None:
        return formula
    return search_automorphism_count(relation.matrix)


def _formula_count(relation: Relation) -> int | None:
    n = relation.n
    if relation.kind == "mod":
        k = int(relation.parameter or 1)
        return math.factorial(n // k) ** k * math.factorial(k)  # permute within classes, and the classes
    if relation.kind == "greater":
        return 1  # a strict total order has no symmetry
    if relation.kind == "bipartite":
        a = int(relation.parameter or 1)
        swap = 2 if 2 * a == n else 1  # equal parts may be exchanged
        return math.factorial(a) * math.factorial(n - a) * swap
    return None


def search_automorphism_count(matrix: np.ndarray) -> int:
    """|Aut| of any directed graph (loops allowed) by the orbit-stabiliser theorem:
    |Aut| = |orbit(v)| * |Aut_v|, down a chain of individualised vertices. Each orbit is found by
    searching, with colour refinement, for an automorphism taking v to each candidate; the
    automorphisms found merge candidates into orbits without a search of their own."""
    adjacency = np.asarray(matrix, dtype=bool)
    n = adjacency.shape[0]
    colours = _refine(adjacency, np.zeros(n, dtype=np.int64))
    total = 1
    while True:
        cell = _target_cell(colours)
        if cell is None:
            return total
        if _block_values(adjacency, colours) is not None:
            # every colour-preserving bijection is an automorphism: the stabiliser is the product
            # of the classes' symmetric groups (mod k and bipartite reach this at once)
            return total * math.prod(math.factorial(int(size)) for size in np.bincount(colours) if size)
        v = int(cell[0])
        parent = list(range(n))
        find = _finder(parent)
        for w in cell[1:]:
            w = int(w)
            if find(w) == find(v):
                continue
            mapping = _find_isomorphism(adjacency, _individualise(colours, v), _individualise(colours, w))
            if mapping is not None:
                for i, j in enumerate(mapping):
                    root_i, root_j = find(i), find(int(j))
                    if root_i != root_j:
                        parent[root_i] = root_j
        total *= sum(find(int(w)) == find(v) for w in cell)
        colours = _refine(adjacency, _individualise(colours, v))


def _finder(parent: list[int]):  # noqa: ANN202 - a closure over one union-find forest
    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    return find


def _individualise(colours: np.ndarray, vertex: int) -> np.ndarray:
    out = colours.copy()
    out[vertex] = colours.max() + 1
    return out


def _target_cell(colours: np.ndarray) -> np.ndarray | None:
    """The smallest colour class with more than one vertex (None when every vertex is alone)."""
    values, counts = np.unique(colours, return_counts=True)
    if (counts == 1).all():
        return None
    choice = values[np.argmin(np.where(counts > 1, counts, np.iinfo(np.int64).max))]
    return np.flatnonzero(colours == choice)


def _refine(adjacency: np.ndarray, *colourings: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
    """Colour refinement, jointly over several colourings of the same graph (so equal colours mean
    the same thing in each): a vertex's new colour is its colour, its loop, and the multisets of
    its out- and in-neighbours' colours; repeated until no class splits.

    A multiset is summarised as a sum of fixed random 40-bit weights per colour (exact integer
    sums). Two different multisets could share a sum and stay one class; that only makes the
    colouring coarser, which costs search time but never an automorphism (every one is checked)."""
    current = [np.asarray(c, dtype=np.int64) for c in colourings]
    n = adjacency.shape[0]
    a = adjacency.astype(np.int64)
    loops = adjacency.diagonal().astype(np.int64)
    weights = np.random.Generator(np.random.PCG64(20240208)).integers(
        0, 2**40, size=2 * n + 2, dtype=np.int64
    )
    classes = len(np.unique(np.concatenate(current)))
    while True:
        rows = [np.stack([c, loops, a @ weights[c], a.T @ weights[c]], axis=1) for c in current]
        _, inverse = np.unique(np.vstack(rows), axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        current = [inverse[i * n : (i + 1) * n] for i in range(len(current))]
        count = int(inverse.max()) + 1
        if count == classes:
            return current[0] if len(current) == 1 else tuple(current)
        classes = count


def _block_values(adjacency: np.ndarray, colours: np.ndarray) -> np.ndarray | None:
    """When the graph between any two colour classes (and inside each, off the diagonal) is complete
    or empty and the loops are uniform per class, the 0/1 block matrix (with the loops as an extra
    column); None otherwise."""
    n = adjacency.shape[0]
    k = int(colours.max()) + 1
    onehot = np.zeros((n, k), dtype=np.int64)
    onehot[np.arange(n), colours] = 1
    sizes = onehot.sum(axis=0)
    off = adjacency & ~np.eye(n, dtype=bool)
    counts = onehot.T @ off.astype(np.int64) @ onehot
    possible = np.outer(sizes, sizes) - np.diag(sizes)
    loops = onehot.T @ adjacency.diagonal().astype(np.int64)
    full = (counts == possible) & (possible > 0)
    if not ((counts == 0) | full).all() or not ((loops == 0) | (loops == sizes)).all():
        return None
    return np.hstack([full, (loops == sizes)[:, None] & (sizes > 0)[:, None]])


def _find_isomorphism(adjacency: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray | None:
    """A permutation p with adjacency[p][:, p] == adjacency that maps colouring `first` onto
    `second`, or None. Backtracking over individualisations, refining after each."""
    first, second = _refine(adjacency, first, second)
    if not np.array_equal(np.bincount(first), np.bincount(second, minlength=len(np.bincount(first)))):
        return None
    cell = _target_cell(first)
    values = _block_values(adjacency, first) if cell is not None else None
    if cell is None or (values is not None and np.array_equal(values, _block_values(adjacency, second))):
        # a discrete colouring, or two homogeneous ones with equal blocks: map colour onto colour
        mapping = np.empty_like(first)
        mapping[np.argsort(first)] = np.argsort(second)  # vertex of colour c -> vertex of colour c
        ok = np.array_equal(adjacency[np.ix_(mapping, mapping)], adjacency)
        return mapping if ok else None
    v = int(cell[0])
    for w in np.flatnonzero(second == first[v]):
        found = _find_isomorphism(adjacency, _individualise(first, v), _individualise(second, int(w)))
        if found is not None:
            return found
    return None


def brute_force_automorphism_count(matrix: np.ndarray) -> int:
    """|Aut| by trying all n! permutations (tests only; n <= 8)."""
    import itertools

    adjacency = np.asarray(matrix, dtype=bool)
    n = adjacency.shape[0]
    if n > 8:
        raise ConfigError(f"brute force is for n <= 8, got n = {n}")
    return sum(
        np.array_equal(adjacency[np.ix_(p, p)], adjacency)
        for p in (np.array(q) for q in itertools.permutations(range(n)))
    )


# ---------------------------------------------------------------------------------------------
# The information-theory estimates


def description_bits(relation: Relation, method: str = "auto") -> float:
    """b = log2(n! / |Aut(G)|)."""
    aut = automorphism_count(relation, method)
    return math.log2(math.factorial(relation.n) // aut) if aut else math.inf


def balls_in_buckets(m: float | np.ndarray, bits: float) -> float | np.ndarray:
    """f(m) = 1 - (1 - 1/b)^m: the share of the b bits that m random samples reveal, when each sample
    lands on one of b buckets. For b <= 1 a single sample reveals everything."""
    m = np.asarray(m, dtype=float)
    base = max(0.0, 1.0 - 1.0 / bits) if bits > 0 else 0.0
    value = np.where(m > 0, 1.0 - base**m, 0.0) if bits > 0 else np.ones_like(m)
    return float(value) if value.ndim == 0 else value


def critical_fraction(bits: float, n_pairs: int, alpha: float = 0.9) -> float:
    """p_c = (1/N) log2(1 - alpha) / log2(1 - 1/b): the data fraction at which f reaches alpha.
    b = 0 (nothing to learn) gives 0; 0 < b <= 1 gives one sample, 1/N."""
    if not 0.0 < alpha < 1.0 or not math.isfinite(alpha):
        raise ConfigError(f"alpha must lie in (0, 1), got {shown(alpha)}")
    if bits <= 0:
        return 0.0
    if bits <= 1:
        return 1.0 / n_pairs
    return math.log2(1.0 - alpha) / math.log2(1.0 - 1.0 / bits) / n_pairs


def accuracy_bound(
    fraction: float | np.ndarray, bits: float, n_pairs: int, positive_fraction: float
) -> float | np.ndarray:
    """f_UB = f + max(p*, 1 - p*) (1 - f), f = f(fraction * N): what is known is right, the rest is
    a blind guess of the majority label (p* the share of pairs for which R holds)."""
    f = balls_in_buckets(np.asarray(fraction, dtype=float) * n_pairs, bits)
    guess = max(positive_fraction, 1.0 - positive_fraction)
    return f + guess * (1.0 - f)


# ---------------------------------------------------------------------------------------------
# The exact (Monte Carlo) bound


def closure(
    known_true: np.ndarray, known_false: np.ndarray, axioms: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """Close known facts (boolean n x n matrices of pairs known true / known false) under the given
    axioms; returns the enlarged pair. Each rule is sound for a relation obeying its axiom, so the
    result is what the axioms alone determine from the sample (repeated to a fixed point)."""
    unknown = [a for a in axioms if a not in AXIOMS]
    if unknown:
        raise ConfigError(f"unknown axiom {shown(unknown[0])}; known: {', '.join(AXIOMS)}")
    true = np.array(known_true, dtype=bool)
    false = np.array(known_false, dtype=bool)
    n = true.shape[0]
    eye = np.eye(n, dtype=bool)
    off = ~eye

    def compose(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x.astype(np.float32) @ y.astype(np.float32)) > 0

    while True:
        before = (int(true.sum()), int(false.sum()))
        if "reflexive" in axioms:
            true |= eye
        if "irreflexive" in axioms:
            false |= eye
        if "symmetric" in axioms:
            true |= true.T
            false |= false.T
        if "antisymmetric" in axioms:
            false |= true.T & off
        if "total" in axioms:
            true |= false.T & off
        if "transitive" in axioms:
            true |= compose(true, true)
            false |= compose(true.T, false)  # R(x,y), not R(x,z) -> not R(y,z)
            false |= compose(false, true.T)  # not R(x,z), R(y,z) -> not R(x,y)
        if "negatively-transitive" in axioms:
            false |= compose(false, false)
            true |= compose(false.T, true)  # not R(x,y), R(x,z) -> R(y,z)
            true |= compose(true, false.T)  # R(x,z), not R(y,z) -> R(x,y)
        if "antitransitive" in axioms:
            false |= compose(true, true)
            false |= compose(true.T, true)  # R(x,y), R(x,z) -> not R(y,z)
            false |= compose(true, true.T)  # R(x,z), R(y,z) -> not R(x,y)
        if (int(true.sum()), int(false.sum())) == before:
            return true, false


@dataclass
class BoundSample:
    """The exact bound for one sampled training set."""

    determined: float  # share of all n^2 pairs the axioms determine from the sample
    test_determined: float  # share of the held-out pairs determined
    test_accuracy_bound: float  # held-out accuracy: determined pairs right, the rest a blind guess


def exact_bound(
    relation: Relation, train_index: np.ndarray, axioms: tuple[str, ...] | None = None
) -> BoundSample:
    """The exact bound for one training set (indices into the n^2 pairs): close the sample under the
    relation's axioms (its own by default) and score the held-out pairs."""
    n = relation.n
    axioms = relation.axioms() if axioms is None else tuple(axioms)
    truth = relation.matrix.reshape(-1)
    known_true = np.zeros(n * n, dtype=bool)
    known_false = np.zeros(n * n, dtype=bool)
    known_true[train_index] = truth[train_index]
    known_false[train_index] = ~truth[train_index]
    true, false = closure(known_true.reshape(n, n), known_false.reshape(n, n), axioms)
    determined = (true | false).reshape(-1)
    if (true & false).any():  # a contradiction would mean an unsound rule: never silently
        raise AssertionError("closure derived a pair both true and false")
    held = np.ones(n * n, dtype=bool)
    held[train_index] = False
    guess = max(relation.positive_fraction, 1.0 - relation.positive_fraction)
    if not held.any():  # everything trained on: nothing held out to be wrong about
        return BoundSample(float(determined.mean()), 1.0, 1.0)
    test_determined = float(determined[held].mean())
    return BoundSample(
        float(determined.mean()), test_determined, test_determined + guess * (1.0 - test_determined)
    )


def check_redundancy(value: object) -> float:
    """A redundancy: the share of training draws that repeat known information, in [0, 1)."""
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not 0.0 <= value < 1.0:
        raise ConfigError(f"redundancy must be a share in [0, 1), got {shown(value)}")
    return float(value)


def correlated_split(
    relation: Relation, fraction: float, seed: int, redundancy: float, axioms: tuple[str, ...] | None = None
) -> np.ndarray:
    """A training set of `fraction` of the pairs whose draws are correlated: pairs are added one at a
    time; with probability `redundancy` the next is drawn among the pairs the axioms already determine
    from those drawn so far (it tells a learner nothing new), otherwise uniformly among the rest. When
    nothing determined is left to draw (or the relation has no axioms) the draw is uniform. Sorted
    indices into the n^2 pairs, a function of (relation, fraction, seed, redundancy)."""
    check_fraction(fraction)
    redundancy = check_redundancy(redundancy)
    n = relation.n
    if redundancy == 0.0:
        return split_pairs(n, fraction, seed)  # the uniform split the trainer uses, bit for bit
    axioms = relation.axioms() if axioms is None else tuple(axioms)
    truth = relation.matrix.reshape(-1)
    rng = np.random.Generator(np.random.PCG64([int(seed), n, 0x6F, int(round(redundancy * 1e6))]))
    order = rng.permutation(n * n)  # the uniform draws, in turn
    drawn = np.zeros(n * n, dtype=bool)
    known_true = np.zeros(n * n, dtype=bool)
    known_false = np.zeros(n * n, dtype=bool)
    determined = np.zeros(n * n, dtype=bool)
    position = 0
    for _ in range(train_count(n, fraction)):
        redundant = np.flatnonzero(determined & ~drawn)
        if len(redundant) and rng.random() < redundancy:
            pair = int(redundant[rng.integers(len(redundant))])
        else:
            while drawn[order[position]]:
                position += 1
            pair = int(order[position])
        drawn[pair] = True
        if not determined[pair]:  # a pair the closure already holds leaves the closure as it is
            known_true[pair], known_false[pair] = truth[pair], not truth[pair]
            true, false = closure(known_true.reshape(n, n), known_false.reshape(n, n), axioms)
            determined = (true | false).reshape(-1)
            determined[drawn] = True
    return np.flatnonzero(drawn)


def training_split(relation: Relation, fraction: float, seed: int, redundancy: float = 0.0) -> np.ndarray:
    """The training pairs of one run: the uniform split, or a correlated one when redundancy > 0."""
    return correlated_split(relation, fraction, seed, redundancy)


def monte_carlo_bound(
    relation: Relation,
    fractions: list[float] | tuple[float, ...],
    seeds: list[int] | tuple[int, ...] = (0, 1, 2, 3),
    axioms: tuple[str, ...] | None = None,
    redundancy: float = 0.0,
) -> list[dict]:
    """The exact bound at each fraction, averaged over the training sets of `seeds` (the same splits
    the trainer uses, correlated when `redundancy` > 0): rows {fraction, determined, test_determined,
    test_accuracy_bound, ..._std}."""
    check_redundancy(redundancy)
    rows = []
    for fraction in fractions:
        check_fraction(fraction)
        samples = [
            exact_bound(relation, training_split(relation, fraction, seed, redundancy), axioms)
            for seed in seeds
        ]
        row: dict = {"fraction": float(fraction)}
        for key in ("determined", "test_determined", "test_accuracy_bound"):
            values = np.array([getattr(s, key) for s in samples])
            row[key] = float(values.mean())
            row[f"{key}_std"] = float(values.std())
        rows.append(row)
    return rows


def bound_summary(relation: Relation, alpha: float = 0.9, method: str = "auto") -> dict:
    """Every static number of a relation: |Aut|, b, p*, p_c, and the axioms the closure uses."""
    aut = automorphism_count(relation, method)
    n_pairs = relation.n**2
    bits = math.log2(math.factorial(relation.n) // aut)
    return {
        "relation": relation.name,
        "n": relation.n,
        "automorphisms": aut,
        "log2_automorphisms": math.log2(aut),
        "bits": bits,
        "positive_fraction": relation.positive_fraction,
        "critical_fraction": critical_fraction(bits, n_pairs, alpha),
        "alpha": alpha,
        "axioms": list(relation.axioms()),
    }
