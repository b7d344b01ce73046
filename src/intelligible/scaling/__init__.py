"""The resource model of neural scaling (Song, Liu, Tegmark, Gore 2024, arXiv 2402.05164).

Measure how many hidden neurons a network gives each subtask, fit how the loss falls with them,
and predict the scaling exponent in parameters:

    from intelligible.scaling import SweepConfig, run_grid, analyse
    records = run_grid(SweepConfig(task="parallel", betas=(0.5, 0.9)))
    analyse(records)["ratios"]          # N1/N2 per beta, with bootstrap intervals

Heavy modules (torch) load with the names that need them.
"""

from __future__ import annotations

from typing import Any

_NAMES = {
    "SweepConfig": "intelligible.scaling.sweep",
    "run_grid": "intelligible.scaling.sweep",
    "Task": "intelligible.scaling.tasks",
    "make_task": "intelligible.scaling.tasks",
    "BatchedMLP": "intelligible.scaling.mlp",
    "Spec": "intelligible.scaling.mlp",
    "train_batched": "intelligible.scaling.mlp",
    "train_single": "intelligible.scaling.mlp",
    "allocated_by_weights": "intelligible.scaling.allocation",
    "ablation_losses": "intelligible.scaling.allocation",
    "allocated_by_ablation": "intelligible.scaling.allocation",
    "PowerFit": "intelligible.scaling.fit",
    "fit_power_law": "intelligible.scaling.fit",
    "predict_parameter_exponent": "intelligible.scaling.fit",
    "FitOptions": "intelligible.scaling.experiment",
    "analyse": "intelligible.scaling.experiment",
    "additivity": "intelligible.scaling.experiment",
    "sweep_run": "intelligible.scaling.experiment",
    "fit_run": "intelligible.scaling.experiment",
    "TransformerConfig": "intelligible.scaling.experiment",
    "transformer_growth": "intelligible.scaling.experiment",
    "transformer_run": "intelligible.scaling.experiment",
    "reproduce": "intelligible.scaling.experiment",
}


def __getattr__(name: str) -> Any:
    if name in _NAMES:
        import importlib

        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'intelligible.scaling' has no attribute {name!r}")


__all__ = sorted(_NAMES)
