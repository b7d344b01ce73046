"""From splines to formulas: fix an edge to a library function, suggest or pick functions for every
edge (vectorised over edges), and read the network as sympy expressions.

An edge (layer l, input i, output j) fitted to c * f(a * x + b) + d keeps those four numbers as
trainable parameters, so a few more `fit` steps polish the constants, as in pykan.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import sympy
import torch
from torch import Tensor

from intelligible.core.errors import ConfigError, DataError
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


_POLYNOMIAL_DEGREE = {"x": 1, "x^2": 2, "x^3": 3, "x^4": 4, "x^5": 5}


def _well_scaled(name: str, params: Tensor) -> Tensor:
    """A fitted power edge c (a x + b)^n + d rewritten with |a| = 1 (the same function).

    fit_affine searches a over a grid up to +-10, so `x` and `x^2` edges often come back as
    0.03 * (-9.1 x - 4.5) or -0.0017 * (-7.05 x)^2: the same curve, but with c and a nearly
    degenerate, polishing them with LBFGS crawls (issue 20: 1.4e-4 RMSE left after 200 steps
    on sin(x0) x1 + x2^2, constants off by 0.5%). With |a| = 1 it converges in a few steps.
    """
    degree = _POLYNOMIAL_DEGREE.get(name)
    a = float(params[0])
    if degree is None or a == 0 or not math.isfinite(a):
        return params
    scale = abs(a)
    a_, b, c, d = params.tolist()
    return torch.tensor([a_ / scale, b / scale, c * scale**degree, d], dtype=params.dtype)


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
        _set_symbolic(model, layer, i, j, name, _well_scaled(name, fitted[0]))
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


# A candidate may win on simplicity only among those that explain nearly as much as the best one:
# under pykan's rule alone (weight_simple 0.8) `x` at R^2 0.006 beats a bell curve at R^2 0.99,
# because its complexity is 2 lower and log2(1 - R^2) pays back only 1.3 of that.
MIN_RELATIVE_R2 = 0.9


def _eligible(r2: Tensor, best: Tensor, min_relative_r2: float) -> Tensor:
    return (r2 >= min_relative_r2 * best.clamp_min(0)) | (r2 >= best)  # the best one always is


def suggest_symbolic(
    model: KAN, layer: int, i: int, j: int, x: Tensor, *, lib: Sequence[str] | None = None, topk: int = 5,
    weight_simple: float = 0.8, min_relative_r2: float = MIN_RELATIVE_R2,
) -> list[dict]:  # fmt: skip
    """Library functions ranked for edge (layer, i -> j): dicts with name, r2, complexity, score,
    params and eligible (R^2 at least min_relative_r2 of the best candidate's; eligible ones first)."""
    _check_edge(model, layer, i, j)
    xs, ys = _numeric_curves(model, layer, [(i, j)], x)
    rows = []
    for name in lib or list(SYMBOLIC_LIB):
        fn = get_function(name)
        params, r2 = fit_affine(xs, ys, fn)
        rows.append({"name": name, "r2": float(r2[0]), "complexity": fn.complexity,
                     "score": float(_score(r2, fn.complexity, weight_simple)[0]), "params": params[0].tolist()})  # fmt: skip
    best = torch.tensor(max(row["r2"] for row in rows), dtype=torch.float64)
    for row in rows:
        row["eligible"] = bool(_eligible(torch.tensor(row["r2"], dtype=torch.float64), best, min_relative_r2))
    rows.sort(key=lambda row: (not row["eligible"], row["score"]))
    return rows[:topk]


def auto_symbolic(
    model: KAN,
    x: Tensor,
    *,
    lib: Sequence[str] | None = None,
    weight_simple: float = 0.8,
    r2_threshold: float = 0.0,
    min_relative_r2: float = MIN_RELATIVE_R2,
    layers: Sequence[int] | None = None,
) -> dict[tuple[int, int, int], tuple[str, float]]:
    """Pick a function for every active numeric edge (each function fitted to all edges of a layer at
    once): the best pykan score among the candidates whose R^2 is at least min_relative_r2 of the
    edge's best R^2; edges whose best R^2 is below `r2_threshold` stay numeric. `layers` limits
    the work to those layer indices (default: all).
    Returns {(l, i, j): (name, r2)}."""
    if not 0 <= min_relative_r2 <= 1:
        raise ConfigError(f"min_relative_r2 must be in [0, 1], got {min_relative_r2}")
    wanted = set(range(len(model.layers))) if layers is None else set(layers)
    if not wanted <= set(range(len(model.layers))):
        raise ConfigError(f"layers must be indices in 0..{len(model.layers) - 1}, got {sorted(wanted)}"[:200])
    names = list(lib or SYMBOLIC_LIB)
    for name in names:
        get_function(name)
    chosen: dict[tuple[int, int, int], tuple[str, float]] = {}
    for index, kan_layer in enumerate(model.layers):
        if index not in wanted:
            continue
        active = (kan_layer.mask > 0) & (kan_layer.sym_mask == 0)
        edges = [tuple(e) for e in torch.nonzero(active).tolist()]
        if not edges:
            continue
        xs, ys = _numeric_curves(model, index, edges, x)
        fits = {name: fit_affine(xs, ys, get_function(name)) for name in names}
        # a candidate whose fit failed (NaN R^2) must not make every other one ineligible
        top_r2 = torch.stack([r2.nan_to_num(nan=-math.inf) for _, r2 in fits.values()]).max(dim=0).values
        best_score = torch.full((len(edges),), math.inf, dtype=torch.float64)
        best_name = [""] * len(edges)
        best_params = torch.zeros(len(edges), 4, dtype=torch.float64)
        best_r2 = torch.zeros(len(edges), dtype=torch.float64)
        for name in names:
            fn = get_function(name)
            params, r2 = fits[name]
            score = torch.where(
                _eligible(r2, top_r2, min_relative_r2), _score(r2, fn.complexity, weight_simple), math.inf
            )
            better = score < best_score
            best_score = torch.where(better, score, best_score)
            best_r2 = torch.where(better, r2, best_r2)
            best_params[better] = params[better]
            best_name = [name if b else old for b, old in zip(better.tolist(), best_name)]
        for k, (i, j) in enumerate(edges):
            if not best_name[k]:
                # no candidate has a finite score (every fit failed, R^2 NaN): the edge becomes the
                # constant it averages (it had stayed unnamed, and the next forward failed on '')
                mean = float(ys[k].mean())
                _set_symbolic(
                    model, index, i, j, "0", torch.tensor([1.0, 0.0, 1.0, mean], dtype=torch.float64)
                )
                chosen[(index, i, j)] = ("0", math.nan)
            elif float(best_r2[k]) >= r2_threshold:
                _set_symbolic(model, index, i, j, best_name[k], _well_scaled(best_name[k], best_params[k]))
                chosen[(index, i, j)] = (best_name[k], float(best_r2[k]))
    return chosen


_MAX_EXPANDED_TERMS = 64  # expand c * (a * u + b)^p only while it stays this small
_CHECK_SAMPLES = 256
_HELD_OUT_SAMPLES = 1024
FORMULA_BOUND = 1e-2  # default bound on the displayed formula's relative error against the model


class SymbolicFormula(list):
    """The displayed formulas (a list of sympy expressions, one per output) with their check against
    the model on held-out points.

    `errors[o]` is output o's relative error: the RMSE of the displayed formula minus the model,
    divided by the model output's standard deviation on the points (by its mean absolute value where
    the output is constant); inf where the formula is undefined or not finite where the model is.
    `passed` says whether every error is within `bound`; `points` is how many points were used.
    """

    def __init__(self, formulas: Sequence[sympy.Expr], errors: Sequence[float], bound: float, points: int):
        super().__init__(formulas)
        self.errors = [float(e) for e in errors]
        self.bound = float(bound)
        self.points = int(points)

    @property
    def error(self) -> float:
        """The largest relative error over the outputs."""
        return max(self.errors, default=0.0)

    @property
    def passed(self) -> bool:
        return all(e <= self.bound for e in self.errors)

    def check(self) -> dict:
        """The check as plain numbers (for JSON): bound, error, errors, passed, points."""
        return {"bound": self.bound, "error": self.error, "errors": list(self.errors),
                "passed": self.passed, "points": self.points}  # fmt: skip


def symbolic_formula(
    model: KAN,
    var_names: Sequence[str] | None = None,
    digits: int = 4,
    *,
    x: Tensor | None = None,
    rtol: float = 1e-3,
    check_x: Tensor | None = None,
    bound: float = FORMULA_BOUND,
) -> SymbolicFormula:
    """The network as one sympy expression per output; every active edge must be symbolic.

    Constants are combined at full precision first (numeric factors multiply out, like terms collect,
    polynomial edges of small sums are expanded, exp(a u + b) becomes exp(b) exp(a u)), then rounded
    to `digits` significant digits, near-integers and multiples of pi snapped. The rounded formula is
    checked on samples (`x`, network inputs; else points spread over the input grid range) against
    the full-precision one: where rounding moves the output by more than `rtol` times its scale (its
    standard deviation over the samples), more digits are kept, up to full precision.

    The displayed formulas are then compared with the model itself on held-out points (`check_x`,
    e.g. the test inputs; else 1024 points drawn over the input grid range, apart from the samples
    above): the result is a list of the formulas that also carries each output's relative error
    (`errors`, RMSE over the output's standard deviation), `bound` and `passed` (every error within
    `bound`), so a formula that does not describe the model (constants that cancel away from the
    samples, a function the model protects, such as sqrt of a negative number) is flagged.
    """
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= 17:
        raise ConfigError(f"digits must be an integer in 1..17, got {digits!r}")
    if not (isinstance(rtol, (int, float)) and math.isfinite(rtol) and rtol > 0):
        raise ConfigError(f"rtol must be a positive number, got {rtol!r}")
    if isinstance(bound, bool) or not (
        isinstance(bound, (int, float)) and math.isfinite(bound) and bound > 0
    ):
        raise ConfigError(f"bound must be a positive number (a relative error, e.g. 0.01), got {bound!r}")
    n_in = model.in_dim
    names = list(var_names) if var_names is not None else [f"x_{i + 1}" for i in range(n_in)]
    if len(names) != n_in:
        raise ConfigError(f"var_names has {len(names)} names for {n_in} inputs")
    held_out = _held_out_points(model, check_x)  # checked before any sympy work
    symbols = list(sympy.symbols(names))
    samples = _check_samples(model, x)
    # where a protected function (sqrt, log, 1/x, ...) is protected on the points the formula is
    # shown and checked on, the formula says so (sqrt(Max(u, 0))): otherwise it describes another model
    points = torch.as_tensor(np.concatenate([samples, held_out]), dtype=model.dtype)
    exact = _exact_formula(model, symbols, model.layer_inputs(points))
    displayed = [_displayed(expr, symbols, samples, digits, rtol) for expr in exact]
    with torch.no_grad():
        outputs = model(torch.as_tensor(held_out, dtype=model.dtype)).double().numpy()
    errors = [
        _relative_error(_evaluate(expr, symbols, held_out), outputs[:, o]) for o, expr in enumerate(displayed)
    ]
    return SymbolicFormula(displayed, errors, bound, held_out.shape[0])


def _held_out_points(model: KAN, check_x: Tensor | None) -> np.ndarray:
    """(n, in) float64 points for the check against the model: `check_x`, else the grid range."""
    if check_x is not None:
        points = model.check_input(check_x)
        if points.shape[0] == 0:
            raise DataError("check_x has no rows; pass held-out inputs (batch, in_dim) or None")
        return points.detach().double().numpy()
    return _grid_range_points(model, _HELD_OUT_SAMPLES, seed=1)


def _relative_error(values: np.ndarray | None, reference: np.ndarray) -> float:
    """RMSE of values - reference over the reference's scale (inf where values fail where it does not)."""
    finite = np.isfinite(reference)
    if not finite.any():
        return 0.0  # the model itself is undefined on every point: nothing to compare
    if values is None or not np.isfinite(values[finite]).all():
        return math.inf
    reference = reference[finite]
    error = float(np.sqrt(np.mean((values[finite] - reference) ** 2)))
    scale = float(reference.std())
    if scale <= 1e-12 * max(1.0, float(np.abs(reference).max())):
        scale = float(np.abs(reference).mean())  # a constant output: relative to its size
    if scale == 0.0:
        return 0.0 if error == 0.0 else math.inf
    return error / scale


def _exact_formula(model: KAN, symbols: list[sympy.Symbol], layer_inputs: list[Tensor]) -> list[sympy.Expr]:
    """The network's outputs at full precision, constants combined (see `symbolic_formula`); an
    edge whose function is protected at some of `layer_inputs` gets the protected form."""
    nodes: list[sympy.Expr] = list(symbols)
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
                params = kan_layer.sym_params[i, j].tolist()
                name = kan_layer.sym_names[i][j]
                protected = not get_function(name).in_domain(
                    params[0] * layer_inputs[index][:, i].double() + params[1]
                )
                total += _edge(name, *params, nodes[i], symbols, protected=protected)
            subnodes.append(total)
        n_sum, n_mult = model.width[index + 1]
        nodes = subnodes[:n_sum] + [
            subnodes[n_sum + 2 * m] * subnodes[n_sum + 2 * m + 1] for m in range(n_mult)
        ]
    return nodes


def _number(value: float) -> sympy.Expr:
    """`value` at full precision; exact integers (default parameters 1, 0) stay exact."""
    return sympy.Integer(int(value)) if float(value).is_integer() else sympy.Float(value, 17)


def _edge(
    name: str, a: float, b: float, c: float, d: float, u: sympy.Expr, symbols: list, protected: bool = False
) -> sympy.Expr:
    """c * f(a * u + b) + d, with the constants combined before anything is rounded (with `protected`,
    f is what the torch form computes)."""
    fn = get_function(name)
    if name == "0" or c == 0:
        return _number(d)
    inner = _number(a) * u + _number(b)
    degree = _POLYNOMIAL_DEGREE.get(name)
    if (
        degree is not None
        and math.comb(len(sympy.Add.make_args(inner)) + degree - 1, degree) <= _MAX_EXPANDED_TERMS
    ):
        # c (a u + b)^2 + d = c a^2 u^2 + 2 c a b u + (c b^2 + d): a large a with a tiny c, or a b whose
        # square nearly cancels d, survive rounding only once multiplied out
        return sympy.expand(_number(c) * inner**degree) + _number(d)
    if name == "exp":
        constant, rest = inner.as_independent(*symbols, as_Add=True)
        factor = c * math.exp(float(constant)) if float(constant) < 700 else math.inf
        if math.isfinite(factor) and factor != 0:
            return _number(factor) * sympy.exp(rest) + _number(d)
    return _number(c) * fn.sympy_form(inner, protected) + _number(d)


def _check_samples(model: KAN, x: Tensor | None) -> np.ndarray:
    """(n, in) float64 points on which rounded formulas are compared with the full-precision one."""
    if x is not None:
        x = model.check_input(x)
        step = max(1, x.shape[0] // _CHECK_SAMPLES)
        return x[::step][:_CHECK_SAMPLES].detach().double().numpy()
    return _grid_range_points(model, _CHECK_SAMPLES, seed=0)


def _grid_range_points(model: KAN, n: int, seed: int) -> np.ndarray:
    """n points drawn uniformly over the first layer's grid range (each input its own range)."""
    layer = model.layers[0]
    low = layer.grid[:, layer.k].double()
    high = layer.grid[:, -layer.k - 1].double()
    unit = torch.rand(n, model.in_dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return (low + unit * (high - low)).numpy()


def _evaluate(expr: sympy.Expr, symbols: list, samples: np.ndarray) -> np.ndarray | None:
    """expr on the samples (None when numpy cannot evaluate it)."""
    try:
        fn = sympy.lambdify(symbols, expr, modules="numpy")
        with np.errstate(all="ignore"):
            values = np.asarray(fn(*samples.T), dtype=np.float64)
    except (TypeError, ValueError, ZeroDivisionError, OverflowError, NameError):
        return None
    return np.broadcast_to(values, (samples.shape[0],))


def _displayed(expr: sympy.Expr, symbols: list, samples: np.ndarray, digits: int, rtol: float) -> sympy.Expr:
    """The roundest version of `expr` (fewest digits, snapped if possible) that stays within tolerance."""
    full = _evaluate(expr, symbols, samples)
    finite = np.isfinite(full) if full is not None else np.zeros(samples.shape[0], dtype=bool)
    reference = full[finite] if full is not None else np.zeros(0)
    scale = float(reference.std()) if reference.size else 0.0
    if reference.size and scale <= 1e-12 * max(1.0, float(np.abs(reference).max())):
        scale = max(float(np.abs(reference).mean()), 1e-12)  # a constant output: relative to its size
    for precision in range(digits, 18):
        for snap in (True, False):
            candidate = _rounded(expr, precision, snap)
            if not reference.size:
                return candidate  # nothing to check against (the formula is undefined on the samples)
            values = _evaluate(candidate, symbols, samples)
            if values is None or not np.isfinite(values[finite]).all():
                continue
            error = float(np.sqrt(np.mean((values[finite] - reference) ** 2)))
            if error <= rtol * scale:
                return candidate
    return expr


def _rounded(expr: sympy.Expr, digits: int, snap: bool) -> sympy.Expr:
    return expr.xreplace({number: _round(float(number), digits, snap) for number in expr.atoms(sympy.Float)})


def _round(value: float, digits: int, snap: bool = True) -> sympy.Expr:
    """Round to `digits` significant decimals; with `snap`, near-integers and pi multiples become exact."""
    if snap:
        if abs(value - round(value)) < 10 ** (-digits):
            return sympy.Integer(round(value))
        for multiple in (1, 2, 0.5):
            if abs(abs(value) - multiple * math.pi) < 10 ** (-digits):
                sign = 1 if value > 0 else -1
                return sign * sympy.nsimplify(multiple) * sympy.pi
    rounded = float(f"{value:.{digits}g}")
    if rounded.is_integer() and abs(rounded) < 2**53:
        return sympy.Integer(int(rounded))
    return sympy.Float(rounded, digits)  # significant digits, not decimal places
