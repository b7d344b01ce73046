"""One KAN layer: every edge (i -> o) carries  scale_base * b(x_i) + scale_sp * sum_m c_m B_m(x_i).

The training path never builds the (batch, out, in) tensor of per-edge activations: the base
function and the G + k spline bases are evaluated once per input, laid side by side as
(batch, in * (1 + G + k)) features, and contracted with all edges' weights in one matrix product.
On a uniform grid only k + 1 bases are non-zero at a point, and they are computed locally.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from intelligible.core.errors import ConfigError, DataError
from intelligible.kan import _kernels
from intelligible.kan.spline import (
    bspline_basis,
    local_uniform_basis,
    scatter_dense,
    uniform_features,
    uniform_grid,
)

BASE_FUNCTIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "silu": F.silu,
    "identity": lambda x: x,
    "zero": torch.zeros_like,
}


INITS = ("coefficients", "pykan")


def _initial_coefficients(
    grid: Tensor, k: int, out_dim: int, noise_scale: float, generator: torch.Generator | None, init: str
) -> Tensor:
    """Initial spline coefficients (in, G + k, out), small uniform noise.

    "coefficients": the noise is drawn on the coefficients, U(-1/2, 1/2) * noise_scale / G each.
    "pykan": pykan's initialisation. The noise is drawn at the G + 1 grid points and the coefficients
    are the minimum-norm spline through it; drawn in pykan's order, the same seed in the same default
    dtype gives pykan's own starting network. Its coefficients are larger (std 0.024 against 0.017 at
    noise_scale 0.3) and its curves rougher; see docs/kan.md for what each start does to accuracy
    and to symbolic recovery."""
    in_dim, n_intervals = grid.shape[0], grid.shape[1] - 2 * k - 1
    if init == "coefficients":
        return (
            (torch.rand(in_dim, n_intervals + k, out_dim, generator=generator) - 0.5)
            * noise_scale
            / n_intervals
        )
    noise = torch.rand(n_intervals + 1, in_dim, out_dim, generator=generator)  # pykan's layout
    noise = ((noise - 0.5) * noise_scale / n_intervals).permute(1, 0, 2)
    points = grid[:, k : grid.shape[1] - k].T.contiguous()  # (G + 1, in): the grid points
    basis = bspline_basis(points.double(), grid.double(), k).permute(1, 0, 2)  # (in, G + 1, G + k)
    # more coefficients than points: the pseudo-inverse picks the minimum-norm interpolant
    return (torch.linalg.pinv(basis) @ noise.double()).to(noise.dtype)


class KANLayer(nn.Module):
    """A layer of in_dim x out_dim learnable edge functions on per-input B-spline grids."""

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        grid: int = 5,
        k: int = 3,
        *,
        base: str = "silu",
        grid_range: tuple[float, float] = (-1.0, 1.0),
        noise_scale: float = 0.5,
        scale_base_mu: float = 0.0,
        scale_base_sigma: float = 1.0,
        scale_sp: float = 1.0,
        generator: torch.Generator | None = None,
        init: str = "coefficients",
    ) -> None:
        super().__init__()
        if init not in INITS:
            raise ConfigError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
        for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("grid", grid), ("k", k)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if base not in BASE_FUNCTIONS:
            raise ConfigError(f"unknown base function {base!r}; valid: {', '.join(BASE_FUNCTIONS)}")
        low, high = float(grid_range[0]), float(grid_range[1])
        if not low < high:
            raise ConfigError(f"grid_range must be increasing, got {grid_range!r}")
        self.in_dim, self.out_dim, self.n_intervals, self.k, self.base = in_dim, out_dim, grid, k, base
        lower = torch.full((in_dim,), low)
        upper = torch.full((in_dim,), high)
        self.register_buffer("grid", uniform_grid(lower, upper, grid, k))
        self.register_buffer("mask", torch.ones(in_dim, out_dim))
        # uniform grids take the fast local path; a data-adapted grid switches to Cox-de Boor
        self.uniform = True
        # the fast path's hand-written backward is first-order only; PDE losses need `fast_backward=False`
        self.fast_backward = True
        self.coef = nn.Parameter(_initial_coefficients(self.grid, k, out_dim, noise_scale, generator, init))
        spread = (torch.rand(in_dim, out_dim, generator=generator) * 2 - 1) / in_dim**0.5
        self.scale_base = nn.Parameter(scale_base_mu / in_dim**0.5 + scale_base_sigma * spread)
        self.scale_sp = nn.Parameter(torch.full((in_dim, out_dim), scale_sp / in_dim**0.5))
        # symbolic edges: c * f(a * x + b) + d replaces the spline where sym_mask is 1
        self.register_buffer("sym_mask", torch.zeros(in_dim, out_dim))
        self.sym_params = nn.Parameter(torch.zeros(in_dim, out_dim, 4))
        self.sym_names = [["0"] * out_dim for _ in range(in_dim)]

    @property
    def n_bases(self) -> int:
        return self.n_intervals + self.k

    def _check(self, x: Tensor) -> Tensor:
        """`x` checked for shape and cast to the weights' dtype (outputs always have the layer's dtype)."""
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.in_dim:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise DataError(f"expected input of shape (batch, {self.in_dim}), got {shape}")
        if x.is_complex():
            raise DataError(f"expected real input, got a {x.dtype} tensor")
        return x.to(self.coef.dtype)

    def basis(self, x: Tensor) -> Tensor:
        """Spline basis values (batch, in, G + k) of the layer's grid at x."""
        if self.uniform:
            lower = self.grid[:, self.k]
            h = self.grid[:, self.k + 1] - lower
            values, first, _ = local_uniform_basis(x, lower, h, self.n_intervals, self.k)
            return scatter_dense(values, first, self.n_bases)
        return bspline_basis(x, self.grid, self.k)

    def edge_weights(self) -> Tensor:
        """All edges' weights as one (in * (1 + G + k), out) matrix: base scale then spline coefficients."""
        numeric = self.mask * (1 - self.sym_mask)
        base = (self.scale_base * numeric).unsqueeze(1)
        spline = self.coef * (self.scale_sp * numeric).unsqueeze(1)
        return torch.cat([base, spline], dim=1).reshape(-1, self.out_dim)

    def features(self, x: Tensor) -> Tensor:
        """(batch, in, 1 + G + k): base function value, then every spline basis value."""
        if self.uniform and self.fast_backward:
            lower = self.grid[:, self.k]
            h = self.grid[:, self.k + 1] - lower
            return uniform_features(x, lower, h, self.n_intervals, self.k, self.base)
        return torch.cat(
            [BASE_FUNCTIONS[self.base](x).unsqueeze(-1), bspline_basis(x, self.grid, self.k)], dim=-1
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self._check(x)
        if self.fast_backward and _kernels.supported(x):
            weights = self.edge_weights().view(self.in_dim, self.n_bases + 1, self.out_dim)
            out = _kernels.fused_layer(x, weights, self.grid, self.k, self.base, uniform=self.uniform)
        else:
            out = self.features(x).reshape(x.shape[0], -1) @ self.edge_weights()
        if bool(self.sym_mask.any()):
            out = out + self.symbolic_edges(x).sum(dim=-1)
        return out

    def symbolic_edges(self, x: Tensor) -> Tensor:
        """Outputs (batch, out, in) of the symbolic edges (zero elsewhere), one kernel per function used."""
        from intelligible.symbolic.library import get_function  # symbolic is optional for pure spline use

        result = x.new_zeros(x.shape[0], self.out_dim, self.in_dim)
        active = self.sym_mask * self.mask
        edges = torch.nonzero(active > 0)
        by_name: dict[str, list[tuple[int, int]]] = {}
        for i, o in edges.tolist():
            by_name.setdefault(self.sym_names[i][o], []).append((i, o))
        for name, pairs in by_name.items():
            ii = torch.tensor([p[0] for p in pairs])
            oo = torch.tensor([p[1] for p in pairs])
            a, b, c, d = self.sym_params[ii, oo].unbind(-1)
            values = c * get_function(name).torch_fn(a * x[:, ii] + b) + d
            result = result.index_put(
                (torch.arange(x.shape[0])[:, None], oo[None], ii[None]), values * active[ii, oo]
            )
        return result

    def numeric_edge_activations(self, x: Tensor) -> Tensor:
        """Per-edge outputs (batch, out, in) of the spline edges only (symbolic edges give zero)."""
        x = self._check(x)
        spline = torch.einsum("bim,imo->boi", self.basis(x), self.coef)
        base = BASE_FUNCTIONS[self.base](x).unsqueeze(1)
        return (self.scale_base.T * base + self.scale_sp.T * spline) * (self.mask * (1 - self.sym_mask)).T

    def edge_activations(self, x: Tensor) -> Tensor:
        """Per-edge outputs (batch, out, in); only for inspection, plotting and regularisation."""
        x = self._check(x)
        acts = self.numeric_edge_activations(x)
        if bool(self.sym_mask.any()):
            acts = acts + self.symbolic_edges(x)
        return acts

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}, grid={self.n_intervals}, k={self.k}, base={self.base!r}"
