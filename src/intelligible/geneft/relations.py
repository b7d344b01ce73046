"""Relations on n symbols: the built-in ones (mod k, greater-than, complete bipartite) and any user
relation given as an n x n boolean matrix, with the axioms each one satisfies.

A relation is the matrix R[x1, x2] = R(x1, x2). The autoencoding task asks a model to predict every
entry from a sample of them; which entries a sample *determines* depends on the axioms the relation
obeys (closure, `statics.closure`), and how much there is to learn depends on its symmetries
(`statics.automorphism_count`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError, DataError

# A relation matrix of this many symbols is far past what the study's bounds and trainers handle
# (the closure is O(n^3), a sweep holds n^2 pairs per model).
MAX_SYMBOLS = 2000

# The axioms the closure knows, each a rule of inference that is sound for a relation obeying it.
AXIOMS = (
    "reflexive",  # R(x, x)
    "irreflexive",  # not R(x, x)
    "symmetric",  # R(x, y) -> R(y, x)
    "antisymmetric",  # R(x, y) and x != y -> not R(y, x)
    "total",  # not R(x, y) and x != y -> R(y, x)
    "transitive",  # R(x, y) and R(y, z) -> R(x, z)
    "negatively-transitive",  # not R(x, y) and not R(y, z) -> not R(x, z)
    "antitransitive",  # R(x, y) and R(y, z) -> not R(x, z)  (with negative transitivity: at most two classes)
)


@dataclass(frozen=True)
class Relation:
    """A named boolean relation on `n` symbols; `matrix[x1, x2]` is R(x1, x2)."""

    name: str
    matrix: np.ndarray
    kind: str = "matrix"  # mod, greater, bipartite or matrix (a user relation)
    parameter: int | None = None  # k for mod k, a for bipartite

    @property
    def n(self) -> int:
        """The number of symbols."""
        return int(self.matrix.shape[0])

    @property
    def positive_fraction(self) -> float:
        """p*: the share of pairs for which R holds (the chance a blind guess of 'true' is right)."""
        return float(self.matrix.mean())

    def axioms(self) -> tuple[str, ...]:
        """The axioms of `AXIOMS` this relation satisfies (checked on its matrix)."""
        return satisfied_axioms(self.matrix)


def mod_relation(n: int, k: int) -> Relation:
    """Equivalence mod k: R(x1, x2) iff x1 = x2 (mod k). k must divide n (equal classes, as in the
    paper); a relation with unequal classes can be given as a matrix."""
    check_n(n)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ConfigError(f"mod k needs a whole number k >= 1, got {shown(k)}")
    if k > n or n % k:
        raise ConfigError(
            f"mod {k} needs k to divide n = {n} (equal classes of n/k symbols); choose k among "
            f"{', '.join(str(d) for d in range(1, n + 1) if n % d == 0)}, or give the relation as a matrix"
        )
    x = np.arange(n)
    return Relation(f"mod{k}", (x[:, None] % k) == (x[None, :] % k), "mod", int(k))


def greater_relation(n: int) -> Relation:
    """The strict order of the paper's 'greater-than' task: R(x1, x2) iff x1 < x2 (x2 is greater)."""
    check_n(n)
    x = np.arange(n)
    return Relation("greater", x[:, None] < x[None, :], "greater")


def bipartite_relation(n: int, a: int) -> Relation:
    """Complete bipartite graph K(a, n - a): R(x1, x2) iff x1 and x2 lie in different parts; the first
    part is symbols 0..a-1 (which symbols does not matter to a model that learns their embeddings)."""
    check_n(n)
    if isinstance(a, bool) or not isinstance(a, int | np.integer) or not 1 <= a <= n - 1:
        raise ConfigError(f"bipartite a needs a part size from 1 to n - 1 = {n - 1}, got {shown(a)}")
    part = np.arange(n) < a
    return Relation(f"bipartite{a}", part[:, None] != part[None, :], "bipartite", int(a))


