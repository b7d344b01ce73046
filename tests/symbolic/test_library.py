"""The symbolic library: every function's sympy form says what its torch form computes."""

from __future__ import annotations

import numpy as np
import pytest
import sympy
import torch

from intelligible.symbolic.library import SYMBOLIC_LIB


@pytest.mark.parametrize("name", sorted(SYMBOLIC_LIB))
def test_the_shown_form_is_the_torch_form_inside_and_outside_the_domain(name):
    fn = SYMBOLIC_LIB[name]
    u = sympy.Symbol("u")
    # values on both sides of every protected singularity (0, +-1), and at them
    x = torch.cat([torch.linspace(-3, 3, 601, dtype=torch.float64), torch.tensor([0.0, 1.0, -1.0, 1e-9])])
    inside = x[fn.domain(x)] if fn.domain is not None else x
    for points, protected in [(inside, False), (x, not fn.in_domain(x))]:
        if tan_pole := (name == "tan"):
            points = points[(points.abs() - np.pi / 2).abs() > 1e-3]
        shown = sympy.lambdify(u, fn.sympy_form(u, protected), "numpy")
        with np.errstate(all="ignore"):
            values = np.broadcast_to(np.asarray(shown(points.numpy()), dtype=np.float64), points.shape)
        expected = fn.torch_fn(points).numpy()
        np.testing.assert_allclose(values, expected, rtol=1e-9, atol=1e-9 * (1 + np.abs(expected).max()),
                                   err_msg=f"{name}, protected={protected}, tan pole removed={tan_pole}")  # fmt: skip
    # a protected function says so: it is protected somewhere on [-3, 3] and the true form differs there
    if fn.domain is not None:
        assert not fn.in_domain(x) and fn.protected is not None
