"""Symbolic tools shared by studies: a function library with sympy mirrors, and vectorised fitting."""

from intelligible.symbolic.fit import fit_affine
from intelligible.symbolic.library import SYMBOLIC_LIB, SymbolicFunction, get_function

__all__ = ["SYMBOLIC_LIB", "SymbolicFunction", "fit_affine", "get_function"]
