"""B-spline bases for KAN layers.

Two evaluations of the same basis (order k, G intervals, G + k bases per input):

- `bspline_basis`: Cox-de Boor on any (per-input, sorted) knot vector; returns (batch, in, G + k).
- `local_uniform_basis`: for uniform knots, only the k + 1 bases whose support holds x are non-zero,
  and their values follow from the local coordinate u in [0, 1) of x in its interval by the cardinal
  recursion  N_{j-r,d} = (u + r)/d N_{j-r,d-1} + (d + 1 - r - u)/d N_{j-r+1,d-1}.
  It returns those k + 1 values and the index of the first one: O(k^2) work per point instead of
  O(G k), and nothing of size G is built unless asked for (`scatter_dense`).

Knot vectors are "extended": G + 1 knots over the input range plus k more on each side, so each
input has G + 1 + 2k knots and G + k bases.
"""

from __future__ import annotations

import torch
from torch import Tensor


def uniform_grid(lower: Tensor, upper: Tensor, n_intervals: int, k: int) -> Tensor:
    """Extended uniform knots (in, G + 1 + 2k) covering [lower, upper] per input."""
    h = (upper - lower) / n_intervals
    steps = torch.arange(-k, n_intervals + k + 1, dtype=lower.dtype, device=lower.device)
    return lower[:, None] + steps[None, :] * h[:, None]


def bspline_basis(x: Tensor, grid: Tensor, k: int) -> Tensor:
    """Cox-de Boor basis values (batch, in, n_bases) of x (batch, in) on extended knots grid (in, n_knots).

    Half-open intervals: a point exactly on the last knot gets zero, as in scipy's BSpline with
    extrapolate=False at the right end of each basis.
    """
    x = x.unsqueeze(-1)
    knots = grid.unsqueeze(0)
    basis = ((x >= knots[..., :-1]) & (x < knots[..., 1:])).to(x.dtype)
    for d in range(1, k + 1):
        left = (x - knots[..., : -(d + 1)]) / (knots[..., d:-1] - knots[..., : -(d + 1)])
        right = (knots[..., d + 1 :] - x) / (knots[..., d + 1 :] - knots[..., 1:-d])
        basis = left * basis[..., :-1] + right * basis[..., 1:]
    return basis


