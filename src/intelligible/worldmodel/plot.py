"""Figures like the paper's: R^2 heatmaps over site x position, R^2 against model error, interventions."""

from __future__ import annotations

from typing import Any

import numpy as np

from intelligible.worldmodel.criteria import CriteriaReport


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_heatmaps(report: CriteriaReport, kind: str = "r2", title: str = "") -> Any:
    """One heatmap per hypothesis: held-out `kind` (r2, cca, variance) over site (rows) x position."""
    plt = _pyplot()
    tables = {"r2": report.r2, "cca": report.cca, "variance": report.variance}[kind]
    names = [h for h in report.hypotheses if h in tables]
    fig, axes = plt.subplots(
        1, len(names), figsize=(3.2 * len(names) + 1, 0.28 * len(report.sites) + 1.6), squeeze=False
    )
    image = None
    for ax, name in zip(axes[0], names):
        image = ax.imshow(
            np.clip(tables[name], 0, 1),
            aspect="auto",
            vmin=0,
            vmax=1,
            cmap="viridis",
            interpolation="nearest",
        )
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("context position")
        ax.set_yticks(range(len(report.sites)))
        ax.set_yticklabels(report.sites if ax is axes[0][0] else [], fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label=f"held-out {kind}")
    fig.suptitle(title or f"held-out {kind} of each hypothesis", fontsize=10)
    return fig


def plot_r2_vs_error(points: dict[str, list[tuple[float, float]]], title: str = "") -> Any:
    """Best-site R^2 against model MSE (log scale), one series per hypothesis (models and checkpoints)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for name, pairs in points.items():
        if pairs:
            mse, r2 = zip(*pairs)
            ax.scatter(mse, r2, label=name, s=18, alpha=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("model MSE (held-out)")
    ax.set_ylabel("best-site held-out R^2")
    ax.legend(fontsize=8)
    ax.set_title(title or "encoding tracks performance", fontsize=10)
    return fig


def plot_interventions(rows: list[dict], title: str = "") -> Any:
    """MSE against the intended answer: intervened vs no intervention vs a random edit, per hypothesis."""
    plt = _pyplot()
    changes = sorted({row["change"] for row in rows})
    fig, axes = plt.subplots(1, len(changes), figsize=(4.2 * len(changes), 3.4), squeeze=False)
    for ax, change in zip(axes[0], changes):
        subset = [row for row in rows if row["change"] == change]
        x = np.arange(len(subset))
        for offset, key in zip((-0.27, 0.0, 0.27), ("intervened", "clean", "random")):
            ax.bar(x + offset, [row[key] for row in subset], width=0.26, label=key)
        ax.set_xticks(x)
        ax.set_xticklabels([row["hypothesis"] for row in subset], fontsize=7, rotation=15)
        ax.set_yscale("log")
        ax.set_ylabel("MSE vs intended answer")
        ax.set_title(f"changed {change}", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title or "interventions", fontsize=10)
    return fig


def plot_intervention_curves(rows: list[dict], title: str = "") -> Any:
    """MSE against the intended answer along the context, per hypothesis: intervened (solid) and no
    intervention (dashed), one panel per changed parameter."""
    plt = _pyplot()
    changes = sorted({row["change"] for row in rows})
    fig, axes = plt.subplots(1, len(changes), figsize=(4.6 * len(changes), 3.4), squeeze=False)
    for ax, change in zip(axes[0], changes):
        subset = [row for row in rows if row["change"] == change and row.get("curves")]
        for index, row in enumerate(subset):
            color = f"C{index}"
            ax.plot(row["curves"]["intervened"], color=color, label=f"{row['hypothesis']} ({row['site']})")
            if index == 0:
                ax.plot(row["curves"]["clean"], color="black", linestyle="--", label="no intervention")
        ax.set_yscale("log")
        ax.set_xlabel("context position")
        ax.set_ylabel("MSE vs intended answer")
        ax.set_title(f"changed {change}", fontsize=9)
        ax.legend(fontsize=7)
    fig.suptitle(title or "intervention curves", fontsize=10)
    return fig


def plot_probe_comparison(report: CriteriaReport, hypothesis: str) -> Any:
    """Ridge R^2 and CCA R^2 of one hypothesis per site (mean over positions)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    x = np.arange(len(report.sites))
    ax.bar(x - 0.2, report.score(hypothesis, "r2"), width=0.4, label="ridge (linear)")
    if hypothesis in report.cca:
        ax.bar(x + 0.2, report.score(hypothesis, "cca"), width=0.4, label="CCA (powers)")
    ax.set_xticks(x)
    ax.set_xticklabels(report.sites, rotation=60, fontsize=7)
    ax.set_ylabel("held-out R^2")
    ax.set_title(f"decoding {hypothesis}: linear vs non-linear", fontsize=10)
    ax.legend(fontsize=8)
    return fig
