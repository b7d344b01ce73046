"""Beyond the toys: one-layer transformers on a mixture of algorithmic subtasks, at several widths,
with the MLP neurons allocated to each subtask measured by mean-ablation.

A sequence is a subtask token followed by `length` digits in [0, base); the model answers at the
last position. With one layer and the answer read at the last position, only the last position's
attention and MLP reach the logits, so the model computes just those (the same function as a full
one-layer transformer read at that position). Models of one width but different seeds are trained
at once as one batched program (a leading seed dimension on every parameter).

Allocation: MLP neuron j serves subtask k when replacing its activation by its mean over the
subtask's examples moves the logits by more than a fraction of their spread (`subtask_allocation`).
The MLP output enters the logits linearly, so every neuron's ablation comes at once in closed form.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from intelligible.core.progress import progress
from intelligible.scaling.mlp import Adam, cosine_factor, threads_for

# subtask name -> answer from the digits (batch, length) in base `base`
SUBTASKS: dict[str, Callable[[Tensor, int], Tensor]] = {
    "first": lambda d, base: d[:, 0],
    "last": lambda d, base: d[:, -1],
    "max": lambda d, base: d.max(dim=1).values,
    "min": lambda d, base: d.min(dim=1).values,
    "add": lambda d, base: (d[:, 0] + d[:, 1]) % base,
    "sub": lambda d, base: (d[:, 0] - d[:, 1]) % base,
    "sum": lambda d, base: d.sum(dim=1) % base,
}


@dataclass
class MixtureData:
    """The mixture: subtask names, their sampling weights, digits per sequence and the base."""

    subtasks: tuple[str, ...]
    mix: tuple[float, ...]
    length: int
    base: int

    @property
    def vocab(self) -> int:
        return self.base + len(self.subtasks)

    def sample(
        self, n: int, generator: torch.Generator, subtask: int | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """`n` sequences (n, 1 + length), answers (n,), subtask ids (n,); one subtask if given."""
        if subtask is None:
            probs = torch.tensor(self.mix, dtype=torch.float64)
            ids = torch.multinomial(probs / probs.sum(), n, replacement=True, generator=generator)
        else:
            ids = torch.full((n,), subtask, dtype=torch.long)
        digits = torch.randint(0, self.base, (n, self.length), generator=generator)
        answers = torch.empty(n, dtype=torch.long)
        for k, name in enumerate(self.subtasks):
            rows = ids == k
            if rows.any():
                answers[rows] = SUBTASKS[name](digits[rows], self.base)
        tokens = torch.cat([(self.base + ids).unsqueeze(1), digits], dim=1)
        return tokens, answers, ids


class BatchedTransformer:
    """One-layer transformers of model width `d_model`, one per (MLP width, seed), as one batched program.

    The MLP width is what varies ("several widths"): the MLP neurons are the resource measured, and
    with d_model fixed every model shares the attention's shapes, so models of all MLP widths train
    together; narrower MLPs are padded to the widest with neurons whose weights and bias are zero
    (they output relu(0) = 0 and get no gradient). A seed fixes the attention's initial weights
    whatever the MLP width.
    """

    def __init__(self, vocab: int, n_out: int, positions: int, d_model: int, heads: int,
                 models: list[tuple[int, int]], device: str = "cpu") -> None:  # fmt: skip
        self.d_model, self.heads = d_model, heads
        self.models = list(models)
        self.mlp = max(width for width, _ in models)
        shapes = {
            "embed": (vocab, d_model), "pos": (positions, d_model),
            "wq": (d_model, d_model), "wk": (d_model, d_model), "wv": (d_model, d_model), "wo": (d_model, d_model),
            "w_in": (d_model, None), "b_in": (1, None), "w_out": (None, d_model), "b_out": (1, d_model),
            "unembed": (d_model, n_out),
        }  # fmt: skip
        stacks: dict[str, list[Tensor]] = {name: [] for name in shapes}
        for width, seed in models:
            generator = torch.Generator().manual_seed(int(seed))
            for name, shape in shapes.items():
                own = tuple(width if d is None else d for d in shape)
                full = tuple(self.mlp if d is None else d for d in shape)
                value = torch.zeros(full)
                if not name.startswith("b_"):
                    scale = 1.0 if name in ("embed", "pos") else 1.0 / math.sqrt(own[0])
                    value[tuple(slice(0, d) for d in own)] = torch.randn(own, generator=generator) * scale
                stacks[name].append(value)
        self.params = {name: torch.stack(values).to(device) for name, values in stacks.items()}
        mask = torch.zeros(len(models), 1, self.mlp)
        for m, (width, _) in enumerate(models):
            mask[m, 0, :width] = 1.0
        self.mask = mask.to(device)

    def hidden(self, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """(residual after attention at the last position (models, batch, d_model), MLP activations (models, batch, mlp))."""
        p = self.params
        x = p["embed"][:, tokens] + p["pos"][:, None, : tokens.shape[1]]  # (models, batch, seq, d_model)
        head = self.d_model // self.heads
        q = torch.einsum("mbd,mde->mbe", x[:, :, -1], p["wq"]).unflatten(-1, (self.heads, head))
        k = torch.einsum("mbsd,mde->mbse", x, p["wk"]).unflatten(-1, (self.heads, head))
        v = torch.einsum("mbsd,mde->mbse", x, p["wv"]).unflatten(-1, (self.heads, head))
        attention = torch.softmax(torch.einsum("mbhe,mbshe->mbhs", q, k) / math.sqrt(head), dim=-1)
        mixed = torch.einsum("mbhs,mbshe->mbhe", attention, v).flatten(-2)
        resid = x[:, :, -1] + torch.einsum("mbd,mde->mbe", mixed, p["wo"])
        h = torch.relu(torch.baddbmm(p["b_in"], resid, p["w_in"])) * self.mask
        return resid, h

    def logits(self, tokens: Tensor) -> Tensor:
        resid, h = self.hidden(tokens)
        p = self.params
        out = resid + torch.baddbmm(p["b_out"], h, p["w_out"])
        return torch.bmm(out, p["unembed"])


def train_transformers(
    model: BatchedTransformer, data: MixtureData, *, steps: int, batch: int, lr: float, seed: int,
    desc: str = "transformer", disable_progress: bool | None = None,
) -> None:  # fmt: skip
    """Adam with cosine decay on fresh batches of the mixture (one data stream shared by the seeds)."""
    params = [p.requires_grad_() for p in model.params.values()]
    optimizer = Adam(params)
    generator = torch.Generator().manual_seed(int(seed))
    device = params[0].device
    bar = progress(range(steps), desc=desc, disable=disable_progress)
    with threads_for(len(model.models) * batch * model.mlp):
        _train_loop(model, data, optimizer, bar, generator, device, steps=steps, batch=batch, lr=lr)
    for p in params:
        p.requires_grad_(False)


def _train_loop(model: BatchedTransformer, data: MixtureData, optimizer: Adam, bar: Any, generator: torch.Generator,
                device: torch.device, *, steps: int, batch: int, lr: float) -> None:  # fmt: skip
    for step in bar:
        tokens, answers, _ = data.sample(batch, generator)
        tokens, answers = tokens.to(device), answers.to(device)
        logits = model.logits(tokens)
        loss = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), answers.repeat(logits.shape[0]), reduction="mean"
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step(lr * cosine_factor(step, steps, 0.05))
        if step % 50 == 0:
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}")


@torch.no_grad()
def subtask_allocation(
    model: BatchedTransformer, data: MixtureData, *, n_eval: int, seed: int, ablation_tol: float = 0.02
) -> dict[str, Tensor]:
    """Per model and subtask: cross-entropy, accuracy, and the MLP neurons that do work on it.

    Neuron j is allocated to subtask k when mean-ablating it moves the logits on k's examples by
    more than `ablation_tol` of their spread: the RMS over examples of the (vocabulary-centred)
    logit change, divided by the RMS of the centred logits. Logit changes rather than the change of
    cross-entropy, because a solved subtask's softmax is saturated and its cross-entropy barely
    moves whatever one removes. In closed form: removing neuron j changes the logits by
    -(h_j - mean h_j) * (W_out[j] @ W_U), so its effect is std(h_j) * |centred W_out[j] @ W_U|.
    Returns `ce`, `accuracy` (models, subtasks), `effect` (models, subtasks, mlp), `allocated` (bool).
    """
    generator = torch.Generator().manual_seed(int(seed))
    device = model.params["embed"].device
    p = model.params
    direction = torch.bmm(p["w_out"], p["unembed"])  # (models, mlp, vocab)
    direction = direction - direction.mean(dim=-1, keepdim=True)
    ce, accuracy, effects = [], [], []
    for k in range(len(data.subtasks)):
        tokens, answers, _ = data.sample(n_eval, generator, subtask=k)
        tokens, answers = tokens.to(device), answers.to(device)
        logits = model.logits(tokens)  # (models, batch, vocab)
        logp = torch.log_softmax(logits, dim=-1)
        ce.append(-logp.gather(-1, answers.expand(logits.shape[:-1]).unsqueeze(-1)).squeeze(-1).mean(dim=1))
        accuracy.append((logits.argmax(-1) == answers).float().mean(dim=1))
        _, h = model.hidden(tokens)
        spread = (logits - logits.mean(dim=-1, keepdim=True)).square().sum(-1).mean(dim=1).sqrt()  # (models,)
        effect = h.std(dim=1, unbiased=False) * direction.norm(dim=-1) / spread.clamp(min=1e-12)[:, None]
        effects.append(effect * model.mask[:, 0])
    effect = torch.stack(effects, dim=1)
    return {"ce": torch.stack(ce, 1), "accuracy": torch.stack(accuracy, 1), "effect": effect,
            "allocated": effect > ablation_tol}  # fmt: skip
