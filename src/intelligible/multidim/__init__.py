"""Irreducible multi-dimensional features (Engels et al. 2024): reducibility indices, SAE cluster discovery,
circles in a model's residual stream, and interventions on them."""

from intelligible.multidim.circles import (
    MONTHS,
    WEEKDAYS,
    PromptSet,
    circle_r2,
    circular_order_correlation,
    collect_residuals,
    layer_circles,
    month_prompts,
    patch_circle,
    score_task,
    weekday_prompts,
)
from intelligible.multidim.clustering import graph_clusters, spectral_clusters
from intelligible.multidim.discover import ClusterScore, DiscoverConfig, rank_clusters, score_cluster
from intelligible.multidim.indices import (
    Mixture,
    Separability,
    mixture_index,
    pca_planes,
    reference_mixture,
    reference_separability,
    separability_index,
)
from intelligible.multidim.shapes import make_shape, paper_example

__all__ = [
    "MONTHS",
    "WEEKDAYS",
    "ClusterScore",
    "DiscoverConfig",
    "Mixture",
    "PromptSet",
    "Separability",
    "circle_r2",
    "circular_order_correlation",
    "collect_residuals",
    "graph_clusters",
    "layer_circles",
    "make_shape",
    "mixture_index",
    "month_prompts",
    "paper_example",
    "patch_circle",
    "pca_planes",
    "rank_clusters",
    "reference_mixture",
    "reference_separability",
    "score_cluster",
    "score_task",
    "separability_index",
    "spectral_clusters",
    "weekday_prompts",
]
