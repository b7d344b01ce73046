"""SAE save/load, SAELens import/export, LM activations (with a disk cache), evaluation and splicing."""

from __future__ import annotations

import json

import pytest
import torch

from intelligible.core.errors import DataError
from intelligible.lm.text import token_windows
from intelligible.sae import (
    ReLUSAE,
    SwitchSAE,
    TopKSAE,
    collect_activations,
    evaluate,
    load_sae,
    load_saelens,
    save_sae,
    save_saelens,
    spliced_losses,
)
from intelligible.sae.metrics import duplicate_fraction


def _x(n=128, d=16):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize(
    "factory",
    [lambda: ReLUSAE(16, 64, l1_coeff=0.5), lambda: TopKSAE(16, 64, k=4),
     lambda: SwitchSAE(16, 64, k=4, n_experts=4, heaviside=True, shared_expert=4)],
)  # fmt: skip
def test_save_load_round_trip(factory, tmp_path):
    model = factory()
    with torch.no_grad():
        model.b_dec.normal_()
    save_sae(model, tmp_path / "sae")
    loaded = load_sae(tmp_path / "sae")
    assert type(loaded) is type(model) and loaded.config() == model.config()
    torch.testing.assert_close(loaded(_x())[0], model(_x())[0])


@pytest.mark.parametrize("factory", [lambda: ReLUSAE(16, 64), lambda: TopKSAE(16, 64, k=4)])
def test_saelens_round_trip(factory, tmp_path):
    model = factory()
    with torch.no_grad():
        model.b_dec.normal_()
        model.b_enc.normal_()
    save_saelens(model, tmp_path / "lens")
    cfg = json.loads((tmp_path / "lens" / "cfg.json").read_text())
    assert cfg["d_in"] == 16 and cfg["d_sae"] == 64
    loaded = load_saelens(tmp_path / "lens")
    torch.testing.assert_close(loaded(_x())[0], model(_x())[0], atol=1e-5, rtol=0)


def test_saelens_without_b_dec_on_the_input(tmp_path):
    # SAELens SAEs may encode x itself (apply_b_dec_to_input=False); the import folds b_dec into b_enc
    model = TopKSAE(16, 64, k=4)
    with torch.no_grad():
        model.b_dec.normal_()
    save_saelens(model, tmp_path / "lens")
    cfg = json.loads((tmp_path / "lens" / "cfg.json").read_text())
    cfg["apply_b_dec_to_input"] = False
    (tmp_path / "lens" / "cfg.json").write_text(json.dumps(cfg))
    loaded = load_saelens(tmp_path / "lens")
    x = _x()
    expected = (x @ model.W_enc.T + model.b_enc).topk(4).values.relu()
    torch.testing.assert_close(
        loaded.encode(x).values.sort(-1).values, expected.sort(-1).values, atol=1e-5, rtol=0
    )


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match="is not a SAELens SAE folder"):
        load_saelens(tmp_path)
    with pytest.raises(DataError, match="no artifact at"):
        load_sae(tmp_path / "missing")
    (tmp_path / "lens").mkdir()
    (tmp_path / "lens" / "cfg.json").write_text("{broken")
    (tmp_path / "lens" / "sae_weights.safetensors").write_bytes(b"")
    with pytest.raises(DataError, match="cannot read the SAELens SAE"):
        load_saelens(tmp_path / "lens")


def test_evaluate_reports_reconstruction_sparsity_and_experts():
    model = SwitchSAE(16, 64, k=4, n_experts=4)
    result = evaluate(model, _x(512), batch=100)
    assert result["tokens"] == 512 and result["fvu"] > 0 and result["l0"] <= 4
    assert len(result["log10_density"]) == 64 and 0 <= result["dead_fraction"] <= 1
    assert (
        sum(result["expert_load"]) == pytest.approx(1.0)
        and result["expert_entropy"] <= result["expert_entropy_max"]
    )
    # a perfect reconstruction has FVU 0: an identity-like ReLU SAE on non-negative data
    relu = ReLUSAE(4, 4)
    with torch.no_grad():
        relu.W_enc.copy_(torch.eye(4))
        relu.W_dec.copy_(torch.eye(4))
    assert evaluate(relu, torch.rand(64, 4))["fvu"] == pytest.approx(0.0, abs=1e-10)


