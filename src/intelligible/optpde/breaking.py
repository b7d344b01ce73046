"""Wave breaking in u_t = u_x**3 on a periodic interval.

w = u_x obeys w_t = (w**3)_x = 3 w**2 w_x: characteristics move with speed -3 w**2, and w steepens
until they cross. For u0 = sin(2 pi x) the first crossing is at t_b = 1/max(6 w0 w0') = 1/(24 pi**3).
We solve for u itself, a Hamilton-Jacobi equation u_t = H(u_x) with H(p) = p**3: H is monotone, so the
Godunov flux is the upwind one from the right (information travels right to left), which is monotone
and converges to the viscosity solution past the breaking time, where u develops kinks and its
maximum decays. Before breaking, 1/max|w_x| falls linearly in time (along the steepest
characteristic w_x = w0' / (1 - t/t_b)); its zero is the measured breaking time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError

MAX_POINTS = 1_000_000
MAX_STEPS = 50_000_000


@dataclass
class BreakingConfig:
    """`optpde breaking`: the grid of the solver and how long to run."""

    n_points: int = 2000
    t_final_over_tb: float = 20.0
    cfl: float = 0.8

    def validate(self) -> None:
        """Raise ConfigError for a value out of range."""
        if isinstance(self.n_points, bool) or not 64 <= self.n_points <= MAX_POINTS:
            raise ConfigError(
                f"n_points must be an integer in [64, {MAX_POINTS}], got {shown(self.n_points)}"
            )
        if not (math.isfinite(self.t_final_over_tb) and 1.0 < self.t_final_over_tb <= 1000):
            raise ConfigError(f"t_final_over_tb must be in (1, 1000], got {shown(self.t_final_over_tb)}")
        if not (math.isfinite(self.cfl) and 0 < self.cfl <= 1):
            raise ConfigError(f"cfl must be in (0, 1], got {shown(self.cfl)}")
        steps = (
            self.t_final_over_tb / (24 * math.pi**3) / (self.cfl / self.n_points / (3 * (2 * math.pi) ** 2))
        )
        if steps > MAX_STEPS:
            raise ConfigError(
                f"{steps:,.0f} time steps would be needed (at most {MAX_STEPS:,}); use fewer points or a shorter run"
            )


@dataclass
class BreakingResult:
    """Times, max u and max |u_xx| over time, the measured and the exact breaking times."""

    times: np.ndarray
    max_u: np.ndarray
    max_curvature: np.ndarray
    breaking_time: float
    exact_breaking_time: float
    decay_exponent: float  # slope of log(max u) against log(t) late in the run

    @property
    def relative_error(self) -> float:
        """|measured - exact| / exact."""
        return abs(self.breaking_time - self.exact_breaking_time) / self.exact_breaking_time


def solve_breaking(n_points: int = 2000, t_final_over_tb: float = 20.0, cfl: float = 0.8) -> BreakingResult:
    """Solve u_t = u_x**3, u0 = sin(2 pi x) on [0, 1) periodic, to `t_final_over_tb` breaking times."""
    if isinstance(n_points, bool) or not isinstance(n_points, int):
        raise ConfigError(f"n_points must be an integer, got {shown(n_points)}")
    BreakingConfig(n_points, float(t_final_over_tb), float(cfl)).validate()
    exact = 1.0 / (24 * math.pi**3)
    dx = 1.0 / n_points
    x = np.arange(n_points) * dx
    u = np.sin(2 * math.pi * x)
    t, t_final = 0.0, t_final_over_tb * exact
    # |u_x| never grows in the viscosity solution, so the first step's CFL bound holds throughout
    speed = 3 * (2 * math.pi) ** 2
    dt = cfl * dx / speed
    steps = math.ceil(t_final / dt)
    if steps > MAX_STEPS:
        raise ConfigError(f"{steps:,} time steps would be needed; use fewer points or a shorter run")
    record_every = max(1, steps // 2000)
    times, max_u, curvature = [0.0], [u.max()], [_max_curvature(u, dx)]
    for step in range(1, steps + 1):
        h = min(dt, t_final - t)
        p_right = (np.roll(u, -1) - u) / dx
        u = u + h * p_right**3
        t += h
        if step % record_every == 0 or step == steps:
            times.append(t)
            max_u.append(u.max())
            curvature.append(_max_curvature(u, dx))
    times_a, max_u_a, curvature_a = np.array(times), np.array(max_u), np.array(curvature)
    # a first estimate: when the gradient jump reaches the grid scale (|u_xx| dx > |u_x|/4); then fit
    # 1/max|u_xx| on the steepening part before it, where the scheme's smoothing is still small
    steep = np.flatnonzero(curvature_a * dx > 0.25 * 2 * math.pi)
    if steep.size == 0:
        raise ConfigError("the solution did not break within the run; run longer (t_final_over_tb)")
    rough = times_a[steep[0]]
    inverse = 1.0 / curvature_a
    window = (times_a > 0.5 * rough) & (times_a < 0.85 * rough)
    if window.sum() < 3:
        raise ConfigError("too few time samples before breaking; use more points")
    slope, intercept = np.polyfit(times_a[window], inverse[window], 1)
    measured = -intercept / slope if slope < 0 else float("nan")
    late = times_a > 0.5 * times_a[-1]
    decay = float(np.polyfit(np.log(times_a[late]), np.log(np.maximum(max_u_a[late], 1e-300)), 1)[0])
    return BreakingResult(times_a, max_u_a, curvature_a, float(measured), exact, decay)


def _max_curvature(u: np.ndarray, dx: float) -> float:
    return float(np.abs(np.roll(u, -1) - 2 * u + np.roll(u, 1)).max() / dx**2)


def richardson_breaking_time(
    n_points: int = 1000, t_final_over_tb: float = 3.0
) -> tuple[float, float, float]:
    """The breaking time on n and 2n points and their first-order Richardson extrapolation 2 t_2n - t_n
    (the upwind scheme's error falls like 1/n)."""
    coarse = solve_breaking(n_points, t_final_over_tb).breaking_time
    fine = solve_breaking(2 * n_points, t_final_over_tb).breaking_time
    return coarse, fine, 2 * fine - coarse
