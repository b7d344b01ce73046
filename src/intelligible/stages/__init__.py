"""Stages of inference (Lad, Gurnee, Tegmark 2024): layer deletion/swap robustness and the four stages."""

from intelligible.stages.assign import STAGE_NAMES, StageAssignment, StageRules, assign_stages
from intelligible.stages.diagnostics import Diagnostics, diagnose, local_attention_mass, neuron_classes
from intelligible.stages.experiment import (
    PRESETS,
    StagesConfig,
    diagnose_run,
    reproduce,
    run_experiment,
    sweep_run,
)
from intelligible.stages.metrics import MetricSums, next_token_summary, reference_from_logits
from intelligible.stages.sweep import (
    Intervention,
    SweepResult,
    custom_intervention,
    make_interventions,
    run_sweep,
)

__all__ = [
    "PRESETS",
    "STAGE_NAMES",
    "Diagnostics",
    "Intervention",
    "MetricSums",
    "StageAssignment",
    "StageRules",
    "StagesConfig",
    "SweepResult",
    "assign_stages",
    "custom_intervention",
    "diagnose",
    "diagnose_run",
    "local_attention_mass",
    "make_interventions",
    "neuron_classes",
    "next_token_summary",
    "reference_from_logits",
    "reproduce",
    "run_experiment",
    "run_sweep",
    "sweep_run",
]
