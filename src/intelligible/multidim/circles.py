"""Circles in a language model's residual stream without an SAE: the weekday and month tasks.

The paper's prompts ("Let's do some days of the week math. Two days from Monday is"): 7 days x 7
durations (49 prompts) and 12 months x 12 durations (144). For every layer we take the residual at the
start word's token, project it on its top principal components, and ask whether the words lie on a
circle in their cyclic order:

- `circular_order_correlation`: Pearson correlation between the pairwise angle (in the top PCA plane,
  about the centre of the word means) and the pairwise cyclic distance, with a permutation null
  (the words' labels shuffled) giving its 99th percentile and a p-value;
- `circle_r2`: how much of the top-k PCA variance a circle explains: R^2 of a linear regression of the
  k components on (cos, sin)(2 pi i / period).

`score_task` asks the model the task (argmax over the 7 or 12 answer words, as the paper's Table 1)
and `patch_circle` moves the start word along its circle (the coordinates of another word, or a
rotation) in the top PCA plane at one layer and reads how the answer moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError, DataError, ModelError
from intelligible.lm.model import LanguageModel

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")  # fmt: skip
NUMBER_WORDS = ("Zero", "One", "Two", "Three", "Four", "Five", "Six", "Seven", "Eight", "Nine", "Ten",
                "Eleven", "Twelve")  # fmt: skip
# Table 1 of the paper: correct answers (argmax over the answer words) out of 49 and 144.
PAPER_ACCURACY = {"mistral-7b": (31, 125), "llama-3-8b": (29, 111), "gpt-2": (8, 10)}


@dataclass
class PromptSet:
    """A cyclic task: `items` in order, prompts "{duration} from {item}" asking for item + k (mod period)."""

    name: str
    items: tuple[str, ...]
    template: str  # with {duration} and {item}
    unit: tuple[str, str]  # singular and plural of the duration's unit ("day", "days")
    offsets: tuple[int, ...]
    prompts: list[str] = field(default_factory=list)
    start: list[int] = field(default_factory=list)
    offset: list[int] = field(default_factory=list)
    answer: list[int] = field(default_factory=list)

    @property
    def period(self) -> int:
        return len(self.items)

    def __post_init__(self) -> None:
        if len(self.items) < 3:
            raise ConfigError(f"a cyclic prompt set needs at least 3 items, got {len(self.items)}")
        if "{duration}" not in self.template or "{item}" not in self.template:
            raise ConfigError(f"the template must hold {{duration}} and {{item}}, got {shown(self.template)}")
        bad = [k for k in self.offsets if not 0 <= k < len(NUMBER_WORDS)]
        if bad:
            raise ConfigError(f"offsets must be in 0..{len(NUMBER_WORDS) - 1}, got {bad[0]}")
        for i, item in enumerate(self.items):
            for k in self.offsets:
                unit = self.unit[0] if k == 1 else self.unit[1]
                self.prompts.append(self.template.format(duration=f"{NUMBER_WORDS[k]} {unit}", item=item))
                self.start.append(i)
                self.offset.append(k)
                self.answer.append((i + k) % len(self.items))


def weekday_prompts() -> PromptSet:
    """The paper's 49 weekday prompts: durations one to seven days."""
    return PromptSet("weekdays", WEEKDAYS, "Let's do some days of the week math. {duration} from {item} is",
                     ("day", "days"), tuple(range(1, 8)))  # fmt: skip


def month_prompts() -> PromptSet:
    """The paper's 144 month prompts: durations one to twelve months."""
    return PromptSet("months", MONTHS, "Let's do some calendar math. {duration} from {item} is",
                     ("month", "months"), tuple(range(1, 13)))  # fmt: skip


def prompt_set(name: str, offsets: tuple[int, ...] | None = None) -> PromptSet:
    """`weekdays` or `months`, with all the paper's durations or only `offsets`."""
    sets = {"weekdays": weekday_prompts, "months": month_prompts}
    if name not in sets:
        raise ConfigError(f"unknown prompt set {shown(name)}; valid: {', '.join(sets)}")
    full = sets[name]()
    if offsets is None:
        return full
    bad = [k for k in offsets if k not in full.offsets]
    if bad or not offsets:
        raise ConfigError(f"offsets for {name} must be among {full.offsets}, got {offsets}")
    return PromptSet(full.name, full.items, full.template, full.unit, tuple(offsets))


