"""Kolmogorov-Arnold Networks (Liu et al. 2024). Work in progress (issue 3): layers, network, grids."""

from intelligible.kan.layer import KANLayer
from intelligible.kan.model import KAN
from intelligible.kan.spline import (
    bspline_basis,
    local_uniform_basis,
    scatter_dense,
    uniform_features,
    uniform_grid,
)

__all__ = [
    "KAN",
    "KANLayer",
    "bspline_basis",
    "local_uniform_basis",
    "scatter_dense",
    "uniform_features",
    "uniform_grid",
]
