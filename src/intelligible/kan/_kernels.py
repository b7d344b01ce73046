"""Fused KAN layer kernels (numba): bases and contraction in one pass, no feature tensor.

A KAN layer is out[b, o] = sum_i W[i, 0, o] base(x_bi) + sum_m W[i, 1 + m, o] B_m(x_bi), and only
k + 1 of the G + k bases are non-zero at a point. The dense formulation (features (batch, in, 1+G+k)
times an (in (1+G+k), out) matrix) spends most of its time writing, reading and allocating a feature
tensor that is 70% zeros. Here one compiled loop per input value finds its knot span (by division on
uniform knots, by binary search on data-adapted ones), runs the local Cox-de Boor triangle (closed
form for uniform cubic splines) and adds the k + 2 weighted weight rows into the output row.
The backward recomputes the bases from x (nothing but x is kept between passes), using
dB_{i,k}/dx = k (B_{i,k-1} / (t_{i+k} - t_i) - B_{i+1,k-1} / (t_{i+k+1} - t_{i+1})), and is
parallel over inputs so that each thread owns its rows of the weight gradient.
The base function is evaluated by torch outside the kernels: its vectorised exp is much faster
than a scalar one per element.

`AVAILABLE` is False when numba is not installed; callers then use the torch path.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

try:
    from numba import njit, prange

    AVAILABLE = True
except ImportError:  # pragma: no cover - numba is a dependency; this keeps a broken install usable
    AVAILABLE = False

BASE_KINDS = {"silu": 0, "identity": 1, "zero": 2}


if AVAILABLE:

    @njit(cache=True, fastmath=False, inline="always")
    def _knot(t, i, n):  # noqa: ANN001, ANN202
        # knots beyond either end, extrapolated with the end spacing: only the recursion towards
        # bases that do not exist reads them, so their values never reach an output
        if i < 0:
            return t[0] + i * (t[1] - t[0])
        if i >= n:
            return t[n - 1] + (i - n + 1) * (t[n - 1] - t[n - 2])
        return t[i]

    @njit(cache=True, fastmath=False, inline="always")
    def _span(t, n, x):  # noqa: ANN001, ANN202
        # s with t[s] <= x < t[s + 1], or -1 outside [t[0], t[n-1]) (half-open, as bspline_basis)
        if not (x >= t[0] and x < t[n - 1]):
            return -1
        lo, hi = 0, n - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if t[mid] <= x:
                lo = mid
            else:
                hi = mid
        return lo

    @njit(cache=True, fastmath=False, inline="always")
    def _local(t, n, s, x, k, values, lower, left, right):  # noqa: ANN001, ANN202
        # values[0..k]: bases s-k..s of order k; lower[0..k-1]: bases s-k+1..s of order k-1
        values[0] = 1.0
        for j in range(1, k + 1):
            if j == k:
                for r in range(k):
                    lower[r] = values[r]
            left[j] = x - _knot(t, s + 1 - j, n)
            right[j] = _knot(t, s + j, n) - x
            saved = 0.0
            for r in range(j):
                temp = values[r] / (right[r + 1] + left[j - r])
                values[r] = saved + right[r + 1] * temp
                saved = left[j - r] * temp
            values[j] = saved
        if k == 0:
            lower[0] = 0.0

    @njit(cache=True, inline="always")
    def _uniform_span(t, n, x):  # noqa: ANN001, ANN202
        # uniform knots: the span and the local coordinate u in [0, 1) directly, no search
        h = t[1] - t[0]
        pos = (x - t[0]) / h
        if not (pos >= 0.0 and pos < n - 1):
            return -1, 0.0
        s = int(np.floor(pos))
        return s, pos - s

    @njit(cache=True, inline="always")
    def _cubic(u, values, lower):  # noqa: ANN001, ANN202
        # closed-form cardinal cubic and quadratic B-splines at local coordinate u (uniform knots)
        v = 1.0 - u
        u2 = u * u
        u3 = u2 * u
        values[0] = v * v * v / 6.0
        values[1] = (3.0 * u3 - 6.0 * u2 + 4.0) / 6.0
        values[2] = (-3.0 * u3 + 3.0 * u2 + 3.0 * u + 1.0) / 6.0
        values[3] = u3 / 6.0
        lower[0] = v * v / 2.0
        lower[1] = (-2.0 * u2 + 2.0 * u + 1.0) / 2.0
        lower[2] = u2 / 2.0

    @njit(cache=True, inline="always")
    def _bases(t, n, x, k, uniform, values, lower, left, right):  # noqa: ANN001, ANN202
        # span s (or -1 outside the knots) with values/lower filled as in _local
        if uniform:
            s, u = _uniform_span(t, n, x)
            if s >= 0:
                if k == 3:
                    _cubic(u, values, lower)
                else:
                    _local(t, n, s, x, k, values, lower, left, right)
            return s
        s = _span(t, n, x)
        if s >= 0:
            _local(t, n, s, x, k, values, lower, left, right)
        return s

    @njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
    def _layer_forward(x, base, grids, k, uniform, weights, out):  # noqa: ANN001, ANN202
        batch, n_in = x.shape
        n = grids.shape[1]
        n_bases = n - k - 1
        n_out = weights.shape[2]
        n_chunks = min(batch, 64)
        for chunk in prange(n_chunks):
            values = np.empty(k + 1, dtype=x.dtype)
            lower = np.empty(k + 1, dtype=x.dtype)
            left = np.empty(k + 1, dtype=x.dtype)
            right = np.empty(k + 1, dtype=x.dtype)
            acc = np.empty(n_out, dtype=x.dtype)
            for b in range(chunk * batch // n_chunks, (chunk + 1) * batch // n_chunks):
                acc[:] = 0.0
                for i in range(n_in):
                    w = weights[i]
                    bv = base[b, i]
                    s = _bases(grids[i], n, x[b, i], k, uniform, values, lower, left, right)
                    first = s - k
                    if k == 3 and s >= 0 and first >= 0 and s < n_bases:
                        # the common case in one sweep over the output row: base + 4 bases
                        a0, a1, a2, a3 = values[0], values[1], values[2], values[3]
                        c = first + 1
                        for o in range(n_out):
                            acc[o] += (
                                bv * w[0, o]
                                + a0 * w[c, o]
                                + a1 * w[c + 1, o]
                                + a2 * w[c + 2, o]
                                + a3 * w[c + 3, o]
                            )
                        continue
                    for o in range(n_out):
                        acc[o] += bv * w[0, o]
                    if s < 0:
                        continue
                    for m in range(k + 1):
                        index = first + m
                        if index >= 0 and index < n_bases:
                            a = values[m]
                            for o in range(n_out):
                                acc[o] += a * w[1 + index, o]
                for o in range(n_out):
                    out[b, o] = acc[o]

    @njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
    def _layer_backward(x, base, base_grad, grids, k, uniform, weights, grad, need_x, grad_x, grad_w):  # noqa: ANN001, ANN202, E501
        batch, n_in = x.shape
        n = grids.shape[1]
        n_bases = n - k - 1
        n_out = weights.shape[2]
        for i in prange(n_in):
            values = np.empty(k + 1, dtype=x.dtype)
            lower = np.empty(k + 1, dtype=x.dtype)
            left = np.empty(k + 1, dtype=x.dtype)
            right = np.empty(k + 1, dtype=x.dtype)
            t = grids[i]
            w = weights[i]
            gw = grad_w[i]
            gw[:, :] = 0.0
            for b in range(batch):
                g = grad[b]
                bv = base[b, i]
                for o in range(n_out):
                    gw[0, o] += bv * g[o]
                total = 0.0
                if need_x:
                    dot = 0.0
                    for o in range(n_out):
                        dot += g[o] * w[0, o]
                    total = base_grad[b, i] * dot
                s = _bases(t, n, x[b, i], k, uniform, values, lower, left, right)
                if s >= 0:
                    for m in range(k + 1):
                        index = s - k + m
                        if index < 0 or index >= n_bases:
                            continue
                        a = values[m]
                        row = gw[1 + index]
                        for o in range(n_out):
                            row[o] += a * g[o]
                        if need_x and k > 0:
                            # lower[m - 1] is B_{index, k-1}, lower[m] is B_{index+1, k-1}
                            d = 0.0
                            if m >= 1:
                                d += lower[m - 1] / (t[index + k] - t[index])
                            if m < k:
                                d -= lower[m] / (t[index + k + 1] - t[index + 1])
                            dot = 0.0
                            for o in range(n_out):
                                dot += g[o] * w[1 + index, o]
                            total += k * d * dot
                if need_x:
                    grad_x[b, i] = total


def _base_and_grad(x: Tensor, kind: int, need_grad: bool) -> tuple[Tensor, Tensor | None]:
    if kind == 0:
        sig = torch.sigmoid(x)
        return x * sig, (sig * (1 + x * (1 - sig)) if need_grad else None)
    if kind == 1:
        return x, (torch.ones_like(x) if need_grad else None)
    return torch.zeros_like(x), (torch.zeros_like(x) if need_grad else None)


class FusedLayer(torch.autograd.Function):
    """out (batch, out) of a KAN layer with weights (in, 1 + G + k, out): [base scale, spline coefs]."""

    @staticmethod
    def forward(
        ctx, x: Tensor, weights: Tensor, grids: Tensor, k: int, uniform: bool, base_kind: int
    ) -> Tensor:  # noqa: ANN001, E501
        x_c = x.detach().contiguous()
        w_c = weights.detach().contiguous()
        g_c = grids.detach().to(x.dtype).contiguous()
        base, _ = _base_and_grad(x_c, base_kind, False)
        out = torch.empty(x.shape[0], weights.shape[2], dtype=x.dtype)
        _layer_forward(
            x_c.numpy(), base.contiguous().numpy(), g_c.numpy(), k, uniform, w_c.numpy(), out.numpy()
        )
        ctx.save_for_backward(x_c, w_c, g_c)
        ctx.k, ctx.uniform, ctx.base_kind = k, uniform, base_kind
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205
        if torch.is_grad_enabled():
            # create_graph=True: this backward is not itself differentiable; a second derivative
            # through it would be silently wrong, so refuse
            raise RuntimeError(
                "the fast KAN spline path is first-order only; call model.twice_differentiable() "
                "(or set layer.fast_backward = False) before taking second derivatives"
            )
        x, w, grids = ctx.saved_tensors
        need_x = bool(ctx.needs_input_grad[0])
        base, base_grad = _base_and_grad(x, ctx.base_kind, need_x)
        grad_x = torch.empty_like(x) if need_x else x.new_empty(1, 1)
        grad_w = torch.empty_like(w)
        _layer_backward(
            x.numpy(), base.contiguous().numpy(),
            (base_grad if need_x else x).contiguous().numpy(), grids.numpy(), ctx.k, ctx.uniform,
            w.numpy(), grad.contiguous().numpy(), need_x, grad_x.numpy(), grad_w.numpy(),
        )  # fmt: skip
        return (grad_x if need_x else None), grad_w, None, None, None, None


def fused_layer(
    x: Tensor, weights: Tensor, grids: Tensor, k: int, base: str = "silu", uniform: bool = False
) -> Tensor:  # noqa: E501
    """A KAN layer's output for x (batch, in), weights (in, 1 + G + k, out), knots grids (in, G + 1 + 2k).

    uniform=True promises equally spaced knots per input (span by division, closed form for k = 3).
    """
    return FusedLayer.apply(x, weights, grids, k, bool(uniform), BASE_KINDS[base])


def supported(x: Tensor) -> bool:
    """The fused kernels run on CPU float32/float64 tensors."""
    return AVAILABLE and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
