"""The transformer mixture: data, the batched models, the closed-form ablation, the growth test."""

from __future__ import annotations

import pytest
import torch

from intelligible.core.errors import ConfigError
from intelligible.scaling.experiment import TransformerConfig, transformer_growth
from intelligible.scaling.transformer import BatchedTransformer, MixtureData, subtask_allocation


def test_the_mixture_answers_each_subtask():
    data = MixtureData(("first", "max", "add", "sub"), (1, 1, 1, 1), length=3, base=5)
    tokens, answers, ids = data.sample(200, torch.Generator().manual_seed(0))
    digits = tokens[:, 1:]
    assert torch.equal(tokens[:, 0], ids + 5)
    for k, rule in enumerate(
        (
            lambda d: d[:, 0],
            lambda d: d.max(1).values,
            lambda d: (d[:, 0] + d[:, 1]) % 5,
            lambda d: (d[:, 0] - d[:, 1]) % 5,
        )
    ):
        rows = ids == k
        assert rows.any() and torch.equal(answers[rows], rule(digits[rows]))


def test_narrow_models_are_padded_with_inert_neurons():
    model = BatchedTransformer(
        vocab=10, n_out=7, positions=5, d_model=8, heads=2, models=[(4, 0), (12, 0), (12, 1)]
    )
    assert model.params["w_in"].shape == (3, 8, 12)
    assert model.params["w_in"][0, :, 4:].abs().sum() == 0 and model.params["w_out"][0, 4:].abs().sum() == 0
    # the attention of a seed does not depend on the MLP width
    assert torch.equal(model.params["wq"][0], model.params["wq"][1])
    assert not torch.equal(model.params["wq"][1], model.params["wq"][2])


def test_the_closed_form_effect_equals_ablating_the_neuron_by_hand():
    data = MixtureData(("first", "max"), (1, 1), length=3, base=5)
    model = BatchedTransformer(data.vocab, data.base, 4, d_model=8, heads=2, models=[(6, 0)])
    result = subtask_allocation(model, data, n_eval=64, seed=3, ablation_tol=0.02)
    tokens, _, _ = data.sample(64, torch.Generator().manual_seed(3), subtask=0)
    resid, h = model.hidden(tokens)
    p = model.params
    logits = torch.bmm(resid + torch.baddbmm(p["b_out"], h, p["w_out"]), p["unembed"])
    spread = (logits - logits.mean(-1, keepdim=True)).square().sum(-1).mean().sqrt()
    for j in range(6):
        ablated_h = h.clone()
        ablated_h[..., j] = h[..., j].mean()
        ablated = torch.bmm(resid + torch.baddbmm(p["b_out"], ablated_h, p["w_out"]), p["unembed"])
        change = ablated - logits
        change = change - change.mean(-1, keepdim=True)
        effect = change.square().sum(-1).mean().sqrt() / spread
        torch.testing.assert_close(result["effect"][0, 0, j], effect, rtol=1e-4, atol=1e-6)
    assert torch.equal(result["allocated"], result["effect"] > 0.02)


def test_transformer_growth_trains_and_fits():
    config = TransformerConfig(subtasks=("first", "last"), widths=(4, 8), seeds=(0, 1), d_model=8, steps=200, lr=1e-2,
                               batch=32, n_eval=64)  # fmt: skip
    result = transformer_growth(config, disable_progress=True)
    assert len(result["records"]) == 4
    first = [r["accuracy"][0] for r in result["records"]]
    assert max(first) > 0.5  # copying the first digit is learned within 200 steps
    assert [g["subtask"] for g in result["growth"]] == ["first", "last"]
    for g in result["growth"]:
        assert ("exponent" in g) or ("error" in g)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"subtasks": ()}, "the sweep is empty"),
        ({"subtasks": ("first", "median")}, "unknown subtask 'median'"),
        ({"widths": ()}, "the sweep is empty: --widths"),
        ({"widths": (0, 8)}, "widths must be whole numbers from 1"),
        ({"mix": (1.0,)}, "one positive weight per subtask"),
        ({"heads": 3}, "heads must divide d_model"),
        ({"seeds": ()}, "the sweep is empty: --seeds"),
    ],
)
def test_bad_transformer_configs_are_one_line_errors(changes, message):
    with pytest.raises(ConfigError, match=message):
        TransformerConfig(**changes).validate()
