"""Figures: every fit drawn with its interval."""

from __future__ import annotations

from typing import Any

import numpy as np

from intelligible.scaling.fit import PAPER_RATIOS, PowerFit, naive_ratio


def _figure(width: float = 5.0, height: float = 3.6) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _fit_line(ax: Any, fit: PowerFit, x: np.ndarray, color: str, label: str) -> None:
    """The fitted line and the band of slopes in the interval, pivoting at the data's log-centre."""
    x = x[x > 0]
    grid = np.geomspace(x.min(), x.max(), 50)
    centre = np.exp(np.log(x).mean())
    y_centre = fit.prefactor * centre**fit.exponent
    ax.plot(grid, fit.prefactor * grid**fit.exponent, color=color, label=f"{label}: slope {fit.text()}")
    if np.isfinite(fit.low):
        low = y_centre * (grid / centre) ** fit.low
        high = y_centre * (grid / centre) ** fit.high
        ax.fill_between(grid, np.minimum(low, high), np.maximum(low, high), color=color, alpha=0.2)


def plot_power_fits(series: list[tuple[str, np.ndarray, np.ndarray, PowerFit]], xlabel: str, ylabel: str,
                    title: str, reference: float | None = -1.0) -> Any:  # fmt: skip
    """Scatter of (x, y) per series on log-log axes with each fit and its interval band."""
    fig, ax = _figure()
    colors = ["C0", "C1", "C2", "C3", "C4", "C5"]
    for i, (label, x, y, fit) in enumerate(series):
        keep = (x > 0) & (y > 0)
        ax.scatter(x[keep], y[keep], s=12, color=colors[i % 6], alpha=0.7)
        _fit_line(ax, fit, x[keep], colors[i % 6], label)
    if reference is not None and series:
        x = np.concatenate([s[1][s[1] > 0] for s in series])
        grid = np.geomspace(x.min(), x.max(), 10)
        fit = series[0][3]
        centre = np.exp(np.log(x).mean())
        ax.plot(grid, fit.prefactor * centre**fit.exponent * (grid / centre) ** reference, "k--", lw=1,
                label=f"slope {reference:g} (resource model)")  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return fig


def plot_allocation_vs_alpha(alphas: np.ndarray, counts: np.ndarray, seeds: np.ndarray) -> Any:
    """Allocated neurons against alpha, one line per seed."""
    fig, ax = _figure()
    for seed in np.unique(seeds):
        rows = seeds == seed
        order = np.argsort(alphas[rows])
        ax.step(
            alphas[rows][order], counts[rows][order], where="post", marker="o", ms=3, label=f"seed {seed}"
        )
    ax.set_xscale("log")
    ax.set_xlabel("alpha (weight of the loss against the sparsity penalty)")
    ax.set_ylabel("allocated neurons")
    ax.set_title("allocated neurons rise with alpha", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def plot_ratios(rows: list[dict]) -> Any:
    """N1/N2 against beta with intervals, beside the paper's values and sqrt(beta / (1 - beta))."""
    fig, ax = _figure()
    betas = np.array([r["beta"] for r in rows])
    ratio = np.array([r["ratio"] for r in rows])
    low = np.array([r["low"] for r in rows])
    high = np.array([r["high"] for r in rows])
    ax.errorbar(
        betas,
        ratio,
        yerr=[ratio - low, high - ratio],
        fmt="o-",
        capsize=3,
        label="measured (median, interval)",
    )
    grid = np.linspace(min(betas.min(), 0.5), max(betas.max(), 0.95), 50)
    ax.plot(grid, [naive_ratio(b) for b in grid], "k--", lw=1, label="naive: sqrt(beta / (1 - beta))")
    ax.plot(list(PAPER_RATIOS), list(PAPER_RATIOS.values()), "s", color="C3", label="paper")
    ax.set_yscale("log")
    ax.set_xlabel("beta (loss weight of subtask 1)")
    ax.set_ylabel("allocated N1 / N2")
    ax.set_title("allocation ratio against beta", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def plot_shares(widths: np.ndarray, counts: np.ndarray, names: list[str], seeds: np.ndarray) -> Any:
    """Neurons allocated to each subtask against MLP width (points: seeds; lines: medians)."""
    fig, ax = _figure()
    for k, name in enumerate(names):
        ax.scatter(widths, counts[:, k] + 0.0, s=10, color=f"C{k}", alpha=0.6)
        uniq = np.unique(widths)
        ax.plot(uniq, [np.median(counts[widths == w, k]) for w in uniq], color=f"C{k}", label=name)
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("MLP width")
    ax.set_ylabel("allocated neurons")
    ax.set_title("transformer: neurons per subtask against width", fontsize=10)
    ax.legend(fontsize=7)
    return fig
