"""From splines to formulas: fix an edge to a library function, suggest or pick functions for every
edge (vectorised over edges), and read the network as sympy expressions.

An edge (layer l, input i, output j) fitted to c * f(a * x + b) + d keeps those four numbers as
trainable parameters, so a few more `fit` steps polish the constants, as in pykan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import sympy
import torch
from torch import Tensor

from intelligible.core.errors import ConfigError
from intelligible.kan.model import KAN
from intelligible.symbolic.fit import fit_affine
from intelligible.symbolic.library import SYMBOLIC_LIB, get_function


def _check_edge(model: KAN, layer: int, i: int, j: int) -> None:
    if not 0 <= layer < len(model.layers):
        raise ConfigError(f"layer {layer} is out of range 0..{len(model.layers) - 1}")
    kan_layer = model.layers[layer]
    if not (0 <= i < kan_layer.in_dim and 0 <= j < kan_layer.out_dim):
        raise ConfigError(
            f"edge ({i} -> {j}) does not exist in layer {layer} ({kan_layer.in_dim} x {kan_layer.out_dim})"
        )


@torch.no_grad()
def _numeric_curves(
    model: KAN, layer: int, edges: Sequence[tuple[int, int]], x: Tensor
) -> tuple[Tensor, Tensor]:
    """Inputs (edges, samples) and current outputs (edges, samples) of the given edges of `layer`."""
    inputs = model.layer_inputs(x)[layer]
    acts = model.layers[layer].edge_activations(inputs)  # (batch, out, in)
    ii = torch.tensor([e[0] for e in edges])
    jj = torch.tensor([e[1] for e in edges])
    return inputs[:, ii].T, acts[:, jj, ii].T


def _set_symbolic(model: KAN, layer: int, i: int, j: int, name: str, params: Tensor) -> None:
    kan_layer = model.layers[layer]
    with torch.no_grad():
        kan_layer.sym_mask[i, j] = 1.0
        kan_layer.sym_params[i, j] = params.to(kan_layer.sym_params.dtype)
    kan_layer.sym_names[i][j] = name


def fix_symbolic(
    model: KAN,
    layer: int,
    i: int,
    j: int,
    name: str,
    x: Tensor | None = None,
    *,
    params: Sequence[float] | None = None,
) -> float | None:
    """Replace edge (layer, i -> j) by c * name(a * x + b) + d.

    With samples `x` (network inputs) the four numbers are fitted to the edge's current curve and
    the fit's R^2 is returned; otherwise `params` (a, b, c, d) are used as given (default 1, 0, 1, 0).
    """
    _check_edge(model, layer, i, j)
    fn = get_function(name)
    if x is not None:
        xs, ys = _numeric_curves(model, layer, [(i, j)], x)
        fitted, r2 = fit_affine(xs, ys, fn)
        _set_symbolic(model, layer, i, j, name, fitted[0])
        return float(r2[0])
    values = torch.tensor(list(params) if params is not None else [1.0, 0.0, 1.0, 0.0])
    if values.shape != (4,):
        raise ConfigError(f"params must be (a, b, c, d), got {list(params or [])}")
    _set_symbolic(model, layer, i, j, name, values)
    return None


def unfix_symbolic(model: KAN, layer: int, i: int, j: int) -> None:
    """Return edge (layer, i -> j) to its spline."""
    _check_edge(model, layer, i, j)
    with torch.no_grad():
        model.layers[layer].sym_mask[i, j] = 0.0


def _score(r2: Tensor, complexity: int, weight_simple: float) -> Tensor:
    # pykan's trade-off: lower is better; log2(1 + 1e-5 - R^2) rewards fits close to exact
    return weight_simple * complexity + (1 - weight_simple) * torch.log2(1 + 1e-5 - r2)


def suggest_symbolic(
    model: KAN, layer: int, i: int, j: int, x: Tensor, *, lib: Sequence[str] | None = None, topk: int = 5,
    weight_simple: float = 0.8,
) -> list[dict]:  # fmt: skip
    """Library functions ranked for edge (layer, i -> j): dicts with name, r2, complexity, score, params."""
    _check_edge(model, layer, i, j)
    xs, ys = _numeric_curves(model, layer, [(i, j)], x)
    rows = []
    for name in lib or list(SYMBOLIC_LIB):
        fn = get_function(name)
        params, r2 = fit_affine(xs, ys, fn)
        rows.append({"name": name, "r2": float(r2[0]), "complexity": fn.complexity,
                     "score": float(_score(r2, fn.complexity, weight_simple)[0]), "params": params[0].tolist()})  # fmt: skip
    rows.sort(key=lambda row: row["score"])
    return rows[:topk]


def auto_symbolic(
    model: KAN,
    x: Tensor,
    *,
    lib: Sequence[str] | None = None,
    weight_simple: float = 0.8,
    r2_threshold: float = 0.0,
) -> dict[tuple[int, int, int], tuple[str, float]]:
    """Pick a function for every active numeric edge (each function fitted to all edges of a layer at
    once); edges whose best R^2 is below `r2_threshold` stay numeric. Returns {(l, i, j): (name, r2)}."""
    names = list(lib or SYMBOLIC_LIB)
    for name in names:
        get_function(name)
    chosen: dict[tuple[int, int, int], tuple[str, float]] = {}
    for index, kan_layer in enumerate(model.layers):
        active = (kan_layer.mask > 0) & (kan_layer.sym_mask == 0)
        edges = [tuple(e) for e in torch.nonzero(active).tolist()]
        if not edges:
            continue
        xs, ys = _numeric_curves(model, index, edges, x)
        best_score = torch.full((len(edges),), math.inf, dtype=torch.float64)
        best_name = [""] * len(edges)
        best_params = torch.zeros(len(edges), 4, dtype=torch.float64)
        best_r2 = torch.zeros(len(edges), dtype=torch.float64)
        for name in names:
            fn = get_function(name)
            params, r2 = fit_affine(xs, ys, fn)
            score = _score(r2, fn.complexity, weight_simple)
            better = score < best_score
            best_score = torch.where(better, score, best_score)
            best_r2 = torch.where(better, r2, best_r2)
            best_params[better] = params[better]
            best_name = [name if b else old for b, old in zip(better.tolist(), best_name)]
        for k, (i, j) in enumerate(edges):
            if float(best_r2[k]) >= r2_threshold:
                _set_symbolic(model, index, i, j, best_name[k], best_params[k])
                chosen[(index, i, j)] = (best_name[k], float(best_r2[k]))
    return chosen


def symbolic_formula(model: KAN, var_names: Sequence[str] | None = None, digits: int = 4) -> list[sympy.Expr]:
    """The network as one sympy expression per output; every active edge must be symbolic."""
    n_in = model.in_dim
    names = list(var_names) if var_names is not None else [f"x_{i + 1}" for i in range(n_in)]
    if len(names) != n_in:
        raise ConfigError(f"var_names has {len(names)} names for {n_in} inputs")
    nodes: list[sympy.Expr] = list(sympy.symbols(names))
    for index, kan_layer in enumerate(model.layers):
        subnodes = []
        for j in range(kan_layer.out_dim):
            total = sympy.Integer(0)
            for i in range(kan_layer.in_dim):
                if float(kan_layer.mask[i, j]) == 0:
                    continue
                if float(kan_layer.sym_mask[i, j]) == 0:
                    raise ConfigError(
                        f"edge (layer {index}, {i} -> {j}) is still a spline; run auto_symbolic or fix_symbolic first"
                    )
                a, b, c, d = (_round(v, digits) for v in kan_layer.sym_params[i, j].tolist())
                total += c * get_function(kan_layer.sym_names[i][j]).sympy_fn(a * nodes[i] + b) + d
            subnodes.append(total)
        n_sum, n_mult = model.width[index + 1]
        nodes = subnodes[:n_sum] + [
            subnodes[n_sum + 2 * m] * subnodes[n_sum + 2 * m + 1] for m in range(n_mult)
        ]
    return nodes


def _round(value: float, digits: int) -> sympy.Expr:
    """Round to `digits` significant decimals; exact integers and pi multiples become exact numbers."""
    if abs(value - round(value)) < 10 ** (-digits):
        return sympy.Integer(round(value))
    for multiple in (1, 2, 0.5):
        if abs(value - multiple * math.pi) < 10 ** (-digits) or abs(value + multiple * math.pi) < 10 ** (
            -digits
        ):
            sign = 1 if value > 0 else -1
            return sign * sympy.nsimplify(multiple) * sympy.pi
    return sympy.Float(float(f"{value:.{digits}g}"), digits + 2)  # significant digits, not decimal places
