"""Figures for the stages study. Each function returns a matplotlib Figure (saved by the caller)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are written to files; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from intelligible.stages.assign import STAGE_NAMES, StageAssignment  # noqa: E402
from intelligible.stages.diagnostics import MAX_LOOKBACK, Diagnostics  # noqa: E402
from intelligible.stages.sweep import SweepResult  # noqa: E402

STAGE_COLOURS = ("#8ecae6", "#b7e4c7", "#ffd166", "#f4a3a8")
KIND_STYLE = {"delete": {"marker": "o", "color": "#1d3557"}, "swap": {"marker": "s", "color": "#e76f51"}}


def _depths(result: SweepResult, kind: str) -> list[float]:
    return [row["relative_depth"] for row in result.of_kind(kind)]


def plot_retained_accuracy(result: SweepResult) -> Figure:
    """Retained top-1 accuracy vs relative depth of the edited layer, for deletions and swaps."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind in ("delete", "swap"):
        if result.of_kind(kind):
            ax.plot(
                _depths(result, kind),
                result.column(kind, "retained_accuracy"),
                label=kind,
                ms=4,
                **KIND_STYLE[kind],
            )
    ax.axhline(1.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("relative depth of the edited layer")
    ax.set_ylabel("retained top-1 accuracy")
    ax.set_title(f"{result.model}: layer deletion and swap ({result.tokens} tokens)")
    ax.set_ylim(0, max(1.05, max(row["retained_accuracy"] for row in result.rows) + 0.05))
    ax.legend()
    fig.tight_layout()
    return fig


def plot_kl(result: SweepResult) -> Figure:
    """KL(original || edited) per edited layer, log scale."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind in ("delete", "swap"):
        rows = result.of_kind(kind)
        if rows:
            ax.plot(
                [r["layer"] for r in rows],
                [max(r["kl"], 1e-6) for r in rows],
                label=kind,
                ms=4,
                **KIND_STYLE[kind],
            )
    ax.set_yscale("log")
    ax.set_xlabel("layer (swap i: layers i and i+1)")
    ax.set_ylabel("KL(original || edited), nats")
    ax.set_title(f"{result.model}: divergence caused by each edit")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_diagnostics(diag: Diagnostics) -> Figure:
    """The four per-layer stage signals."""
    layers = list(range(diag.n_layers))
    fig, axes = plt.subplots(2, 2, figsize=(11, 7))
    ax = axes[0, 0]
    for k in range(1, MAX_LOOKBACK + 1):
        ax.plot(
            layers,
            diag.local_attention_at(k),
            label=f"previous {k}",
            color=plt.cm.viridis(k / (MAX_LOOKBACK + 1)),
        )
    ax.set_title("attention mass on the previous k tokens")
    ax.legend(fontsize=7)
    ax = axes[0, 1]
    ax.plot(layers, diag.lens_entropy, color="#264653")
    ax.set_title("logit-lens entropy (nats)")
    ax = axes[1, 0]
    ax.plot(layers, diag.lens_kl_to_final, color="#9d0208")
    ax.set_title("logit-lens KL(final || layer), nats")
    ax = axes[1, 1]
    ax.plot(layers, diag.prediction_neurons, label="prediction", color="#2a9d8f", marker="o", ms=3)
    ax.plot(layers, diag.suppression_neurons, label="suppression", color="#e76f51", marker="s", ms=3)
    ax.set_title(f"neurons with vocab kurtosis > {diag.kurtosis_threshold:g}")
    ax.legend(fontsize=7)
    for ax in axes.flat:
        ax.set_xlabel("layer")
    fig.tight_layout()
    return fig


def _shade(ax: plt.Axes, assignment: StageAssignment) -> None:
    for stage in range(4):
        layers = assignment.layers_of(stage)
        if layers:
            ax.axvspan(layers[0] - 0.5, layers[-1] + 0.5, color=STAGE_COLOURS[stage], alpha=0.45, lw=0)


def plot_overview(result: SweepResult, diag: Diagnostics, assignment: StageAssignment) -> Figure:
    """The paper's picture in one figure: robustness and the stage signals, with the stages shaded."""
    layers = list(range(diag.n_layers))
    fig, axes = plt.subplots(4, 1, figsize=(9, 10), sharex=True)
    panels = [
        ("retained accuracy", [(result.column("delete", "retained_accuracy"), "delete", "#1d3557")]),
        ("attention to previous 5", [(diag.local_attention_at(MAX_LOOKBACK), None, "#6a4c93")]),
        ("logit-lens KL to final", [(diag.lens_kl_to_final, None, "#9d0208")]),
        (
            "neurons",
            [
                (diag.prediction_neurons, "prediction", "#2a9d8f"),
                (diag.suppression_neurons, "suppression", "#e76f51"),
            ],
        ),
    ]
    for ax, (title, series) in zip(axes, panels):
        _shade(ax, assignment)
        for values, label, colour in series:
            ax.plot(layers[: len(values)], values, marker="o", ms=3, color=colour, label=label)
        ax.set_ylabel(title)
        if any(label for _, label, _ in series):
            ax.legend(fontsize=7, loc="upper left")
    swaps = result.of_kind("swap")
    if swaps:
        axes[0].plot(
            [r["layer"] + 0.5 for r in swaps],
            [r["retained_accuracy"] for r in swaps],
            marker="s",
            ms=3,
            color="#e76f51",
            label="swap",
        )
        axes[0].legend(fontsize=7, loc="lower center")
    for stage, name in enumerate(STAGE_NAMES):
        layers_in = assignment.layers_of(stage)
        if layers_in:
            axes[0].text(
                (layers_in[0] + layers_in[-1]) / 2,
                1.02,
                name,
                ha="center",
                va="bottom",
                fontsize=8,
                transform=axes[0].get_xaxis_transform(),
            )
    axes[-1].set_xlabel("layer")
    fig.suptitle(f"{result.model}: stages of inference", y=1.0)
    fig.tight_layout()
    return fig
