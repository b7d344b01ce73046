"""The conservation matrix G, the count of conserved quantities n_CQ, and the densities themselves.

For a density rho = sum_j a_j b_j over a basis, d/dt of its integral under u_t = F is
sum_j a_j * integral(E(b_j) * F dx) after integrating by parts (E: the Euler operator). On each test
curve c that is row c of G times a, so rho is conserved on every curve exactly when G a = 0: n_CQ is
the dimension of the null space of G. With the reduced basis no total derivative (a trivial null
vector) is left to inflate it.

Scale: G is divided row by row by the size of F on the curve and column by column by the size of
E(b_j) over all curves (neither changes the null space), and singular values are taken relative to
the largest, so the count does not depend on the units of u, of F or of the densities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import sympy

from intelligible.core.errors import ConfigError
from intelligible.optpde.basis import Basis
from intelligible.optpde.curves import Curves
from intelligible.optpde.jet import conserves, euler, is_total_derivative, max_order
from intelligible.optpde.pde import PDE

# log10 of the relative singular value below which a direction counts as conserved. Conserved
# directions sit at rounding level (1e-13 and below in float64), the smallest genuinely broken ones
# above 1e-5 on the Gaussian curves, so any threshold in between gives the same counts.
THRESHOLD = -8.0
MAX_DENOMINATOR = 1000


@dataclass
class ConservedQuantity:
    """One conserved density: its coefficients over the basis, the expression, and whether it is proved
    exactly (True), refused by the exact check (False) or only numerical (None: not rational)."""

    coefficients: list[float]
    density: sympy.Expr
    proved: bool | None
    trivial: bool = False  # a total derivative: its integral is zero (only an unreduced basis has these)

    @property
    def status(self) -> str:
        """proved, trivial, refused or numerical."""
        if self.trivial:
            return "trivial"
        return {True: "proved", False: "refused", None: "numerical"}[self.proved]

    def __str__(self) -> str:
        marks = {
            "proved": "proved",
            "trivial": "trivial: a total derivative",
            "refused": "refused by the exact check",
            "numerical": "numerical only",
        }
        return f"{self.density}  [{marks[self.status]}]"


@dataclass
class CountResult:
    """n_CQ of one PDE in one basis: the relative singular values (descending), the count and the
    densities (sparsified, rationalised, each checked exactly)."""

    pde: str
    basis: list[str]
    singular_values: np.ndarray
    n_conserved: int
    quantities: list[ConservedQuantity] = field(default_factory=list)
    fields: tuple[str, ...] = ("u",)

    @property
    def n_proved(self) -> int:
        """How many of the quantities are proved exactly."""
        return sum(q.status == "proved" for q in self.quantities)

    @property
    def n_trivial(self) -> int:
        """How many null vectors are total derivatives (none in a reduced basis)."""
        return sum(q.trivial for q in self.quantities)

    @property
    def n_distinct(self) -> int:
        """Conserved quantities counted modulo total derivatives (exact; rationalised densities only):
        u*u_xx and -u_x**2 count once, total derivatives not at all."""
        from intelligible.optpde.basis import _images, _independent

        exact = [q.density for q in self.quantities if q.proved is not None or q.trivial]
        if not exact:
            return 0
        pivots, _, _ = _independent(_images(exact, self.fields))
        return len(pivots) + sum(q.proved is None and not q.trivial for q in self.quantities)


def euler_images(basis: Basis, curves: Curves) -> np.ndarray:
    """E_f(b_j) on every curve: (n_basis, n_fields, n_curves, n_points)."""
    from intelligible.optpde.pde import evaluate_expression

    shape = (len(basis), len(basis.fields), curves.n_curves, len(curves.x))
    images = np.zeros(shape)
    for j, function in enumerate(basis.functions):
        for i, f in enumerate(basis.fields):
            image = euler(function, f, basis.fields)
            if image != 0:
                images[j, i] = evaluate_expression(image, basis.fields, curves)
    return images


def needed_derivatives(basis: Basis, pde: PDE | None = None) -> int:
    """The highest derivative the count needs: twice the basis's order (Euler images), or the PDE's."""
    top = max((max_order(b, basis.fields) for b in basis.functions), default=0)
    return max(2 * top, pde.order if pde is not None else 0, 0)


def column_scales(images: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """1 / (root mean square over curves of the L2 norm of E(b_j)): the column scaling of G."""
    norms = np.sqrt(np.einsum("jfcx,jfcx,x->jc", images, images, weights).mean(axis=1))
    return 1.0 / np.where(norms > 0, norms, 1.0)


def conservation_matrix(
    pde: PDE, basis: Basis, curves: Curves, images: np.ndarray | None = None
) -> np.ndarray:
    """The normalised conservation matrix (n_curves, n_basis); see the module docstring."""
    if tuple(pde.fields) != tuple(basis.fields):
        raise ConfigError(
            f"the PDE's fields ({', '.join(pde.fields)}) differ from the basis's ({', '.join(basis.fields)})"
        )
    if images is None:
        images = euler_images(basis, curves)
    rhs = pde.evaluate(curves)
    F = np.stack([rhs[f] for f in basis.fields])  # (n_fields, n_curves, n_points)
    G = np.einsum("jfcx,fcx,x->cj", images, F, curves.weights)
    row = np.sqrt(np.einsum("fcx,fcx,x->c", F, F, curves.weights))
    return G / np.where(row > 0, row, 1.0)[:, None] * column_scales(images, curves.weights)[None, :]


def relative_singular_values(G: np.ndarray) -> np.ndarray:
    """Singular values of G divided by the largest (descending); all zeros when G is zero."""
    s = np.linalg.svd(G, compute_uv=False)
    return s / s[0] if s.size and s[0] > 0 else np.zeros_like(s)


def hard_count(singular_values: np.ndarray, threshold: float = THRESHOLD) -> int:
    """How many relative singular values lie below 10**threshold."""
    with np.errstate(divide="ignore"):
        return int(np.sum(np.log10(np.maximum(singular_values, 1e-300)) < threshold))


def soft_count(singular_values, threshold: float = THRESHOLD, width: float = 1.0):  # noqa: ANN001, ANN201 - torch or numpy
    """n_eff = sum_i sigmoid((A - log10 s_i) / B): differentiable in torch, the hard count as B -> 0."""
    try:
        import torch

        if isinstance(singular_values, torch.Tensor):
            log = torch.log10(singular_values.clamp_min(1e-300))
            return torch.sigmoid((threshold - log) / width).sum(-1)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    log = np.log10(np.maximum(np.asarray(singular_values, dtype=float), 1e-300))
    return float(np.sum(1.0 / (1.0 + np.exp(np.clip(-(threshold - log) / width, -700, 700)))))


def sparse_null_vectors(vectors: np.ndarray, tolerance: float = 1e-9) -> np.ndarray:
    """A sparse basis of the span of `vectors` (rows): reduced row echelon form with partial pivoting,
    columns in basis order, so each vector is 1 at its own pivot and 0 at the others'."""
    A = np.array(vectors, dtype=float)
    rows, cols = A.shape
    pivot_row = 0
    for col in range(cols):
        if pivot_row == rows:
            break
        best = pivot_row + int(np.argmax(np.abs(A[pivot_row:, col])))
        if abs(A[best, col]) < tolerance * max(np.abs(A).max(), 1e-300):
            continue
        A[[pivot_row, best]] = A[[best, pivot_row]]
        A[pivot_row] /= A[pivot_row, col]
        for r in range(rows):
            if r != pivot_row:
                A[r] -= A[r, col] * A[pivot_row]
        pivot_row += 1
    A[np.abs(A) < tolerance] = 0.0
    return A[:pivot_row]


