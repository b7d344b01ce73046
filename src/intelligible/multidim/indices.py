"""Reducibility indices of a feature f (points in R^2): separability S(f) and the epsilon-mixture index M_eps(f).

Engels et al. 2024, section 3: a feature is *reducible* when it is a mixture (most of its mass on a
lower-dimensional set, measured by M_eps) or separable (its coordinates independent in some rotated
basis, measured by S). Both indices here take a batch of features, shape (F, N, 2), at once:

- `separability_index`: min over A rotations of the mutual information (bits) of the rotated
  coordinates, with the paper's procedure (subtract the mean, scale so each coordinate has unit RMS
  on average, clip to [-bound, bound]^2, bins x bins histogram). One numba pass per feature fills the
  histograms of all angles; the histogram grid is symmetric under x -> -x, so the MI is periodic
  with period pi/2 and only the first quarter of the angles is binned (the minimum is the same).
- `mixture_index`: max over unit v and offset c of the fraction of points with |v.f + c| below
  eps times the RMS of v.f + c, optimised as in the paper (mean of sigmoid((eps - |z|)/T), T decayed
  linearly from 1 to 0, full-batch gradient ascent) for every feature at once; the RMS comes from the
  feature's second moments, so each step is one fused, vectorised pass over the points. The reported
  value is the largest hard fraction met along the annealing.

`reference_separability` and `reference_mixture` are straightforward ports of the authors'
procedure (a loop over angles with `np.histogram2d`; one torch autograd optimisation per feature),
kept as the oracle that tests and `benchmarks/multidim_indices.py` compare against.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError, DataError

try:
    from numba import njit, prange

    _NUMBA = True
except ImportError:  # pragma: no cover - numba is a dependency; the numpy fallback keeps this usable
    _NUMBA = False

LN2 = math.log(2.0)

# The paper's settings (appendix B and the authors' reducibility demo).
PAPER_BINS = 40
PAPER_BOUND = 3.0
PAPER_ANGLES = 1000
PAPER_EPS = 0.1
PAPER_STEPS = 10_000
PAPER_LR = 0.1
SEPARABLE_BELOW_BITS = 0.5  # the paper's reading: S below about 0.5 bits counts as separable


def as_feature_batch(points: np.ndarray, *, min_points: int = 2, what: str = "points") -> np.ndarray:
    """`points` as a float64 (F, N, 2) array, checked: finite, not constant, at least `min_points` points.

    Accepts one feature (N, 2) or a batch (F, N, 2); raises DataError naming the bad feature.
    """
    array = np.asarray(points)
    if array.dtype == object or not np.issubdtype(array.dtype, np.number):
        raise DataError(f"{what} must be numbers, got an array of {array.dtype}")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or array.shape[-1] != 2:
        raise DataError(
            f"{what} must have shape (N, 2) or (features, N, 2), got {tuple(np.shape(points))}; "
            "for a higher-dimensional feature score its PCA planes (pca_planes)"
        )
    if array.shape[0] == 0:
        raise DataError(f"{what} hold no feature (shape {tuple(array.shape)})")
    n = array.shape[1]
    if n < min_points:
        raise DataError(f"{what}: {n} points per feature, need at least {min_points}")
    array = np.ascontiguousarray(array, dtype=np.float64)
    finite = np.isfinite(array).all(axis=(1, 2))
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise DataError(f"{what}: feature {bad} holds NaN or infinite values; drop or fix those points")
    spread = (array - array.mean(axis=1, keepdims=True)).std(axis=1).max(axis=1)
    scale = np.abs(array).max(axis=(1, 2))
    constant = spread <= 1e-12 * np.maximum(scale, 1e-300)
    if constant.any():
        bad = int(np.flatnonzero(constant)[0])
        raise DataError(
            f"{what}: feature {bad} is constant (every point the same); a constant has no shape to score"
        )
    return array


def normalise(points: np.ndarray) -> np.ndarray:
    """Subtract each feature's mean and scale it so that sqrt(E|f|^2 / 2) = 1 (unit RMS per coordinate)."""
    centred = points - points.mean(axis=1, keepdims=True)
    rms = np.sqrt((centred**2).sum(axis=2).mean(axis=1) / 2.0)
    return centred / rms[:, None, None]


