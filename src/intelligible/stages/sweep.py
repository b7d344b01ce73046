"""Layer deletion and adjacent-swap sweeps (Lad, Gurnee, Tegmark 2024).

An edit that changes the layer order from position p onwards leaves the residual stream before p
untouched, so the sweep computes the unedited residuals once per batch and starts every edited
run from the longest prefix it shares with either the unedited order or the edit run just before
it (delete i and swap i both begin with layers 0..i-1 then i+1). The naive path, kept for checking
and benchmarking, runs every edit from the embedding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor

from intelligible.core.errors import ConfigError, DataError
from intelligible.core.progress import progress
from intelligible.lm.model import LanguageModel, delete_layer, swap_layers
from intelligible.lm.text import iter_batches
from intelligible.stages.metrics import MetricSums, reference_from_hidden

KINDS = ("delete", "swap")


@dataclass(frozen=True)
class Intervention:
    """One edit of the layer order: `kind` is "delete", "swap" (layer with layer + 1) or "order"."""

    kind: str
    layer: int | None
    order: tuple[int, ...]

    @property
    def name(self) -> str:
        if self.kind == "delete":
            return f"delete {self.layer}"
        if self.kind == "swap":
            return f"swap {self.layer}-{self.layer + 1}"
        return "order " + ",".join(map(str, self.order))


def make_interventions(
    n_layers: int, kinds: Sequence[str] = KINDS, layers: Sequence[int] | None = None
) -> list[Intervention]:
    """Every deletion and/or adjacent swap (of `layers`, default all), interleaved: delete i, swap i, ..."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ConfigError(f"unknown intervention kind(s) {unknown or list(kinds)}; valid: {', '.join(KINDS)}")
    chosen = list(range(n_layers)) if layers is None else [int(i) for i in layers]
    bad = [i for i in chosen if not 0 <= i < n_layers]
    if bad:
        raise ConfigError(f"layer index {bad[0]} is out of range: this model has layers 0..{n_layers - 1}")
    edits = []
    for layer in sorted(set(chosen)):
        if "delete" in kinds:
            edits.append(Intervention("delete", layer, tuple(delete_layer(n_layers, layer))))
        if "swap" in kinds and layer < n_layers - 1:
            edits.append(Intervention("swap", layer, tuple(swap_layers(n_layers, layer))))
    return edits


def custom_intervention(order: Sequence[int]) -> Intervention:
    return Intervention("order", None, tuple(int(i) for i in order))


