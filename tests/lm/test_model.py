"""LanguageModel against Hugging Face's own forward pass, on tiny random Llama and GPT-2 models."""

from __future__ import annotations

import copy
import random

import pytest
import torch

from intelligible.core.errors import ModelError
from intelligible.lm import LanguageModel, delete_layer, swap_layers

ATOL = 1e-5


def hf_logits(hf_model, ids):
    with torch.no_grad():
        return hf_model(ids, use_cache=False).logits


def ids_for(lm, batch=3, seq=20, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(3, lm.vocab_size, (batch, seq), generator=gen)


def block_list(hf_model):
    return hf_model.model.layers if hasattr(hf_model, "model") else hf_model.transformer.h


def test_forward_matches_hf(tiny_lm):
    ids = ids_for(tiny_lm)
    torch.testing.assert_close(tiny_lm(ids), hf_logits(tiny_lm.hf_model, ids), atol=ATOL, rtol=0)


def test_basic_attributes(tiny_lm):
    assert tiny_lm.n_layers == 4
    assert tiny_lm.d_model == 32
    assert tiny_lm.vocab_size == tiny_lm.hf_model.config.vocab_size
    assert tiny_lm.bos_token_id == 1
    assert "n_layers=4" in repr(tiny_lm)


def test_logit_lens_at_last_layer_equals_logits(tiny_lm):
    ids = ids_for(tiny_lm)
    states = tiny_lm.residual_stream(ids)
    assert states.shape == (tiny_lm.n_layers + 1, 3, 20, tiny_lm.d_model)
    torch.testing.assert_close(
        tiny_lm.logit_lens(states[-1]), hf_logits(tiny_lm.hf_model, ids), atol=ATOL, rtol=0
    )


def test_residual_stream_matches_hf_hidden_states(tiny_lm):
    ids = ids_for(tiny_lm)
    states = tiny_lm.residual_stream(ids)
    with torch.no_grad():
        hidden = tiny_lm.hf_model(ids, output_hidden_states=True, use_cache=False).hidden_states
    # HF's last hidden state is after the final norm; every earlier one is the raw residual
    for layer in range(tiny_lm.n_layers):
        torch.testing.assert_close(states[layer], hidden[layer], atol=ATOL, rtol=0)


@pytest.mark.parametrize("layer", [0, 1, 3])
def test_delete_equals_zeroing_block_outputs(tiny_lm, layer):
    ids = ids_for(tiny_lm)
    block = block_list(tiny_lm.hf_model)[layer]
    attn = block.self_attn if hasattr(block, "self_attn") else block.attn

    def zero_first(module, inputs, output):
        if isinstance(output, tuple):
            return (torch.zeros_like(output[0]), *output[1:])
        return torch.zeros_like(output)

    handles = [attn.register_forward_hook(zero_first), block.mlp.register_forward_hook(zero_first)]
    try:
        expected = hf_logits(tiny_lm.hf_model, ids)
    finally:
        for handle in handles:
            handle.remove()
    edited = tiny_lm(ids, delete_layer(tiny_lm.n_layers, layer))
    torch.testing.assert_close(edited, expected, atol=ATOL, rtol=0)
    assert not torch.allclose(edited, tiny_lm(ids), atol=1e-3)  # the edit really changed something


def _permuted_copy(hf_model, order):
    clone = copy.deepcopy(hf_model)
    blocks = block_list(clone)
    originals = list(blocks)
    for position, layer in enumerate(order):
        blocks[position] = originals[layer]
    return clone


@pytest.mark.parametrize("layer", [0, 2])
def test_swap_equals_model_with_permuted_weights(tiny_lm, layer):
    ids = ids_for(tiny_lm)
    order = swap_layers(tiny_lm.n_layers, layer)
    assert order[layer] == layer + 1 and order[layer + 1] == layer
    expected = hf_logits(_permuted_copy(tiny_lm.hf_model, order), ids)
    torch.testing.assert_close(tiny_lm(ids, order), expected, atol=ATOL, rtol=0)


def test_any_permutation_equals_permuted_weights(tiny_lm):
    order = list(range(tiny_lm.n_layers))
    random.Random(3).shuffle(order)
    ids = ids_for(tiny_lm, seed=2)
    expected = hf_logits(_permuted_copy(tiny_lm.hf_model, order), ids)
    torch.testing.assert_close(tiny_lm(ids, order), expected, atol=ATOL, rtol=0)


def test_edits_do_not_copy_or_change_weights(tiny_lm):
    before = {k: v.clone() for k, v in tiny_lm.hf_model.state_dict().items()}
    pointers = [p.data_ptr() for p in tiny_lm.hf_model.parameters()]
    tiny_lm(ids_for(tiny_lm), [3, 2, 1, 0])
    assert [p.data_ptr() for p in tiny_lm.hf_model.parameters()] == pointers
    for key, value in tiny_lm.hf_model.state_dict().items():
        assert torch.equal(value, before[key])


def test_run_from_cached_prefix_equals_full_run(tiny_lm):
    ids = ids_for(tiny_lm)
    order = delete_layer(tiny_lm.n_layers, 2)
    states = tiny_lm.residual_stream(ids)
    with torch.inference_mode():
        resumed = tiny_lm.unembed(tiny_lm.run_layers(states[2], order[2:]))
    torch.testing.assert_close(resumed, tiny_lm(ids, order), atol=ATOL, rtol=0)


def test_attention_patterns_match_hf_eager(tiny_lm):
    ids = ids_for(tiny_lm, batch=2, seq=12)
    patterns = tiny_lm.attention_patterns(ids)
    eager = copy.deepcopy(tiny_lm.hf_model)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        expected = eager(ids, output_attentions=True, use_cache=False).attentions
    assert sorted(patterns) == list(range(tiny_lm.n_layers))
    for layer, pattern in patterns.items():
        assert pattern.shape == (2, 4, 12, 12)
        torch.testing.assert_close(pattern, expected[layer], atol=ATOL, rtol=0)
        torch.testing.assert_close(pattern.sum(-1), torch.ones(2, 4, 12), atol=1e-5, rtol=0)
        assert torch.all(pattern.triu(diagonal=1) == 0)  # causal


def test_attention_patterns_subset(tiny_lm):
    patterns = tiny_lm.attention_patterns(ids_for(tiny_lm), layers=[1])
    assert list(patterns) == [1]


def test_mlp_output_weights_shape(tiny_lm):
    d_mlp = 64 if tiny_lm.architecture == "llama" else 4 * 32
    assert tiny_lm.mlp_output_weights(0).shape == (d_mlp, 32)
    assert tiny_lm.unembedding_matrix().shape == (tiny_lm.vocab_size, 32)


def test_to_tokens_prepends_bos(tiny_lm):
    ids = tiny_lm.to_tokens("w1 w2 w3")
    assert ids.tolist() == [[1, 4, 5, 6]]
    assert tiny_lm.to_tokens("w1", bos=False).tolist() == [[4]]


@pytest.mark.parametrize(
    ("order", "message"),
    [([0, 1, 9], "layer index 9 is out of range: this model has layers 0..3"), ([-1], "layer index -1")],
)
def test_bad_layer_order(tiny_lm, order, message):
    with pytest.raises(ModelError, match=message):
        tiny_lm(ids_for(tiny_lm), order)


def test_layer_helpers_validate():
    assert delete_layer(4, 1) == [0, 2, 3]
    assert swap_layers(4, 2) == [0, 1, 3, 2]
    with pytest.raises(ModelError, match="out of range"):
        delete_layer(4, 4)
    with pytest.raises(ModelError, match="valid first layers are 0..2"):
        swap_layers(4, 3)


def test_bad_input_shape(tiny_lm):
    with pytest.raises(ModelError, match=r"\(batch, seq\)"):
        tiny_lm(torch.tensor([1, 2, 3]))


def test_unsupported_architecture():
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    from conftest import make_tokenizer

    config = GPTNeoXConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    with pytest.raises(ModelError, match="architecture 'gpt_neox' is not supported"):
        LanguageModel(GPTNeoXForCausalLM(config), make_tokenizer())