def _check_separability_settings(n_points: int, bins: int, n_angles: int, bound: float) -> None:
    if not 2 <= bins <= 1000:
        raise ConfigError(f"bins must be between 2 and 1000 per axis, got {shown(bins)}")
    if not 1 <= n_angles <= 100_000:
        raise ConfigError(f"n_angles must be between 1 and 100000, got {shown(n_angles)}")
    if not (math.isfinite(bound) and bound > 0):
        raise ConfigError(
            f"bound must be a positive number (the clip range in RMS units), got {shown(bound)}"
        )
    if n_points < bins * bins:
        raise DataError(
            f"fewer points than bins: {n_points} points per feature for a {bins}x{bins} histogram "
            f"({bins * bins} bins); give at least {bins * bins} points, or fewer bins "
            f"(bins={max(2, int(math.isqrt(n_points)))} fits {n_points} points)"
        )


@dataclass
class Separability:
    """S per feature (bits), the angle of the minimum, and the MI curve over the angles binned."""

    bits: np.ndarray  # (F,)
    angle: np.ndarray  # (F,) radians of the minimising rotation
    curve_angles: np.ndarray  # (A',) the angles binned (the first quarter when the symmetry applies)
    curve_bits: np.ndarray  # (F, A')


def separability_index(
    points: np.ndarray, *, bins: int = PAPER_BINS, n_angles: int = PAPER_ANGLES, bound: float = PAPER_BOUND
) -> Separability:
    """S(f) = min over rotations of I(a; b) in bits, for each feature of (F, N, 2) or one (N, 2)."""
    bins, n_angles, bound = int(bins), int(n_angles), float(bound)
    array = as_feature_batch(points)
    _check_separability_settings(array.shape[1], bins, n_angles, bound)
    x = normalise(array)
    angles = 2.0 * np.pi * np.arange(n_angles) / n_angles
    # MI(theta + pi/2) = MI(theta): the rotation maps (a, b) to (-b, a), and the grid is symmetric
    used = angles[: n_angles // 4] if n_angles % 4 == 0 else angles
    edges = np.linspace(-bound, bound, bins + 1)
    curve = _mi_curves(x, np.cos(used), np.sin(used), edges) / LN2
    best = curve.argmin(axis=1)
    return Separability(
        bits=curve[np.arange(len(curve)), best], angle=used[best], curve_angles=used, curve_bits=curve
    )


def _mi_curves(x: np.ndarray, cos: np.ndarray, sin: np.ndarray, edges: np.ndarray) -> np.ndarray:
    out = np.empty((x.shape[0], cos.shape[0]))
    if _NUMBA:
        _mi_kernel(x, cos, sin, edges, out)
    else:  # pragma: no cover
        for f in range(x.shape[0]):
            for a in range(cos.shape[0]):
                out[f, a] = _mi_numpy(x[f], cos[a], sin[a], edges)
    return out


def _mi_numpy(xy: np.ndarray, c: float, s: float, edges: np.ndarray) -> float:
    bound = edges[-1]
    u = np.clip(xy[:, 0] * c + xy[:, 1] * s, -bound, bound)
    v = np.clip(-xy[:, 0] * s + xy[:, 1] * c, -bound, bound)
    hist, _, _ = np.histogram2d(u, v, bins=[edges, edges])
    return _mutual_information(hist)


def _mutual_information(hist: np.ndarray) -> float:
    """Plug-in MI (nats) of a 2-D histogram of counts: sum over non-empty cells of p log(p / (p_a p_b))."""
    joint = hist / hist.sum()
    product = np.outer(joint.sum(axis=1), joint.sum(axis=0))
    mask = joint > 0
    return float(np.sum(joint[mask] * np.log(joint[mask] / product[mask])))


if _NUMBA:

    @njit(cache=True, inline="always")
    def _bin_of(value, edges, scale, bins):  # noqa: ANN001, ANN202
        # the bin np.histogram2d gives: edges[k] <= value < edges[k + 1], the last edge in the last bin
        k = int((value - edges[0]) * scale)
        if k < 0:
            k = 0
        elif k > bins - 1:
            k = bins - 1
        if value < edges[k] and k > 0:
            k -= 1
        elif value >= edges[k + 1] and k < bins - 1:
            k += 1
        return k

    @njit(parallel=True, cache=True)
    def _mi_kernel(x, cos, sin, edges, out):  # noqa: ANN001, ANN202
        n_features, n, _ = x.shape
        bins = edges.shape[0] - 1
        bound = edges[-1]
        scale = bins / (edges[-1] - edges[0])
        for f in prange(n_features):
            hist = np.zeros((bins, bins), dtype=np.int64)
            rows = np.zeros(bins, dtype=np.int64)
            cols = np.zeros(bins, dtype=np.int64)
            for a in range(cos.shape[0]):
                c, s = cos[a], sin[a]
                hist[:, :] = 0
                rows[:] = 0
                cols[:] = 0
                for i in range(n):
                    px, py = x[f, i, 0], x[f, i, 1]
                    u = px * c + py * s
                    v = -px * s + py * c
                    u = min(max(u, -bound), bound)
                    v = min(max(v, -bound), bound)
                    ku = _bin_of(u, edges, scale, bins)
                    kv = _bin_of(v, edges, scale, bins)
                    hist[ku, kv] += 1
                    rows[ku] += 1
                    cols[kv] += 1
                # MI = (sum h log h - sum r log r - sum c log c) / N + log N, counts h, rows r, columns c
                total = 0.0
                for i in range(bins):
                    for j in range(bins):
                        h = hist[i, j]
                        if h > 0:
                            total += h * math.log(h)
                    if rows[i] > 0:
                        total -= rows[i] * math.log(rows[i])
                    if cols[i] > 0:
                        total -= cols[i] * math.log(cols[i])
                out[f, a] = total / n + math.log(n)


@dataclass
class Mixture:
    """M_eps per feature (the hard fraction in the band at the optimum), the soft objective, v and c."""

    fraction: np.ndarray  # (F,)
    soft: np.ndarray  # (F,) the sigmoid objective at the last step
    direction: np.ndarray  # (F, 2) unit v
    offset: np.ndarray  # (F,) c, for v.f + c with the unit v


def _check_mixture_settings(eps: float, steps: int, lr: float) -> None:
    if not (math.isfinite(eps) and 0 < eps < 10):
        raise ConfigError(f"eps must be in (0, 10), got {shown(eps)}")
    if not 1 <= steps <= 10_000_000:
        raise ConfigError(f"steps must be between 1 and 10000000, got {shown(steps)}")
    if not (math.isfinite(lr) and lr > 0):
        raise ConfigError(f"lr must be a positive number, got {shown(lr)}")


def initial_directions(n_features: int, seed: int) -> np.ndarray:
    """The starting v of each feature's optimisation (standard normal, as the paper's torch.randn)."""
    return np.random.default_rng(seed).standard_normal((n_features, 2))


def mixture_index(
    points: np.ndarray,
    *,
    eps: float = PAPER_EPS,
    steps: int = PAPER_STEPS,
    lr: float = PAPER_LR,
    seed: int = 0,
    init: np.ndarray | None = None,
    restarts: int = 1,
) -> Mixture:
    """M_eps(f) for each feature of (F, N, 2) or one (N, 2), all optimised together.

    `init` (F, 2) sets the starting directions (default: `initial_directions(F * restarts, seed)`); the
    offset starts at 0, as in the paper. One start can end in a local optimum (a band across a line
    instead of along it); `restarts` > 1 runs that many starts per feature in the same batch and keeps
    the best.
    """
    eps, steps, lr = float(eps), int(steps), float(lr)
    _check_mixture_settings(eps, steps, lr)
    if not 1 <= int(restarts) <= 1000:
        raise ConfigError(f"restarts must be between 1 and 1000, got {shown(restarts)}")
    array = as_feature_batch(points)
    if restarts > 1:
        if init is not None:
            raise ConfigError("give either init (one start per feature) or restarts, not both")
        runs = mixture_index(np.repeat(array, restarts, axis=0), eps=eps, steps=steps, lr=lr,
                             init=initial_directions(len(array) * restarts, seed))  # fmt: skip
        best = runs.fraction.reshape(len(array), restarts).argmax(axis=1) + np.arange(len(array)) * restarts
        return Mixture(runs.fraction[best], runs.soft[best], runs.direction[best], runs.offset[best])
    n_features = array.shape[0]
    start = initial_directions(n_features, seed) if init is None else np.asarray(init, dtype=np.float64)
    if start.shape != (n_features, 2) or not np.isfinite(start).all():
        raise ConfigError(f"init must be a finite ({n_features}, 2) array, got shape {tuple(start.shape)}")
    params = np.zeros((n_features, 3))
    params[:, :2] = start
    if _NUMBA:
        best, soft = _run_mixture(array, params, eps, steps, lr)
        params = best[:, :3]
    else:  # pragma: no cover
        soft = np.array([_mixture_numpy(array[f], params[f], eps, steps, lr) for f in range(n_features)])
    return _mixture_result(array, params, eps, soft)


def _mixture_result(array: np.ndarray, params: np.ndarray, eps: float, soft: np.ndarray) -> Mixture:
    a, b = params[:, :2], params[:, 2]
    s = np.einsum("fnk,fk->fn", array, a) + b[:, None]
    rms = np.sqrt((s**2).mean(axis=1))
    rms = np.where(rms > 0, rms, 1.0)
    fraction = (np.abs(s / rms[:, None]) < eps).mean(axis=1)
    norm = np.linalg.norm(a, axis=1)
    norm = np.where(norm > 0, norm, 1.0)
    return Mixture(fraction=fraction, soft=soft, direction=a / norm[:, None], offset=b / norm)


def _mixture_numpy(
    x: np.ndarray, p: np.ndarray, eps: float, steps: int, lr: float
) -> float:  # pragma: no cover
    """The same annealing for one feature in plain numpy (used only without numba); updates p to the best visited."""
    n = x.shape[0]
    soft, best, best_p = 0.0, -1, p.copy()
    for i in range(steps):
        t = 1.0 - i / steps
        s = x @ p[:2] + p[2]
        r = math.sqrt(float((s**2).mean()))
        z = s / r
        hard = int((np.abs(z) < eps).sum())
        if hard > best:
            best, best_p = hard, p.copy()
        g = 0.5 * (1.0 + np.tanh(0.5 * (eps - np.abs(z)) / t))
        soft = float(g.mean())
        q = -g * (1 - g) * np.sign(z) / (t * n)
        k = float((q * z).sum())
        ds = (q - k * z / n) / r
        p[:2] += lr * (ds @ x)
        p[2] += lr * ds.sum()
    p[:] = best_p
    return soft


if _NUMBA:

    @njit(parallel=True, cache=True)
    def _moments(x, out):  # noqa: ANN001, ANN202
        # mean (2) and second moments (xx, xy, yy) per feature: the RMS of a.x + b without a pass
        n_features, n, _ = x.shape
        for f in prange(n_features):
            m0 = m1 = s00 = s01 = s11 = 0.0
            for i in range(n):
                px, py = x[f, i, 0], x[f, i, 1]
                m0 += px
                m1 += py
                s00 += px * px
                s01 += px * py
                s11 += py * py
            out[f, 0], out[f, 1], out[f, 2], out[f, 3], out[f, 4] = m0 / n, m1 / n, s00 / n, s01 / n, s11 / n

    @njit(parallel=True, cache=True, fastmath=True)
    def _mixture_pass(xs, ys, moments, state, best, soft, eps, inv_t, lr):  # noqa: ANN001, ANN202
        n_features, n = xs.shape
        for f in prange(n_features):
            m0, m1, s00, s01, s11 = moments[f, 0], moments[f, 1], moments[f, 2], moments[f, 3], moments[f, 4]
            a0, a1, b = state[f, 0], state[f, 1], state[f, 2]
            mean_s = a0 * m0 + a1 * m1 + b
            ms = a0 * a0 * s00 + 2.0 * a0 * a1 * s01 + a1 * a1 * s11 + 2.0 * b * (a0 * m0 + a1 * m1) + b * b
            inv_r = 1.0 / math.sqrt(ms) if ms > 0 else 0.0
            sum_g = 0.0
            sum_q = 0.0
            sum_qx = 0.0
            sum_qy = 0.0
            sum_qz = 0.0
            hard = 0
            for i in range(n):
                px = xs[f, i]
                py = ys[f, i]
                z = (a0 * px + a1 * py + b) * inv_r
                d = abs(z)
                hard += 1 if d < eps else 0
                # sigmoid(u) from e = exp(-|u|), with exp(v) for v = |u| / 256 <= 0.16 by its degree-5
                # Taylor polynomial raised to the 256th power (8 squarings): relative error ~5e-6, and
                # only arithmetic, so the loop vectorises (a libm exp call per point would not)
                u = (eps - d) * inv_t
                v = min(abs(u), 40.0) * (1.0 / 256.0)
                p = 1.0 + v * (1.0 + v * (0.5 + v * (1.0 / 6.0 + v * (1.0 / 24.0 + v * (1.0 / 120.0)))))
                p = p * p
                p = p * p
                p = p * p
                p = p * p
                p = p * p
                p = p * p
                p = p * p
                p = p * p
                e = 1.0 / p
                inv = 1.0 / (1.0 + e)
                g = inv if u >= 0 else e * inv
                w = e * inv * inv  # g (1 - g)
                q = -w if z > 0 else w
                sum_g += g
                sum_q += q
                sum_qx += q * px
                sum_qy += q * py
                sum_qz += q * z
            soft[f] = sum_g / n
            if hard > best[f, 3]:  # the optimum visited: the annealing's last steps can overshoot it
                best[f, 0], best[f, 1], best[f, 2], best[f, 3] = a0, a1, b, hard
            # dP/ds_j = (q_j - K z_j / N) / (r N T) with q_j = -sign(z_j) g_j (1 - g_j), K = sum q z;
            # the sums of z_j x_j and z_j come from the moments
            scale = inv_t / n * inv_r
            sum_zx = (a0 * s00 + a1 * s01 + b * m0) * inv_r
            sum_zy = (a0 * s01 + a1 * s11 + b * m1) * inv_r
            sum_z = mean_s * inv_r
            state[f, 0] = a0 + lr * scale * (sum_qx - sum_qz * sum_zx)
            state[f, 1] = a1 + lr * scale * (sum_qy - sum_qz * sum_zy)
            state[f, 2] = b + lr * scale * (sum_q - sum_qz * sum_z)


def _run_mixture(
    x: np.ndarray, state: np.ndarray, eps: float, steps: int, lr: float
) -> tuple[np.ndarray, np.ndarray]:
    """Anneal every feature together, one fused pass over the points per step."""
    n_features = x.shape[0]
    moments = np.empty((n_features, 5))
    _moments(x, moments)
    xs, ys = np.ascontiguousarray(x[:, :, 0]), np.ascontiguousarray(x[:, :, 1])
    best = np.zeros((n_features, 4))
    best[:, :3] = state
    best[:, 3] = -1
    soft = np.zeros(n_features)
    for step in range(steps):
        t = 1.0 - step / steps
        _mixture_pass(xs, ys, moments, state, best, soft, eps, 1.0 / t, lr)
    return best, soft


def pca_planes(points: np.ndarray, n_components: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """PCA of (N, d) points: the consecutive planes (1-2, 2-3, ...) as (P, N, 2), and the explained variance ratios."""
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 3 or array.shape[1] < 2:
        raise DataError(f"pca_planes needs (N >= 3, d >= 2) points, got shape {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise DataError("pca_planes: the points hold NaN or infinite values")
    centred = array - array.mean(axis=0)
    if array.shape[1] <= array.shape[0]:
        # the d x d covariance's eigenvectors: much cheaper than an SVD that also forms the (N, d) factor
        variance, vectors = np.linalg.eigh(centred.T @ centred)
        variance, vt = np.maximum(variance[::-1], 0.0), vectors[:, ::-1].T
    else:
        _, singular, vt = np.linalg.svd(centred, full_matrices=False)
        variance = singular**2
    k = int(min(n_components, vt.shape[0]))
    projected = centred @ vt[:k].T
    ratios = variance[:k] / max(variance.sum(), 1e-300)
    planes = (
        np.stack([projected[:, i : i + 2] for i in range(k - 1)]) if k >= 2 else np.empty((0, len(array), 2))
    )
    return planes, ratios


# ---------------------------------------------------------------- the reference procedure (straight ports)


def reference_separability(
    points: np.ndarray, *, bins: int = PAPER_BINS, n_angles: int = PAPER_ANGLES, bound: float = PAPER_BOUND
) -> float:
    """S(f) in bits for one (N, 2) feature: a loop over all angles with np.histogram2d, as the authors wrote it."""
    xy = points - points.mean(axis=0)
    xy = xy / math.sqrt(float((xy**2).sum(axis=1).mean()) / 2.0)
    infos = []
    for i in range(n_angles):
        angle = 2.0 * np.pi * i / n_angles
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        rotated = np.clip(xy @ rotation, -bound, bound)
        hist, _, _ = np.histogram2d(
            rotated[:, 0], rotated[:, 1], bins=bins, range=[[-bound, bound], [-bound, bound]]
        )
        infos.append(_mutual_information(hist))
    return min(infos) / LN2


def reference_mixture(
    points: np.ndarray,
    init: np.ndarray,
    *,
    eps: float = PAPER_EPS,
    steps: int = PAPER_STEPS,
    lr: float = PAPER_LR,
) -> float:
    """M_eps(f) for one (N, 2) feature: the authors' torch autograd loop, one feature at a time.

    Reports the largest hard fraction |z| < eps met along the annealing (the rule `mixture_index`
    uses; the authors print the soft objective at the last step, which on a circle jumps between
    0 and 0.2 under a 1e-9 change of the starting point).
    """
    import torch

    x = torch.tensor(points, dtype=torch.float64)
    a = torch.tensor(np.asarray(init, dtype=np.float64), requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    best = 0.0
    for i in range(steps):
        temperature = 1 - i / steps
        s = x @ a + b
        z = s / torch.sqrt(torch.mean(s**2))
        best = max(best, float((z.abs() < eps).double().mean()))
        objective = torch.mean(torch.sigmoid((eps - torch.abs(z)) / temperature))
        objective.backward()
        with torch.no_grad():
            a += lr * a.grad
            b += lr * b.grad
        a.grad.zero_()
        b.grad.zero_()
    return best
