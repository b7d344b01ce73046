"""The KAN network: stacked KAN layers, optional multiplication nodes, grid updates and refinement.

`KAN(width=[2, 5, 1], grid=5, k=3, seed=0)` follows pykan's API. A width entry may be
`[n_sum, n_mult]` (MultKAN): the layer feeding it produces n_sum + 2 * n_mult sub-nodes, and each
multiplication node is the product of two consecutive sub-nodes after the sums.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from intelligible.core.artifacts import load_artifact, save_artifact
from intelligible.core.config import shown
from intelligible.core.errors import ConfigError, DataError
from intelligible.kan.layer import INITS, KANLayer
from intelligible.kan.spline import bspline_basis, uniform_grid


def _is_count(value: object) -> bool:
    # bool is an Integral, but True for a width is a mistake; numpy integers are welcome
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _parse_width(width: Sequence[int | Sequence[int]]) -> list[tuple[int, int]]:
    if isinstance(width, (str, bytes)) or not isinstance(width, Sequence) or len(width) < 2:
        raise ConfigError(f"width must list at least an input and an output size, got {shown(width)}")
    parsed = []
    for entry in width:
        if _is_count(entry):
            pair = (int(entry), 0)
        elif (
            isinstance(entry, Sequence)
            and not isinstance(entry, (str, bytes))
            and len(entry) == 2
            and all(_is_count(v) for v in entry)
        ):
            pair = (int(entry[0]), int(entry[1]))
        else:
            pair = (-1, -1)
        if pair[0] < 0 or pair[1] < 0 or sum(pair) == 0:
            raise ConfigError(
                f"each width entry must be an integer n >= 1 or [n_sum, n_mult] (integers), got {shown(entry)}"
            )
        parsed.append(pair)
    if parsed[0][1]:
        raise ConfigError("the input layer cannot have multiplication nodes")
    return parsed


# A network beyond this many numbers (about 16 GiB in float32) is a typo, not a model to allocate.
MAX_PARAMETERS = 4 * 10**9


def _check_size(width: list[tuple[int, int]], grid: object, k: object) -> None:
    for name, value in (("grid", grid), ("k", k)):
        if not _is_count(value) or value < 1:
            raise ConfigError(f"{name} must be an integer >= 1, got {shown(value)}")
    numbers_per_edge = int(grid) + int(k) + 7  # coefficients, two scales, mask, four symbolic parameters
    edges = sum((a + b) * (c + 2 * d) for (a, b), (c, d) in zip(width, width[1:]))
    if edges * numbers_per_edge > MAX_PARAMETERS:
        raise ConfigError(
            f"a KAN of width {[list(w) for w in width]} with grid {grid} would hold "
            f"{edges * numbers_per_edge:.3g} numbers (at most {MAX_PARAMETERS:.0e}); use a smaller width or grid"
        )


class KAN(nn.Module):
    """A Kolmogorov-Arnold network (Liu et al. 2024), pykan-compatible constructor."""

    def __init__(
        self,
        width: Sequence[int | Sequence[int]],
        grid: int = 5,
        k: int = 3,
        *,
        seed: int = 0,
        base: str = "silu",
        grid_range: tuple[float, float] = (-1.0, 1.0),
        grid_eps: float = 0.02,
        noise_scale: float = 0.3,
        init: str = "coefficients",
    ) -> None:
        super().__init__()
        self.width = _parse_width(width)
        _check_size(self.width, grid, k)
        if not _is_count(seed) or not 0 <= seed < 2**63:
            raise ConfigError(f"seed must be an integer in 0..2**63-1, got {shown(seed)}")
        if not 0.0 <= grid_eps <= 1.0:
            raise ConfigError(f"grid_eps must be in [0, 1] (0: quantile grid, 1: uniform), got {grid_eps}")
        if init not in INITS:
            raise ConfigError(f"init must be one of {', '.join(INITS)}, got {shown(init)}")
        self.grid_size, self.k, self.grid_eps, self.seed, self.init = grid, k, grid_eps, seed, init
        generator = torch.Generator().manual_seed(seed)
        layers = []
        for (n_in_sum, n_in_mult), (n_sum, n_mult) in zip(self.width, self.width[1:]):
            layers.append(
                KANLayer(
                    n_in_sum + n_in_mult,
                    n_sum + 2 * n_mult,
                    grid,
                    k,
                    base=base,
                    grid_range=grid_range,
                    noise_scale=noise_scale,
                    generator=generator,
                    init=init,
                )
            )
        self.layers = nn.ModuleList(layers)

    @property
    def in_dim(self) -> int:
        return self.width[0][0]

    def _combine(self, index: int, h: Tensor) -> Tensor:
        n_sum, n_mult = self.width[index + 1]
        if not n_mult:
            return h
        sums, subnodes = h[:, :n_sum], h[:, n_sum:]
        return torch.cat([sums, subnodes[:, 0::2] * subnodes[:, 1::2]], dim=1)

    @property
    def dtype(self) -> torch.dtype:
        """The floating-point type of the weights; inputs are cast to it."""
        return self.layers[0].coef.dtype

    def check_input(self, x: Tensor) -> Tensor:
        """`x` as a (batch, in_dim) tensor of the model's dtype (integer or other float inputs are cast,
        so outputs always have the model's dtype); DataError for a wrong shape, complex or non-finite values."""
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.in_dim:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise DataError(f"expected input of shape (batch, {self.in_dim}), got {shape}")
        if x.is_complex():
            raise DataError(f"expected real input, got a {x.dtype} tensor")
        x = x.to(self.dtype)
        if not torch.isfinite(x).all():
            raise DataError("input contains NaN or inf values")
        return x

    def forward(self, x: Tensor) -> Tensor:
        h = self.check_input(x)
        for index, layer in enumerate(self.layers):
            h = self._combine(index, layer(h))
        return h

    def layer_inputs(self, x: Tensor) -> list[Tensor]:
        """The input of every layer on samples x (for grid updates and plots)."""
        inputs = []
        h = self.check_input(x)
        with torch.no_grad():
            for index, layer in enumerate(self.layers):
                inputs.append(h)
                h = self._combine(index, layer(h))
        return inputs

    def fit(self, dataset: dict[str, Tensor], **options: object) -> dict[str, list[float]]:
        """Train in place (pykan's `model.fit(dataset, opt="LBFGS", steps=100, ...)`); returns the history."""
        from intelligible.kan.train import FitConfig, fit  # train imports this module

        show = options.pop("show_progress", None)
        return fit(self, dataset, FitConfig(**options), show_progress=show)

    def twice_differentiable(self, enabled: bool = True) -> KAN:
        """Use plain autograd for the spline bases, so second derivatives (Laplacians in PDE losses) are
        exact; the default fast path refuses double backward with an error instead."""
        for layer in self.layers:
            layer.fast_backward = not enabled
        return self

    def plot(self, x: Tensor, **options: object):  # noqa: ANN201 - a matplotlib Figure
        """The network diagram on samples x (see `intelligible.kan.plot.plot`); returns a Figure."""
        from intelligible.kan.plot import plot  # matplotlib loads only when a plot is asked for

        return plot(self, x, **options)

    # ------------------------------------------------------------------ files
    def config(self) -> dict:
        """Everything needed to rebuild this network's structure (the weights travel separately)."""
        return {
            "width": [list(w) for w in self.width],
            "grid": self.grid_size,
            "k": self.k,
            "seed": self.seed,
            "base": self.layers[0].base,
            "grid_eps": self.grid_eps,
            "init": self.init,  # how the weights were first drawn (they are loaded, not redrawn)
            "layer_intervals": [layer.n_intervals for layer in self.layers],
            "layer_uniform": [layer.uniform for layer in self.layers],
            "layer_symbolic_names": [layer.sym_names for layer in self.layers],
            "dtype": _dtype_name(self.dtype),
        }

    def save(self, path: str | Path) -> Path:
        """Save as `<path>.safetensors` + `<path>.json` (kind "kan"); the extensions are appended, so
        "model_lr0.01" and "model_lr0.001" are two files. The dtype is kept."""
        return save_artifact(path, "kan", self.config(), self.state_dict())

    @classmethod
    def load(cls, path: str | Path) -> KAN:
        """A model saved by `save`, with its grids, symbolic edges and dtype."""
        _, config, tensors = load_artifact(path, kind="kan")
        return cls.from_config(config, tensors, source=str(path))

    @classmethod
    def from_config(cls, config: dict, tensors: dict[str, Tensor], *, source: str = "the checkpoint") -> KAN:
        """Rebuild a model from `config()` and a state dict (what `save` and checkpoints hold)."""
        try:
            dtype = _dtype_from(config, tensors)
            model = cls(config["width"], config["grid"], config["k"], seed=config["seed"], base=config["base"],
                        grid_eps=config["grid_eps"], init=config.get("init", "coefficients")).to(dtype)  # fmt: skip
            names = config.get("layer_symbolic_names") or [layer.sym_names for layer in model.layers]
            for layer, intervals, uniform, sym in zip(
                model.layers, config["layer_intervals"], config["layer_uniform"], names, strict=True
            ):
                layer.n_intervals, layer.uniform, layer.sym_names = (
                    int(intervals),
                    bool(uniform),
                    [list(r) for r in sym],
                )
                layer.grid = torch.empty(layer.in_dim, layer.n_intervals + 1 + 2 * layer.k, dtype=dtype)
                layer.coef = nn.Parameter(
                    torch.empty(layer.in_dim, layer.n_bases, layer.out_dim, dtype=dtype)
                )
        except (KeyError, TypeError, ValueError) as error:  # ConfigError is a ValueError too
            raise DataError(f"{source} does not describe a KAN: {str(error).splitlines()[0]}") from None
        try:
            model.load_state_dict(tensors)
        except RuntimeError as error:
            raise DataError(
                f"weights in {source} do not match the saved structure: {str(error).splitlines()[0]}"
            ) from None
        return model

    # ------------------------------------------------------------------ grids
    def grid_samples_needed(self) -> int:
        """How many samples `update_grid` needs: two per spline coefficient of the finest layer.

        With fewer, the least-squares refit is underdetermined (the ridge alone decides the
        coefficients) and the new grid spans only the few samples: a trained model is wrecked.
        """
        return max(2 * layer.n_bases for layer in self.layers)

    @torch.no_grad()
    def update_grid(self, x: Tensor, *, ridge: float = 1e-6) -> None:
        """Move every layer's grid to cover the samples (quantile/uniform blend by grid_eps) and refit
        the splines by least squares so each edge function stays what it was on the samples.

        Needs at least `grid_samples_needed()` samples (DataError otherwise, the model unchanged)."""
        x = self.check_input(x)
        needed = self.grid_samples_needed()
        if x.shape[0] < needed:
            raise DataError(
                f"update_grid needs at least {needed} samples (two per spline coefficient: grid "
                f"{max(layer.n_intervals for layer in self.layers)}, k {self.k}), got {x.shape[0]}; "
                "pass more samples, e.g. the whole training input. The grid was left as it was."
            )
        for layer, inputs in zip(self.layers, self.layer_inputs(x)):
            new_grid = _grid_from_samples(inputs, layer.n_intervals, layer.k, self.grid_eps)
            _refit(layer, inputs, new_grid, layer.n_intervals, ridge)

    def fresh(self, seed: int, *, grid: int | None = None) -> KAN:
        """A newly initialised network like this one (width, k, base, grid_eps, start, dtype), with
        `seed` and `grid` intervals (default: the constructor's)."""
        return KAN(
            [list(w) for w in self.width], self.grid_size if grid is None else grid, self.k, seed=seed,
            base=self.layers[0].base, grid_eps=self.grid_eps, init=self.init,
        ).to(self.dtype)  # fmt: skip

    @torch.no_grad()
    def refine(self, new_grid: int, x: Tensor | None = None, *, ridge: float = 1e-6) -> KAN:
        """A copy of this network with `new_grid` intervals per edge, fitted to the current functions."""
        if not isinstance(new_grid, int) or new_grid < 1:
            raise ConfigError(f"grid must be an integer >= 1, got {new_grid!r}")
        finer = self.fresh(self.seed, grid=new_grid)
        finer.load_state_dict(
            {key: value for key, value in self.state_dict().items() if not key.endswith((".coef", ".grid"))},
            strict=False,
        )
        samples = x if x is not None else _grid_samples(self)
        for old, new in zip(self.layers, finer.layers):
            new.sym_names = [list(row) for row in old.sym_names]
        for old, new, inputs in zip(self.layers, finer.layers, self.layer_inputs(samples)):
            low, high = old.grid[:, old.k], old.grid[:, -old.k - 1]
            if old.uniform:
                grid = uniform_grid(low, high, new_grid, old.k)
            else:
                grid = _subdivided_grid(old.grid, old.k, new_grid)
            new.grid = new.grid.new_empty(grid.shape)
            # fitted at the samples alone, the finer splines are free between them and the network
            # changes away from the training points; a dense sweep of the old splines' whole support
            # makes the refit keep each edge function everywhere it is defined
            # (a uniform grid keeps its fast path and spacing: its extension knots move closer, so it
            # is held to its core only)
            start, end = (low, high) if old.uniform else (old.grid[:, 0], old.grid[:, -1])
            steps = torch.linspace(0, 1, 4 * (new_grid + 3 * old.k) + 1, dtype=low.dtype)[:, None]
            sweep = (start + steps * (end - start)).to(inputs.dtype)
            _refit(new, torch.cat([inputs, sweep]), grid, new_grid, ridge, source=old)
        return finer


