"""Snapping fitted constants to exact numbers, and comparing formulas."""

from __future__ import annotations

import math

import sympy

from intelligible.symbolic.simplify import same_expression, snap_constants

x, y = sympy.symbols("x y")


def test_snaps_near_exact_constants_and_reports_the_largest_move():
    raw = sympy.Float(1.0000004) * sympy.exp(
        sympy.Float(0.9999992) * y**2 + sympy.sin(sympy.Float(3.1415921) * x)
    )
    snapped, moved = snap_constants(raw)
    assert same_expression(snapped, sympy.exp(sympy.sin(sympy.pi * x) + y**2))
    assert 5e-7 < moved < 1e-6


def test_degenerate_constants_merge_before_snapping():
    # c * exp(b + ...) with c = 2.3 and b = -log(2.3): only the product is meaningful, and it is 1
    raw = sympy.Float(2.3) * sympy.exp(sympy.sin(sympy.pi * x) / 2 - sympy.Float(math.log(2.3)))
    snapped, _ = snap_constants(raw)
    assert same_expression(snapped, sympy.exp(sympy.sin(sympy.pi * x) / 2))


def test_tiny_terms_vanish_and_a_non_nice_constant_is_reported():
    snapped, moved = snap_constants(sympy.Float(1e-9) * x + sympy.Float(2.0000001) * y)
    assert snapped == 2 * y and moved < 1e-6
    _, moved = snap_constants(sympy.Float(1.37) * x)
    assert moved == math.inf


def test_same_expression_is_false_for_different_functions():
    assert not same_expression(sympy.sin(x), sympy.cos(x))
    assert same_expression(sympy.sin(x) ** 2 + sympy.cos(x) ** 2, sympy.Integer(1))