@dataclass
class SweepResult:
    """Baseline metrics and one row per intervention (accuracy, retained accuracy, KL, loss change, entropy)."""

    model: str
    n_layers: int
    tokens: int
    baseline: dict[str, float]
    rows: list[dict] = field(default_factory=list)
    seconds: float | None = None  # wall time of the sweep, every resumed part together (sweep_run)
    parts: int = 1  # 1 for an uninterrupted sweep, one more per --resume

    def of_kind(self, kind: str) -> list[dict]:
        return [row for row in self.rows if row["kind"] == kind]

    def column(self, kind: str, key: str) -> list[float]:
        return [row[key] for row in self.of_kind(kind)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SweepResult:
        return cls(**data)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _check_windows(model: LanguageModel, windows: Tensor) -> Tensor:
    if not isinstance(windows, Tensor) or windows.dim() != 2:
        raise DataError("windows must be a (n_windows, seq_len) tensor of token ids")
    if windows.shape[0] == 0 or windows.shape[1] < 2:
        raise DataError(f"need at least one window of at least 2 tokens, got shape {tuple(windows.shape)}")
    if int(windows.max()) >= model.vocab_size or int(windows.min()) < 0:
        raise DataError(f"token ids must lie in 0..{model.vocab_size - 1}")
    return windows


@torch.inference_mode()
def run_sweep(
    model: LanguageModel,
    windows: Tensor,
    interventions: Sequence[Intervention] | None = None,
    *,
    batch_size: int = 4,
    reuse_prefix: bool = True,
    show_progress: bool | None = None,
    resume_state: dict | None = None,
    on_batch: Callable[[dict], None] | None = None,
) -> SweepResult:
    """Measure every intervention on `windows` (n_windows, seq_len) against the unedited model.

    After each batch `on_batch(state)` receives the running sums (JSON-safe); passing that state back
    as `resume_state` skips the batches it covers, so an interrupted sweep resumes where it stopped.
    """
    windows = _check_windows(model, windows)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {batch_size}")
    edits = list(interventions) if interventions is not None else make_interventions(model.n_layers)
    for edit in edits:
        model._check_order(edit.order)
    identity = list(range(model.n_layers))
    baseline = MetricSums()
    sums = [MetricSums() for _ in edits]
    n_batches = (windows.shape[0] + batch_size - 1) // batch_size
    done = 0
    if resume_state is not None:
        done = _restore(resume_state, edits, batch_size, baseline, sums)
    bar = progress(
        total=n_batches * len(edits),
        desc="stages sweep",
        disable=None if show_progress is None else not show_progress,
    )
    bar.update(done * len(edits))
    for index, batch in enumerate(iter_batches(windows, batch_size)):
        if index < done:
            continue
        batch = batch.to(model.device)
        h0 = model.embed(batch)
        pos = model.positional(h0)
        # states[j]: residual after the first j layers of the unedited order
        states = [h0]
        for layer in identity:
            states.append(model.block_forward(layer, states[-1], pos))
        ref = reference_from_hidden(model, states[-1], batch)
        baseline.add_reference(ref)
        previous_order: Sequence[int] = identity
        previous_states = states
        for edit, acc in zip(edits, sums):
            if reuse_prefix:
                from_identity = _common_prefix(edit.order, identity)
                from_previous = _common_prefix(edit.order, previous_order)
                if from_previous > from_identity:
                    start, cache = from_previous, previous_states[: from_previous + 1]
                else:
                    start, cache = from_identity, states[: from_identity + 1]
            else:
                start, cache = 0, [h0]
            h = cache[-1]
            run_states = list(cache)
            for layer in edit.order[start:]:
                h = model.block_forward(layer, h, pos)
                run_states.append(h)
            acc.add_hidden(model, h, ref)
            previous_order, previous_states = edit.order, run_states
            bar.update(1)
            bar.set_postfix_str(f"{edit.name}: acc {acc.summary()['accuracy']:.3f}", refresh=False)
        if on_batch is not None:
            on_batch(
                {
                    "batches_done": index + 1,
                    "batch_size": batch_size,
                    "names": [edit.name for edit in edits],
                    "baseline": asdict(baseline),
                    "sums": [asdict(acc) for acc in sums],
                }
            )
    bar.close()

    base = baseline.summary()
    rows = []
    denominator = max(model.n_layers - 1, 1)
    for edit, acc in zip(edits, sums):
        stats = acc.summary()
        depth = (
            None if edit.layer is None else (edit.layer + (0.5 if edit.kind == "swap" else 0.0)) / denominator
        )
        rows.append(
            {
                "kind": edit.kind,
                "layer": edit.layer,
                "name": edit.name,
                "relative_depth": depth,
                "accuracy": stats["accuracy"],
                "retained_accuracy": stats["accuracy"] / base["accuracy"]
                if base["accuracy"] > 0
                else float("nan"),
                "kl": stats["kl"],
                "loss": stats["loss"],
                "loss_change": stats["loss"] - base["loss"],
                "entropy": stats["entropy"],
            }
        )
    return SweepResult(
        model=model.name, n_layers=model.n_layers, tokens=base["tokens"], baseline=base, rows=rows
    )


def _restore(
    state: dict, edits: Sequence[Intervention], batch_size: int, baseline: MetricSums, sums: list
) -> int:
    """Load running sums saved by `on_batch`; refuse a state from a different sweep."""
    names = [edit.name for edit in edits]
    if state.get("names") != names or state.get("batch_size") != batch_size:
        raise ConfigError(
            "the saved sweep state is for other interventions or batch size; drop --resume to start over"
        )
    for key, value in state["baseline"].items():
        setattr(baseline, key, value)
    for acc, saved in zip(sums, state["sums"]):
        for key, value in saved.items():
            setattr(acc, key, value)
    return int(state["batches_done"])
