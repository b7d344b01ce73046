"""Kolmogorov-Arnold Networks (Liu et al. 2024). Work in progress (issue 3): layers, network, grids, fit, pruning, symbolic."""

from intelligible.kan.data import create_dataset
from intelligible.kan.discover import DiscoverConfig, Discovery, discover
from intelligible.kan.layer import KANLayer
from intelligible.kan.model import KAN
from intelligible.kan.physics import gradient, laplacian, poisson_loss
from intelligible.kan.prune import attribute, prune, prune_edge, prune_input, prune_node
from intelligible.kan.spline import (
    bspline_basis,
    local_uniform_basis,
    scatter_dense,
    uniform_features,
    uniform_grid,
)
from intelligible.kan.symbolic import (
    SymbolicFormula,
    auto_symbolic,
    fix_symbolic,
    suggest_symbolic,
    symbolic_formula,
    unfix_symbolic,
)
from intelligible.kan.train import FitConfig, fit, regularization

__all__ = [
    "KAN",
    "FitConfig",
    "create_dataset",
    "DiscoverConfig",
    "Discovery",
    "discover",
    "SymbolicFormula",
    "fit",
    "regularization",
    "KANLayer",
    "attribute",
    "auto_symbolic",
    "fix_symbolic",
    "gradient",
    "laplacian",
    "poisson_loss",
    "suggest_symbolic",
    "symbolic_formula",
    "unfix_symbolic",
    "prune",
    "prune_edge",
    "prune_input",
    "prune_node",
    "bspline_basis",
    "local_uniform_basis",
    "scatter_dense",
    "uniform_features",
    "uniform_grid",
]
