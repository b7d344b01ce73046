"""Test functions: sums of Gaussians with exact derivatives of any order.

The k-th derivative of exp(-t**2/2), t = (x - mu)/sigma, is (-1/sigma)**k He_k(t) exp(-t**2/2) with
He_k the probabilists' Hermite polynomials (He_{k+1} = t He_k - k He_{k-1}), so every derivative is
exact up to rounding; no finite differences. The interval is wide enough that every Gaussian and
its derivatives vanish at the ends to rounding, so integrals of total derivatives are zero there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError

MAX_DERIVATIVE = 24
# float64 values in the jet array: curves x points x derivatives x fields; beyond this the matrix
# build needs more memory than a laptop has
MAX_VALUES = 200_000_000


@dataclass(frozen=True)
class CurveConfig:
    """How the test functions are drawn (the paper: 200 curves, 10 Gaussians of sigma 1.5,
    mu ~ U(-3, 3), amplitude ~ U(-5, 5); we sample a wider interval, [-20, 20], so that boundary
    terms vanish to rounding)."""

    n_curves: int = 200
    n_points: int = 1000
    half_width: float = 20.0
    n_gaussians: int = 10
    sigma: float = 1.5
    mu_range: float = 3.0
    amplitude: float = 5.0
    seed: int = 0

    def validate(self) -> None:
        """Raise ConfigError for a value out of range."""
        for name in ("n_curves", "n_points", "n_gaussians"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {shown(value)}")
        if self.n_points < 16:
            raise ConfigError(f"n_points must be at least 16 for the integrals, got {self.n_points}")
        for name in ("half_width", "sigma", "amplitude"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive finite number, got {shown(value)}")
        if not (math.isfinite(self.mu_range) and 0 <= self.mu_range < self.half_width):
            raise ConfigError(
                f"mu_range must be in [0, half_width={self.half_width}), got {shown(self.mu_range)}"
            )
        # the Gaussians must have died out at the ends, or boundary terms masquerade as non-conservation
        margin = (self.half_width - self.mu_range) / self.sigma
        if margin < 6:
            raise ConfigError(
                f"the Gaussians reach the ends of the interval ({margin:.1f} sigmas from the nearest centre); "
                "boundary terms would spoil the integrals: widen half_width or narrow sigma/mu_range "
                "to keep at least 6 sigmas"
            )
        if self.n_points * self.n_curves > MAX_VALUES // 8:
            raise ConfigError(
                f"{self.n_curves} curves x {self.n_points} points is too many values to hold; use fewer"
            )


@dataclass
class Curves:
    """Sampled test functions: x (n_points,), trapezoid weights (n_points,), and
    jets[field][k] (n_curves, n_points), the k-th derivative of each field."""

    x: np.ndarray
    weights: np.ndarray
    jets: dict[str, list[np.ndarray]]
    config: CurveConfig

    @property
    def n_curves(self) -> int:
        """Number of curves."""
        return self.config.n_curves

    @property
    def max_derivative(self) -> int:
        """The highest derivative held."""
        return len(next(iter(self.jets.values()))) - 1


def hermite_gaussian(t: np.ndarray, order: int) -> list[np.ndarray]:
    """He_k(t) exp(-t**2/2) for k = 0..order (probabilists' Hermite polynomials)."""
    g = np.exp(-0.5 * t * t)
    values = [g, t * g]
    for k in range(1, order):
        values.append(t * values[k] - k * values[k - 1])
    return values[: order + 1]


def make_curves(config: CurveConfig, fields: tuple[str, ...] = ("u",), max_derivative: int = 6) -> Curves:
    """Draw `config.n_curves` sums of Gaussians per field, with derivatives 0..`max_derivative`.

    Each field has its own draws from one seeded stream, so the same seed gives the same curves."""
    config.validate()
    if not 0 <= max_derivative <= MAX_DERIVATIVE:
        raise ConfigError(
            f"derivatives up to order {MAX_DERIVATIVE} are supported, asked for {max_derivative}"
        )
    values = config.n_curves * config.n_points * (max_derivative + 1) * len(fields)
    if values > MAX_VALUES:
        raise ConfigError(
            f"{config.n_curves} curves x {config.n_points} points x {max_derivative + 1} derivatives x "
            f"{len(fields)} field(s) need {values * 8 / 2**30:.1f} GiB; at most {MAX_VALUES * 8 / 2**30:.1f} "
            "GiB is allowed: use fewer curves or points, or a lower order"
        )
    rng = np.random.default_rng(config.seed)
    x = np.linspace(-config.half_width, config.half_width, config.n_points)
    h = x[1] - x[0]
    weights = np.full(config.n_points, h)
    weights[[0, -1]] = h / 2
    jets: dict[str, list[np.ndarray]] = {}
    for field in fields:
        mu = rng.uniform(-config.mu_range, config.mu_range, (config.n_curves, config.n_gaussians))
        amplitude = rng.uniform(-config.amplitude, config.amplitude, (config.n_curves, config.n_gaussians))
        t = (x[None, None, :] - mu[:, :, None]) / config.sigma
        shapes = hermite_gaussian(t, max_derivative)
        jets[field] = [
            (-1.0 / config.sigma) ** k * np.einsum("cg,cgx->cx", amplitude, shapes[k])
            for k in range(max_derivative + 1)
        ]
    return Curves(x, weights, jets, config)