_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
}


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _dtype_from(config: dict, tensors: dict[str, Tensor]) -> torch.dtype:
    """The saved dtype: from the config (files written since it is recorded), else from the weights."""
    name = config.get("dtype")
    if name is not None:
        if name not in _DTYPES:
            raise ValueError(f"unknown dtype {name!r}")
        return _DTYPES[name]
    coef = tensors.get("layers.0.coef")
    return coef.dtype if coef is not None and coef.is_floating_point() else torch.float32


def _grid_samples(model: KAN, n: int = 512) -> Tensor:
    """Samples spread over the first layer's grid range, for refits when no data is given."""
    layer = model.layers[0]
    low, high = layer.grid[:, layer.k], layer.grid[:, -layer.k - 1]
    steps = torch.linspace(0, 1, n, dtype=low.dtype)[:, None]
    return low + steps * (high - low)


def _subdivided_grid(grid: Tensor, k: int, n_intervals: int) -> Tensor:
    """Knots for `n_intervals` that interpolate the old core knots linearly in knot index, between
    the old k extension knots on each side. When n_intervals is a multiple of the old count every
    old knot is kept, so the old splines lie in the new spline space and a refit reproduces them
    exactly, also just outside the core (where test points and hidden activations often fall)."""
    core = grid[:, k : grid.shape[1] - k]  # (in, n_old + 1)
    n_old = core.shape[1] - 1
    position = torch.linspace(0, n_old, n_intervals + 1, dtype=grid.dtype)
    left = position.floor().long().clamp(max=n_old - 1)
    fraction = position - left
    knots = core[:, left] + fraction * (core[:, left + 1] - core[:, left])
    return torch.cat([grid[:, :k], knots, grid[:, grid.shape[1] - k :]], dim=1)


