"""Next-token metrics of an edited model against the unedited one, accumulated over batches.

All sums are over predicted tokens (position t predicts token t + 1), in float64 so that the
order of accumulation does not matter at the 1e-6 level.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Reference:
    """What the unedited model gives on one batch, computed once and reused by every edit."""

    log_probs: Tensor  # (tokens, vocab)
    probs: Tensor  # (tokens, vocab)
    neg_entropy: Tensor  # (tokens,) sum p log p
    targets: Tensor  # (tokens,)


def reference_from_logits(logits: Tensor, input_ids: Tensor) -> Reference:
    """Reference distribution from the unedited logits (batch, seq, vocab) of windows `input_ids`."""
    flat = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    log_probs = flat.log_softmax(dim=-1)
    probs = log_probs.exp()
    return Reference(
        log_probs=log_probs,
        probs=probs,
        neg_entropy=(probs * log_probs).sum(-1),
        targets=input_ids[:, 1:].reshape(-1).to(flat.device),
    )


@dataclass
class MetricSums:
    """Running sums for one intervention; `summary()` turns them into means."""

    tokens: int = 0
    correct: float = 0.0
    loss: float = 0.0
    kl: float = 0.0
    entropy: float = 0.0

    def add(self, logits: Tensor, ref: Reference) -> None:
        flat = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
        log_probs = flat.log_softmax(dim=-1)
        probs = log_probs.exp()
        target_logp = log_probs.gather(1, ref.targets[:, None]).squeeze(1)
        # KL(p_ref || p_edit) = sum p_ref log p_ref - sum p_ref log p_edit
        kl = ref.neg_entropy - (ref.probs * log_probs).sum(-1)
        self.tokens += flat.shape[0]
        self.correct += (flat.argmax(-1) == ref.targets).double().sum().item()
        self.loss += (-target_logp).double().sum().item()
        self.kl += kl.double().sum().item()
        self.entropy += (-(probs * log_probs).sum(-1)).double().sum().item()

    def summary(self) -> dict[str, float]:
        n = max(self.tokens, 1)
        return {
            "tokens": self.tokens,
            "accuracy": self.correct / n,
            "loss": self.loss / n,
            "kl": self.kl / n,
            "entropy": self.entropy / n,
        }


def next_token_summary(logits: Tensor, input_ids: Tensor) -> dict[str, float]:
    """Accuracy, loss, entropy (and KL to itself, 0) of one set of logits; for tests and quick checks."""
    sums = MetricSums()
    with torch.inference_mode():
        sums.add(logits, reference_from_logits(logits, input_ids))
    return sums.summary()