def answer_token_ids(lm: LanguageModel, words: tuple[str, ...]) -> list[int]:
    """The single token of " word" for each answer word; ModelError naming any that is not one token."""
    ids = []
    for word in words:
        tokens = lm.tokenizer(" " + word, add_special_tokens=False, verbose=False)["input_ids"]
        if len(tokens) != 1:
            raise ModelError(
                f"the answer word {word!r} is {len(tokens)} tokens for {lm.name}, not one; the task scores "
                "the argmax over single-token answers: use a model whose tokenizer keeps each answer word whole, "
                "or a prompt set with single-token answers"
            )
        unknown = getattr(lm.tokenizer, "unk_token_id", None)
        if unknown is not None and int(tokens[0]) == unknown:
            raise ModelError(f"the answer word {word!r} is not in {lm.name}'s vocabulary (it maps to the unknown token); "
                             "use a model that knows the answer words")  # fmt: skip
        ids.append(int(tokens[0]))
    return ids


def _encode(lm: LanguageModel, prompts: PromptSet) -> tuple[list[list[int]], list[int]]:
    """Token ids of each prompt (BOS first) and the position of the last token of its start item."""
    ids, positions = [], []
    for text, start in zip(prompts.prompts, prompts.start):
        full = lm.to_tokens(text)[0].tolist()
        head = text[: text.index(" from " + prompts.items[start]) + len(" from " + prompts.items[start])]
        upto = lm.to_tokens(head)[0].tolist()
        if full[: len(upto)] != upto:  # the item merged with what follows: no clean token for it
            raise ModelError(f"{lm.name} does not tokenise {prompts.items[start]!r} apart from the next word")
        ids.append(full)
        positions.append(len(upto) - 1)
    return ids, positions


@dataclass
class Residuals:
    """Residuals at the start item's token (layers + 1, prompts, d) and the answer logits (prompts, period)."""

    states: np.ndarray
    answer_logits: np.ndarray
    positions: list[int]


@torch.no_grad()
def collect_residuals(lm: LanguageModel, prompts: PromptSet, batch: int = 64) -> Residuals:
    """One forward per batch of equal-length prompts: every layer's residual at the item, the answer logits."""
    answer_ids = answer_token_ids(lm, prompts.items)
    ids, positions = _encode(lm, prompts)
    states = np.zeros((lm.n_layers + 1, len(ids), lm.d_model), dtype=np.float32)
    logits = np.zeros((len(ids), prompts.period), dtype=np.float32)
    by_length: dict[int, list[int]] = {}
    for i, row in enumerate(ids):
        by_length.setdefault(len(row), []).append(i)
    for members in by_length.values():
        for chunk in range(0, len(members), batch):
            rows = members[chunk : chunk + batch]
            tokens = torch.tensor([ids[i] for i in rows], device=lm.device)
            stream = lm.residual_stream(tokens)  # (layers + 1, b, seq, d)
            where = torch.tensor([positions[i] for i in rows], device=lm.device)
            picked = stream[:, torch.arange(len(rows)), where]  # (layers + 1, b, d)
            states[:, rows] = picked.float().cpu().numpy()
            final = lm.unembed(stream[-1][:, -1])
            logits[rows] = final[:, answer_ids].float().cpu().numpy()
    return Residuals(states=states, answer_logits=logits, positions=positions)


def score_task(residuals: Residuals, prompts: PromptSet) -> int:
    """Correct answers: argmax over the answer words at the last token equals (start + k) mod period."""
    return int((residuals.answer_logits.argmax(axis=1) == np.array(prompts.answer)).sum())


