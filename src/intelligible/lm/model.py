"""A thin, readable forward pass over a Hugging Face causal LM's own modules.

`LanguageModel` re-implements the residual-stream loop of Llama-family and GPT-2 models on top of
the loaded modules (it never copies weights), so that a study can

- read the residual stream after any layer,
- apply the logit lens (final norm + unembedding) to an intermediate residual,
- read attention patterns,
- run the layers in any order: delete layer i, swap i and i+1, any permutation,
- and restart the computation from a cached residual (the layers before an edit are unchanged).

Inputs are unpadded windows of token ids, shape (batch, seq); every position attends causally.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from intelligible.core.errors import ModelError

LLAMA_LIKE = ("llama", "mistral", "qwen2", "qwen3")
GPT2_LIKE = ("gpt2",)
SUPPORTED_ARCHITECTURES = LLAMA_LIKE + GPT2_LIKE


def delete_layer(n_layers: int, layer: int) -> list[int]:
    """Layer order with `layer` removed."""
    _check_layer(n_layers, layer)
    return [i for i in range(n_layers) if i != layer]


def swap_layers(n_layers: int, layer: int) -> list[int]:
    """Layer order with `layer` and `layer + 1` exchanged."""
    if not 0 <= layer < n_layers - 1:
        raise ModelError(
            f"cannot swap layer {layer} with {layer + 1}: valid first layers are 0..{n_layers - 2}"
        )
    order = list(range(n_layers))
    order[layer], order[layer + 1] = order[layer + 1], order[layer]
    return order


def _check_layer(n_layers: int, layer: int) -> None:
    if not isinstance(layer, int) or not 0 <= layer < n_layers:
        raise ModelError(f"layer index {layer} is out of range: this model has layers 0..{n_layers - 1}")


@dataclass
class _Positional:
    """What every block needs about positions: rotary cos/sin (Llama) or nothing (GPT-2)."""

    cos: Tensor | None = None
    sin: Tensor | None = None


def _rotate_half(x: Tensor) -> Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class LanguageModel:
    """A Hugging Face causal LM with residual-stream access and layer-order editing.

    Attributes: `hf_model`, `tokenizer`, `name`, `architecture`, `n_layers`, `d_model`, `n_heads`,
    `vocab_size`, `device`.
    """

    def __init__(self, hf_model: torch.nn.Module, tokenizer: object, name: str = "model") -> None:
        config = hf_model.config
        self.architecture: str = getattr(config, "model_type", "unknown")
        if self.architecture not in SUPPORTED_ARCHITECTURES:
            raise ModelError(
                f"architecture '{self.architecture}' is not supported for layer-level access; "
                f"supported: {', '.join(SUPPORTED_ARCHITECTURES)}"
            )
        self.hf_model = hf_model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self._llama = self.architecture in LLAMA_LIKE
        if self._llama:
            body = hf_model.model
            self.blocks = list(body.layers)
            self._embed = body.embed_tokens
            self._final_norm = body.norm
            self._rotary = body.rotary_emb
            self.n_heads = config.num_attention_heads
            self.n_kv_heads = getattr(config, "num_key_value_heads", None) or self.n_heads
            self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.n_heads
        else:
            body = hf_model.transformer
            self.blocks = list(body.h)
            self._embed = body.wte
            self._pos_embed = body.wpe
            self._final_norm = body.ln_f
            self.n_heads = config.n_head
            self.n_kv_heads = self.n_heads
            self.head_dim = config.n_embd // self.n_heads
        self._unembed = hf_model.get_output_embeddings()
        self.n_layers: int = len(self.blocks)
        self.d_model: int = config.hidden_size if self._llama else config.n_embd
        self.vocab_size: int = self._unembed.weight.shape[0]

    # ------------------------------------------------------------------ basics
    @property
    def device(self) -> torch.device:
        return self._unembed.weight.device

    @property
    def bos_token_id(self) -> int:
        """The id put at the start of every window (BOS, or EOS for models without one, like GPT-2)."""
        tok = self.tokenizer
        for attr in ("bos_token_id", "eos_token_id"):
            value = getattr(tok, attr, None)
            if value is not None:
                return int(value)
        value = self.hf_model.config.bos_token_id
        return int(value) if value is not None else 0

    def to_tokens(self, text: str, *, bos: bool = True) -> Tensor:
        """Token ids of `text` as a (1, seq) tensor, with BOS prepended unless `bos=False`."""
        ids = self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        if bos:
            ids = [self.bos_token_id, *ids]
        return torch.tensor([ids], dtype=torch.long, device=self.device)

    def _check_ids(self, input_ids: Tensor) -> Tensor:
        if not isinstance(input_ids, Tensor) or input_ids.dim() != 2:
            shape = tuple(input_ids.shape) if isinstance(input_ids, Tensor) else type(input_ids).__name__
            raise ModelError(f"input_ids must be a (batch, seq) tensor of token ids, got {shape}")
        return input_ids.to(self.device)

    def _check_order(self, order: Sequence[int]) -> list[int]:
        order = [int(i) for i in order]
        bad = [i for i in order if not 0 <= i < self.n_layers]
        if bad:
            raise ModelError(
                f"layer index {bad[0]} is out of range: this model has layers 0..{self.n_layers - 1}"
            )
        return order

    # ------------------------------------------------------------------ pieces of the forward pass
    def embed(self, input_ids: Tensor) -> Tensor:
        """The residual stream before layer 0, shape (batch, seq, d_model)."""
        input_ids = self._check_ids(input_ids)
        h = self._embed(input_ids)
        if not self._llama:
            positions = torch.arange(input_ids.shape[1], device=input_ids.device)
            h = h + self._pos_embed(positions)[None]
        return h

    def positional(self, h: Tensor) -> _Positional:
        """Per-forward positional data shared by all blocks (computed once, reused by every edit)."""
        if not self._llama:
            return _Positional()
        positions = torch.arange(h.shape[1], device=h.device)[None].expand(h.shape[0], -1)
        cos, sin = self._rotary(h, positions)
        return _Positional(cos=cos[:, None], sin=sin[:, None])

    def _attention(
        self, layer: int, x: Tensor, pos: _Positional, want_pattern: bool
    ) -> tuple[Tensor, Tensor | None]:
        """Causal self-attention of block `layer` on the normalised input x; returns (output, pattern)."""
        batch, seq, _ = x.shape
        block = self.blocks[layer]
        if self._llama:
            attn = block.self_attn
            q = attn.q_proj(x).view(batch, seq, -1, self.head_dim).transpose(1, 2)
            k = attn.k_proj(x).view(batch, seq, -1, self.head_dim).transpose(1, 2)
            v = attn.v_proj(x).view(batch, seq, -1, self.head_dim).transpose(1, 2)
            if hasattr(attn, "q_norm"):  # Qwen3 normalises queries and keys per head
                q, k = attn.q_norm(q), attn.k_norm(k)
            q = q * pos.cos + _rotate_half(q) * pos.sin
            k = k * pos.cos + _rotate_half(k) * pos.sin
            scale = getattr(attn, "scaling", self.head_dim**-0.5)
            out_proj = attn.o_proj
        else:
            attn = block.attn
            q, k, v = attn.c_attn(x).split(self.d_model, dim=2)
            q, k, v = (t.view(batch, seq, self.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
            scale = self.head_dim**-0.5 if getattr(attn, "scale_attn_weights", True) else 1.0
            if getattr(attn, "scale_attn_by_inverse_layer_idx", False):
                # uses the block's own index, so a moved block keeps its behaviour
                scale = scale / float(attn.layer_idx + 1)
            out_proj = attn.c_proj
        if k.shape[1] != q.shape[1]:  # grouped-query attention: share each key/value head
            repeat = q.shape[1] // k.shape[1]
            k = k.repeat_interleave(repeat, dim=1)
            v = v.repeat_interleave(repeat, dim=1)
        pattern = None
        if want_pattern:
            scores = (q @ k.transpose(-1, -2)) * scale
            causal = torch.ones(seq, seq, dtype=torch.bool, device=x.device).tril()
            pattern = scores.masked_fill(~causal, float("-inf")).softmax(dim=-1)
            mixed = pattern @ v
        else:
            mixed = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
        mixed = mixed.transpose(1, 2).reshape(batch, seq, -1)
        return out_proj(mixed), pattern

    def block_forward(
        self, layer: int, h: Tensor, pos: _Positional | None = None, *, return_pattern: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        """Apply block `layer` (its original weights) to residual h; optionally return its attention pattern."""
        pos = pos if pos is not None else self.positional(h)
        block = self.blocks[layer]
        if self._llama:
            attn_out, pattern = self._attention(layer, block.input_layernorm(h), pos, return_pattern)
            h = h + attn_out
            h = h + block.mlp(block.post_attention_layernorm(h))
        else:
            attn_out, pattern = self._attention(layer, block.ln_1(h), pos, return_pattern)
            h = h + attn_out
            h = h + block.mlp(block.ln_2(h))
        return (h, pattern) if return_pattern else h

    def run_layers(self, h: Tensor, order: Sequence[int], pos: _Positional | None = None) -> Tensor:
        """Apply the blocks in `order` (any sequence of layer indices, repeats allowed) to residual h."""
        order = self._check_order(order)
        pos = pos if pos is not None else self.positional(h)
        for layer in order:
            h = self.block_forward(layer, h, pos)
        return h

    def final_norm(self, h: Tensor) -> Tensor:
        return self._final_norm(h)

    def unembed(self, h: Tensor) -> Tensor:
        """Logits from a residual: final norm, then the unembedding (the logit lens for intermediate h)."""
        return self._unembed(self._final_norm(h))

    logit_lens = unembed

    # ------------------------------------------------------------------ whole passes
    @torch.no_grad()
    def forward(self, input_ids: Tensor, layer_order: Sequence[int] | None = None) -> Tensor:
        """Logits (batch, seq, vocab), with the layers run in `layer_order` (default: 0..n_layers-1)."""
        h = self.embed(input_ids)
        order = range(self.n_layers) if layer_order is None else layer_order
        return self.unembed(self.run_layers(h, order))

    __call__ = forward

    @torch.no_grad()
    def residual_stream(self, input_ids: Tensor, layer_order: Sequence[int] | None = None) -> Tensor:
        """Residuals (n_steps + 1, batch, seq, d_model): index 0 is the embedding, index j+1 follows the
        j-th block of the order (the default order gives the residual after every layer)."""
        h = self.embed(input_ids)
        pos = self.positional(h)
        order = list(range(self.n_layers)) if layer_order is None else self._check_order(layer_order)
        states = [h]
        for layer in order:
            h = self.block_forward(layer, h, pos)
            states.append(h)
        return torch.stack(states)

    @torch.no_grad()
    def attention_patterns(self, input_ids: Tensor, layers: Sequence[int] | None = None) -> dict[int, Tensor]:
        """Attention probabilities {layer: (batch, heads, query, key)} of the unedited model."""
        wanted = set(range(self.n_layers) if layers is None else self._check_order(layers))
        h = self.embed(input_ids)
        pos = self.positional(h)
        patterns: dict[int, Tensor] = {}
        for layer in range(max(wanted) + 1):
            if layer in wanted:
                h, patterns[layer] = self.block_forward(layer, h, pos, return_pattern=True)
            else:
                h = self.block_forward(layer, h, pos)
        return patterns

    def mlp_output_weights(self, layer: int) -> Tensor:
        """Output weight vectors of the MLP neurons of `layer`, shape (d_mlp, d_model)."""
        _check_layer(self.n_layers, layer)
        block = self.blocks[layer]
        if self._llama:
            return block.mlp.down_proj.weight.T
        return block.mlp.c_proj.weight  # GPT-2's Conv1D stores (in, out)

    def unembedding_matrix(self) -> Tensor:
        """Unembedding (vocab, d_model) with the final norm's scale folded in (what a neuron writes to)."""
        weight = self._unembed.weight
        scale = getattr(self._final_norm, "weight", None)
        return weight * scale[None] if scale is not None else weight

    def __repr__(self) -> str:
        return (
            f"LanguageModel(name={self.name!r}, architecture={self.architecture!r}, n_layers={self.n_layers}, "
            f"d_model={self.d_model}, vocab_size={self.vocab_size})"
        )
