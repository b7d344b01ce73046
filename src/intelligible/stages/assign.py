"""Label each layer with one of the four stages of inference, by documented rules.

The paper's stages (Lad, Gurnee, Tegmark 2024), in depth order:

1. detokenization - the first layers, which integrate local context into whole-word features;
   deleting them is catastrophic.
2. feature engineering - middle layers that build features; the logit lens reads little of the
   final prediction from them.
3. prediction ensembling - layers where the residual turns into the next-token prediction: the
   logit lens converges to the final distribution, prediction neurons appear.
4. residual sharpening - the last layers, where suppression neurons outnumber prediction neurons
   and calibrate the output.

Rules (thresholds are `StageRules` fields):

- Stage 1 is the longest run of layers from layer 0 (always included), within the first half of
  the network, whose deletion retains less than `detok_fraction` x the median retained accuracy
  over all deletions.
- Stage 4 is the longest run of final layers (the last one always included) whose suppression
  neuron count is at least their prediction neuron count.
- Stage 3 starts at the first layer after stage 1 from which the logit-lens KL to the final
  distribution stays at or below `lens_fraction` x its maximum, and ends where stage 4 starts.
- Stage 2 is everything between stages 1 and 3.
Where rules collide (tiny models), stages are shrunk so that each keeps at least one layer when the
network has four or more.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from intelligible.core.errors import DataError
from intelligible.stages.diagnostics import Diagnostics
from intelligible.stages.sweep import SweepResult

STAGE_NAMES = ("detokenization", "feature engineering", "prediction ensembling", "residual sharpening")


@dataclass
class StageRules:
    detok_fraction: float = 0.9
    lens_fraction: float = 0.8


@dataclass
class StageAssignment:
    """Stage index (0..3) per layer, the first layer of each stage, and the rules used."""

    labels: list[int]
    boundaries: list[int]  # first layer of stages 1..4
    rules: dict

    @property
    def names(self) -> list[str]:
        return [STAGE_NAMES[s] for s in self.labels]

    def layers_of(self, stage: int) -> list[int]:
        return [layer for layer, s in enumerate(self.labels) if s == stage]

    def to_dict(self) -> dict:
        return {**asdict(self), "stage_names": list(STAGE_NAMES)}

    def describe(self) -> str:
        parts = []
        for stage, name in enumerate(STAGE_NAMES):
            layers = self.layers_of(stage)
            span = f"{layers[0]}-{layers[-1]}" if len(layers) > 1 else (str(layers[0]) if layers else "none")
            parts.append(f"{name}: layers {span}")
        return "; ".join(parts)


def assign_stages(
    sweep: SweepResult, diagnostics: Diagnostics, rules: StageRules | None = None
) -> StageAssignment:
    """Apply the documented rules to a deletion sweep and the per-layer diagnostics."""
    rules = rules or StageRules()
    n = diagnostics.n_layers
    deletions = {row["layer"]: row["retained_accuracy"] for row in sweep.of_kind("delete")}
    if sorted(deletions) != list(range(n)):
        raise DataError(
            "stage assignment needs a deletion sweep over every layer (run the sweep with kind 'delete')"
        )
    retained = np.array([deletions[i] for i in range(n)])
    cheap = rules.detok_fraction * float(np.median(retained))

    detok_end = 1  # stage 2 starts here
    while detok_end < max(n // 2, 1) and retained[detok_end] < cheap:
        detok_end += 1

    pred = np.array(diagnostics.prediction_neurons)
    supp = np.array(diagnostics.suppression_neurons)
    sharpen_start = n - 1
    while sharpen_start - 1 >= 0 and supp[sharpen_start - 1] >= pred[sharpen_start - 1]:
        sharpen_start -= 1

    kl = np.array(diagnostics.lens_kl_to_final)
    low = kl <= rules.lens_fraction * kl.max()
    ensemble_start = n - 1
    while ensemble_start - 1 >= detok_end and low[ensemble_start - 1]:
        ensemble_start -= 1

    boundaries = _fit_boundaries(n, detok_end, ensemble_start, sharpen_start)
    labels = [int(np.searchsorted(boundaries, layer, side="right")) - 1 for layer in range(n)]
    return StageAssignment(labels=labels, boundaries=boundaries, rules=asdict(rules))


def _fit_boundaries(n: int, detok_end: int, ensemble_start: int, sharpen_start: int) -> list[int]:
    """Order the three cut points so stages are contiguous and, when n >= 4, each non-empty."""
    if n < 4:
        cuts = sorted([min(detok_end, n), min(ensemble_start, n), min(sharpen_start, n)])
        return [0, *cuts]
    sharpen_start = min(max(sharpen_start, 3), n - 1)
    detok_end = min(max(detok_end, 1), sharpen_start - 2)
    ensemble_start = min(max(ensemble_start, detok_end + 1), sharpen_start - 1)
    return [0, detok_end, ensemble_start, sharpen_start]


def stage_means(values: list[float], assignment: StageAssignment) -> list[float | None]:
    """Mean of a per-layer signal within each stage (None for an empty stage)."""
    out: list[float | None] = []
    for stage in range(4):
        layers = assignment.layers_of(stage)
        out.append(float(np.mean([values[i] for i in layers])) if layers else None)
    return out
