"""Safe formula parsing: what is accepted, what is refused, and that torch and sympy agree."""

from __future__ import annotations

import math

import pytest
import sympy
import torch

from intelligible.core.errors import ConfigError
from intelligible.symbolic.parse import parse_formula


def test_parse_and_evaluate():
    formula = parse_formula("exp(sin(pi*x0) + x1**2)")
    assert formula.n_var == 2
    x0, x1 = formula.symbols
    assert sympy.simplify(formula.sympy - sympy.exp(sympy.sin(sympy.pi * x0) + x1**2)) == 0
    x = torch.tensor([[0.25, 0.5], [-0.5, 0.1]])
    expected = torch.exp(torch.sin(math.pi * x[:, 0]) + x[:, 1] ** 2)
    torch.testing.assert_close(formula(x), expected)


def test_caret_power_constants_and_unary():
    formula = parse_formula("-x0^2 + e - 3/2", n_var=1)
    torch.testing.assert_close(formula(torch.tensor([[2.0]])), torch.tensor([-4 + math.e - 1.5]))
    assert parse_formula("2.5")(torch.zeros(3, 1)).tolist() == [2.5, 2.5, 2.5]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('true')", "unknown function"),
        ("x0.real", "unsupported expression"),
        ("os", "unknown name 'os'"),
        ("sin(x0, x1)", "takes exactly one argument"),
        ("x0 if x1 else 2", "unsupported expression"),
        ("[x0]", "unsupported expression"),
        ("'text'", "unsupported expression"),
        ("sin(", "cannot parse"),
        ("   ", "is empty"),
        ("lambda: 1", "unsupported expression"),
        ("foo(x0)", "unknown function 'foo'"),
    ],
)
def test_unsafe_or_invalid_input_is_refused(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_formula(text)


def test_variable_out_of_range():
    with pytest.raises(ConfigError, match="variable x3 is out of range: the function has x0..x1"):
        parse_formula("x0 + x3", n_var=2)
