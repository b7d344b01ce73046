"""SAE evaluation: reconstruction (MSE, FVU), sparsity (L0, dead latents, density), the LM's loss with
the SAE spliced in (CE recovered, delta CE), and Switch-specific expert load and duplicate features."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from intelligible.lm.model import LanguageModel
from intelligible.lm.saes.models import SparseAutoencoder, SwitchSAE


@torch.no_grad()
def evaluate(model: SparseAutoencoder, activations: Tensor, batch: int = 4096) -> dict:
    """Reconstruction and sparsity over all `activations` (tokens, d), accumulated batch by batch.

    dead_fraction counts latents that never fire on any of these tokens (so it depends on how many
    tokens are given: report it with the token count). FVU = sum ||x - x_hat||^2 / sum ||x - mean||^2.
    """
    model.eval()
    n = activations.shape[0]
    mean = activations.mean(dim=0)
    squared_error = total_variance = l0 = 0.0
    counts = torch.zeros(model.n_latents)
    expert_load = torch.zeros(getattr(model, "n_experts", 1))
    for start in range(0, n, batch):
        x = activations[start : start + batch]
        x_hat, code = model(x)
        squared_error += float((x_hat - x).pow(2).sum())
        total_variance += float((x - mean).pow(2).sum())
        dense_active = code.values > 0
        l0 += float(dense_active.sum())
        if code.indices is None:
            counts += dense_active.sum(dim=0).float()
        else:
            counts.index_add_(0, code.indices[dense_active], torch.ones(int(dense_active.sum())))
        if code.expert is not None:
            expert_load += torch.bincount(code.expert, minlength=expert_load.numel()).float()
    density = counts / n
    result = {
        "tokens": n,
        "mse": squared_error / n,
        "fvu": squared_error / max(total_variance, 1e-12),
        "l0": l0 / n,
        "dead_fraction": float((counts == 0).float().mean()),
        "log10_density": torch.log10(density.clamp_min(1e-10)).tolist(),
    }
    if isinstance(model, SwitchSAE):
        load = expert_load / expert_load.sum()
        entropy = -float((load * torch.log(load.clamp_min(1e-12))).sum())
        result.update(expert_load=load.tolist(), expert_entropy=entropy,
                      expert_entropy_max=math.log(model.n_experts),
                      duplicate_fraction=duplicate_fraction(model))  # fmt: skip
    return result


@torch.no_grad()
def duplicate_fraction(model: SwitchSAE, threshold: float = 0.9, chunk: int = 2048) -> float:
    """Fraction of latents whose decoder row has cosine > threshold with a latent of another expert."""
    rows = F.normalize(model.W_dec, dim=1)
    owner = torch.arange(model.n_latents) // model.per_expert
    has_duplicate = torch.zeros(model.n_latents, dtype=torch.bool)
    for start in range(0, model.n_latents, chunk):
        block = rows[start : start + chunk] @ rows.T  # (chunk, M)
        other = owner[start : start + chunk, None] != owner[None, :]
        has_duplicate[start : start + chunk] = ((block > threshold) & other).any(dim=1)
    return float(has_duplicate.float().mean())


@torch.no_grad()
def spliced_losses(
    lm: LanguageModel, model: SparseAutoencoder, windows: Tensor, layer: int, *, scale: float = 1.0,
    batch_size: int = 8, reference: dict | None = None,
) -> dict[str, float]:  # fmt: skip
    """Next-token loss (nats) of the LM as is, with the residual after `layer` replaced by the SAE's
    reconstruction (BOS position kept), and with it zeroed; CE recovered and delta CE from those.

    `scale` is the factor the SAE's training activations were multiplied by (normalisation).
    `reference`, a dict kept between calls on the same LM, windows and layer, holds what does not
    depend on the SAE (the residual at `layer`, the clean and zero-ablated losses), so comparing many
    SAEs runs the LM's first half once and its second half once per SAE instead of three times.
    """
    model.eval()
    totals = {"clean": 0.0, "sae": 0.0, "zero": 0.0}
    tokens = 0
    rest = list(range(layer + 1, lm.n_layers))
    reference = {} if reference is None else reference
    key = (id(lm), windows.data_ptr(), tuple(windows.shape), layer, batch_size)
    if reference.get("key") != key:
        reference.clear()
        reference["key"] = key
    for start in range(0, windows.shape[0], batch_size):
        ids = windows[start : start + batch_size]
        targets = ids[:, 1:].reshape(-1)
        if start not in reference:
            h = lm.embed(ids)
            pos = lm.positional(h)
            h = lm.run_layers(h, range(layer + 1), pos)
            fixed = {
                name: _loss_sum(lm, residual, rest, pos, targets)
                for name, residual in (("clean", h), ("zero", torch.cat([h[:, :1], torch.zeros_like(h[:, 1:])], dim=1)))
            }  # fmt: skip
            reference[start] = (h, pos, fixed)
        h, pos, fixed = reference[start]
        body = h[:, 1:]
        x_hat, _ = model(body.reshape(-1, body.shape[-1]).float() * scale)
        spliced = torch.cat([h[:, :1], (x_hat / scale).view_as(body).to(h.dtype)], dim=1)
        totals["sae"] += _loss_sum(lm, spliced, rest, pos, targets)
        totals["clean"] += fixed["clean"]
        totals["zero"] += fixed["zero"]
        tokens += targets.numel()
    clean, sae, zero = (totals[name] / tokens for name in ("clean", "sae", "zero"))
    return {
        "loss_clean": clean,
        "loss_sae": sae,
        "loss_zero": zero,
        "delta_ce": sae - clean,
        "ce_recovered": (zero - sae) / (zero - clean) if zero != clean else float("nan"),
    }


def _loss_sum(lm: LanguageModel, residual: Tensor, rest: list[int], pos: object, targets: Tensor) -> float:
    logits = lm.unembed(lm.run_layers(residual, rest, pos))[:, :-1]
    return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets, reduction="sum"))
