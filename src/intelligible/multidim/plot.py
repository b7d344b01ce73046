"""Figures: the reference shapes with their indices, the circles per layer, the top clusters, the toy circle."""

from __future__ import annotations

from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_shapes(shapes: dict[str, np.ndarray], values: dict[str, tuple[float, float]]) -> Any:
    """One panel per reference shape, titled with S (bits) and M_eps."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(shapes), figsize=(3.2 * len(shapes), 3.2))
    for ax, (name, points) in zip(np.atleast_1d(axes), shapes.items()):
        shown = points[:: max(1, len(points) // 2000)]
        ax.scatter(shown[:, 0], shown[:, 1], s=2, color="k")
        s_bits, m_eps = values[name]
        ax.set_title(f"{name}\nS={s_bits:.2f} bits, M={m_eps:.3f}", fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_layer_correlations(rows: dict[str, list[Any]]) -> Any:
    """Circular-order correlation per layer with the null's 99th percentile, one line per prompt set."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for (name, layers), color in zip(rows.items(), ("C0", "C1", "C2")):
        x = [r.layer for r in layers]
        ax.plot(x, [r.correlation for r in layers], color=color, label=f"{name}: correlation")
        ax.plot(x, [r.null_p99 for r in layers], color=color, linestyle="--", label=f"{name}: null 99th pct")
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("angle vs cyclic distance (r)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_circle(coords: np.ndarray, labels: np.ndarray, names: tuple[str, ...], title: str) -> Any:
    """The top PCA plane of a prompt set's residuals, coloured by the start item, item means labelled."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    cmap = plt.get_cmap("hsv")
    period = len(names)
    ax.scatter(coords[:, 0], coords[:, 1], c=[cmap(v / period) for v in labels], s=14)
    for i, name in enumerate(names):
        mean = coords[labels == i].mean(axis=0)
        ax.annotate(name[:3], mean, fontsize=8, ha="center")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    fig.tight_layout()
    return fig


def plot_clusters(scored: list[Any], token_text: list[str], top: int = 4) -> Any:
    """The first PCA plane of the top clusters, points coloured by their token (the most common ones named)."""
    plt = _pyplot()
    chosen = [s for s in scored if s.coords is not None][:top]
    fig, axes = plt.subplots(1, max(1, len(chosen)), figsize=(4.0 * max(1, len(chosen)), 4.0), squeeze=False)
    for ax, cluster in zip(axes[0], chosen):
        words = [token_text[i] for i in cluster.token_ids]
        common = [w for w, _ in cluster.top_tokens[:8]]
        colours = [common.index(w) if w in common else len(common) for w in words]
        cmap = plt.get_cmap("tab10")
        ax.scatter(cluster.coords[:, 0], cluster.coords[:, 1], s=4, c=[cmap(c % 10) for c in colours])
        for word in common:
            member = np.array([w == word for w in words])
            if member.any():
                ax.annotate(word.strip() or repr(word), cluster.coords[member, :2].mean(axis=0), fontsize=8)
        ax.set_title(
            f"score {cluster.score:.2f}, {len(cluster.latents)} latents, {cluster.n_tokens} tokens",
            fontsize=8,
        )
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_toy(circle: Any, names: tuple[str, ...], moved: float, random_moved: float) -> Any:
    """The toy model's items in their plane, with the outcome of rotating by one item."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.2, 4.2))
    ax.plot(*np.vstack([circle.coords, circle.coords[:1]]).T, color="0.7")
    ax.scatter(circle.coords[:, 0], circle.coords[:, 1], color="C3")
    for i, name in enumerate(names):
        ax.annotate(name[:3], circle.coords[i], fontsize=8)
    ax.set_title(f"toy {circle.task}, layer {circle.layer}: rotation moves {moved:.0%} "
                 f"(random plane {random_moved:.0%})", fontsize=8)  # fmt: skip
    fig.tight_layout()
    return fig
