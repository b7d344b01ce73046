"""The authors' small transformer, readable top to bottom, with named sites for probes and edits.

Linear input projection plus learned positional embeddings, then L blocks of single-head causal
attention and a 4H GELU MLP, each added to the residual stream, no LayerNorm, and a linear output.
Every site the paper probes is the output of an `nn.Identity` tap, so ordinary forward hooks read
and write it, exactly as they would on any other torch model:

    inp           embedding (input projection + position)
    attn-l        block l's attention output            attn-res-l  the residual stream after it
    mlp-l         block l's MLP output                  mlp-res-l   the residual stream after it
"""

from __future__ import annotations

import math

import torch
from torch import nn

from intelligible.core.errors import ConfigError

MAX_LAYERS = 64
MAX_HIDDEN = 4096


class CausalSelfAttention(nn.Module):
    """One head of causal self-attention."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(h).chunk(3, dim=-1)
        out = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(out)


class Block(nn.Module):
    """Attention then MLP, each added to the residual stream; the four taps name the sites."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.attn = CausalSelfAttention(hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, 4 * hidden), nn.GELU(), nn.Linear(4 * hidden, hidden))
        self.attn_tap, self.attn_res_tap = nn.Identity(), nn.Identity()
        self.mlp_tap, self.mlp_res_tap = nn.Identity(), nn.Identity()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = self.attn_res_tap(h + self.attn_tap(self.attn(h)))
        return self.mlp_res_tap(h + self.mlp_tap(self.mlp(h)))


class PhysicsTransformer(nn.Module):
    """Next-token transformer on real-valued tokens: (batch, T, d_in) -> (batch, T, d_out).

    `sites()` maps the paper's site names to the modules whose outputs they are.
    """

    def __init__(self, d_in: int, d_out: int, layers: int = 3, hidden: int = 16, max_len: int = 256) -> None:
        super().__init__()
        for name, value, high in (("layers", layers, MAX_LAYERS), ("hidden", hidden, MAX_HIDDEN),
                                  ("d_in", d_in, 4096), ("d_out", d_out, 4096), ("max_len", max_len, 1 << 20)):  # fmt: skip
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
                raise ConfigError(f"{name} must be a whole number from 1 to {high}, got {str(value)[:80]}")
        self.config = {"d_in": d_in, "d_out": d_out, "layers": layers, "hidden": hidden, "max_len": max_len}
        self.inp = nn.Linear(d_in, hidden)
        self.pos = nn.Parameter(torch.randn(max_len, hidden) / math.sqrt(hidden))
        self.inp_tap = nn.Identity()
        self.blocks = nn.ModuleList(Block(hidden) for _ in range(layers))
        self.out = nn.Linear(hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = x.shape[1]
        if t > self.pos.shape[0]:
            raise ConfigError(
                f"sequences of {t} tokens are longer than the model's max_len {self.pos.shape[0]}"
            )
        h = self.inp_tap(self.inp(x) + self.pos[:t])
        for block in self.blocks:
            h = block(h)
        return self.out(h)

    def sites(self) -> dict[str, nn.Module]:
        """Site name -> the module whose output is that site, in forward order."""
        found: dict[str, nn.Module] = {"inp": self.inp_tap}
        for index, block in enumerate(self.blocks):
            found[f"attn-{index}"] = block.attn_tap
            found[f"attn-res-{index}"] = block.attn_res_tap
            found[f"mlp-{index}"] = block.mlp_tap
            found[f"mlp-res-{index}"] = block.mlp_res_tap
        return found