def local_uniform_basis(
    x: Tensor, lower: Tensor, h: Tensor, n_intervals: int, k: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Non-zero basis values on a uniform extended grid.

    x: (batch, in); lower: (in,) first core knot; h: (in,) knot spacing.
    Returns (values (batch, in, k + 1), first (batch, in) index of the basis of values[..., 0],
    inside (batch, in) bool: x lies within the extended knots). values[..., m] belongs to basis
    first + m; indices outside 0..G+k-1 carry zero values.
    """
    # position in knot units from the first extended knot t_0 = lower - k h
    pos = (x - lower) / h + k
    interval = torch.floor(pos)
    u = pos - interval
    interval = interval.long()
    n_knots = n_intervals + 2 * k + 1
    inside = (interval >= 0) & (interval < n_knots - 1)
    values, _ = _cardinal_values(u, k)  # ordered N_{j-k} .. N_{j}
    first = interval - k
    n_bases = n_intervals + k
    index = first.unsqueeze(-1) + torch.arange(k + 1, device=x.device)
    valid = inside.unsqueeze(-1) & (index >= 0) & (index < n_bases)
    values = values * valid.to(values.dtype)
    return values, first, inside


def scatter_dense(values: Tensor, first: Tensor, n_bases: int) -> Tensor:
    """Dense basis (batch, in, n_bases) from local values (batch, in, k + 1) starting at `first`."""
    k1 = values.shape[-1]
    index = first.unsqueeze(-1) + torch.arange(k1, device=values.device)
    # route out-of-range indices (whose values are zero) to a spare column, then drop it
    index = torch.where((index >= 0) & (index < n_bases), index, torch.full_like(index, n_bases))
    dense = values.new_zeros(*values.shape[:-1], n_bases + 1)
    dense = dense.scatter_add(-1, index, values)
    return dense[..., :n_bases]


def _cardinal_values(u: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Local values of order k and k - 1 (each ordered N_{j-d} .. N_{j}) at local coordinates u."""
    if k == 3:  # the default order, in closed form: 4x fewer kernels than the recursion
        v = 1 - u
        u2 = u * u
        u3 = u2 * u
        cubic = torch.stack([v * v * v, 3 * u3 - 6 * u2 + 4, -3 * u3 + 3 * u2 + 3 * u + 1, u3], dim=-1) / 6
        quadratic = torch.stack([v * v, -2 * u2 + 2 * u + 1, u2], dim=-1) / 2
        return cubic, quadratic
    values = torch.ones_like(u).unsqueeze(-1)
    previous = values
    uu = u.unsqueeze(-1)
    for d in range(1, k + 1):
        previous = values
        r = torch.arange(d, -1, -1, dtype=u.dtype, device=u.device)
        zero = torch.zeros_like(values[..., :1])
        values = (uu + r) / d * torch.cat([zero, values], -1) + (d + 1 - r - uu) / d * torch.cat(
            [values, zero], -1
        )
    return values, previous


def refuse_second_order() -> None:
    """Raise inside a hand-written backward asked for a graph (create_graph=True): such a backward is
    not itself differentiable, so a second derivative through it would be silently wrong."""
    if torch.is_grad_enabled():
        raise RuntimeError(
            "the fast KAN spline path is first-order only; call model.twice_differentiable() "
            "(or set layer.fast_backward = False) before taking second derivatives"
        )


class _UniformFeatures(torch.autograd.Function):
    """[base(x), B_0(x) .. B_{G+k-1}(x)] per input on a uniform grid, with a hand-written backward.

    Autograd through the recursion would keep every intermediate and run many small element-wise
    kernels backwards; here the backward needs only the order k - 1 values, because on unit
    knot spacing dN_{i,k}/du = N_{i,k-1} - N_{i+1,k-1}.
    """

    @staticmethod
    def forward(ctx, x: Tensor, lower: Tensor, h: Tensor, n_intervals: int, k: int, base_kind: int) -> Tensor:  # noqa: ANN001
        n_bases = n_intervals + k
        pos = (x - lower) / h + k
        interval = torch.floor(pos)
        u = pos - interval
        values, lower_order = _cardinal_values(u, k)
        index = (interval.long() - k).unsqueeze(-1) + torch.arange(k + 1, device=x.device)
        valid = (index >= 0) & (index < n_bases)
        # column 0 holds the base function; bases outside the grid add zero to a clamped column
        column = index.clamp(0, n_bases - 1) + 1
        valid_f = valid.to(x.dtype)
        features = x.new_zeros(*x.shape, n_bases + 1)
        features.scatter_add_(-1, column, values * valid_f)
        features[..., 0] = _base(x, base_kind)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(x, h, column, lower_order, valid_f)
        ctx.base_kind = base_kind
        return features

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205
        refuse_second_order()
        if not ctx.needs_input_grad[0]:
            return None, None, None, None, None, None
        x, h, column, lower_order, valid_f = ctx.saved_tensors
        zero = torch.zeros_like(lower_order[..., :1])
        derivative = (torch.cat([zero, lower_order], -1) - torch.cat([lower_order, zero], -1)) * valid_f
        grad_x = (grad.gather(-1, column) * derivative).sum(-1) / h
        grad_x = grad_x + grad[..., 0] * _base_derivative(x, ctx.base_kind)
        return grad_x, None, None, None, None, None


BASE_KINDS = {"silu": 0, "identity": 1, "zero": 2}


def _base(x: Tensor, kind: int) -> Tensor:
    if kind == 0:
        return torch.nn.functional.silu(x)
    return x if kind == 1 else torch.zeros_like(x)


def _base_derivative(x: Tensor, kind: int) -> Tensor:
    if kind == 0:
        s = torch.sigmoid(x)
        return s * (1 + x * (1 - s))
    return torch.ones_like(x) if kind == 1 else torch.zeros_like(x)


def uniform_features(
    x: Tensor, lower: Tensor, h: Tensor, n_intervals: int, k: int, base: str = "silu"
) -> Tensor:
    """(batch, in, 1 + G + k): the base function then every spline basis, on uniform per-input grids."""
    return _UniformFeatures.apply(x, lower, h, n_intervals, k, BASE_KINDS[base])
