"""OptPDE (Kantamneni, Liu, Tegmark 2024): count the conserved quantities of PDEs, prove them exactly,
and search a family of evolution equations for integrable-looking ones.

    from intelligible.optpde import parse_pde, reduced_basis, make_curves, CurveConfig, count_conserved

    pde = parse_pde("u_xxx + 6*u*u_x")
    basis = reduced_basis(("u",), degree=3, order=2)
    result = count_conserved(pde, basis, make_curves(CurveConfig(), max_derivative=4))
    print(result.n_conserved, [str(q) for q in result.quantities])   # 3: u, u**2, u**3 - u_x**2/2
"""

from intelligible.optpde.basis import Basis, monomial_basis, paper_basis, reduce_density, reduced_basis
from intelligible.optpde.conservation import (
    ConservedQuantity,
    CountResult,
    conservation_matrix,
    count_conserved,
    hard_count,
    prove,
    soft_count,
)
from intelligible.optpde.curves import CurveConfig, Curves, make_curves
from intelligible.optpde.jet import conserves, euler, is_total_derivative, jet_symbol, total_derivative
from intelligible.optpde.pde import PDE, family_monomials, parse_pde, pde_from_coefficients

__all__ = [
    "PDE",
    "Basis",
    "ConservedQuantity",
    "CountResult",
    "CurveConfig",
    "Curves",
    "conservation_matrix",
    "conserves",
    "count_conserved",
    "euler",
    "family_monomials",
    "hard_count",
    "is_total_derivative",
    "jet_symbol",
    "make_curves",
    "monomial_basis",
    "paper_basis",
    "parse_pde",
    "pde_from_coefficients",
    "prove",
    "reduce_density",
    "reduced_basis",
    "soft_count",
    "total_derivative",
]
