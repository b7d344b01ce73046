"""Figures: accuracy against data fraction with the bounds, accuracy against decoder depth, the phase
diagram with the predicted boundary, and repon trajectories."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")  # figures go to files

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

PHASE_COLOURS = {"generalisation": "tab:green", "grokking": "tab:olive", "memorisation": "tab:red",
                 "confusion": "tab:gray"}  # fmt: skip


def plot_sweep(swept: dict) -> Figure:
    """One panel per relation: MLP and ideal-decoder test accuracy, the exact bound, f_UB and p_c."""
    entries = swept["relations"]
    fractions = swept["fractions"]
    cols = min(4, len(entries))
    rows = math.ceil(len(entries) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.2 * rows), squeeze=False)
    for ax, (name, entry) in zip(axes.flat, entries.items()):
        curves = entry["curves"]
        for kind, colour in (("mlp", "tab:blue"), ("ideal", "tab:orange")):
            if kind in curves:
                ax.errorbar(fractions, curves[kind], yerr=curves[f"{kind}_std"], marker="o", ms=3, color=colour,
                            label=f"{kind} (test)", capsize=2)  # fmt: skip
        ax.plot(fractions, curves["exact_bound"], "k-", label="exact bound")
        ax.plot(fractions, curves["f_ub"], "k--", label="f_UB")
        ax.axvline(entry["critical_fraction"], color="tab:purple", ls=":", label="p_c")
        ax.axhline(swept["threshold"], color="0.8", lw=0.8)
        ax.set_title(f"{name} (b = {entry['bits']:.1f} bits)")
        ax.set_xlabel("data fraction")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0.3, 1.02)
    for ax in list(axes.flat)[len(entries) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_goldilocks(rows: list[dict], config: object) -> Figure:
    """Test accuracy against decoder depth."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.errorbar([r["depth"] for r in rows], [r["test"] for r in rows], yerr=[r["test_std"] for r in rows],
                marker="o", capsize=3, label="test")  # fmt: skip
    ax.plot([r["depth"] for r in rows], [r["train"] for r in rows], "s--", color="0.5", label="train")
    ax.set_xlabel("decoder depth (linear layers)")
    ax.set_ylabel("accuracy")
    ax.set_title(f"{getattr(config, 'relation', '')}, width {getattr(config, 'width', '')}, "
                 f"fraction {getattr(config, 'fraction', '')}")  # fmt: skip
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_phases(phased: dict) -> Figure:
    """The (eta_enc, eta_dec) plane coloured by each cell's majority phase, with the fitted boundary and
    the line eta_dec/eta_enc = 10; and p_r beside the measured share generalising per ratio."""
    rates = np.array(phased["rates"])
    fig, (ax, side) = plt.subplots(1, 2, figsize=(9.5, 5))
    for e in rates:
        for d in rates:
            here = [c["phase"] for c in phased["cells"]
                    if math.isclose(c["lr_encoder"], e) and math.isclose(c["lr_decoder"], d)]  # fmt: skip
            phase = max(set(here), key=here.count)
            ax.scatter(e, d, s=120, marker="s", color=PHASE_COLOURS[phase])
    for phase, colour in PHASE_COLOURS.items():
        ax.scatter([], [], marker="s", color=colour, label=phase)
    line = np.array([rates[0], rates[-1]])
    ax.plot(line, 10 * line, "k:", label="eta_dec = 10 eta_enc (paper)")
    # the repon theory's boundary, p_r = 1/2: eta_dec / eta_enc = (sigma_a / sigma_c)^2 / factor
    predicted = (phased["sigma_a"] / phased["sigma_c"]) ** 2 / phased["factor"]
    ax.plot(line, predicted * line, "b--", label=f"repon theory, p_r = 1/2 (ratio {predicted:.2g})")
    points = phased["boundary"]["points"]
    if points:
        ax.plot([p[0] for p in points], [p[1] for p in points], "kx-", label="measured boundary")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(rates[0] / 2, rates[-1] * 2)
    ax.set_ylim(rates[0] / 2, rates[-1] * 2)
    ax.set_xlabel("encoder learning rate")
    ax.set_ylabel("decoder learning rate")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    ax.set_title(f"phases ({phased['relation']})")
    comparison = phased["comparison"]
    ratios = [row["ratio"] for row in comparison]
    side.plot(
        ratios,
        [row["measured_generalising"] for row in comparison],
        "o-",
        label="trained: share generalising",
    )
    side.plot(ratios, [row["p_r"] for row in comparison], "s--", label="repon theory p_r")
    side.set_xscale("log")
    side.set_xlabel("eta_dec / eta_enc")
    side.set_ylim(-0.02, 1.02)
    side.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_repons(phased: dict, repon: dict | None) -> Figure:
    """Embeddings (repons) in the plane over training for a low- and a high-ratio run, coloured by
    symbol; and, when given, |A| and |r| along simulated linear dynamics."""
    trajectories = phased.get("trajectories", {})
    panels = len(trajectories) + (1 if repon else 0)
    fig, axes = plt.subplots(1, max(panels, 1), figsize=(4 * max(panels, 1), 3.8), squeeze=False)
    axes = list(axes.flat)
    for ax, (_label, traj) in zip(axes, trajectories.items()):
        path = np.array(traj["embeddings"])  # (T, n, 2+)
        if path.size == 0:
            ax.axis("off")
            continue
        colours = plt.cm.tab10(np.arange(path.shape[1]) % 3 / 10)
        for i in range(path.shape[1]):
            ax.plot(path[:, i, 0], path[:, i, 1], "-", color=colours[i], lw=0.6, alpha=0.6)
            ax.plot(path[-1, i, 0], path[-1, i, 1], "o", color=colours[i], ms=4)
        run = traj["run"]
        ax.set_title(
            f"eta_enc {run['lr_encoder']:.1e}, eta_dec {run['lr_decoder']:.1e}: {traj['phase']}", fontsize=8
        )
        ax.set_xlabel("embedding 1 (colour: symbol mod 3)")
        ax.set_ylabel("embedding 2")
    if repon:
        ax = axes[len(trajectories)]
        for example in repon["examples"]:
            outcome = "collide" if example["C"] > 0 else "no collision"
            ax.plot(example["times"], example["c"], label=f"|r|, C={example['C']:.2f} ({outcome})")
            ax.plot(example["times"], example["a"], "--", label="|A|")
        ax.set_xlabel("time")
        ax.set_title("linear repon dynamics", fontsize=9)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig
