"""A small transformer trained on "k days after X" and "k months after X", its circle, and interventions on it.

SmolLM2-135M is at chance on the paper's tasks, so the claim that a model computes with its circle
(rotating the circle moves the modular answer) is shown on a model that solves the task: sequences
[X, k, =] with X a weekday or a month, trained (full batch, AdamW with weight decay, which favours
the compact Fourier solution over a lookup table) until every (X, k) is answered. Because X comes first
and attention is causal, the residual at X's position is a function of X alone at every layer; the
top principal plane of the 7 weekdays (12 months) there is the candidate circle. `rotate_circle`
rotates X's coordinates in that plane by one item's angle and counts how often the answer moves by
exactly one item; `random_plane_control` does the same in a random plane of the same residual.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from intelligible.core.errors import ConfigError
from intelligible.core.progress import progress

TASKS = {"weekdays": 7, "months": 12}


@dataclass
class ToyConfig:
    """The toy model and its training."""

    d_model: int = 32
    n_layers: int = 1
    n_heads: int = 4
    d_mlp: int = 128
    steps: int = 2000
    lr: float = 1e-2
    weight_decay: float = 0.1
    seed: int = 0
    batch: int = 256
    max_seconds: float = 60.0  # stop early once every answer is right, or when time runs out

    def validate(self) -> None:
        for name in ("d_model", "n_layers", "n_heads", "d_mlp", "steps", "batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"toy {name} must be at least 1, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"toy d_model ({self.d_model}) must be a multiple of n_heads ({self.n_heads})")
        if not self.lr > 0 or self.weight_decay < 0 or not self.max_seconds > 0:
            raise ConfigError("toy lr and max_seconds must be positive and weight_decay at least 0")


class Vocabulary:
    """Items of every task, then the offsets 0..12, then "="."""

    def __init__(self) -> None:
        self.task_start: dict[str, int] = {}
        size = 0
        for task, period in TASKS.items():
            self.task_start[task] = size
            size += period
        self.offset_start = size
        self.max_offset = max(TASKS.values())
        self.equals = size + self.max_offset + 1
        self.size = self.equals + 1

    def item(self, task: str, index: int) -> int:
        return self.task_start[task] + index

    def offset(self, k: int) -> int:
        return self.offset_start + k


def task_examples(vocab: Vocabulary) -> tuple[Tensor, Tensor, list[tuple[str, int, int]]]:
    """The paper's prompts in toy form: every (X, k), k = 1..period, as [X, k, 0, =]; tokens, targets, meta."""
    rows, targets, meta = [], [], []
    for task, period in TASKS.items():
        for x in range(period):
            for k in range(1, period + 1):
                rows.append([vocab.item(task, x), vocab.offset(k), vocab.offset(0), vocab.equals])
                targets.append(vocab.item(task, (x + k) % period))
                meta.append((task, x, k))
    return torch.tensor(rows), torch.tensor(targets), meta


def all_sequences(vocab: Vocabulary) -> tuple[Tensor, Tensor]:
    """Every [X, k1, k2, =] with k1 in 1..12 and k2 in 0..12 for both tasks, answering X + k1 + k2.

    Two offsets make the table too large to memorise cheaply next to the rule, so the model learns the
    modular structure (and its circles) rather than a lookup of the paper's 193 prompts.
    """
    rows, targets = [], []
    for task, period in TASKS.items():
        for x in range(period):
            for k1 in range(1, vocab.max_offset + 1):
                for k2 in range(vocab.max_offset + 1):
                    rows.append([vocab.item(task, x), vocab.offset(k1), vocab.offset(k2), vocab.equals])
                    targets.append(vocab.item(task, (x + k1 + k2) % period))
    return torch.tensor(rows), torch.tensor(targets)


class Block(nn.Module):
    def __init__(self, cfg: ToyConfig) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = nn.MultiheadAttention(cfg.d_model, cfg.n_heads, batch_first=True)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.d_mlp), nn.GELU(), nn.Linear(cfg.d_mlp, cfg.d_model)
        )

    def forward(self, h: Tensor, mask: Tensor) -> Tensor:
        x = self.norm1(h)
        h = h + self.attn(x, x, x, attn_mask=mask, need_weights=False)[0]
        return h + self.mlp(self.norm2(h))


