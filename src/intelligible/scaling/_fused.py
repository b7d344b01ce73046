"""The fused CPU trainer for one-hidden-layer MLPs (numba): forward, backward and Adam in one pass.

At width 1,000 on 256 points the torch trainer spends its time writing and reading (points x width)
tensors: pre-activations, activations, their gradients, each a separate memory-bound pass, and a
stack of 50 models is 50 times the traffic, so batching alone gains nothing there. Here each model
is trained by one compiled loop that never builds those tensors: for every hidden unit it computes
the unit's pre-activations over the points (one short row, in L1 cache), adds the unit's
contribution to the outputs, and in the backward recomputes the row instead of reading it back,
accumulating the unit's weight gradients as it goes. The whole model (weights, gradients, Adam
moments: about (inputs + outputs + 1) x width numbers each) stays in cache across steps, Adam is
applied in the same loop. The kernel releases the GIL and `train_parallel` runs slices of the
models on a few Python threads (no numba parallel pool: it would add seconds of compilation and
busy-waiting threads on a shared machine; each thread owns whole models, so none waits for another
within a chunk of steps).

The numbers are those of `mlp.train_batched`'s torch path (and of `train_single`) up to float32
rounding: the same objective alpha * sum_k w_k MSE_k + l1 * sum |W| (the L1 subgradient with
sign(0) = 0, as torch's abs), the same Adam (the update of `torch.optim.Adam`, bias corrections
computed in double precision as there) and the same learning-rate schedule, which the caller
passes as per-step Adam step sizes. Sums run in another order (vectorised), so results agree to
rounding, not bit for bit.

`AVAILABLE` is False when numba is not installed; callers then use the torch path.
"""

from __future__ import annotations

from concurrent.futures import Executor

import numpy as np

try:
    from numba import njit

    AVAILABLE = True
except ImportError:  # pragma: no cover - numba is a dependency; this keeps a broken install usable
    AVAILABLE = False

# activation codes for the kernel
KINDS = {"relu": 0, "silu": 1, "tanh": 2}


def layout(n_inputs: int, width: int, n_outputs: int) -> tuple[int, int, int, int]:
    """Offsets of b1, W2^T, b2 and the total length in a model's flat parameter vector.

    A model is stored as [W1 (inputs x width) | b1 (width) | W2^T (outputs x width) | b2 (outputs)],
    rows along the width, so every inner loop of the kernel runs over contiguous numbers.
    """
    b1 = n_inputs * width
    w2 = b1 + width
    b2 = w2 + n_outputs * width
    return b1, w2, b2, b2 + n_outputs