def _grid_from_samples(
    inputs: Tensor,
    n_intervals: int,
    k: int,
    grid_eps: float,
    low: Tensor | None = None,
    high: Tensor | None = None,
    margin: float = 0.01,
) -> Tensor:
    """Extended knots per input: grid_eps * uniform + (1 - grid_eps) * sample quantiles."""
    sorted_x = inputs.sort(dim=0).values
    lo = sorted_x[0] if low is None else low
    hi = sorted_x[-1] if high is None else high
    hi = torch.where(hi > lo, hi, lo + 1e-2)  # a constant input still needs an interval
    if low is None:
        # a margin of `margin` of the range on each side: unseen points just beyond the training
        # samples (test data, a hidden node drifting) stay inside the fitted knots
        pad = (hi - lo) * margin
        lo, hi = lo - pad, hi + pad
    positions = torch.linspace(0, 1, n_intervals + 1, dtype=inputs.dtype)
    uniform = lo[:, None] + positions[None] * (hi - lo)[:, None]
    ids = (positions * (sorted_x.shape[0] - 1)).round().long()
    adaptive = sorted_x[ids].T.clamp(lo[:, None], hi[:, None])
    adaptive[:, 0], adaptive[:, -1] = lo, hi
    core = grid_eps * uniform + (1 - grid_eps) * adaptive
    core = torch.cummax(core, dim=1).values  # knots must not decrease
    h = (hi - lo) / n_intervals
    left = lo[:, None] - h[:, None] * torch.arange(k, 0, -1, dtype=inputs.dtype)
    right = hi[:, None] + h[:, None] * torch.arange(1, k + 1, dtype=inputs.dtype)
    return torch.cat([left, core, right], dim=1)


