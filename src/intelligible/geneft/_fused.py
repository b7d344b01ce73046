"""The fused CPU trainer for GenEFT's MLP autoencoders (numba): forward, backward, Adam and the
accuracy evaluation of one model in one compiled loop, the models in parallel.

Why: the torch path (`train._train_torch`) runs each step as ~40 batched tensor operations over
(models, pairs, width) tensors. For the issue's grid (432 models x 450 pairs x 50 units) every
such tensor is ~39 MB, so each elementwise pass (bias, tanh, its backward) streams memory, and
torch's tanh alone costs ~3.5 ns per number (~27% of a step). Here each model is trained by its own
loop whose activations (450 x 50 floats per layer, ~90 kB) stay in the core's L2 cache, the 50 x 50
layers are single-model GEMMs (`np.dot`, i.e. OpenBLAS sgemm, one thread per call), and everything
else (first layer, bias, tanh, the gradients at the pre-activations, the scatter into the
embeddings, Adam) is compiled loops over that cached data. The models are independent, so each
thread takes whole models for a block of steps: no barrier, no Python, between steps.

Layout: a model is one flat float32 vector [embedding (n x d) | W0 (c x h0) | b0 | W1 (w x w) | b1 |
... | W_out (w) | b_out], the layers of `model.init_params` flattened in order (weights are
(fan_in, fan_out), row-major). Models of different depths share one (models, L) array (each
uses its own first L_m entries), so a batch can mix depths without padding layers.

The numbers are those of `train_single` (an nn.Module with torch.optim.Adam) up to float32
rounding, not bit for bit: sums run in another order (BLAS, vectorised loops) and tanh is the
rational approximation `_tanh` (evaluated in double precision: at most one float32 ulp away from
the exact value at the scale of tanh's range, about 5e-8; torch's own tanh is within 3e-8). Adam
follows `torch.optim.Adam`'s single-tensor update operation by operation, with its bias
corrections computed in double precision as there.

`AVAILABLE` is False when numba is not installed; the caller then uses the torch path.
"""

from __future__ import annotations

import numpy as np

try:
    import numba
    import scipy.linalg.cython_blas  # noqa: F401 - the BLAS numba's np.dot calls: loaded now, so a
    from numba import njit, prange  # thread limit set before the first training call reaches it

    AVAILABLE = True
except ImportError:  # pragma: no cover - numba is a dependency; this keeps a broken install usable
    AVAILABLE = False

COMBINER_CODES = {"concat": 0, "difference": 1, "squared-difference": 2}
# contract/reassoc only: no flush-to-zero or NaN assumptions that could change results
FAST = {"reassoc", "contract"}


def layout_size(n: int, embed_dim: int, combined: int, depth: int, width: int) -> int:
    """Length of one model's flat parameter vector."""
    first_out = width if depth > 1 else 1
    size = n * embed_dim + combined * first_out + first_out
    if depth > 1:
        size += (depth - 2) * (width * width + width) + width + 1
    return size


