"""Symbolic tools shared by studies: a function library with sympy mirrors, and vectorised fitting, safe formula parsing,
exact integer regression, Boolean formulas and brute-force expression search (for MIPS)."""

from intelligible.symbolic.boolean import algebraic_normal_form, boolean_formula
from intelligible.symbolic.fit import fit_affine
from intelligible.symbolic.integer_regression import IntegerFit, fit_integer_linear
from intelligible.symbolic.library import SYMBOLIC_LIB, SymbolicFunction, get_function
from intelligible.symbolic.parse import Formula, parse_formula
from intelligible.symbolic.search import evaluate_expression, search_expression

__all__ = [
    "SYMBOLIC_LIB",
    "Formula",
    "IntegerFit",
    "SymbolicFunction",
    "algebraic_normal_form",
    "boolean_formula",
    "evaluate_expression",
    "fit_affine",
    "fit_integer_linear",
    "get_function",
    "parse_formula",
    "search_expression",
]