if AVAILABLE:

    @njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy", inline="always")
    def _hidden(xt, p, j, width, kind, pre, h, sig):  # noqa: ANN001, ANN202
        # unit j's pre-activation and activation at every point (and its sigmoid, for silu)
        n_in, n_pts = xt.shape
        bias = p[n_in * width + j]
        for n in range(n_pts):
            pre[n] = bias
        for i in range(n_in):
            w = p[i * width + j]
            for n in range(n_pts):
                pre[n] += w * xt[i, n]
        one = sig.dtype.type(1)
        if kind == 0:
            zero = sig.dtype.type(0)
            for n in range(n_pts):
                h[n] = max(pre[n], zero)
        elif kind == 1:
            for n in range(n_pts):
                s = one / (one + np.exp(-pre[n]))
                sig[n] = s
                h[n] = pre[n] * s
        else:
            for n in range(n_pts):
                h[n] = np.tanh(pre[n])

    @njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy", inline="always")
    def _activation_grad(kind, pre, h, sig, d):  # noqa: ANN001, ANN202
        # d (the gradient at the activation) becomes the gradient at the pre-activation
        n_pts = pre.shape[0]
        zero = sig.dtype.type(0)
        one = sig.dtype.type(1)
        if kind == 0:
            for n in range(n_pts):
                d[n] = d[n] if pre[n] > zero else zero
        elif kind == 1:
            for n in range(n_pts):
                s = sig[n]
                d[n] *= s * (one + pre[n] * (one - s))
        else:
            for n in range(n_pts):
                d[n] *= one - h[n] * h[n]

    @njit(cache=True, inline="always")
    def _sign(w, zero, one):  # noqa: ANN001, ANN202
        # torch's abs backward: sign(0) = 0, so zero (padded) weights get no L1 pull
        if w > zero:
            return one
        if w < zero:
            return -one
        return zero

    @njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy", inline="always")
    def _forward_one(x, bias, w_in, w_out, kind, out, zero, one):  # noqa: ANN001, ANN202
        # one input, one output: the unit's whole forward in one vectorised loop over the points
        if kind == 0:
            for n in range(x.shape[0]):
                out[n] += max(bias + w_in * x[n], zero) * w_out
        elif kind == 1:
            for n in range(x.shape[0]):
                v = bias + w_in * x[n]
                out[n] += v / (one + np.exp(-v)) * w_out
        else:
            for n in range(x.shape[0]):
                out[n] += np.tanh(bias + w_in * x[n]) * w_out

    @njit(cache=True, fastmath={"reassoc", "contract"}, error_model="numpy", inline="always")
    def _backward_one(x, g, bias, w_in, w_out, kind, zero, one):  # noqa: ANN001, ANN202
        # one input, one output: (dW_out, db, dW_in) of one unit in one loop, nothing stored
        grad_out = zero
        grad_bias = zero
        grad_in = zero
        if kind == 0:
            for n in range(x.shape[0]):
                v = bias + w_in * x[n]
                h = max(v, zero)
                grad_out += h * g[n]
                d = w_out * g[n] if v > zero else zero
                grad_bias += d
                grad_in += x[n] * d
        elif kind == 1:
            for n in range(x.shape[0]):
                v = bias + w_in * x[n]
                s = one / (one + np.exp(-v))
                grad_out += v * s * g[n]
                d = w_out * g[n] * (s * (one + v * (one - s)))
                grad_bias += d
                grad_in += x[n] * d
        else:
            for n in range(x.shape[0]):
                t = np.tanh(bias + w_in * x[n])
                grad_out += t * g[n]
                d = w_out * g[n] * (one - t * t)
                grad_bias += d
                grad_in += x[n] * d
        return grad_out, grad_bias, grad_in

    @njit(nogil=True, cache=True, fastmath={"reassoc", "contract"}, error_model="numpy")
    def train_models(
        xt, yt, params, adam_m, adam_v, widths, width, coef, l1, kind, step_size, root, adam, mse
    ):  # noqa: ANN001, ANN201
        """Train every model for len(step_size) steps, in place; mse[m, s, o] = model m's MSE at step s.

        xt (inputs, points), yt (outputs, points): the data, transposed. params, adam_m, adam_v
        (models, P): flat parameters and Adam moments (see `layout`), float32. widths (models,):
        each model's real hidden units (the rest of the `width` columns are padding and stay zero).
        coef (models, outputs): 2 alpha w_k / points, the gradient of the task loss per residual.
        step_size, root (steps,): Adam's lr / (1 - beta1^t) and sqrt(1 - beta2^t) at each step.
        adam: (1 - beta1, beta2, 1 - beta2, eps).
        """
        n_models, n_params = params.shape
        n_in, n_pts = xt.shape
        n_out = yt.shape[0]
        at_b1 = n_in * width
        at_w2 = at_b1 + width
        at_b2 = at_w2 + n_out * width
        single = n_in == 1 and n_out == 1  # the square task: fused single loops per unit
        for m in range(n_models):
            p = params[m]
            am = adam_m[m]
            av = adam_v[m]
            real = widths[m]
            dtype = params.dtype.type
            zero, one = dtype(0), dtype(1)
            points = dtype(n_pts)
            decay1, beta2, decay2, eps = adam[0], adam[1], adam[2], adam[3]
            grad = np.zeros(n_params, dtype=params.dtype)
            pre = np.empty(n_pts, dtype=params.dtype)
            h = np.empty(n_pts, dtype=params.dtype)
            sig = np.empty(n_pts, dtype=params.dtype)
            d = np.empty(n_pts, dtype=params.dtype)
            out = np.empty((n_out, n_pts), dtype=params.dtype)
            for s in range(step_size.shape[0]):
                # forward: outputs only, unit by unit
                for o in range(n_out):
                    bias = p[at_b2 + o]
                    for n in range(n_pts):
                        out[o, n] = bias
                for j in range(real):
                    if single:
                        _forward_one(xt[0], p[at_b1 + j], p[j], p[at_w2 + j], kind, out[0], zero, one)
                        continue
                    _hidden(xt, p, j, width, kind, pre, h, sig)
                    for o in range(n_out):
                        w = p[at_w2 + o * width + j]
                        for n in range(n_pts):
                            out[o, n] += h[n] * w
                # loss terms and the gradient at the outputs (kept in `out`)
                for o in range(n_out):
                    total = zero
                    bias_grad = zero
                    c = coef[m, o]
                    for n in range(n_pts):
                        r = out[o, n] - yt[o, n]
                        total += r * r
                        g = c * r
                        out[o, n] = g
                        bias_grad += g
                    mse[m, s, o] = total / points
                    grad[at_b2 + o] = bias_grad
                # backward: recompute each unit's row instead of storing (points x width)
                for j in range(real):
                    if single:
                        w_in, w_out = p[j], p[at_w2 + j]
                        g_out, g_bias, g_in = _backward_one(
                            xt[0], out[0], p[at_b1 + j], w_in, w_out, kind, zero, one
                        )
                        grad[at_w2 + j] = g_out + l1 * _sign(w_out, zero, one) if l1 > zero else g_out
                        grad[at_b1 + j] = g_bias
                        grad[j] = g_in + l1 * _sign(w_in, zero, one) if l1 > zero else g_in
                        continue
                    _hidden(xt, p, j, width, kind, pre, h, sig)
                    for n in range(n_pts):
                        d[n] = zero
                    for o in range(n_out):
                        at = at_w2 + o * width + j
                        w = p[at]
                        acc = zero
                        for n in range(n_pts):
                            g = out[o, n]
                            acc += h[n] * g
                            d[n] += w * g
                        grad[at] = acc + l1 * _sign(w, zero, one) if l1 > zero else acc
                    _activation_grad(kind, pre, h, sig, d)
                    acc = zero
                    for n in range(n_pts):
                        acc += d[n]
                    grad[at_b1 + j] = acc
                    for i in range(n_in):
                        at = i * width + j
                        acc = zero
                        for n in range(n_pts):
                            acc += xt[i, n] * d[n]
                        w = p[at]
                        grad[at] = acc + l1 * _sign(w, zero, one) if l1 > zero else acc
                # Adam, as torch.optim.Adam: m.lerp_(g, 1 - beta1); v = beta2 v + (1 - beta2) g^2;
                # p -= step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps). Padding: g = m = v = 0.
                size = step_size[s]
                rt = root[s]
                for k in range(n_params):
                    g = grad[k]
                    mk = am[k] + decay1 * (g - am[k])
                    vk = av[k] * beta2 + decay2 * g * g
                    am[k] = mk
                    av[k] = vk
                    p[k] -= size * (mk / (np.sqrt(vk) / rt + eps))


