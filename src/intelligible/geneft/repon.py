"""The interacting-repon effective theory: two representations ("repons") that should merge, and
the decoder that reads them, linearised.

With r = x1 - x2 the separation of the two repons and A the decoder's linearisation (a matrix),
gradient flow on |A r|^2 gives

    dA/dt = -2 eta_A A r r^T,        dr/dt = -kappa eta_x A^T A r,

with kappa = 1 for two repons. Then C = |A|^2 / (2 eta_A) - |r|^2 / (kappa eta_x) is conserved
(d|A|^2/dt = -4 eta_A |A r|^2, d|r|^2/dt = -2 kappa eta_x |A r|^2), and the repons collide (r -> 0:
generalisation) iff C > 0; otherwise the decoder goes blind to r first (A r -> 0: memorisation).
For scalar a ~ sigma_a N(0, 1), c ~ sigma_c N(0, 1) the chance of C > 0 is

    p_r = (2 / pi) arctan((sigma_a / sigma_c) sqrt(eta_x / (factor eta_A)))

with factor = 2 / kappa: 2 for two repons; for a repon joining a cluster of N others the paper's
factor is 4 (1 + 1/N), which we take as given (kappa = 2 / factor), not re-derived.
"""

from __future__ import annotations

import math

import numpy as np

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError


def _positive(name: str, value: object) -> float:
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number above 0, got {shown(value)}")
    return float(value)


def cluster_factor(others: int | None = None) -> float:
    """The factor in p_r: 2 for two repons, 4 (1 + 1/N) for a repon joining a cluster of N others."""
    if others is None:
        return 2.0
    if isinstance(others, bool) or not isinstance(others, int) or others < 1:
        raise ConfigError(f"a cluster needs a whole number N >= 1 of other repons, got {shown(others)}")
    return 4.0 * (1.0 + 1.0 / others)


def conserved_quantity(
    a: np.ndarray, r: np.ndarray, eta_a: float, eta_x: float, factor: float = 2.0
) -> np.ndarray:
    """C = |A|^2 / (2 eta_A) - |r|^2 / (kappa eta_x), kappa = 2 / factor; A (..., m, d) or scalars (...),
    r (..., d) or scalars (...)."""
    kappa = 2.0 / factor
    a, r = np.asarray(a, dtype=float), np.asarray(r, dtype=float)
    a2 = (a**2).sum(axis=(-2, -1)) if a.ndim >= 2 and r.ndim >= 1 and a.ndim == r.ndim + 1 else a**2
    r2 = (r**2).sum(axis=-1) if a.ndim == r.ndim + 1 else r**2
    return a2 / (2 * eta_a) - r2 / (kappa * eta_x)


def simulate(
    a0: np.ndarray,
    r0: np.ndarray,
    eta_a: float,
    eta_x: float,
    *,
    factor: float = 2.0,
    time: float = 10.0,
    dt: float = 1e-3,
    record_every: int = 100,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Integrate the linearised dynamics (RK4, float64) from A0 (m, d) and r0 (d,); returns the times,
    A(t) (T, m, d) and r(t) (T, d) at every `record_every`-th step."""
    eta_a, eta_x = _positive("eta_A", eta_a), _positive("eta_x", eta_x)
    kappa = 2.0 / _positive("factor", factor)
    a, r = np.array(a0, dtype=float), np.array(r0, dtype=float)
    if a.ndim != 2 or r.ndim != 1 or a.shape[1] != r.shape[0]:
        raise ConfigError(f"A must be (m, d) and r (d,), got {a.shape} and {r.shape}")

    def rates(a: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ar = a @ r
        return -2 * eta_a * np.outer(ar, r), -kappa * eta_x * (a.T @ ar)

    steps = max(1, int(round(time / dt)))
    times, a_path, r_path = [0.0], [a.copy()], [r.copy()]
    for step in range(1, steps + 1):
        k1 = rates(a, r)
        k2 = rates(a + dt / 2 * k1[0], r + dt / 2 * k1[1])
        k3 = rates(a + dt / 2 * k2[0], r + dt / 2 * k2[1])
        k4 = rates(a + dt * k3[0], r + dt * k3[1])
        a = a + dt / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        r = r + dt / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
        if step % record_every == 0 or step == steps:
            times.append(step * dt)
            a_path.append(a.copy())
            r_path.append(r.copy())
    return np.array(times), np.array(a_path), np.array(r_path)


def collision_probability(eta_a: float, eta_x: float, sigma_ratio: float = 1.0, factor: float = 2.0) -> float:
    """p_r = (2/pi) arctan(sigma_ratio sqrt(eta_x / (factor eta_A))), sigma_ratio = sigma_a / sigma_c."""
    eta_a, eta_x = _positive("eta_A", eta_a), _positive("eta_x", eta_x)
    sigma_ratio, factor = _positive("sigma_ratio", sigma_ratio), _positive("factor", factor)
    return 2.0 / math.pi * math.atan(sigma_ratio * math.sqrt(eta_x / (factor * eta_a)))


def monte_carlo_collisions(
    eta_a: float,
    eta_x: float,
    *,
    sigma_a: float = 1.0,
    sigma_c: float = 1.0,
    factor: float = 2.0,
    samples: int = 20000,
    seed: int = 0,
    horizon: float = 30.0,
    step: float = 0.2,
) -> float:
    """The share of random scalar starts (a ~ sigma_a N(0,1), c ~ sigma_c N(0,1)) whose simulated
    dynamics end in a collision. Each start is integrated (RK4) in log variables u = ln a^2,
    v = ln c^2 along a rescaled time in which |du| + |dv| grows by one per unit, so that every
    start is followed until one of a, c has collapsed by ~e^-horizon/2; a collision is the run
    where c shrank more than a. The outcome is read from the trajectory, not from C.

    The Gaussian starts are drawn in polar form (a, c) = R (sigma_a cos phi, sigma_c sin phi), R
    Rayleigh, phi uniform, with phi stratified (one draw in each of `samples` equal slices): the same
    distribution as independent normals, with far less sampling error than plain draws."""
    eta_a, eta_x = _positive("eta_A", eta_a), _positive("eta_x", eta_x)
    kappa = 2.0 / _positive("factor", factor)
    if isinstance(samples, bool) or not isinstance(samples, int) or not 10 <= samples <= 10**8:
        raise ConfigError(f"samples must be a whole number from 10 to 10^8, got {shown(samples)}")
    rng = np.random.Generator(np.random.PCG64(seed))
    phi = 2 * np.pi * (np.arange(samples) + rng.uniform(size=samples)) / samples
    radius = np.sqrt(-2 * np.log1p(-rng.uniform(size=samples)))
    a0 = _positive("sigma_a", sigma_a) * radius * np.cos(phi)
    c0 = _positive("sigma_c", sigma_c) * radius * np.sin(phi)
    u0, v0 = np.log(a0**2), np.log(c0**2)

    def rates(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        du, dv = -4 * eta_a * np.exp(v), -2 * kappa * eta_x * np.exp(u)  # d/dt of ln a^2, ln c^2
        speed = np.abs(du) + np.abs(dv)
        return du / speed, dv / speed

    u, v = u0.copy(), v0.copy()
    for _ in range(int(round(horizon / step))):
        k1 = rates(u, v)
        k2 = rates(u + step / 2 * k1[0], v + step / 2 * k1[1])
        k3 = rates(u + step / 2 * k2[0], v + step / 2 * k2[1])
        k4 = rates(u + step * k3[0], v + step * k3[1])
        u = u + step / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
        v = v + step / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
    return float(np.mean((v - v0) < (u - u0)))
