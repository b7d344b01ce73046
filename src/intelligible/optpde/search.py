"""Search a coefficient family u_t = sum_k c_k m_k for equations with many conserved quantities.

The conservation matrix is linear in the coefficients, so the whole family is precomputed once:
T[c, j, k] = integral(E(b_j) * m_k) on curve c (scaled per column) and the Gram matrices
M[c, k, l] = integral(m_k * m_l) for the row scales. A batch of S coefficient vectors then gives
S matrices G = T c at the cost of one einsum, and their singular values in one batched call: every
random start of the search, and every PDE of a batch count, shares that work.

The search: coefficients on the unit sphere, Adam on -n_eff (the soft count) with a cosine learning
rate, all starts as one batch; then the small coefficients are pruned and the rest polished with a
sharper count; the optima are grouped by their support into families, each family summarised by PCA,
and its representative's conserved densities found and proved exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import sympy
import torch

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError
from intelligible.core.progress import progress
from intelligible.optpde.basis import Basis, reduced_basis
from intelligible.optpde.conservation import (
    THRESHOLD,
    column_scales,
    count_conserved,
    euler_images,
    hard_count,
    prove,
    rationalise,
    soft_count,
)
from intelligible.optpde.curves import CurveConfig, Curves, make_curves
from intelligible.optpde.jet import euler, jet_symbol
from intelligible.optpde.pde import PDE, evaluate_expression, family_monomials, pde_from_coefficients

MAX_STARTS = 1_000_000
MAX_STEPS = 1_000_000


@dataclass
class SearchConfig:
    """The search over the 33-coefficient family (defaults: the paper's scale where it says one)."""

    starts: int = 5000
    steps: int = 400
    refine_steps: int = 20  # alternating least-squares steps of the polish
    lr: float = 0.03
    soft_threshold: float = -6.0  # A of n_eff while searching (log10 relative singular value)
    soft_width: float = 1.0  # B of n_eff while searching
    sparsity: float = 0.3  # weight of the L1 norm of the (unit) coefficient vector in the loss
    prune: float = 0.1  # coefficients below this fraction of the largest are set to zero
    batch: int = 1000  # starts per batch (memory)
    family_degree: int = 3
    family_order: int = 3
    density_degree: int = 3
    density_order: int = 2
    n_curves: int = 200
    n_points: int = 1000
    max_families: int = 12  # families verified exactly (the most frequent)
    seed: int = 0

    def validate(self) -> None:
        """Raise ConfigError for a value out of range (before anything is computed)."""
        for name, low, high in (
            ("starts", 1, MAX_STARTS),
            ("steps", 1, MAX_STEPS),
            ("refine_steps", 0, MAX_STEPS),
            ("batch", 1, MAX_STARTS),
            ("n_curves", 2, 100_000),
            ("n_points", 16, 1_000_000),
            ("max_families", 1, 1000),
            ("seed", 0, 2**32 - 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {shown(value)}")
        if not (math.isfinite(self.sparsity) and 0 <= self.sparsity <= 100):
            raise ConfigError(f"sparsity must be in [0, 100], got {shown(self.sparsity)}")
        for name, low, high in (("lr", 0.0, 10.0), ("soft_width", 0.0, 100.0), ("prune", 0.0, 1.0)):
            value = getattr(self, name)
            if not (math.isfinite(value) and low < value < high):
                raise ConfigError(f"{name} must be in ({low}, {high}), got {shown(value)}")
        if not (math.isfinite(self.soft_threshold) and -15 < self.soft_threshold < 0):
            raise ConfigError(f"soft_threshold must be in (-15, 0), got {shown(self.soft_threshold)}")
        from intelligible.optpde.basis import check_size

        check_size(("u",), self.family_degree, self.family_order)
        check_size(("u",), self.density_degree, self.density_order)
        # the family tensor T: curves x densities x family members, float64
        from intelligible.optpde.basis import count_monomials

        members = count_monomials(self.family_order + 1, self.family_degree)
        densities = count_monomials(self.density_order + 1, self.density_degree)
        gib = self.n_curves * (members**2 + densities * members) * 8 / 2**30
        gib += min(self.batch, self.starts) * self.n_curves * densities * 8 * 6 / 2**30
        if gib > 16:
            raise ConfigError(
                f"this search would hold about {gib:.0f} GiB ({self.n_curves} curves, {members} family members, "
                f"{densities} candidate densities, batches of {self.batch}); use fewer curves, a smaller "
                "batch or a smaller family"
            )

    def curve_config(self) -> CurveConfig:
        """The test curves of the search."""
        return CurveConfig(n_curves=self.n_curves, n_points=self.n_points, seed=self.seed)


class Family:
    """A coefficient family with its precomputed conservation tensors; `counts` gives n_CQ of many
    coefficient vectors in one batch."""

    def __init__(self, members: list[sympy.Expr], basis: Basis, curves: Curves) -> None:
        self.members = members
        self.basis = basis
        self.curves = curves
        images = euler_images(basis, curves)[:, 0]  # one field: (n_basis, n_curves, n_points)
        values = np.stack([evaluate_expression(m, ("u",), curves) for m in members])  # (K, C, X)
        w = curves.weights
        # the search works in balanced coordinates p_k = c_k * size(m_k): on the raw curves a cubic
        # member is thousands of times larger than a linear one, and the sphere would favour it
        self.member_scales = np.sqrt(np.einsum("kcx,kcx,x->k", values, values, w) / curves.n_curves)
        values = values / self.member_scales[:, None, None]
        scales = column_scales(images[:, None], w)
        self.column_scales = scales
        self.T = torch.from_numpy(np.einsum("jcx,kcx,x->cjk", images, values, w) * scales[None, :, None])
        self.M = torch.from_numpy(np.einsum("kcx,lcx,x->ckl", values, values, w))
        # the search's row weights: the mean size of the family's members on each curve (not of F)
        rows = np.sqrt(np.einsum("ckk->c", self.M.numpy()) / len(members))
        T = self.T.numpy() / rows[:, None, None]
        self.weighted = T  # (C, J, K), rows weighted independently of c: for the polish
        self.Q = torch.from_numpy(np.einsum("cjk,cil->klji", T, T).copy())

    def matrices(self, coefficients: torch.Tensor) -> torch.Tensor:
        """Normalised conservation matrices for a batch of coefficient vectors (S, K) -> (S, C, J)."""
        G = (coefficients @ self.T.reshape(-1, self.T.shape[2]).T).reshape(
            len(coefficients), *self.T.shape[:2]
        )
        M = self.M.permute(1, 0, 2).reshape(self.M.shape[1], -1)
        rows = (
            (coefficients @ M).reshape(len(coefficients), *self.M.shape[:2]) * coefficients[:, None, :]
        ).sum(-1)
        return G / rows.clamp_min(1e-300).sqrt()[..., None]

    def singular_values(self, coefficients: torch.Tensor) -> torch.Tensor:
        """Relative singular values (S, J), descending: exact (SVD of the normalised matrices)."""
        s = torch.linalg.svdvals(self.matrices(coefficients))
        return s / s[:, :1].clamp_min(1e-300)

    def smooth_singular_values(self, coefficients: torch.Tensor) -> torch.Tensor:  # noqa: D417
        """Relative singular values (S, J) for the search, from the J x J Gram matrix c^T Q c with rows
        weighted by a scale that does not depend on c: quadratic in c, so one small product per step
        whatever the number of curves, and eigvalsh's gradient has no 1/(s_i - s_j) terms. Resolution
        stops near 1e-8 (the square root of rounding), ample for a search; counts use the exact SVD."""
        S, K = coefficients.shape
        J = self.Q.shape[2]
        outer = (coefficients[:, :, None] * coefficients[:, None, :]).reshape(S, K * K)
        H = (outer @ self.Q.reshape(K * K, J * J)).reshape(S, J, J)
        eigenvalues = torch.linalg.eigvalsh(H)
        top = eigenvalues[:, -1:].clamp_min(1e-300)
        return (eigenvalues / top).clamp_min(1e-32).sqrt().flip(-1)

    def counts(self, coefficients: np.ndarray, threshold: float = THRESHOLD, batch: int = 1000) -> np.ndarray:
        """Hard n_CQ of each row of `coefficients` (S, K)."""
        values = np.asarray(coefficients, dtype=float)
        if values.ndim != 2 or values.shape[1] != len(self.members):
            raise ConfigError(
                f"need coefficient vectors of length {len(self.members)}, got shape {values.shape}"
            )
        if not np.all(np.isfinite(values)):
            raise ConfigError("the coefficients hold NaN or infinite values; give finite numbers")
        if not np.all(np.any(values != 0, axis=1)):
            raise ConfigError("a coefficient vector is all zeros (u_t = 0 conserves everything)")
        out = []
        values = values * self.member_scales[None, :]
        with torch.no_grad():
            for start in range(0, len(values), batch):
                s = self.singular_values(torch.from_numpy(values[start : start + batch])).numpy()
                out.extend(hard_count(row, threshold) for row in s)
        return np.array(out, dtype=int)


def build_family(config: SearchConfig, extra_derivatives: int = 0) -> Family:
    """The search family and density basis of `config`, precomputed on its curves (which hold
    `extra_derivatives` more derivatives than the count needs, for procedures that differentiate F)."""
    members = family_monomials(config.family_degree, config.family_order)
    basis = reduced_basis(("u",), config.density_degree, config.density_order)
    derivatives = max(2 * config.density_order, config.family_order) + extra_derivatives
    return Family(members, basis, make_curves(config.curve_config(), max_derivative=derivatives))


@dataclass
class FamilyFound:
    """One family of optima: its support, size, PCA dimension, representative and proved densities."""

    support: list[str]
    size: int
    n_conserved: int
    pca_dimension: int
    representative: list[float]
    equation: str
    densities: list[str] = field(default_factory=list)
    statuses: list[str] = field(default_factory=list)
    proved_member: str = ""
    proved_density: str = ""
    proved: bool = False
    pde_space: list[str] = field(default_factory=list)


@dataclass
class SearchResult:
    """Every optimum (coefficients, counts) and the families they fall into."""

    members: list[str]
    optima: np.ndarray
    counts: np.ndarray
    soft_counts: np.ndarray
    families: list[FamilyFound]
    loss_curve: list[float]


def _optimise(
    family: Family,
    start: torch.Tensor,
    steps: int,
    lr: float,
    A: float,
    B: float,
    mask: torch.Tensor | None,
    bar,
    sparsity: float = 0.0,
) -> tuple[torch.Tensor, list[float]]:  # noqa: ANN001
    params = start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([params], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(steps, 1))
    curve = []
    for _ in range(steps):
        p = params * mask if mask is not None else params
        coefficients = p / p.norm(dim=1, keepdim=True).clamp_min(1e-12)
        n_eff = soft_count(family.smooth_singular_values(coefficients), A, B)
        # the L1 norm on the sphere is smallest on the axes: it favours few terms
        loss = -n_eff.sum() + sparsity * coefficients.abs().sum()
        optimiser.zero_grad()
        loss.backward()
        # a vanishing singular value makes log10 infinitely steep: keep the step finite
        torch.nn.utils.clip_grad_norm_([params], max_norm=10.0 * len(params))
        optimiser.step()
        schedule.step()
        curve.append(float(n_eff.detach().mean()))
        bar.update(1)
        bar.set_postfix(n_eff=f"{curve[-1]:.2f}")
    with torch.no_grad():
        p = params * mask if mask is not None else params
        return (p / p.norm(dim=1, keepdim=True)).detach(), curve


def polish(family: Family, coefficients: np.ndarray, keep: np.ndarray, iterations: int) -> np.ndarray:
    """Move an optimum onto an exact solution of G(c) a = 0 on its support by alternating least squares.

    G(c) a is bilinear: for fixed c the best density a is the last right singular vector of G(c);
    for fixed a the best c (unit norm, on the support) is the last right singular vector of the matrix
    whose columns are T_k a. Each half-step can only lower ||G(c) a||, and at a conserving equation
    it reaches zero, which the optimiser's smooth count can only approach."""
    support = np.flatnonzero(keep)
    c = np.zeros_like(coefficients)
    c[support] = coefficients[support]
    c /= np.linalg.norm(c)
    T = family.weighted[:, :, support]  # (C, J, |S|)
    for _ in range(iterations):
        G = T @ c[support]  # (C, J)
        a = np.linalg.svd(G, full_matrices=False)[2][-1]
        A = np.einsum("cjk,j->ck", T, a)
        c_support = np.linalg.svd(A, full_matrices=False)[2][-1]
        c = np.zeros_like(coefficients)
        c[support] = c_support
    c[np.abs(c) < 1e-7 * np.abs(c).max()] = 0.0  # rounding residue of the dropped directions
    return c


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread: the search's matrices are small, and on a busy machine a second
    thread costs more in waiting than it gains (a 60 x 1089 product: 2 ms on one thread, 33 ms on two)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def search(config: SearchConfig, family: Family | None = None) -> SearchResult:
    """Run the search of `config` (validated first) and group its optima into families."""
    config.validate()
    with one_thread():
        return _search(config, family)


def _search(config: SearchConfig, family: Family | None) -> SearchResult:
    if family is None:
        family = build_family(config)
    generator = torch.Generator().manual_seed(config.seed)
    K = len(family.members)
    optima, curves = [], []
    total = math.ceil(config.starts / config.batch) * (config.steps + config.refine_steps)
    with progress(total=total, desc="optpde search") as bar:
        for first in range(0, config.starts, config.batch):
            n = min(config.batch, config.starts - first)
            start = torch.randn(n, K, generator=generator, dtype=torch.float64)
            found, curve = _optimise(
                family,
                start,
                config.steps,
                config.lr,
                config.soft_threshold,
                config.soft_width,
                None,
                bar,
                config.sparsity,
            )
            # sparsify: drop the small coefficients, then polish the rest onto an exact solution
            mask = found.abs() >= config.prune * found.abs().amax(dim=1, keepdim=True)
            polished = [
                polish(family, row, keep, config.refine_steps)
                for row, keep in zip(found.numpy(), mask.numpy())
            ]
            bar.update(config.refine_steps)
            optima.append(torch.from_numpy(np.array(polished)))
            curves.append(curve)
    balanced = torch.cat(optima).numpy()
    with torch.no_grad():
        soft = soft_count(
            family.singular_values(torch.from_numpy(balanced)), config.soft_threshold, config.soft_width
        ).numpy()
    coefficients = balanced / family.member_scales[None, :]
    coefficients /= np.linalg.norm(coefficients, axis=1, keepdims=True)
    # signs: a PDE and its negative conserve the same densities; make the largest coefficient positive
    coefficients *= np.sign(coefficients[np.arange(len(coefficients)), np.abs(coefficients).argmax(1)])[
        :, None
    ]
    counts = family.counts(coefficients)
    families = group_families(coefficients, counts, family, config.max_families)
    loss_curve = np.mean(np.array(curves), axis=0).tolist()
    return SearchResult([str(m) for m in family.members], coefficients, counts, soft, families, loss_curve)


def group_families(
    coefficients: np.ndarray, counts: np.ndarray, family: Family, limit: int
) -> list[FamilyFound]:
    """Group optima with n_CQ >= 1 by their support; summarise each group (PCA, representative) and
    verify the most frequent `limit` groups exactly."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, row in enumerate(coefficients):
        if counts[i] >= 1:
            groups.setdefault(tuple(np.flatnonzero(row).tolist()), []).append(i)
    # most conserved quantities first, then the most often found
    ordered = sorted(
        groups.items(), key=lambda item: (-int(np.median(counts[item[1]])), -len(item[1]), item[0])
    )
    found = []
    for support, members in ordered[:limit]:
        rows = coefficients[members][:, list(support)]
        centred = rows - rows.mean(axis=0)
        if len(rows) > 1:
            variance = np.linalg.svd(centred, compute_uv=False) ** 2
            share = np.cumsum(variance) / max(variance.sum(), 1e-300)
            dimension = int(np.searchsorted(share, 0.99) + 1) if variance.sum() > 1e-12 else 0
        else:
            dimension = 0
        centroid = rows.mean(axis=0)
        best = members[int(np.argmin(np.linalg.norm(rows - centroid, axis=1)))]
        representative = coefficients[best]
        entry = FamilyFound(
            support=[str(family.members[k]) for k in support],
            size=len(members),
            n_conserved=int(np.bincount(counts[members]).argmax()),
            pca_dimension=dimension,
            representative=representative.tolist(),
            equation=_equation(representative, family.members),
        )
        verify_family(entry, representative, list(support), family)
        found.append(entry)
    return found


def _equation(coefficients: np.ndarray, members: list[sympy.Expr], digits: int = 3) -> str:
    return str(sympy.Add(*[sympy.Float(c, digits) * m for c, m in zip(coefficients, members) if c != 0]))


def verify_family(entry: FamilyFound, representative: np.ndarray, support: list[int], family: Family) -> None:
    """Find the representative's conserved densities and prove a member exactly.

    The representative's coefficients are floats, so its densities are rationalised coarsely and, for
    each, the exact linear space of equations on the same support that conserve it is solved for over
    the rationals; the nearest rational point of that space is a proved member of the family."""
    pde = pde_from_coefficients(representative, family.members)
    result = count_conserved(pde, family.basis, family.curves, verify=False)
    members = [family.members[k] for k in support]
    for quantity in result.quantities:
        entry.densities.append(str(quantity.density))
        exact = rationalise(np.array(quantity.coefficients), max_denominator=50, tolerance=5e-3)
        if exact is None:
            entry.statuses.append("numerical")
            continue
        density = sympy.Add(*[c * b for c, b in zip(exact, family.basis.functions) if c != 0])
        space = conserving_equations(density, members)
        if not space:
            entry.statuses.append("no exact member near")
            continue
        basis_vectors = np.array([[float(v) for v in vector] for vector in space])
        coordinates, *_ = np.linalg.lstsq(basis_vectors.T, representative[support], rcond=None)
        scale = coordinates[np.argmax(np.abs(coordinates))]
        rational = [sympy.Rational(round(c / scale * 1000), 1000) for c in coordinates]
        exact_coefficients = [
            sum((r * vector[i] for r, vector in zip(rational, space)), sympy.Integer(0))
            for i in range(len(members))
        ]
        equation = sympy.Add(*[c * m for c, m in zip(exact_coefficients, members)])
        proved = prove(density, PDE(("u",), {"u": equation}, str(equation)))
        entry.statuses.append("proved" if proved else "refused")
        entry.pde_space = [str(sympy.Add(*[c * m for c, m in zip(vector, members)])) for vector in space]
        if proved and not entry.proved:
            entry.proved, entry.proved_member, entry.proved_density = True, str(equation), str(density)


def conserving_equations(density: sympy.Expr, members: list[sympy.Expr]) -> list[list[sympy.Rational]]:
    """A basis (exact rationals) of the coefficient vectors c with sum_k c_k m_k conserving `density`:
    the Euler operator of E(density) * m_k must cancel, which is linear in c."""
    fields = ("u",)
    variation = euler(density, "u", fields)
    images = [sympy.expand(euler(sympy.expand(variation * m), "u", fields)) for m in members]
    keys = sorted({k for image in images for k in image.as_coefficients_dict()}, key=str)
    if not keys:
        return [[sympy.Integer(int(i == j)) for i in range(len(members))] for j in range(len(members))]
    matrix = sympy.Matrix([[image.as_coefficients_dict().get(k, 0) for image in images] for k in keys])
    return [list(vector) for vector in matrix.nullspace()]


def family_form_residual(coefficients: np.ndarray, members: list[sympy.Expr]) -> tuple[float, float]:
    """How far a coefficient vector is from (u_x + q u_xxx)**3 (relative residual) and the fitted q."""
    u1, u3 = jet_symbol("u", 1), jet_symbol("u", 3)
    q = sympy.Symbol("q")
    target = sympy.Poly(sympy.expand((u1 + q * u3) ** 3), u1, u3)
    index = {str(m): k for k, m in enumerate(members)}
    vector = np.asarray(coefficients, dtype=float)
    a = vector[index[str(u1**3)]] if str(u1**3) in index else 0.0
    if a == 0:
        return float("inf"), float("nan")
    value = vector[index[str(u1**2 * u3)]] / (3 * a)
    form = np.zeros_like(vector)
    for (p1, p3), coefficient in zip(target.monoms(), target.coeffs()):
        form[index[str(u1**p1 * u3**p3)]] = float(coefficient.subs(q, value)) * a
    return float(np.linalg.norm(vector - form) / np.linalg.norm(vector)), float(value)
