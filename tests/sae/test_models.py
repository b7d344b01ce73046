"""SAE models: Switch dispatch against the masked reference, sparse decode, FLOP counts, losses, errors."""

from __future__ import annotations

import pytest
import torch

from intelligible.core.errors import ConfigError, DataError
from intelligible.sae import Code, ReLUSAE, SwitchSAE, TopKSAE


def _x(n=256, d=16, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("heaviside", [False, True])
def test_switch_dispatch_equals_the_dense_masked_reference(heaviside):
    fast = SwitchSAE(16, 64, k=4, n_experts=4, heaviside=heaviside, seed=0)
    reference = SwitchSAE(16, 64, k=4, n_experts=4, heaviside=heaviside, dense_reference=True, seed=0)
    x = _x()
    with torch.no_grad():  # a non-trivial decoder bias and router centre
        for model in (fast, reference):
            model.b_dec.copy_(x.mean(0))
            model.b_router.copy_(x.median(0).values)
    out_fast, code_fast = fast(x)
    out_ref, code_ref = reference(x)
    torch.testing.assert_close(out_fast, out_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(code_fast.dense(64), code_ref.dense(64), atol=1e-5, rtol=0)
    assert len(set(code_fast.expert.tolist())) == 4  # every expert got tokens: the test exercises dispatch
    fast.loss(x)["loss"].backward()
    reference.loss(x)["loss"].backward()
    for (name, p_fast), p_ref in zip(fast.named_parameters(), reference.parameters()):
        torch.testing.assert_close(p_fast.grad, p_ref.grad, atol=1e-4, rtol=1e-4, msg=name)


def test_sparse_decode_equals_dense_decode():
    model = TopKSAE(16, 64, k=5)
    code = model.encode(_x())
    dense = Code(values=code.dense(64))
    torch.testing.assert_close(model.decode(code), model.decode(dense), atol=1e-5, rtol=0)
    assert code.values.shape == (256, 5) and float(code.l0) <= 5


def test_flop_counts_by_hand():
    d, m, k, e = 576, 16384, 32, 16
    topk = TopKSAE(d, m, k).flops_per_token()
    assert topk["forward"] == 2 * d * m + 2 * k * d
    assert topk["total"] == 3 * (2 * d * m + 2 * k * d)
    switch = SwitchSAE(d, m, k, e).flops_per_token()
    assert switch["forward"] == 2 * d * e + 2 * d * (m // e) + 2 * k * d
    assert switch["backward"] == 2 * switch["forward"]
    # the dense-masked formulation pays for the whole encoder
    assert (
        SwitchSAE(d, m, k, e, dense_reference=True).flops_per_token()["forward"]
        == 2 * d * e + 2 * d * m + 2 * k * d
    )
    assert topk["total"] / switch["total"] > 10  # why Switch SAEs are cheap
    assert ReLUSAE(d, m).flops_per_token()["forward"] == 4 * d * m


def test_load_balance_is_one_at_perfect_balance_and_e_at_collapse():
    model = SwitchSAE(8, 32, k=2, n_experts=4)
    n = 8
    balanced = Code(values=torch.zeros(n, 2), expert=torch.arange(n) % 4, probs=torch.full((n, 4), 0.25))
    assert float(model.load_balance(balanced)) == pytest.approx(1.0)
    collapsed_probs = torch.zeros(n, 4)
    collapsed_probs[:, 0] = 1.0
    collapsed = Code(values=torch.zeros(n, 2), expert=torch.zeros(n, dtype=torch.long), probs=collapsed_probs)
    assert float(model.load_balance(collapsed)) == pytest.approx(4.0)


def test_decoder_rows_are_unit_norm_and_parallel_gradient_is_removed():
    model = SwitchSAE(16, 64, k=4, n_experts=4)
    torch.testing.assert_close(model.W_dec.norm(dim=1), torch.ones(64))
    model.loss(_x())["loss"].backward()
    model.remove_parallel_decoder_grad()
    torch.testing.assert_close((model.W_dec.grad * model.W_dec).sum(1), torch.zeros(64), atol=1e-5, rtol=0)


def test_losses_have_their_terms():
    x = _x()
    relu = ReLUSAE(16, 64, l1_coeff=0.1).loss(x)
    assert float(relu["loss"].detach()) == pytest.approx(
        float(relu["mse"].detach() + 0.1 * relu["sparsity"].detach()), rel=1e-5
    )
    switch = SwitchSAE(16, 64, k=4, n_experts=4, lb_alpha=3.0)
    terms = {key: value.detach() for key, value in switch.loss(x).items()}
    assert float(terms["loss"]) == pytest.approx(
        float(terms["mse"] + 3.0 * 16 * terms["load_balance"]), rel=1e-5
    )
    weighted = ReLUSAE(16, 64, penalty="norm_weighted").loss(x)
    assert float(weighted["sparsity"].detach()) > 0


def test_topk_auxk_uses_dead_latents():
    model = TopKSAE(16, 1024, k=4, dead_after=0).train()
    first = model.loss(_x(n=32))  # after one batch every latent that did not fire counts as dead
    second = model.loss(_x(n=32, seed=1))
    assert float(first["dead"]) > 0 and float(second["auxk"]) > 0
    assert float(second["loss"]) == pytest.approx(float(second["mse"] + second["auxk"] / 32), rel=1e-5)


def test_shared_expert_adds_an_always_on_reconstruction():
    model = SwitchSAE(16, 64, k=4, n_experts=4, shared_expert=8)
    x_hat, _ = model(_x())
    assert x_hat.shape == (256, 16)
    assert model.flops_per_token()["forward"] == 2 * 16 * 4 + 2 * 16 * 16 + 2 * 4 * 16 + 4 * 16 * 8


@pytest.mark.parametrize(
    ("factory", "message"),
    [
        (
            lambda: SwitchSAE(16, 64, k=32, n_experts=4),
            r"k must be an integer in 1..16 \(latents per expert = 64 / 4\), got 32",
        ),
        (
            lambda: SwitchSAE(16, 64, k=4, n_experts=5),
            r"n_experts must be an integer >= 1 that divides n_latents \(64\), got 5",
        ),
        (lambda: TopKSAE(16, 64, k=0), r"k must be an integer in 1..64 \(n_latents\), got 0"),
        (lambda: ReLUSAE(16, 64, penalty="l2"), "penalty must be 'l1' or 'norm_weighted', got 'l2'"),
        (lambda: ReLUSAE(0, 64), "d must be an integer >= 1, got 0"),
    ],
)
def test_bad_config(factory, message):
    with pytest.raises(ConfigError, match=message):
        factory()


def test_bad_activations():
    model = TopKSAE(16, 64, k=4)
    with pytest.raises(DataError, match=r"expected activations of shape \(batch, 16\), got \(8, 12\)"):
        model.encode(torch.zeros(8, 12))
    bad = torch.zeros(8, 16)
    bad[3, 2] = float("nan")
    with pytest.raises(DataError, match="activations contain NaN or inf values"):
        model.loss(bad)
