"""CPU kernels (numba) for the parts of an SAE step that torch runs as several memory passes.

- `sparse_decode(values, indices, weight)`: sum_j values[b, j] * weight[indices[b, j]], with a
  backward that writes each decoder row's gradient exactly once (pairs counting-sorted by latent,
  parallel over latents: no races, no separate zero fill), where torch's embedding_bag backward
  zero-fills an (M, d) tensor and then scatters into it.
- `project_out_parallel(grad, weight)`: grad_i -= (grad_i . w_i) w_i in one pass over each row
  (torch: a product, a sum and an addcmul, 8 passes over (M, d)).
- `normalize_rows(weight)`: w_i /= |w_i| in one pass per row.

On GPUs, other dtypes, or without numba, the torch formulations run instead (same numbers up to
float rounding; tests compare them).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd.function import once_differentiable

try:
    from numba import njit, prange

    AVAILABLE = True
except ImportError:  # pragma: no cover - numba is a dependency; this keeps a broken install usable
    AVAILABLE = False

_DTYPES = (torch.float32, torch.float64)


if AVAILABLE:

    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def _decode_forward(values, indices, weight, out):  # noqa: ANN001, ANN202
        n, k = values.shape
        d = weight.shape[1]
        for b in prange(n):
            row = out[b]
            row[:] = 0
            for j in range(k):
                v = values[b, j]
                if v != 0:
                    w = weight[indices[b, j]]
                    for c in range(d):
                        row[c] += v * w[c]

    @njit(cache=True)
    def _pairs_by_latent(indices, n_latents):  # noqa: ANN001, ANN202
        # counting sort of the (token, slot) pairs by latent: starts[m]..starts[m+1] index `order`
        flat = indices.ravel()
        starts = np.zeros(n_latents + 1, dtype=np.int64)
        for p in range(flat.size):
            starts[flat[p] + 1] += 1
        for m in range(n_latents):
            starts[m + 1] += starts[m]
        fill = starts[:-1].copy()
        order = np.empty(flat.size, dtype=np.int64)
        for p in range(flat.size):
            m = flat[p]
            order[fill[m]] = p
            fill[m] += 1
        return starts, order

    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def _decode_grad_values(indices, weight, grad, zero, grad_values):  # noqa: ANN001, ANN202
        n, k = indices.shape
        d = weight.shape[1]
        for b in prange(n):
            g = grad[b]
            for j in range(k):
                w = weight[indices[b, j]]
                total = zero  # the array's dtype: a float literal would promote float32 sums to float64
                for c in range(d):
                    total += g[c] * w[c]
                grad_values[b, j] = total

    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def _decode_grad_weight(values, starts, order, grad, grad_weight):  # noqa: ANN001, ANN202
        k = values.shape[1]
        d = grad.shape[1]
        flat_values = values.ravel()
        for m in prange(grad_weight.shape[0]):
            row = grad_weight[m]
            row[:] = 0
            for p in range(starts[m], starts[m + 1]):
                pair = order[p]
                v = flat_values[pair]
                if v != 0:
                    g = grad[pair // k]
                    for c in range(d):
                        row[c] += v * g[c]

    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def _project_out_parallel(grad, weight, zero):  # noqa: ANN001, ANN202
        d = weight.shape[1]
        for m in prange(weight.shape[0]):
            g, w = grad[m], weight[m]
            dot = zero
            for c in range(d):
                dot += g[c] * w[c]
            for c in range(d):
                g[c] -= dot * w[c]

    @njit(parallel=True, cache=True, fastmath={"reassoc", "contract"})
    def _normalize_rows(weight, zero, one, eps):  # noqa: ANN001, ANN202
        d = weight.shape[1]
        for m in prange(weight.shape[0]):
            w = weight[m]
            total = zero
            for c in range(d):
                total += w[c] * w[c]
            scale = one / max(np.sqrt(total), eps)
            for c in range(d):
                w[c] *= scale


def _numba_ok(*tensors: Tensor) -> bool:
    return AVAILABLE and all(t.device.type == "cpu" for t in tensors) and tensors[0].dtype in _DTYPES


def _zero(t: Tensor) -> np.generic:
    return np.zeros((), dtype=t.numpy().dtype)[()]


class _SparseDecode(torch.autograd.Function):
    @staticmethod
    def forward(ctx, values: Tensor, indices: Tensor, weight: Tensor) -> Tensor:  # noqa: ANN001
        values, indices = values.contiguous(), indices.contiguous()
        out = values.new_empty(values.shape[0], weight.shape[1])
        _decode_forward(values.detach().numpy(), indices.numpy(), weight.detach().numpy(), out.numpy())
        ctx.save_for_backward(values, indices, weight)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205
        values, indices, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_values = grad_weight = None
        if ctx.needs_input_grad[0]:
            grad_values = torch.empty_like(values)
            _decode_grad_values(indices.numpy(), weight.detach().numpy(), grad.numpy(), _zero(grad),
                                grad_values.numpy())  # fmt: skip
        if ctx.needs_input_grad[2]:
            grad_weight = torch.empty_like(weight)
            starts, order = _pairs_by_latent(indices.numpy(), weight.shape[0])
            _decode_grad_weight(values.detach().numpy(), starts, order, grad.numpy(), grad_weight.numpy())
        return grad_values, None, grad_weight


def sparse_decode(values: Tensor, indices: Tensor, weight: Tensor) -> Tensor:
    """(batch, d) = sum_j values[:, j] * weight[indices[:, j]] (no bias)."""
    if _numba_ok(values, weight) and values.dtype == weight.dtype and values.shape[0] > 0:
        return _SparseDecode.apply(values, indices, weight)
    return F.embedding_bag(indices, weight, per_sample_weights=values, mode="sum")


@torch.no_grad()
def project_out_parallel(grad: Tensor, weight: Tensor) -> None:
    """In place: remove from each row of `grad` its component along the same row of `weight`."""
    if (
        _numba_ok(grad, weight)
        and grad.dtype == weight.dtype
        and grad.is_contiguous()
        and weight.is_contiguous()
    ):
        _project_out_parallel(grad.numpy(), weight.detach().numpy(), _zero(grad))
        return
    parallel = torch.linalg.vecdot(grad, weight)
    grad.addcmul_(parallel[:, None], weight, value=-1)


@torch.no_grad()
def normalize_rows(weight: Tensor) -> None:
    """In place: scale every row of `weight` to unit norm (rows of norm 0 stay 0)."""
    eps = torch.finfo(weight.dtype).eps
    if _numba_ok(weight) and weight.is_contiguous():
        array = weight.detach().numpy()
        _normalize_rows(array, _zero(weight), array.dtype.type(1), array.dtype.type(eps))
        return
    weight.div_(weight.norm(dim=1, keepdim=True).clamp_min(eps))