def _refit(
    layer: KANLayer,
    inputs: Tensor,
    grid: Tensor,
    n_intervals: int,
    ridge: float,
    source: KANLayer | None = None,
) -> None:
    """Least-squares spline coefficients on `grid` reproducing the (source) layer's splines at `inputs`."""
    source = source or layer
    targets = torch.einsum("bim,imo->ibo", source.basis(inputs), source.coef)  # (in, batch, out)
    basis = bspline_basis(inputs, grid, layer.k).permute(1, 0, 2)  # (in, batch, n_bases)
    gram = basis.transpose(1, 2) @ basis
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype)
    rhs = basis.transpose(1, 2) @ targets
    # ridge keeps the solve defined where an interval has no samples; the old solution is kept on failure
    coef, info = torch.linalg.solve_ex(gram + ridge * eye * (1 + gram.diagonal(dim1=1, dim2=2).mean()), rhs)
    if bool(info.any()) or not torch.isfinite(coef).all():
        warnings.warn("grid refit failed (singular or non-finite); keeping the previous grid", stacklevel=3)
        return
    layer.grid = grid.to(layer.grid.dtype)
    layer.n_intervals = n_intervals
    spacing = grid[:, 1:] - grid[:, :-1]
    layer.uniform = bool(torch.allclose(spacing, spacing[:, :1].expand_as(spacing), rtol=1e-5, atol=1e-7))
    if layer.coef.shape == coef.shape:  # same size: update in place so optimisers keep tracking it
        layer.coef.data.copy_(coef)
    else:
        layer.coef = nn.Parameter(coef.to(layer.coef.dtype))
