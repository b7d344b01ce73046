"""Symbolic tools shared by studies: a function library with sympy mirrors, and vectorised fitting, safe formula parsing."""

from intelligible.symbolic.fit import fit_affine
from intelligible.symbolic.library import SYMBOLIC_LIB, SymbolicFunction, get_function
from intelligible.symbolic.parse import Formula, parse_formula

__all__ = ["SYMBOLIC_LIB", "Formula", "SymbolicFunction", "fit_affine", "get_function", "parse_formula"]