def test_duplicate_fraction_finds_a_planted_copy():
    model = SwitchSAE(8, 16, k=2, n_experts=2)
    with torch.no_grad():
        model.W_dec[9] = model.W_dec[0]  # latent 9 (expert 1) copies latent 0 (expert 0)
        model.W_dec[1] = model.W_dec[2]  # a copy inside one expert does not count
    assert duplicate_fraction(model) == pytest.approx(2 / 16)


def test_activations_and_splicing_on_a_tiny_lm(tiny_llama_lm, tmp_path):
    from tests.conftest import SAMPLE_TEXT

    lm = tiny_llama_lm
    windows = token_windows(lm.tokenizer, SAMPLE_TEXT, seq_len=8, n_windows=4, bos_token_id=lm.bos_token_id)
    acts = collect_activations(lm, windows, layer=1, cache_dir=tmp_path / "cache")
    assert acts.values.shape == (4 * 7, lm.d_model)  # BOS dropped
    again = collect_activations(lm, windows, layer=1, cache_dir=tmp_path / "cache")
    torch.testing.assert_close(again.values, acts.values)
    normalized = collect_activations(lm, windows, layer=1, normalize=True)
    assert float(normalized.values.norm(dim=1).mean()) == pytest.approx(lm.d_model**0.5, rel=1e-4)
    # an SAE that reconstructs perfectly recovers all of the loss
    perfect = ReLUSAE(lm.d_model, lm.d_model)
    with torch.no_grad():
        perfect.W_enc.copy_(torch.eye(lm.d_model))
        perfect.W_dec.copy_(torch.eye(lm.d_model))
        perfect.b_dec.fill_(-1e3)  # shift into the positive range so ReLU passes everything
    losses = spliced_losses(lm, perfect, windows, layer=1)
    assert losses["delta_ce"] == pytest.approx(0.0, abs=1e-4) and losses["ce_recovered"] == pytest.approx(
        1.0, abs=1e-3
    )
    with pytest.raises(DataError, match="layer must be in 0..3, got 5"):
        collect_activations(lm, windows, layer=5)


def test_spliced_losses_reuse_what_no_sae_changes(tiny_llama_lm):
    from tests.conftest import SAMPLE_TEXT

    lm = tiny_llama_lm
    windows = token_windows(lm.tokenizer, SAMPLE_TEXT, seq_len=12, n_windows=5, bos_token_id=lm.bos_token_id)
    saes = [TopKSAE(lm.d_model, 64, k=4, seed=seed) for seed in (0, 1)] + [ReLUSAE(lm.d_model, 32, seed=2)]
    reference: dict = {}
    for sae in saes:
        alone = spliced_losses(lm, sae, windows, layer=1, scale=2.0, batch_size=2)
        shared = spliced_losses(lm, sae, windows, layer=1, scale=2.0, batch_size=2, reference=reference)
        assert shared == alone
    assert sorted(k for k in reference if k != "key") == [0, 2, 4]
    other_layer = spliced_losses(lm, saes[0], windows, layer=2, batch_size=2, reference=reference)
    assert other_layer == spliced_losses(
        lm, saes[0], windows, layer=2, batch_size=2
    )  # the key changed: recomputed


def test_damaged_activation_cache(tiny_llama_lm, tmp_path):
    from tests.conftest import SAMPLE_TEXT

    lm = tiny_llama_lm
    windows = token_windows(lm.tokenizer, SAMPLE_TEXT, seq_len=8, n_windows=2, bos_token_id=lm.bos_token_id)
    collect_activations(lm, windows, layer=0, cache_dir=tmp_path)
    next(tmp_path.glob("*/shard_00000.safetensors")).write_bytes(b"garbage")
    with pytest.raises(DataError, match="is damaged"):
        collect_activations(lm, windows, layer=0, cache_dir=tmp_path)