def top_components(points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(coordinates (n, k), components (k, d), mean (d,)) of the top-k PCA of (n, d) points."""
    mean = points.mean(axis=0)
    centred = points - mean
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(k, vt.shape[0])
    return centred @ vt[:k].T, vt[:k], mean


@dataclass
class CircularOrder:
    """The correlation of pairwise angle with cyclic distance, its permutation null, and the p-value."""

    correlation: float
    null_p99: float
    p_value: float
    n_permutations: int


def circular_order_correlation(
    plane: np.ndarray, labels: np.ndarray, period: int, *, n_permutations: int = 1000, seed: int = 0
) -> CircularOrder:
    """Do the points of `plane` (n, 2) go round in the cyclic order of `labels` (ints mod `period`)?

    Angles are taken about the centre of the per-label means, so that a circle shifted off the origin
    still counts; the null shuffles which label each distinct item carries.
    """
    plane = np.asarray(plane, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if plane.ndim != 2 or plane.shape[1] != 2 or len(plane) != len(labels):
        raise DataError(f"need (n, 2) points and n labels, got {tuple(plane.shape)} and {len(labels)}")
    if not np.isfinite(plane).all():
        raise DataError("the points hold NaN or infinite values")
    distinct = np.unique(labels)
    if len(distinct) < 3:
        raise DataError(f"need at least 3 distinct labels for a circular order, got {len(distinct)}")
    if n_permutations < 1:
        raise ConfigError(f"n_permutations must be at least 1, got {n_permutations}")
    centre = np.mean([plane[labels == v].mean(axis=0) for v in distinct], axis=0)
    angles = np.arctan2(plane[:, 1] - centre[1], plane[:, 0] - centre[0])
    i, j = np.triu_indices(len(angles), k=1)
    keep = labels[i] != labels[j]
    i, j = i[keep], j[keep]
    gap = np.abs(angles[i] - angles[j]) % (2 * np.pi)
    gap = np.minimum(gap, 2 * np.pi - gap)
    # a relabelling only changes which cyclic distance each (item, item) class of pairs gets, so the
    # correlation needs, per class, the count and the sum of the angle gaps: period^2 numbers per permutation
    slot = np.searchsorted(distinct, labels)
    n_items = len(distinct)
    counts = np.zeros((n_items, n_items))
    sums = np.zeros((n_items, n_items))
    np.add.at(counts, (slot[i], slot[j]), 1.0)
    np.add.at(sums, (slot[i], slot[j]), gap)
    rng = np.random.default_rng(seed)
    relabels = np.stack([distinct] + [rng.permutation(distinct) for _ in range(n_permutations)])
    cyc = np.abs(relabels[:, :, None] - relabels[:, None, :]) % period  # (perms + 1, items, items)
    cyc = np.minimum(cyc, period - cyc).astype(np.float64)
    n_pairs = counts.sum()
    mean_cyc = (cyc * counts).sum(axis=(1, 2)) / n_pairs
    cov = (cyc * sums).sum(axis=(1, 2)) / n_pairs - mean_cyc * gap.mean()
    var_cyc = (cyc**2 * counts).sum(axis=(1, 2)) / n_pairs - mean_cyc**2
    denominator = np.sqrt(np.maximum(var_cyc, 0.0) * gap.var())
    corr = np.where(denominator > 1e-15, cov / np.where(denominator > 1e-15, denominator, 1.0), 0.0)
    observed, null = float(corr[0]), corr[1:]
    p_value = (1 + int((null >= observed).sum())) / (1 + n_permutations)
    return CircularOrder(observed, float(np.quantile(null, 0.99)), p_value, n_permutations)


def circle_r2(coords: np.ndarray, labels: np.ndarray, period: int) -> float:
    """R^2 of (n, k) coordinates regressed on (1, cos, sin)(2 pi label / period): the variance a circle explains."""
    phase = 2 * np.pi * np.asarray(labels) / period
    design = np.stack([np.ones_like(phase), np.cos(phase), np.sin(phase)], axis=1)
    solution, *_ = np.linalg.lstsq(design, coords, rcond=None)
    residual = coords - design @ solution
    total = ((coords - coords.mean(axis=0)) ** 2).sum()
    return float(1 - (residual**2).sum() / total) if total > 0 else 0.0


@dataclass
class LayerCircle:
    """One layer's circle statistics for one prompt set."""

    layer: int
    correlation: float
    null_p99: float
    p_value: float
    r2_circle: float
    explained_top2: float


def layer_circles(
    residuals: Residuals, prompts: PromptSet, *, k: int = 5, n_permutations: int = 1000, seed: int = 0
) -> list[LayerCircle]:
    """Circle statistics at every layer (index 0: embeddings; i: after block i-1)."""
    labels = np.array(prompts.start)
    out = []
    for layer in range(residuals.states.shape[0]):
        points = residuals.states[layer].astype(np.float64)
        coords, _, _ = top_components(points, k)
        total = ((points - points.mean(axis=0)) ** 2).sum()
        top2 = float((coords[:, :2] ** 2).sum() / total) if total > 0 else 0.0
        order = circular_order_correlation(coords[:, :2], labels, prompts.period,
                                           n_permutations=n_permutations, seed=seed + layer)  # fmt: skip
        out.append(LayerCircle(layer, order.correlation, order.null_p99, order.p_value,
                               circle_r2(coords, labels, prompts.period), top2))  # fmt: skip
    return out


@torch.no_grad()
def patch_circle(
    lm: LanguageModel, prompts: PromptSet, residuals: Residuals, layer: int, *, shift: int = 1
) -> dict[str, float]:
    """Replace each prompt's start-item coordinates in the layer's top PCA plane by those of item + shift.

    Returns the fraction of prompts whose argmax answer moves to (start + shift + k) mod period, the same
    fraction without the patch (the model's own accuracy on the shifted answer), and the mean probability
    on the shifted answer before and after.
    """
    if not 0 < layer <= lm.n_layers:
        raise ConfigError(f"layer must be in 1..{lm.n_layers} (after that many blocks), got {layer}")
    labels = np.array(prompts.start)
    points = residuals.states[layer].astype(np.float64)
    coords, components, _ = top_components(points, 2)
    means = np.stack([coords[labels == i].mean(axis=0) for i in range(prompts.period)])
    basis = torch.tensor(components, dtype=torch.float32, device=lm.device)
    centre = torch.tensor(points.mean(axis=0), dtype=torch.float32, device=lm.device)
    targets = torch.tensor(means, dtype=torch.float32, device=lm.device)
    answer_ids = answer_token_ids(lm, prompts.items)
    ids, positions = _encode(lm, prompts)
    moved = base_hit = 0
    prob_before = prob_after = 0.0
    for n, row in enumerate(ids):
        target = (prompts.start[n] + shift + prompts.offset[n]) % prompts.period
        tokens = torch.tensor([row], device=lm.device)
        h = lm.embed(tokens)
        pos = lm.positional(h)
        h = lm.run_layers(h, range(layer), pos)
        clean = lm.unembed(lm.run_layers(h, range(layer, lm.n_layers), pos))[0, -1, answer_ids].softmax(-1)
        vector = h[0, positions[n]]
        current = basis @ (vector - centre)  # the item's coordinates in the plane
        wanted = targets[(prompts.start[n] + shift) % prompts.period]
        patched = h.clone()
        patched[0, positions[n]] = vector + basis.T @ (wanted - current)
        out = lm.unembed(lm.run_layers(patched, range(layer, lm.n_layers), pos))[0, -1, answer_ids].softmax(
            -1
        )
        moved += int(out.argmax().item() == target)
        base_hit += int(clean.argmax().item() == target)
        prob_before += float(clean[target])
        prob_after += float(out[target])
    n_prompts = len(ids)
    return {"moved": moved / n_prompts, "unpatched": base_hit / n_prompts,
            "p_target_before": prob_before / n_prompts, "p_target_after": prob_after / n_prompts}  # fmt: skip


def rotation_step(means: np.ndarray) -> float:
    """The mean angle from one item to the next on a circle of (period, 2) item means (signed, radians)."""
    centre = means.mean(axis=0)
    angles = np.arctan2(means[:, 1] - centre[1], means[:, 0] - centre[0])
    steps = (np.roll(angles, -1) - angles + np.pi) % (2 * np.pi) - np.pi
    return float(math.atan2(np.sin(steps).mean(), np.cos(steps).mean()))
