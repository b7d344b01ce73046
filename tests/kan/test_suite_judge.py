"""The kan_suite benchmark's recovery judge (benchmarks/kan_suite.py): what counts as an exact formula."""

from __future__ import annotations

import sys
from pathlib import Path

import sympy

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import kan_suite  # noqa: E402

x0, x1, x2, x3 = sympy.symbols("x0 x1 x2 x3")
TRUTH = x0 * x1 * x3 / (4 * sympy.pi * x2 * x3**3)  # I.12.2 as the database writes it


def test_a_constant_split_around_near_integer_exponents_is_snapped_to_the_truths_own():
    # the shape of a raw formula through log and exp edges: 1/(4 pi) appears only once the exponents
    # and the offset are snapped and 0.265258 * 0.3 merge
    f = sympy.Float
    raw = (f(1 / (4 * 3.141592653589793 * 0.3)) * (f(0.3) * x0 + f(1e-9)) ** f(1.00000001) * x1 ** f(0.99999999)
           / (x2 ** f(1.0000001) * x3 ** f(2.0000001)))  # fmt: skip
    exact, shown = kan_suite._recovered(raw, TRUTH)
    assert exact, shown
    assert sympy.simplify(sympy.sympify(shown) - TRUTH) == 0


def test_a_near_miss_is_not_recovered():
    # 1/(4 pi) off by 1%: no snapping makes it the truth
    raw = sympy.Float(0.0804) * x0 * x1 / (x2 * x3**2)
    exact, shown = kan_suite._recovered(raw, TRUTH)
    assert not exact
    assert "0.0804" in shown
    # a wrong structure with right constants is not recovered either
    assert not kan_suite._recovered(x0 * x1 / (4 * sympy.pi * x2 * x3), TRUTH)[0]


def test_a_formula_sympy_cannot_judge_is_not_recovered():
    assert kan_suite._recovered(sympy.zoo * x0, TRUTH)[0] is False
