"""World models (Kantamneni, Liu, Tegmark 2024): test hypotheses about what a trained network computes.

Data generators (in-context linear regression, the harmonic oscillator), the authors' small
transformer with named sites, and the four criteria for any torch model:

    from intelligible.worldmodel import generate, test_hypothesis, matrix_exponential
    report = test_hypothesis(model, ["attn-res-1"], [matrix_exponential()], generate("sho-undamped", 2048))
"""

from intelligible.worldmodel.criteria import (
    CriteriaReport,
    InterventionResult,
    available_sites,
    encoding_vs_performance,
    intervene,
    test_hypothesis,
)
from intelligible.worldmodel.data import (
    TASKS,
    SequenceBatch,
    counterfactual,
    generate,
    linear_regression,
    oscillator_closed_form,
    sho,
    sho_matrix,
)
from intelligible.worldmodel.hypotheses import (
    Hypothesis,
    builtin_hypotheses,
    linear_multistep,
    matrix_exponential,
    regression_hypotheses,
    taylor,
)
from intelligible.worldmodel.model import PhysicsTransformer
from intelligible.worldmodel.train import TrainConfig, load_run, train

__all__ = [
    "TASKS",
    "CriteriaReport",
    "Hypothesis",
    "InterventionResult",
    "PhysicsTransformer",
    "SequenceBatch",
    "TrainConfig",
    "available_sites",
    "builtin_hypotheses",
    "counterfactual",
    "encoding_vs_performance",
    "generate",
    "intervene",
    "linear_multistep",
    "linear_regression",
    "load_run",
    "matrix_exponential",
    "oscillator_closed_form",
    "regression_hypotheses",
    "sho",
    "sho_matrix",
    "taylor",
    "test_hypothesis",
    "train",
]