def split_models(widths: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Contiguous slices of the models with about equal total width (the work), at most `parts`."""
    total = np.cumsum(widths, dtype=np.float64)
    cuts = [0]
    for k in range(1, parts):
        cut = int(np.searchsorted(total, total[-1] * k / parts))
        if cut + 1 > cuts[-1] and cut + 1 < len(widths):
            cuts.append(cut + 1)
    cuts.append(len(widths))
    return list(zip(cuts[:-1], cuts[1:]))


def train_parallel(pool: Executor | None, slices: list[tuple[int, int]], xt: np.ndarray, yt: np.ndarray,
                   params: np.ndarray, adam_m: np.ndarray, adam_v: np.ndarray, widths: np.ndarray, width: int,
                   coef: np.ndarray, l1: np.float32, kind: int, step_size: np.ndarray, root: np.ndarray,
                   adam: np.ndarray, mse: np.ndarray) -> None:  # fmt: skip
    """`train_models` on each slice of the models, on `pool`'s threads (inline without a pool)."""

    def run(part: tuple[int, int]) -> None:
        a, b = part
        train_models(xt, yt, params[a:b], adam_m[a:b], adam_v[a:b], widths[a:b], width, coef[a:b], l1, kind,
                     step_size, root, adam, mse[a:b])  # fmt: skip

    if pool is None or len(slices) == 1:
        for part in slices:
            run(part)
        return
    for future in [pool.submit(run, part) for part in slices]:
        future.result()
