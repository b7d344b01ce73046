"""discover: the paper's recipe in one call (sparse fit, prune, refit, layer-wise auto_symbolic, polish)."""

from __future__ import annotations

import pytest
import sympy
import torch

from intelligible.core.errors import ConfigError
from intelligible.kan import KAN, create_dataset
from intelligible.kan.discover import DiscoverConfig, discover
from intelligible.symbolic.simplify import same_expression, snap_constants


@pytest.mark.slow(seconds=40)  # 24-46 s measured on 2 busy cores (auto_symbolic's fits dominate)
def test_discover_recovers_a_product_through_a_multiplication_node():
    dataset = create_dataset(lambda x: x[:, 0] * x[:, 1], n_var=2, seed=0, dtype=torch.float64,
                             train_num=200, test_num=200)  # fmt: skip
    config = DiscoverConfig(steps=10, layer_steps=10, polish_steps=10, lamb=0.002, lib=("x", "x^2", "sin"))
    result = discover(KAN([2, [0, 1], 1], seed=0).double(), dataset, config)
    x0, x1 = sympy.symbols("x0 x1")
    snapped, moved = snap_constants(result.raw, tol=1e-3)
    assert moved < 1e-3 and same_expression(snapped, x0 * x1), result.raw
    assert str(result.formula[0]) == "x0*x1" and result.formula.passed
    assert result.test_rmse < 1e-3 and result.widths["pruned"] == [[2, 0], [0, 1], [1, 0]]


def test_discover_checks_its_config_before_training():
    dataset = create_dataset(lambda x: x[:, 0], n_var=1, train_num=20, test_num=20)
    model = KAN([1, 1], seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    for config, message in [
        (DiscoverConfig(lib=("x", "sinh")), "unknown symbolic function 'sinh'"),
        (DiscoverConfig(lib=()), "lib must be a non-empty list"),
        (DiscoverConfig(lamb=-1.0), "lamb must be between 0"),
        (DiscoverConfig(steps=0), "steps must be between 1"),
        (DiscoverConfig(restarts=0), "restarts must be between 1"),
        (DiscoverConfig(restarts=2.5), "restarts must be"),
    ]:
        with pytest.raises(ConfigError, match=message):
            discover(model, dataset, config)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


@pytest.mark.slow(seconds=300)  # 275 s measured on 2 busy cores; the auto_symbolic fits dominate
def test_discover_recovers_a_sum_with_a_product_with_the_documented_defaults():
    # issue 20: sin(x0) x1 + x2^2 through [3, [1, 1], 1], clean data, DiscoverConfig() as documented.
    # Seeds 0 and 1 of 0-2 recover it exactly (docs/kan.md); seed 2 keeps extra edges after pruning.
    dataset = create_dataset(lambda x: torch.sin(x[:, 0]) * x[:, 1] + x[:, 2] ** 2, n_var=3, seed=0,
                             dtype=torch.float64, train_num=1000, test_num=1000)  # fmt: skip
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as measured: the recipe is chaotic in the last bits of torch's sums
    try:
        result = discover(KAN([3, [1, 1], 1], seed=0).double(), dataset, DiscoverConfig(seed=0))
    finally:
        torch.set_num_threads(threads)
    x0, x1, x2 = sympy.symbols("x0 x1 x2")
    snapped, moved = snap_constants(result.raw, tol=1e-3)
    assert moved < 1e-3 and same_expression(snapped, sympy.sin(x0) * x1 + x2**2), result.raw
    assert result.formula.passed and result.test_rmse < 1e-6


def test_discover_goes_on_from_the_restart_with_the_lowest_training_loss():
    dataset = create_dataset(lambda x: torch.sin(3 * x[:, 0]), n_var=1, seed=0, dtype=torch.float64,
                             train_num=60, test_num=60)  # fmt: skip
    config = DiscoverConfig(steps=3, layer_steps=0, polish_steps=0, lib=("x", "sin"), restarts=3)
    result = discover(KAN([1, 2, 1], seed=5).double(), dataset, config)
    tried = result.history["restarts"]
    assert [t["seed"] for t in tried] == [5, 6, 7]
    best = min(tried, key=lambda t: t["train_loss"])
    assert result.history["chosen_seed"] == best["seed"]
    assert result.history["sparse"]["train_loss"][-1] == best["train_loss"]
    # one restart: the model passed in is the one trained
    model = KAN([1, 2, 1], seed=5).double()
    single = discover(
        model, dataset, DiscoverConfig(steps=3, layer_steps=0, polish_steps=0, lib=("x",), restarts=1)
    )
    assert single.history["chosen_seed"] == 5 and len(single.history["restarts"]) == 1
    assert single.history["restarts"][0]["train_loss"] == tried[0]["train_loss"]