if AVAILABLE:

    @njit(cache=True, fastmath=FAST, error_model="numpy", inline="always")
    def _tanh(value):  # noqa: ANN001, ANN202
        # tanh as an odd/even rational of degree 13/6 on [-9, 9] (the minimax fit Eigen uses for
        # float tanh), evaluated in float64 so that only the approximation error (< 3e-8) and the
        # final rounding remain; beyond |x| = 9 tanh rounds to +-1 in float32.
        x = min(max(np.float64(value), -9.0), 9.0)
        x2 = x * x
        p = x2 * -2.76076847742355e-16 + 2.00018790482477e-13
        p = x2 * p + -8.60467152213735e-11
        p = x2 * p + 5.12229709037114e-08
        p = x2 * p + 1.48572235717979e-05
        p = x2 * p + 6.37261928875436e-04
        p = x2 * p + 4.89352455891786e-03
        q = x2 * 1.19825839466702e-06 + 1.18534705686654e-04
        q = x2 * q + 2.26843463243900e-03
        q = x2 * q + 4.89352518554385e-03
        # tiny inputs: tanh(x) = x to float32 precision, and the ratio's relative error is largest there
        return value if abs(value) < np.float32(4e-4) else np.float32(x * p / q)

    @njit(cache=True, fastmath=FAST, error_model="numpy")
    def tanh_array(values, out):  # noqa: ANN001, ANN201
        """`_tanh` over a 1-d float32 array (for tests)."""
        for i in range(values.shape[0]):
            out[i] = _tanh(values[i])

    @njit(cache=True, fastmath=FAST, error_model="numpy", inline="always")
    def _dot(a, b):  # noqa: ANN001, ANN202
        acc = np.float32(0.0)
        for i in range(a.shape[0]):
            acc += a[i] * b[i]
        return acc

    @njit(cache=True, fastmath=FAST, error_model="numpy", inline="always")
    def _sum(a):  # noqa: ANN001, ANN202
        acc = np.float32(0.0)
        for i in range(a.shape[0]):
            acc += a[i]
        return acc

    @njit(cache=True, fastmath=FAST, error_model="numpy")
    def _tanh_rows(z, p, bias):  # noqa: ANN001, ANN202
        # z[j, :] = tanh(z[j, :] + p[bias + j]) for a (width, count) block
        for j in range(z.shape[0]):
            b = p[bias + j]
            row = z[j]
            for i in range(row.shape[0]):
                row[i] = _tanh(row[i] + b)

    @njit(cache=True, fastmath=FAST, error_model="numpy")
    def _forward(p, n, d, comb, depth, width, pairs, count, x, acts, logits):  # noqa: ANN001, ANN202
        # logits[:count] of one model at `pairs[:count]`. Everything is stored feature-major, so
        # every inner loop runs over the pairs: the combined inputs x[:c, :count] and, flat in
        # acts[l], the tanh activations (width, count) of each hidden layer (kept for the backward)
        c = 2 * d if comb == 0 else d
        h0 = width if depth > 1 else 1
        w0 = n * d
        b0 = w0 + c * h0
        for i in range(count):
            a = pairs[i] // n
            b = pairs[i] % n
            for k in range(d):
                e1 = p[a * d + k]
                e2 = p[b * d + k]
                if comb == 0:
                    x[k, i] = e1
                    x[d + k, i] = e2
                elif comb == 1:
                    x[k, i] = e1 - e2
                else:
                    u = e1 - e2
                    x[k, i] = u * u
        out = logits[:count]
        if depth == 1:
            out[:] = p[b0]
            for k in range(c):
                w = p[w0 + k]
                xk = x[k, :count]
                for i in range(count):
                    out[i] += xk[i] * w
            return
        t = acts[0][: width * count].reshape((width, count))
        for j in range(width):
            row = t[j]
            row[:] = 0.0
            for k in range(c):
                w = p[w0 + k * width + j]
                xk = x[k, :count]
                for i in range(count):
                    row[i] += xk[i] * w
        _tanh_rows(t, p, b0)
        at = b0 + width
        for layer in range(1, depth - 1):
            weight = p[at : at + width * width].reshape((width, width))
            z = acts[layer][: width * count].reshape((width, count))
            np.dot(weight.T, t, z)  # (width_out, count) = W^T (width_in, count)
            _tanh_rows(z, p, at + width * width)
            t = z
            at += width * width + width
        out[:] = p[at + width]
        for j in range(width):
            w = p[at + j]
            row = t[j]
            for i in range(count):
                out[i] += row[i] * w

    @njit(cache=True, fastmath=FAST, error_model="numpy")
    def _tanh_grad(g, t):  # noqa: ANN001, ANN202
        # g *= 1 - t^2 (tanh's backward from its output), over flat blocks
        for q in range(g.shape[0]):
            g[q] *= np.float32(1.0) - t[q] * t[q]

    @njit(cache=True, fastmath=FAST, error_model="numpy")
    def _backward(p, grad, n, d, comb, depth, width, pairs, count, x, acts, gz, work, gx):  # noqa: ANN001, ANN202
        # the gradient of the loss into grad[:L_m], from gz[:count] = dloss/dlogit at the pairs;
        # work (2, width * count): gradients at the hidden pre-activations, gx (c, count): at x
        c = 2 * d if comb == 0 else d
        h0 = width if depth > 1 else 1
        w0 = n * d
        b0 = w0 + c * h0
        g = gz[:count]
        grad[:] = 0.0
        if depth == 1:
            grad[b0] = _sum(g)
            for k in range(c):
                xk = x[k, :count]
                grad[w0 + k] = _dot(xk, g)
                w = p[w0 + k]
                gk = gx[k, :count]
                for i in range(count):
                    gk[i] = g[i] * w
        else:
            at = b0 + width + (depth - 2) * (width * width + width)  # the output layer
            t = acts[depth - 2][: width * count].reshape((width, count))
            grad[at + width] = _sum(g)
            cur = work[0][: width * count].reshape((width, count))
            for j in range(width):
                row = t[j]
                grad[at + j] = _dot(row, g)
                w = p[at + j]
                dst = cur[j]
                for i in range(count):
                    dst[i] = (g[i] * w) * (np.float32(1.0) - row[i] * row[i])
            side = 0
            for layer in range(depth - 2, 0, -1):
                at -= width * width + width
                bias = at + width * width
                for j in range(width):
                    grad[bias + j] = _sum(cur[j])
                below = acts[layer - 1][: width * count].reshape((width, count))
                # dW (width_in, width_out) = below (width_in, count) @ cur^T (count, width_out)
                np.dot(below, cur.T, grad[at:bias].reshape((width, width)))
                nxt = work[1 - side][: width * count].reshape((width, count))
                np.dot(p[at:bias].reshape((width, width)), cur, nxt)  # W (in, out) @ cur (out, count)
                _tanh_grad(work[1 - side][: width * count], acts[layer - 1][: width * count])
                cur = nxt
                side = 1 - side
            for j in range(width):
                grad[b0 + j] = _sum(cur[j])
            for k in range(c):
                xk = x[k, :count]
                gk = gx[k, :count]
                gk[:] = 0.0
                for j in range(width):
                    row = cur[j]
                    grad[w0 + k * width + j] = _dot(xk, row)
                    w = p[w0 + k * width + j]
                    for i in range(count):
                        gk[i] += row[i] * w
        # into the embeddings (gather's backward: a scatter-add over the pairs)
        for i in range(count):
            a = pairs[i] // n
            b = pairs[i] % n
            for k in range(d):
                if comb == 0:
                    grad[a * d + k] += gx[k, i]
                    grad[b * d + k] += gx[d + k, i]
                elif comb == 1:
                    grad[a * d + k] += gx[k, i]
                    grad[b * d + k] -= gx[k, i]
                else:
                    u = p[a * d + k] - p[b * d + k]
                    v = gx[k, i] * (np.float32(2.0) * u)
                    grad[a * d + k] += v
                    grad[b * d + k] -= v

    @njit(cache=True)
    def _adam(p, grad, m1, m2, size, start, stop, decay1, beta2, decay2, root, eps):  # noqa: ANN001, ANN202
        # torch.optim.Adam's single-tensor update, operation by operation (no fused multiply-add):
        # m.lerp_(g, 1 - beta1); v.mul_(beta2).addcmul_(g, g, 1 - beta2);
        # p.addcdiv_(m, v.sqrt() / sqrt(1 - beta2^t) + eps, -lr / (1 - beta1^t))
        for k in range(start, stop):
            g = grad[k]
            mk = m1[k] + decay1 * (g - m1[k])
            vk = m2[k] * beta2 + decay2 * g * g
            m1[k] = mk
            m2[k] = vk
            p[k] = p[k] + -size * (mk / (np.sqrt(vk) / root + eps))

    @njit(parallel=True, cache=True, fastmath=FAST, error_model="numpy")
    def train_block(params, m1, m2, sizes, depths, n, d, comb, width, pairs, counts, ytrain, lr_enc, lr_dec,  # noqa: ANN001, ANN201
                    first, last, bias1, root2, adam, evaluate, labels, masks, losses, right,
                    xs, gxs, actss, works, gzs, logitss, grads):  # fmt: skip
        """Train every model from step `first` to `last` (inclusive), in place, then evaluate if asked.

        params, m1, m2 (models, L): flat parameters and Adam moments; sizes (models,): each model's
        L_m; depths (models,). pairs (models, P) int: training pair indices (i = x1 * n + x2),
        counts (models,): how many are real, ytrain (models, P): their labels. lr_enc, lr_dec
        (models,) float64. bias1, root2 (steps + 1,) float64: 1 - beta1^t and sqrt(1 - beta2^t).
        adam: (1 - beta1, beta2, 1 - beta2, eps) float32. labels (models, n^2), masks (models,
        n^2) bool: for the evaluation. Out: losses (models,) the mean BCE at step `last` (before
        its update), right (models, 2) correct training and held-out pairs. xs ... grads: one
        workspace per thread (indexed by numba's thread id).
        """
        n_models = params.shape[0]
        everything = np.arange(n * n).astype(pairs.dtype)
        decay1, beta2, decay2, eps = adam[0], adam[1], adam[2], adam[3]
        for m in prange(n_models):
            tid = numba.get_thread_id()
            x, gx, acts, work, gz, logits, grad = (
                xs[tid],
                gxs[tid],
                actss[tid],
                works[tid],
                gzs[tid],
                logitss[tid],
                grads[tid],
            )
            p, mo1, mo2 = params[m], m1[m], m2[m]
            depth, count = depths[m], counts[m]
            own = pairs[m]
            scale = np.float32(1.0) / np.float32(count)  # the mean's gradient, as torch's backward
            embed = n * d
            for step in range(first, last + 1):
                _forward(p, n, d, comb, depth, width, own, count, x, acts, logits)
                total = 0.0
                for i in range(count):
                    z = logits[i]
                    y = ytrain[m, i]
                    gz[i] = (np.float32(1.0) / (np.float32(1.0) + np.exp(-z)) - y) * scale
                    if step == last:
                        # torch's formula in float32, (1 - y) z - log_sigmoid(z), so that a small loss
                        # carries the same rounding as train_single's (it cancels for y = 0, z << 0)
                        log_sigmoid = min(z, np.float32(0.0)) - np.log1p(np.exp(-abs(z)))
                        total += (np.float32(1.0) - y) * z - log_sigmoid
                if step == last:
                    losses[m] = total / count
                _backward(p, grad[: sizes[m]], n, d, comb, depth, width, own, count, x, acts, gz, work, gx)
                root = np.float32(root2[step])
                size = np.float32(lr_enc[m] / bias1[step])
                _adam(p, grad, mo1, mo2, size, 0, embed, decay1, beta2, decay2, root, eps)
                size = np.float32(lr_dec[m] / bias1[step])
                _adam(p, grad, mo1, mo2, size, embed, sizes[m], decay1, beta2, decay2, root, eps)
            if evaluate:
                _forward(p, n, d, comb, depth, width, everything, n * n, x, acts, logits)
                good_train, good_test = 0, 0
                for i in range(n * n):
                    correct = (logits[i] > 0) == (labels[m, i] > 0.5)
                    if correct and masks[m, i]:
                        good_train += 1
                    elif correct:
                        good_test += 1
                right[m, 0] = good_train
                right[m, 1] = good_test

    def workspaces(
        threads: int, pairs: int, combined: int, depth: int, width: int, size: int
    ) -> tuple[np.ndarray, ...]:
        """One set of scratch arrays per thread, for `train_block` (pairs: the most any call uses)."""
        hidden = max(depth - 1, 1)
        f = np.float32
        return (np.zeros((threads, combined, pairs), f), np.zeros((threads, combined, pairs), f),
                np.zeros((threads, hidden, width * pairs), f), np.zeros((threads, 2, width * pairs), f),
                np.zeros((threads, pairs), f), np.zeros((threads, pairs), f), np.zeros((threads, size), f))  # fmt: skip
