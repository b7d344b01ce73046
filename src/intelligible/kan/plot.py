"""The KAN diagram: nodes by layer, each edge drawn with its learned curve, opacity from its score."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures go to files

import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from intelligible.kan.model import KAN  # noqa: E402
from intelligible.kan.prune import attribute  # noqa: E402

MAX_CURVES = 300  # beyond this many edges only the lines are drawn; insets would be unreadable


def _positions(n: int) -> list[float]:
    return [(i + 0.5) / n for i in range(n)]


@torch.no_grad()
def plot(
    model: KAN, x: torch.Tensor, *, title: str | None = None, in_vars: list[str] | None = None
) -> Figure:
    """Draw `model` on samples x (network inputs): each edge's curve over its inputs' range, each edge's
    opacity proportional to its attribution score; symbolic edges are labelled with their function."""
    _, edge_scores = attribute(model, x)
    inputs = model.layer_inputs(x)
    top = max(float(s.max()) for s in edge_scores) or 1.0
    depth = len(model.layers)
    widest = max(layer.in_dim * layer.out_dim for layer in model.layers)
    fig, ax = plt.subplots(figsize=(min(max(4.0, 0.6 * widest), 24.0), 2.2 * depth + 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.2, depth + 0.2)
    ax.axis("off")
    n_edges = sum(layer.in_dim * layer.out_dim for layer in model.layers)
    for index, layer in enumerate(model.layers):
        x_in = _positions(layer.in_dim)
        x_out = _positions(layer.out_dim)
        h = inputs[index]
        acts = layer.edge_activations(h)  # (batch, out, in)
        order = h.argsort(dim=0)
        n_layer_edges = layer.in_dim * layer.out_dim
        slots = _positions(n_layer_edges)
        width = 0.8 / n_layer_edges
        for i in range(layer.in_dim):
            for j in range(layer.out_dim):
                if float(layer.mask[i, j]) == 0:
                    continue
                alpha = max(0.05, min(1.0, float(edge_scores[index][j, i]) / top))
                if n_edges > MAX_CURVES:
                    ax.plot([x_in[i], x_out[j]], [index, index + 0.62], color="black", alpha=alpha, lw=1)
                    continue
                # one slot per edge, in a row between the layers: input -> curve -> output
                slot = slots[i * layer.out_dim + j]
                ax.plot([x_in[i], slot], [index, index + 0.2], color="black", alpha=alpha, lw=0.8)
                ax.plot([slot, x_out[j]], [index + 0.42, index + 0.62], color="black", alpha=alpha, lw=0.8)
                inset = ax.inset_axes([slot - width / 2, index + 0.2, width, 0.22], transform=ax.transData)
                symbolic = float(layer.sym_mask[i, j]) > 0
                inset.plot(h[order[:, i], i].numpy(), acts[order[:, i], j, i].numpy(),
                           color="#e76f51" if symbolic else "#1d3557", alpha=alpha, lw=1.2)  # fmt: skip
                inset.set_xticks([])
                inset.set_yticks([])
                for spine in inset.spines.values():
                    spine.set_alpha(alpha)
                if symbolic:
                    inset.set_title(layer.sym_names[i][j], fontsize=6, pad=1)
        # the combined nodes of the next layer sit at index + 1; sub-nodes feed them
        for j, xp in enumerate(x_out):
            ax.plot([xp, _positions(sum(model.width[index + 1]))[min(j, sum(model.width[index + 1]) - 1)]],
                    [index + 0.62, index + 1], color="grey", lw=0.6)  # fmt: skip
    for level, (n_sum, n_mult) in enumerate(model.width):
        xs = _positions(n_sum + n_mult)
        ax.scatter(xs, [level] * len(xs), s=40, color="black", zorder=3)
        if level == 0:
            names = in_vars or [f"x{i}" for i in range(n_sum)]
            for xp, name in zip(xs, names):
                ax.text(xp, -0.12, name, ha="center", va="top", fontsize=9)
    ax.set_title(title or f"KAN {[list(w) if w[1] else w[0] for w in model.width]}")
    fig.tight_layout()
    return fig
