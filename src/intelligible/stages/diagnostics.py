"""Per-layer signals that tell the four stages apart (Lad, Gurnee, Tegmark 2024, sections 4-6).

- local attention: attention mass on the previous 1..5 tokens (detokenisation integrates nearby tokens);
- logit lens: entropy of the next-token distribution read off each layer's residual, and its KL
  divergence from the final distribution (prediction forms late);
- prediction / suppression neurons: MLP neurons whose output weight, read through the unembedding,
  has a heavy-tailed vocabulary profile (excess kurtosis above a threshold) with positive skew
  (promote a few tokens) or negative skew (suppress a few tokens). Counted from the weights alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from intelligible.core.errors import ConfigError
from intelligible.lm.model import LanguageModel
from intelligible.lm.text import iter_batches

MAX_LOOKBACK = 5


@dataclass
class Diagnostics:
    """Per-layer stage signals; list index = layer."""

    n_layers: int
    local_attention: list[list[float]]  # [layer][k-1]: mass on the previous k tokens, k = 1..5
    lens_entropy: list[float]  # nats, logit lens after each layer
    lens_kl_to_final: list[float]  # KL(final || lens) in nats
    lens_top1_agreement: list[float]  # fraction of tokens whose lens top-1 equals the final top-1
    prediction_neurons: list[int]
    suppression_neurons: list[int]
    kurtosis_threshold: float

    def local_attention_at(self, k: int) -> list[float]:
        if not 1 <= k <= MAX_LOOKBACK:
            raise ConfigError(f"lookback k must be in 1..{MAX_LOOKBACK}, got {k}")
        return [row[k - 1] for row in self.local_attention]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Diagnostics:
        return cls(**data)


def local_attention_mass(pattern: Tensor, max_lookback: int = MAX_LOOKBACK) -> list[float]:
    """Mean attention mass on the previous 1..max_lookback tokens.

    pattern: (batch, heads, query, key). Averaged over batch, heads and the query positions
    t >= max_lookback (so every k sees the same positions and never runs off the window).
    """
    seq = pattern.shape[-1]
    if seq <= max_lookback:
        raise ConfigError(f"windows of {seq} tokens are too short for a {max_lookback}-token lookback")
    masses = []
    running = torch.zeros(pattern.shape[:-2] + (seq - max_lookback,), dtype=torch.float64)
    for back in range(1, max_lookback + 1):
        # diagonal at offset -back holds A[t, t - back] for t >= back; keep t >= max_lookback
        diag = torch.diagonal(pattern, offset=-back, dim1=-2, dim2=-1)[..., max_lookback - back :]
        running = running + diag.double().cpu()
        masses.append(running.mean().item())
    return masses


@torch.inference_mode()
def neuron_classes(model: LanguageModel, kurtosis_threshold: float = 10.0) -> tuple[list[int], list[int]]:
    """Count prediction and suppression neurons per layer from the weights.

    For each neuron, the cosine of its output weight with every (final-norm-scaled) unembedding row
    gives a distribution over the vocabulary; excess kurtosis > threshold marks a vocabulary-selective
    neuron, whose skew sign says whether it promotes (+) or suppresses (-) its tokens.
    """
    unembed = model.unembedding_matrix().float()
    unembed = unembed / unembed.norm(dim=1, keepdim=True).clamp_min(1e-12)
    centred = model.architecture == "gpt2"  # LayerNorm removes the mean direction before unembedding
    predict, suppress = [], []
    for layer in range(model.n_layers):
        w_out = model.mlp_output_weights(layer).float()
        if centred:
            w_out = w_out - w_out.mean(dim=1, keepdim=True)
        w_out = w_out / w_out.norm(dim=1, keepdim=True).clamp_min(1e-12)
        n_pred = n_supp = 0
        # 128 neurons at a time: each (neurons, vocab) block stays under glibc's mmap threshold, so
        # blocks reuse heap memory instead of faulting in fresh pages (half the time on SmolLM2);
        # moments come from one centred block and its square, without z, z**3 and z**4 temporaries.
        for chunk in w_out.split(128):
            centred_cos = chunk @ unembed.T  # (neurons, vocab)
            centred_cos -= centred_cos.mean(dim=1, keepdim=True)
            square = centred_cos * centred_cos
            var = square.mean(dim=1).clamp_min(1e-24)
            skew = torch.einsum("nv,nv->n", square, centred_cos) / unembed.shape[0] / var**1.5
            kurt = torch.einsum("nv,nv->n", square, square) / unembed.shape[0] / var**2 - 3.0
            selective = kurt > kurtosis_threshold
            n_pred += int((selective & (skew > 0)).sum())
            n_supp += int((selective & (skew < 0)).sum())
        predict.append(n_pred)
        suppress.append(n_supp)
    return predict, suppress


@torch.inference_mode()
def diagnose(
    model: LanguageModel,
    windows: Tensor,
    *,
    batch_size: int = 4,
    attention_windows: int | None = 8,
    kurtosis_threshold: float = 10.0,
) -> Diagnostics:
    """Compute every per-layer stage signal on `windows` (n_windows, seq_len)."""
    n_layers = model.n_layers
    att_windows = windows if attention_windows is None else windows[:attention_windows]
    local = torch.zeros(n_layers, MAX_LOOKBACK, dtype=torch.float64)
    n_att_batches = 0
    for batch in iter_batches(att_windows, batch_size):
        patterns = model.attention_patterns(batch.to(model.device))
        for layer, pattern in patterns.items():
            local[layer] += torch.tensor(local_attention_mass(pattern), dtype=torch.float64)
        n_att_batches += 1
    local /= max(n_att_batches, 1)

    entropy = torch.zeros(n_layers, dtype=torch.float64)
    kl = torch.zeros(n_layers, dtype=torch.float64)
    agree = torch.zeros(n_layers, dtype=torch.float64)
    tokens = 0
    for batch in iter_batches(windows, batch_size):
        states = model.residual_stream(batch.to(model.device))
        final_logp = model.unembed(states[-1])[:, :-1].reshape(-1, model.vocab_size).float().log_softmax(-1)
        final_p = final_logp.exp()
        final_top = final_logp.argmax(-1)
        final_neg_entropy = (final_p * final_logp).sum(-1)
        for layer in range(n_layers):
            logp = (
                model.unembed(states[layer + 1])[:, :-1].reshape(-1, model.vocab_size).float().log_softmax(-1)
            )
            entropy[layer] += (-(logp.exp() * logp).sum(-1)).double().sum()
            kl[layer] += (final_neg_entropy - (final_p * logp).sum(-1)).double().sum()
            agree[layer] += (logp.argmax(-1) == final_top).double().sum()
        tokens += final_logp.shape[0]
    predict, suppress = neuron_classes(model, kurtosis_threshold)
    return Diagnostics(
        n_layers=n_layers,
        local_attention=local.tolist(),
        lens_entropy=(entropy / tokens).tolist(),
        lens_kl_to_final=(kl / tokens).clamp_min(0).tolist(),
        lens_top1_agreement=(agree / tokens).tolist(),
        prediction_neurons=predict,
        suppression_neurons=suppress,
        kurtosis_threshold=kurtosis_threshold,
    )
