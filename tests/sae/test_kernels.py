"""The numba kernels give torch's numbers: sparse decode (forward and both gradients), the decoder
gradient projection and row normalisation, in float32 and float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from intelligible.lm.saes import _kernels

pytestmark = pytest.mark.skipif(not _kernels.AVAILABLE, reason="numba is not installed")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sparse_decode_matches_embedding_bag(dtype):
    generator = torch.Generator().manual_seed(0)
    n, k, m, d = 50, 5, 40, 12
    weight = torch.randn(m, d, generator=generator, dtype=dtype)
    # latents repeat across tokens, some values are exactly 0 (ReLU), latent 39 is never used
    indices = torch.randint(0, m - 1, (n, k), generator=generator)
    values = torch.relu(torch.randn(n, k, generator=generator, dtype=dtype))
    grad = torch.randn(n, d, generator=generator, dtype=dtype)
    results = []
    for decode in (
        _kernels.sparse_decode,
        lambda v, i, w: F.embedding_bag(i, w, per_sample_weights=v, mode="sum"),
    ):
        v, w = values.clone().requires_grad_(), weight.clone().requires_grad_()
        out = decode(v, indices, w)
        out.backward(grad)
        results.append((out.detach(), v.grad, w.grad))
    tol = {"atol": 1e-5, "rtol": 1e-5} if dtype == torch.float32 else {"atol": 1e-12, "rtol": 1e-12}
    for ours, reference in zip(results[0], results[1]):
        assert ours.dtype == dtype
        torch.testing.assert_close(ours, reference, **tol)
    assert results[0][2][m - 1].abs().sum() == 0  # an unused latent's row gets an exact zero gradient


def test_sparse_decode_without_weight_gradient():
    weight = torch.randn(8, 3)
    values = torch.rand(4, 2, requires_grad=True)
    out = _kernels.sparse_decode(values, torch.tensor([[0, 1], [2, 3], [4, 5], [6, 7]]), weight)
    out.sum().backward()
    assert weight.grad is None and values.grad.shape == (4, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_projection_and_normalisation_match_torch(dtype):
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(30, 7, generator=generator, dtype=dtype)
    weight[3] = 0  # a dead row stays zero instead of becoming NaN
    grad = torch.randn(30, 7, generator=generator, dtype=dtype)
    expected_w = weight / weight.norm(dim=1, keepdim=True).clamp_min(torch.finfo(dtype).eps)
    _kernels.normalize_rows(weight)
    torch.testing.assert_close(weight, expected_w)
    assert torch.isfinite(weight).all()
    expected_g = grad - (grad * weight).sum(1, keepdim=True) * weight
    _kernels.project_out_parallel(grad, weight)
    torch.testing.assert_close(grad, expected_g)
    assert (grad * weight).sum(1).abs().max() < (1e-5 if dtype == torch.float32 else 1e-12)