def matrix_relation(matrix: object, name: str = "matrix") -> Relation:
    """A user relation from an n x n boolean matrix (bool, or integers/floats that are all 0 or 1)."""
    array = np.asarray(matrix)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise DataError(
            f"a relation matrix must be square, n x n; got shape {array.shape} "
            "(one row and one column per symbol)"
        )
    check_n(array.shape[0], what="a relation matrix's size n")
    if array.dtype != bool:
        if array.dtype.kind not in "iuf":
            raise DataError(
                f"a relation matrix must be boolean (true/false or 0/1 entries), got dtype {array.dtype}"
            )
        bad = array[~np.isin(array, (0, 1))]
        if bad.size:
            raise DataError(
                f"a relation matrix must be boolean (true/false or 0/1 entries); found {shown(bad.flat[0].item())}"
            )
        array = array.astype(bool)
    return Relation(name, array.copy(), "matrix")


def load_relation_file(path: str | Path) -> Relation:
    """Read a user relation: .npy (a boolean or 0/1 array), or text (.txt/.csv: one row of 0/1 per
    line, separated by spaces or commas)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            f"relation file {shown(str(path))} does not exist (give a .npy or a text file of 0/1 rows)"
        )
    try:
        if path.suffix == ".npy":
            matrix = np.load(path, allow_pickle=False)
        else:
            text = path.read_text(encoding="utf-8")
            rows = [re.split(r"[,\s]+", line.strip()) for line in text.splitlines() if line.strip()]
            if not rows:
                raise DataError(f"relation file {shown(str(path))} is empty; give n rows of n 0/1 entries")
            if len({len(r) for r in rows}) != 1:
                raise DataError(
                    f"relation file {shown(str(path))}: rows have different lengths; give n rows of n 0/1 entries"
                )
            entries = {"0": False, "1": True, "false": False, "true": True}
            bad = next((e for r in rows for e in r if e.lower() not in entries), None)
            if bad is not None:
                raise DataError(
                    f"relation file {shown(str(path))}: entry {shown(bad)} is not boolean; entries are 0/1 or true/false"
                )
            matrix = np.array([[entries[e.lower()] for e in r] for r in rows], dtype=bool)
    except DataError:
        raise
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"cannot read relation file {shown(str(path))}: {shown(str(error))}") from None
    return matrix_relation(matrix, name=path.stem)


def check_n(n: object, what: str = "n") -> int:
    """n symbols, at least 2 (a relation on one symbol has nothing to generalise)."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer):
        raise ConfigError(f"{what} must be a whole number of symbols, got {shown(n)}")
    if not 2 <= n <= MAX_SYMBOLS:
        raise ConfigError(f"{what} must be from 2 to {MAX_SYMBOLS} symbols, got {n}")
    return int(n)


_NAME = re.compile(r"^(mod|bipartite)(\d+)$|^(greater)$")


def get_relation(spec: str, n: int) -> Relation:
    """A built-in relation by name: `modK` (e.g. mod3), `greater`, `bipartiteA` (e.g. bipartite10)."""
    check_n(n)
    text = str(spec).strip().lower().replace("-", "").replace("_", "")
    match = _NAME.match(text)
    if not match:
        raise ConfigError(
            f"unknown relation {shown(spec)}; built-in: modK (e.g. mod3), greater, bipartiteA (e.g. bipartite10), "
            "or give a matrix file"
        )
    if match.group(3):
        return greater_relation(n)
    number = int(match.group(2))
    return mod_relation(n, number) if match.group(1) == "mod" else bipartite_relation(n, number)


def satisfied_axioms(matrix: np.ndarray) -> tuple[str, ...]:
    """Which axioms of `AXIOMS` the boolean matrix obeys."""
    r = np.asarray(matrix, dtype=bool)
    n = r.shape[0]
    eye = np.eye(n, dtype=bool)
    ri = r.astype(np.int64)
    not_r = ~r
    ni = not_r.astype(np.int64)
    found = []
    if r.diagonal().all():
        found.append("reflexive")
    if not r.diagonal().any():
        found.append("irreflexive")
    if (r == r.T).all():
        found.append("symmetric")
    if not (r & r.T & ~eye).any():
        found.append("antisymmetric")
    if (r | r.T | eye).all():
        found.append("total")
    if not ((ri @ ri > 0) & not_r).any():
        found.append("transitive")
    if not ((ni @ ni > 0) & r).any():
        found.append("negatively-transitive")
    if not ((ri @ ri > 0) & r).any():
        found.append("antitransitive")
    return tuple(found)
