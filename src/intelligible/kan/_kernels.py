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

from intelligible.kan.spline import refuse_second_order

try:
    from numba import get_num_threads, njit, prange

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
        # uniform knots: the span by division, no search (-1 outside the knots)
        pos = (x - t[0]) / (t[1] - t[0])
        if not (pos >= 0.0 and pos < n - 1):
            return -1
        return int(np.floor(pos))

    @njit(cache=True, inline="always")
    def _bases(t, n, x, k, uniform, values, lower, left, right):  # noqa: ANN001, ANN202
        # span s (or -1 outside the knots) with values/lower filled as in _local
        if uniform:
            s = _uniform_span(t, n, x)
            if s >= 0:
                _local(t, n, s, x, k, values, lower, left, right)
            return s
        s = _span(t, n, x)
        if s >= 0:
            _local(t, n, s, x, k, values, lower, left, right)
        return s

    @njit(cache=True, inline="always")
    def _base_value(x, sig, base_kind, zero):  # noqa: ANN001, ANN202
        # silu(x) = x sigmoid(x); sigmoid comes from torch's vectorised exp
        if base_kind == 0:
            return x * sig
        if base_kind == 1:
            return x
        return zero

    @njit(cache=True, inline="always")
    def _base_derivative(x, sig, base_kind, zero, one):  # noqa: ANN001, ANN202
        if base_kind == 0:
            return sig * (one + x * (one - sig))
        if base_kind == 1:
            return one
        return zero

    @njit(cache=True, fastmath=True, error_model="numpy", inline="always")
    def _row_bases(x, b, grids, k, uniform, t0, inv_h, cst, spans, vals, lows, values, lower, left, right):  # noqa: ANN001, ANN202, E501
        # phase A for one row: span and non-zero basis values of every input, stored by input
        # (vals[m, i], lows[m, i]) so that the uniform cubic case is one vectorisable loop
        n_in = x.shape[1]
        n = grids.shape[1]
        if uniform and k == 3:
            # constants typed like x (float literals would turn float32 math into float64, half the lanes)
            one, sixth, half, two, three, four, six, zero = (
                cst[0],
                cst[1],
                cst[2],
                cst[3],
                cst[4],
                cst[5],
                cst[6],
                cst[7],
            )
            limit = cst[8]
            for i in range(n_in):
                pos = (x[b, i] - t0[i]) * inv_h[i]
                fl = np.floor(pos)
                u = pos - fl
                v = one - u
                u2 = u * u
                u3 = u2 * u
                vals[0, i] = v * v * v * sixth
                vals[1, i] = (three * u3 - six * u2 + four) * sixth
                vals[2, i] = (three * (u2 + u - u3) + one) * sixth
                vals[3, i] = u3 * sixth
                lows[0, i] = v * v * half
                lows[1, i] = (two * (u - u2) + one) * half
                lows[2, i] = u2 * half
                spans[i] = np.int64(fl) if (pos >= zero and pos < limit) else -1
            return
        for i in range(n_in):
            s = _bases(grids[i], n, x[b, i], k, uniform, values, lower, left, right)
            spans[i] = s
            if s >= 0:
                for m in range(k + 1):
                    vals[m, i] = values[m]
                for m in range(k):
                    lows[m, i] = lower[m]

    @njit(cache=True, inline="always")
    def _cubic_constants(dtype, n):  # noqa: ANN001, ANN202
        cst = np.empty(9, dtype=dtype)
        cst[0], cst[1], cst[2], cst[3], cst[4], cst[5], cst[6], cst[7], cst[8] = (
            1,
            1 / 6,
            0.5,
            2,
            3,
            4,
            6,
            0,
            n - 1,
        )
        return cst

    @njit(cache=True, inline="always")
    def _origin_and_scale(grids):  # noqa: ANN001, ANN202
        # first knot and 1 / spacing per input, for the uniform span computation
        t0 = grids[:, 0].copy()
        inv_h = 1.0 / (grids[:, 1] - grids[:, 0])
        return t0, inv_h.astype(grids.dtype)

    @njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
    def _layer_forward(x, sig, grids, k, uniform, base_kind, weights, out):  # noqa: ANN001, ANN202
        batch, n_in = x.shape
        n = grids.shape[1]
        n_bases = n - k - 1
        n_out = weights.shape[2]
        t0, inv_h = _origin_and_scale(grids)
        cst = _cubic_constants(x.dtype, grids.shape[1])
        n_chunks = min(batch, 64)
        for chunk in prange(n_chunks):
            values = np.empty(k + 1, dtype=x.dtype)
            lower = np.empty(k + 1, dtype=x.dtype)
            left = np.empty(k + 1, dtype=x.dtype)
            right = np.empty(k + 1, dtype=x.dtype)
            spans = np.empty(n_in, dtype=np.int64)
            vals = np.empty((k + 1, n_in), dtype=x.dtype)
            lows = np.empty((k + 1, n_in), dtype=x.dtype)
            acc = np.empty(n_out, dtype=x.dtype)
            # typed constants: a Python float literal would promote float32 arithmetic to float64
            # and stop the output loops from vectorising
            constants = np.zeros(2, dtype=x.dtype)
            zero = constants[0]
            for b in range(chunk * batch // n_chunks, (chunk + 1) * batch // n_chunks):
                _row_bases(
                    x, b, grids, k, uniform, t0, inv_h, cst, spans, vals, lows, values, lower, left, right
                )
                if n_out == 1:
                    # a single output (the last layer): scalar code, no per-input loop over outputs
                    total = zero
                    for i in range(n_in):
                        w1 = weights[i, :, 0]
                        total += _base_value(x[b, i], sig[b, i], base_kind, zero) * w1[0]
                        s = spans[i]
                        if s >= 0:
                            for m in range(k + 1):
                                index = s - k + m
                                if index >= 0 and index < n_bases:
                                    total += vals[m, i] * w1[1 + index]
                    out[b, 0] = total
                    continue
                acc[:] = 0.0
                for i in range(n_in):
                    w = weights[i]
                    bv = _base_value(x[b, i], sig[b, i], base_kind, zero)
                    s = spans[i]
                    first = s - k
                    if k == 3 and s >= 0 and first >= 0 and s < n_bases:
                        # the common case in one sweep over the output row: base + 4 bases
                        a0, a1, a2, a3 = vals[0, i], vals[1, i], vals[2, i], vals[3, i]
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
                            a = vals[m, i]
                            for o in range(n_out):
                                acc[o] += a * w[1 + index, o]
                for o in range(n_out):
                    out[b, o] = acc[o]

    @njit(parallel=True, cache=True, fastmath=True, error_model="numpy")
    def _layer_backward(
        x, sig, grids, k, uniform, base_kind, weights, grad, need_x, n_threads, grad_x, grad_w
    ):  # noqa: ANN001, ANN202, E501
        batch, n_in = x.shape
        n = grids.shape[1]
        n_bases = n - k - 1
        n_out = weights.shape[2]
        t0, inv_h = _origin_and_scale(grids)
        cst = _cubic_constants(x.dtype, grids.shape[1])
        # k / (t[j+k] - t[j]) per input, so the loops below have no division
        ratio = np.zeros((n_in, n_bases + 1), dtype=x.dtype)
        if k > 0:
            for i in range(n_in):
                for j in range(n_bases + 1):
                    ratio[i, j] = k / (grids[i, j + k] - grids[i, j])
        # rows are split over threads; each thread sums its weight gradient privately, then they add up
        n_chunks = max(1, min(batch, n_threads))
        partial = np.zeros((n_chunks,) + weights.shape, dtype=x.dtype)
        for chunk in prange(n_chunks):
            values = np.empty(k + 1, dtype=x.dtype)
            lower = np.empty(k + 1, dtype=x.dtype)
            left = np.empty(k + 1, dtype=x.dtype)
            right = np.empty(k + 1, dtype=x.dtype)
            spans = np.empty(n_in, dtype=np.int64)
            vals = np.empty((k + 1, n_in), dtype=x.dtype)
            lows = np.empty((k + 1, n_in), dtype=x.dtype)
            constants = np.zeros(2, dtype=x.dtype)
            constants[1] = 1
            zero, one = constants[0], constants[1]
            gw = partial[chunk]
            for b in range(chunk * batch // n_chunks, (chunk + 1) * batch // n_chunks):
                _row_bases(
                    x, b, grids, k, uniform, t0, inv_h, cst, spans, vals, lows, values, lower, left, right
                )
                g = grad[b]
                if n_out == 1:
                    # a single output (the last layer): scalar code, no loops over outputs
                    g0 = g[0]
                    for i in range(n_in):
                        w1 = weights[i, :, 0]
                        gw1 = gw[i, :, 0]
                        xv = x[b, i]
                        gw1[0] += _base_value(xv, sig[b, i], base_kind, zero) * g0
                        total = _base_derivative(xv, sig[b, i], base_kind, zero, one) * w1[0]
                        s = spans[i]
                        if s >= 0:
                            for m in range(k + 1):
                                index = s - k + m
                                if index < 0 or index >= n_bases:
                                    continue
                                gw1[1 + index] += vals[m, i] * g0
                                if k > 0:
                                    d = zero
                                    if m >= 1:
                                        d += lows[m - 1, i] * ratio[i, index]
                                    if m < k:
                                        d -= lows[m, i] * ratio[i, index + 1]
                                    total += d * w1[1 + index]
                        if need_x:
                            grad_x[b, i] = total * g0
                    continue
                for i in range(n_in):
                    w = weights[i]
                    xv = x[b, i]
                    bv = _base_value(xv, sig[b, i], base_kind, zero)
                    dot = zero
                    row = gw[i, 0]
                    for o in range(n_out):
                        row[o] += bv * g[o]
                        dot += g[o] * w[0, o]
                    total = _base_derivative(xv, sig[b, i], base_kind, zero, one) * dot
                    s = spans[i]
                    if s < 0:
                        if need_x:
                            grad_x[b, i] = total
                        continue
                    first = s - k
                    for m in range(k + 1):
                        index = first + m
                        if index < 0 or index >= n_bases:
                            continue
                        a = vals[m, i]
                        row = gw[i, 1 + index]
                        if not need_x:
                            for o in range(n_out):
                                row[o] += a * g[o]
                            continue
                        dot = zero
                        for o in range(n_out):
                            row[o] += a * g[o]
                            dot += g[o] * w[1 + index, o]
                        if k > 0:
                            # dB_index/dx = k (B_{index,k-1} / (t_{index+k} - t_index) - B_{index+1,k-1} / (...))
                            d = zero
                            if m >= 1:
                                d += lows[m - 1, i] * ratio[i, index]
                            if m < k:
                                d -= lows[m, i] * ratio[i, index + 1]
                            total += d * dot
                    if need_x:
                        grad_x[b, i] = total
        # the sum over threads is small; a serial loop avoids waking the thread pool a second time
        for i in range(n_in):
            grad_w[i] = partial[0, i]
            for chunk in range(1, n_chunks):
                grad_w[i] += partial[chunk, i]


def _sigmoid(x: Tensor, base_kind: int) -> Tensor:
    # only silu needs it; the other bases get a dummy of the right shape
    return torch.sigmoid(x) if base_kind == 0 else x


class FusedLayer(torch.autograd.Function):
    """out (batch, out) of a KAN layer with weights (in, 1 + G + k, out): [base scale, spline coefs]."""

    @staticmethod
    def forward(  # noqa: ANN001
        ctx, x: Tensor, weights: Tensor, grids: Tensor, k: int, uniform: bool, base_kind: int
    ) -> Tensor:
        x_c = x.detach().contiguous()
        w_c = weights.detach().contiguous()
        g_c = grids.detach().to(x.dtype).contiguous()
        sig = _sigmoid(x_c, base_kind)
        out = torch.empty(x.shape[0], weights.shape[2], dtype=x.dtype)
        _layer_forward(
            x_c.numpy(), sig.numpy(), g_c.numpy(), k, uniform, base_kind,
            w_c.numpy(), out.numpy(),
        )  # fmt: skip
        ctx.save_for_backward(x_c, sig, w_c, g_c)
        ctx.k, ctx.uniform, ctx.base_kind = k, uniform, base_kind
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205
        refuse_second_order()
        x, sig, w, grids = ctx.saved_tensors
        need_x = bool(ctx.needs_input_grad[0])
        grad_x = torch.empty_like(x) if need_x else x.new_empty(1, 1)
        grad_w = torch.empty_like(w)
        _layer_backward(
            x.numpy(), sig.numpy(), grids.numpy(), ctx.k, ctx.uniform, ctx.base_kind, w.numpy(), grad.contiguous().numpy(), need_x, get_num_threads(), grad_x.numpy(), grad_w.numpy(),
        )  # fmt: skip
        return (grad_x if need_x else None), grad_w, None, None, None, None


def fused_layer(
    x: Tensor, weights: Tensor, grids: Tensor, k: int, base: str = "silu", uniform: bool = False
) -> Tensor:
    """A KAN layer's output for x (batch, in), weights (in, 1 + G + k, out), knots grids (in, G + 1 + 2k).

    uniform=True promises equally spaced knots per input (span by division, closed form for k = 3).
    """
    return FusedLayer.apply(x, weights, grids, k, bool(uniform), BASE_KINDS[base])


def supported(x: Tensor) -> bool:
    """The fused kernels run on CPU float32/float64 tensors."""
    return AVAILABLE and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