class ToyTransformer(nn.Module):
    """A causal transformer over 4-token sequences; `forward(tokens, edit=(layer, fn))` edits position 0's
    residual before block `layer` (layer = n_layers: before the final norm)."""

    def __init__(self, cfg: ToyConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        self.pos = nn.Parameter(torch.zeros(4, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.unembed = nn.Linear(cfg.d_model, vocab_size, bias=False)

    def embedding(self, tokens: Tensor) -> Tensor:
        """Token embeddings plus positions."""
        return self.embed(tokens) + self.pos[: tokens.shape[1]]

    def residuals(self, tokens: Tensor) -> list[Tensor]:
        """The residual (batch, seq, d) before each block and after the last."""
        mask = torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool).triu(1)
        h = self.embedding(tokens)
        states = [h]
        for block in self.blocks:
            h = block(h, mask)
            states.append(h)
        return states

    def forward(self, tokens: Tensor, edit: tuple[int, object] | None = None) -> Tensor:
        mask = torch.ones(tokens.shape[1], tokens.shape[1], dtype=torch.bool).triu(1)
        h = self.embedding(tokens)
        for layer in range(len(self.blocks) + 1):
            if edit is not None and edit[0] == layer:
                h = h.clone()
                h[:, 0] = edit[1](h[:, 0])
            if layer < len(self.blocks):
                h = self.blocks[layer](h, mask)
        return self.unembed(self.norm(h))[:, -1]


def train_toy(cfg: ToyConfig) -> tuple[ToyTransformer, Vocabulary, dict]:
    """Train on 80% of all two-offset sequences until the held-out 20% and the paper's prompts are all right."""
    cfg.validate()
    generator = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    vocab = Vocabulary()
    tokens, targets = all_sequences(vocab)
    order = torch.randperm(len(tokens), generator=generator)
    cut = int(0.8 * len(tokens))
    train_rows, test_rows = order[:cut], order[cut:]
    prompts, prompt_targets, _ = task_examples(vocab)
    model = ToyTransformer(cfg, vocab.size)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98)
    )
    start = time.perf_counter()
    history = []
    solved_at = None
    bar = progress(range(cfg.steps), desc="toy transformer", total=cfg.steps)
    for step in bar:
        batch = train_rows[torch.randint(len(train_rows), (cfg.batch,), generator=generator)]
        loss = nn.functional.cross_entropy(model(tokens[batch]), targets[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 100 == 0 or step == cfg.steps - 1:
            with torch.no_grad():
                held_out = float((model(tokens[test_rows]).argmax(-1) == targets[test_rows]).float().mean())
                on_prompts = float((model(prompts).argmax(-1) == prompt_targets).float().mean())
            history.append(
                {"step": step, "loss": float(loss.detach()), "held_out": held_out, "prompts": on_prompts}
            )
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{float(loss.detach()):.3f}", held_out=f"{held_out:.2f}")
            if held_out == 1.0 and on_prompts == 1.0 and solved_at is None:
                solved_at = step
            # a little past the first perfect score, so the answers hold with a margin
            if solved_at is not None and step >= solved_at + cfg.steps // 10:
                break
            if time.perf_counter() - start > cfg.max_seconds:
                break
    model.eval()
    final = history[-1] if history else {"held_out": 0.0, "prompts": 0.0, "step": 0}
    info = {"steps": final["step"] + 1, "held_out_accuracy": final["held_out"], "prompt_accuracy": final["prompts"],
            "solved_at": solved_at, "seconds": round(time.perf_counter() - start, 2), "history": history}  # fmt: skip
    return model, vocab, info


@dataclass
class ToyCircle:
    """A task's items at one layer: their residuals, the plane, coordinates and the angle of one item."""

    task: str
    layer: int
    points: np.ndarray  # (period, d) residual at position 0 for each item
    basis: np.ndarray  # (2, d) the plane
    centre: np.ndarray  # (d,)
    coords: np.ndarray  # (period, 2)
    step_angle: float  # signed angle from one item to the next
    order_correlation: float
    frequency: int = 1  # the Fourier frequency of the circle (items visited in steps of it)
    variance_share: float = 1.0  # the fraction of the items' variance in the circle's plane
    frequency_shares: tuple[float, ...] = ()  # the items' variance on each frequency 1..p/2 (sums to 1)


@torch.no_grad()
def find_circle(model: ToyTransformer, vocab: Vocabulary, task: str, layer: int) -> ToyCircle:
    """The task's strongest circle at position 0 before block `layer`.

    The items' residuals h_x (x = 0..p-1) decompose exactly into Fourier circles: for each frequency f the
    plane spanned by sum_x h_x cos(2 pi f x / p) and sum_x h_x sin(2 pi f x / p), on which item x sits at
    angle 2 pi f x / p. The circle is the plane of the frequency coprime with p with the most variance;
    one item's angle on it is the measured mean step between consecutive items (2 pi f / p on a clean
    circle).
    """
    from intelligible.multidim.circles import circular_order_correlation, rotation_step

    if task not in TASKS:
        raise ConfigError(f"unknown toy task {task!r}; valid: {', '.join(TASKS)}")
    if not 0 <= layer < len(model.blocks):
        raise ConfigError(
            f"layer must be in 0..{len(model.blocks) - 1} (position 0 is read by the blocks), got {layer}"
        )
    period = TASKS[task]
    tokens = torch.tensor(
        [[vocab.item(task, x), vocab.offset(1), vocab.offset(0), vocab.equals] for x in range(period)]
    )
    points = model.residuals(tokens)[layer][:, 0].numpy().astype(np.float64)
    centre = points.mean(axis=0)
    centred = points - centre
    phases = 2 * np.pi * np.arange(period) / period
    # each frequency's share of the items' variance: its cos/sin projections, normalised (f = p/2 has
    # only a cosine part); they add up to 1 because the Fourier basis is complete
    shares = []
    for f in range(1, period // 2 + 1):
        parts = [np.cos(f * phases), np.sin(f * phases)]
        shares.append(sum(float(((u @ centred) ** 2).sum() / float(u @ u)) for u in parts if u @ u > 1e-6))
    total = max(sum(shares), 1e-30)
    best = None
    # only frequencies coprime with the period: their circle visits every item once (f = p/2 is a line,
    # and e.g. f = 4 of 12 months a triangle that cannot tell January from May)
    for f in (f for f in range(1, period // 2 + 1) if math.gcd(f, period) == 1):
        plane = np.stack([np.cos(f * phases) @ centred, np.sin(f * phases) @ centred])
        power = float((plane**2).sum())
        if best is None or power > best[0]:
            best = (power, f, plane)
    _, frequency, plane = best
    basis, _ = np.linalg.qr(plane.T)  # orthonormal (d, 2)
    basis = basis.T
    coords = centred @ basis.T
    # the order along this circle visits items in steps of `frequency`
    order = circular_order_correlation(
        coords, (np.arange(period) * frequency) % period, period, n_permutations=200
    )
    share = float((coords**2).sum() / max((centred**2).sum(), 1e-30))
    return ToyCircle(task, layer, points, basis, centre, coords, rotation_step(coords), order.correlation,
                     frequency, share, tuple(v / total for v in shares))  # fmt: skip


def _rotation_edit(basis: np.ndarray, centre: np.ndarray, angle: float):  # noqa: ANN202 - a closure
    plane = torch.tensor(basis, dtype=torch.float32)
    middle = torch.tensor(centre, dtype=torch.float32)
    c, s = math.cos(angle), math.sin(angle)
    rotation = torch.tensor([[c, -s], [s, c]], dtype=torch.float32)

    def edit(h: Tensor) -> Tensor:
        coords = (h - middle) @ plane.T  # (batch, 2)
        return h + (coords @ rotation.T - coords) @ plane

    return edit


@torch.no_grad()
def rotate_circle(
    model: ToyTransformer, vocab: Vocabulary, circle: ToyCircle, *, items: int = 1,
    basis: np.ndarray | None = None,
) -> dict[str, float]:  # fmt: skip
    """Rotate X by `items` steps of the circle (or in another `basis` plane by the same angle) at every
    prompt of the task; the fraction whose answer moves from X + k to X + k + items, and that stays put."""
    period = TASKS[circle.task]
    tokens, targets, meta = task_examples(vocab)
    rows = [n for n, (task, _, _) in enumerate(meta) if task == circle.task]
    tokens, targets = tokens[rows], targets[rows]
    plane = circle.basis if basis is None else basis
    edit = _rotation_edit(plane, circle.centre, items * circle.step_angle)
    clean = model(tokens).argmax(-1)
    moved = model(tokens, edit=(circle.layer, edit)).argmax(-1)
    expected = torch.tensor([vocab.item(circle.task, (x + k + items) % period) for _, x, k in
                             (meta[n] for n in rows)])  # fmt: skip
    return {"moved_as_predicted": float((moved == expected).float().mean()),
            "unchanged": float((moved == clean).float().mean()),
            "clean_accuracy": float((clean == targets).float().mean())}  # fmt: skip


def random_plane(d: int, seed: int) -> np.ndarray:
    """An orthonormal random (2, d) plane."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, 2)))
    return q.T
