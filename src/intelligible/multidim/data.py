"""Text rich in weekdays and months, residual activations at one layer, and a small TopK SAE trained on them.

The `quick` reproduction cannot afford the paper's SAEs (GPT-2's 24,576 latents on OpenWebText), and
generic text mentions a weekday or a month about once per thousand tokens, too rarely for a small SAE
to spend latents on them. So it writes templated calendar sentences (schedules, dates, durations;
every sentence names a weekday or a month, mixed with plain filler sentences), collects SmolLM2's
residual at one layer on them, and trains a small TopK SAE (`train_small_sae`, Adam on
`TopKSAE.loss`, decoder rows kept unit-norm). Any SAE file can be used instead (`discover --sae`).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from intelligible.core.errors import ConfigError, DataError
from intelligible.core.progress import progress
from intelligible.lm.model import LanguageModel
from intelligible.lm.saes.models import TopKSAE
from intelligible.multidim.circles import MONTHS, NUMBER_WORDS, WEEKDAYS

_NAMES = ("Anna", "Ben", "Chloe", "David", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jonas")
_PLACES = ("the library", "the office", "the station", "the market", "the school", "the clinic", "the park")
_THINGS = ("meeting", "exam", "concert", "flight", "deadline", "party", "match", "appointment", "delivery")
_FILLER = (
    "The weather was mild and the streets were quiet.",
    "She opened the window and read the letter again.",
    "Prices rose slowly over the year.",
    "He fixed the bicycle and rode to work.",
    "The committee approved the new budget.",
    "They planted tomatoes behind the house.",
)
_TEMPLATES = (
    "The {thing} was moved from {day} to {day2}.",
    "{name} works every {day} at {place}.",
    "See you on {day}!",
    "{duration} after {day} is {day2}.",
    "On {day}, {month} {date}, {name} went to {place}.",
    "The {thing} is on {day} morning.",
    "In {month} the days get {adj}.",
    "{name} was born in {month} {year}.",
    "The {thing} takes place every {month}.",
    "From {month} to {month2} {name} lived near {place}.",
    "Last {day} {name} missed the {thing}.",
    "The shop is closed on {day}s and open until {month} {date}.",
    "{day}, {day2} and {day3} are busy; {month} and {month2} are quiet.",
    "Deliveries: {day} {date} {month}, {day2} {date} {month2}.",
    "{name} prefers {month} to {month2}, and {day} to {day2}.",
)


def calendar_text(n_sentences: int, seed: int = 0, filler: float = 0.25) -> str:
    """Templated sentences naming weekdays and months (`filler` of them plain sentences without either)."""
    if n_sentences < 1:
        raise ConfigError(f"n_sentences must be at least 1, got {n_sentences}")
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(n_sentences):
        if rng.random() < filler:
            sentences.append(_FILLER[rng.integers(len(_FILLER))])
            continue
        k = int(rng.integers(1, 8))
        d = int(rng.integers(7))
        m = int(rng.integers(12))
        template = _TEMPLATES[rng.integers(len(_TEMPLATES))]
        sentences.append(template.format(
            thing=_THINGS[rng.integers(len(_THINGS))], name=_NAMES[rng.integers(len(_NAMES))],
            place=_PLACES[rng.integers(len(_PLACES))], day=WEEKDAYS[d], day2=WEEKDAYS[(d + k) % 7], day3=WEEKDAYS[(d + 2 * k) % 7],
            duration=f"{NUMBER_WORDS[k]} day{'s' if k > 1 else ''}", month=MONTHS[m],
            month2=MONTHS[(m + int(rng.integers(1, 12))) % 12], date=int(rng.integers(1, 29)),
            year=int(rng.integers(1950, 2024)), adj=("longer", "shorter", "colder", "warmer")[rng.integers(4)]))  # fmt: skip
    return " ".join(sentences)


@torch.no_grad()
def layer_activations(lm: LanguageModel, text: str, layer: int, n_tokens: int, window: int = 64,
                      batch: int = 16) -> tuple[torch.Tensor, list[str]]:  # fmt: skip
    """The residual after `layer` blocks at every token of `text` (first `n_tokens`, in windows), and each token's text.

    Only the first `layer` blocks run (the rest cannot change these residuals). The window's BOS is
    left out of the activations.
    """
    if not 1 <= layer <= lm.n_layers:
        raise ConfigError(
            f"layer must be in 1..{lm.n_layers} (the residual after that many blocks), got {layer}"
        )
    ids = lm.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    per_window = window - 1
    n_windows = min(len(ids) // per_window, max(1, n_tokens // per_window))
    if n_windows < 1:
        raise DataError(f"the text has {len(ids)} tokens, fewer than one window of {per_window}")
    rows = torch.tensor(ids[: n_windows * per_window]).view(n_windows, per_window)
    rows = torch.cat([torch.full((n_windows, 1), lm.bos_token_id), rows], dim=1)
    out = []
    for start in range(0, n_windows, batch):
        h = lm.embed(rows[start : start + batch].to(lm.device))
        h = lm.run_layers(h, range(layer))
        out.append(h[:, 1:].reshape(-1, lm.d_model).float().cpu())
    texts = lm.tokenizer.convert_ids_to_tokens(rows[:, 1:].reshape(-1).tolist())
    # byte-level BPE marks a leading space with 'Ġ'; show it as a space
    texts = [t.replace("Ġ", " ").replace("▁", " ") for t in texts]
    return torch.cat(out), texts


def train_small_sae(activations: torch.Tensor, n_latents: int, k: int, steps: int, *, batch: int = 256,
                    lr: float = 1e-3, seed: int = 0) -> tuple[TopKSAE, dict]:  # fmt: skip
    """A TopK SAE on `activations` (scaled to unit mean squared norm first; the scale is folded back)."""
    if steps < 1 or batch < 1 or not lr > 0:
        raise ConfigError(f"steps and batch must be at least 1 and lr positive, got {steps}, {batch}, {lr}")
    generator = torch.Generator().manual_seed(seed)
    scale = float(activations.pow(2).sum(dim=1).mean().sqrt())
    x = activations / scale
    sae = TopKSAE(x.shape[1], n_latents, k, seed=seed)
    with torch.no_grad():
        sae.b_dec.copy_(x.mean(dim=0))
    optimiser = torch.optim.Adam(sae.parameters(), lr=lr)
    start = time.perf_counter()
    bar = progress(range(steps), desc="small SAE", total=steps)
    losses = []
    for step in bar:
        rows = torch.randint(len(x), (batch,), generator=generator)
        terms = sae.loss(x[rows])
        optimiser.zero_grad()
        terms["loss"].backward()
        sae.remove_parallel_decoder_grad()
        optimiser.step()
        sae.normalize_decoder()
        if step % 50 == 0 or step == steps - 1:
            losses.append(float(terms["mse"].detach()))
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(mse=f"{losses[-1]:.4f}")
    sae.eval()
    with torch.no_grad():
        fvu = float((sae(x)[0] - x).pow(2).sum() / (x - x.mean(dim=0)).pow(2).sum())
        # back to the activations' own scale (TopK and ReLU commute with a positive factor): latents
        # become scale * z, so b_enc and b_dec take the factor and the unit-norm decoder rows stay
        sae.b_enc.mul_(scale)
        sae.b_dec.mul_(scale)
    info = {"fvu": fvu, "scale": scale, "seconds": round(time.perf_counter() - start, 2), "mse_curve": losses}
    return sae, info