def rationalise(
    vector: np.ndarray, max_denominator: int = MAX_DENOMINATOR, tolerance: float = 1e-6
) -> list | None:
    """Exact rationals close to `vector` (scaled so its largest entry is 1), or None when some entry is
    not within `tolerance` of a fraction with denominator <= `max_denominator`."""
    scale = vector[np.argmax(np.abs(vector))]
    if scale == 0:
        return None
    result = []
    for value in vector / scale:
        fraction = Fraction(float(value)).limit_denominator(max_denominator)
        if abs(float(fraction) - value) > tolerance:
            return None
        result.append(sympy.Rational(fraction.numerator, fraction.denominator))
    return result


def density_of(coefficients, basis: Basis) -> sympy.Expr:  # noqa: ANN001 - numbers or sympy rationals
    """sum_j coefficients[j] * basis[j]."""
    return sympy.Add(*[c * b for c, b in zip(coefficients, basis.functions) if c != 0])


def prove(density: sympy.Expr, pde: PDE, at_values: bool = False) -> bool:
    """Exact check that the integral of `density` is conserved by `pde`: for all values of its
    parameters, or at their given values with `at_values` (a density found numerically has numbers
    where a parametric one would have symbols)."""
    return conserves(density, pde.exact_rhs(at_values), pde.fields)


def conserved_quantities(
    G: np.ndarray, basis: Basis, pde: PDE, n_conserved: int, scales: np.ndarray, verify: bool = True
) -> list[ConservedQuantity]:
    """The null vectors of G as densities: sparsified, rationalised, each checked exactly."""
    if n_conserved == 0:
        return []
    _, _, vh = np.linalg.svd(G)
    null = vh[-n_conserved:] * scales[None, :]  # back to coefficients of the unscaled basis
    quantities = []
    for vector in sparse_null_vectors(null):
        exact = rationalise(vector)
        if exact is None:
            big = np.abs(vector).max()
            coefficients = [float(v / big) for v in vector]
            density = density_of([sympy.Float(c, 6) for c in coefficients], basis)
            quantities.append(ConservedQuantity(coefficients, density, None))
            continue
        density = density_of(exact, basis)
        if is_total_derivative(density, basis.fields):
            quantities.append(ConservedQuantity([float(c) for c in exact], density, None, trivial=True))
            continue
        proved = prove(density, pde, at_values=True) if verify else None
        quantities.append(ConservedQuantity([float(c) for c in exact], density, proved))
    return quantities


def count_conserved(
    pde: PDE,
    basis: Basis,
    curves: Curves,
    *,
    threshold: float = THRESHOLD,
    images: np.ndarray | None = None,
    verify: bool = True,
) -> CountResult:
    """n_CQ of `pde` in `basis` on `curves`, with the conserved densities, each checked exactly."""
    if not math.isfinite(threshold) or threshold >= 0:
        raise ConfigError(
            f"the threshold is log10 of a relative singular value and must be < 0, got {threshold}"
        )
    if images is None:
        images = euler_images(basis, curves)
    G = conservation_matrix(pde, basis, curves, images)
    s = relative_singular_values(G)
    n = hard_count(s, threshold)
    quantities = conserved_quantities(G, basis, pde, n, column_scales(images, curves.weights), verify)
    return CountResult(str(pde), basis.names, s, n, quantities, tuple(basis.fields))
