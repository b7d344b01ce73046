"""Kolmogorov-Arnold Networks (Liu et al. 2024). Work in progress: the spline core lands first."""

from intelligible.kan.spline import bspline_basis, local_uniform_basis, scatter_dense, uniform_grid

__all__ = ["bspline_basis", "local_uniform_basis", "scatter_dense", "uniform_grid"]
