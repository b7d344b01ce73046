"""The KAN diagram renders, with numeric and symbolic edges."""

from __future__ import annotations

import io

import torch

from intelligible.kan import KAN, fix_symbolic
from intelligible.kan.plot import plot


def test_plot_renders_png():
    model = KAN([2, 3, 1], grid=4, seed=0)
    fix_symbolic(model, 1, 0, 0, "sin")
    x = torch.rand(100, 2) * 2 - 1
    fig = plot(model, x, in_vars=["x", "y"])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:4] == b"\x89PNG" and len(buffer.getvalue()) > 10_000
    assert len(fig.axes) == 1 and len(fig.axes[0].child_axes) == 9  # one inset per edge


def test_plot_method():
    model = KAN([2, 1], grid=3, seed=0)
    assert model.plot(torch.rand(20, 2)).axes[0].get_title() == "KAN [2, 1]"
