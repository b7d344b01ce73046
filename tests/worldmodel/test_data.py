"""The generators against closed forms, energy, the ODE itself, and e^{A dt}."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from intelligible.core.errors import ConfigError, DataError
from intelligible.worldmodel.data import (
    counterfactual,
    energy,
    generate,
    linear_regression,
    oscillator_closed_form,
    sho,
)
from intelligible.worldmodel.hypotheses import matrix_exponential


def test_undamped_matches_the_textbook_solution_and_conserves_energy():
    batch = sho(64, kind="undamped", length=20, seed=1)
    p = batch.params
    t = p["dt"][:, None] * np.arange(20)
    w = p["omega"][:, None]
    x = p["x0"][:, None] * np.cos(w * t) + p["v0"][:, None] / w * np.sin(w * t)
    v = -p["x0"][:, None] * w * np.sin(w * t) + p["v0"][:, None] * np.cos(w * t)
    states = batch.states.double().numpy()
    assert np.allclose(states[..., 0], x, atol=1e-6) and np.allclose(states[..., 1], v, atol=1e-6)
    e = energy(batch)
    assert np.allclose(e, e[:, :1], rtol=1e-5, atol=1e-6)
    assert math.pi / 2 <= p["omega"].min() and p["omega"].max() <= math.pi
    assert (p["dt"] < 2 * math.pi / p["omega"]).all()


@pytest.mark.parametrize("kind", ["underdamped", "overdamped"])
def test_damped_energy_decays(kind):
    batch = sho(64, kind=kind, seed=2)
    e = energy(batch)
    assert (np.diff(e, axis=1) <= 1e-6).all()
    assert (e[:, -1] < e[:, 0]).all()
    g, w = batch.params["gamma"], batch.params["omega"]
    assert (g < w).all() if kind == "underdamped" else ((g > w) & (g < w + math.pi / 4)).all()
    assert batch.positions == 31  # 32 states


@pytest.mark.parametrize("gamma_over_omega", [0.0, 0.4, 1.0, 1.3])
def test_closed_form_solves_the_ode(gamma_over_omega):
    # v is dx/dt and v' = -omega^2 x - 2 gamma v, checked with central differences
    omega, h = 2.0, 1e-5
    gamma = gamma_over_omega * omega
    t = np.linspace(0.1, 3.0, 7)
    x, v = oscillator_closed_form(0.7, -0.3, omega, gamma, t)
    xp, vp = oscillator_closed_form(0.7, -0.3, omega, gamma, t + h)
    xm, vm = oscillator_closed_form(0.7, -0.3, omega, gamma, t - h)
    assert np.allclose((xp - xm) / (2 * h), v, atol=1e-7)
    assert np.allclose((vp - vm) / (2 * h), -(omega**2) * x - 2 * gamma * v, atol=1e-7)
    x0, v0 = oscillator_closed_form(0.7, -0.3, omega, gamma, 0.0)
    assert np.isclose(x0, 0.7) and np.isclose(v0, -0.3)


@pytest.mark.parametrize("task", ["sho-undamped", "sho-underdamped", "sho-overdamped"])
def test_matrix_exponential_maps_each_state_to_the_next(task):
    batch = generate(task, 32, seed=3)
    step = matrix_exponential().values(batch)[:, 0, :].reshape(-1, 2, 2)
    predicted = np.einsum("nab,ntb->nta", step, batch.inputs.double().numpy())
    assert np.allclose(predicted, batch.targets.double().numpy(), atol=2e-6)


def test_test_split_draws_omega_outside_the_training_band():
    omega = sho(500, split="test", seed=4).params["omega"] / math.pi
    assert ((omega >= 0.25) & (omega <= 0.5) | (omega >= 1.0) & (omega <= 1.25)).all()
    assert (omega < 0.5).any() and (omega > 1.0).any()


def test_regression_tokens_and_loss_mask():
    batch = linear_regression(8, pairs=5, seed=0)
    tokens = batch.states[..., 0].numpy()
    assert np.allclose(tokens[:, 1::2], batch.params["w"][:, None] * tokens[:, 0::2], atol=1e-6)
    assert batch.inputs.shape == (8, 9, 1) and batch.loss_mask.tolist() == [True, False] * 4 + [True]
    # the output at an x token is scored against the y after it
    assert torch.equal(batch.targets[:, 0::2, 0], batch.states[:, 1::2, 0])
    ood = linear_regression(200, split="ood", seed=1)
    assert (np.abs(ood.params["w"]) >= 0.75).all() and (ood.states.abs() >= 0.75 * 0.75 - 1e-6).all()


def test_generators_are_seeded():
    a, b = generate("sho-undamped", 4, seed=9), generate("sho-undamped", 4, seed=9)
    assert torch.equal(a.inputs, b.inputs) and not torch.equal(
        a.inputs, generate("sho-undamped", 4, seed=8).inputs
    )


def test_counterfactual_targets_are_one_new_step():
    batch = sho(16, seed=5)
    changed = counterfactual(batch, seed=1, change="omega")
    assert torch.equal(changed.inputs, batch.inputs) and not np.allclose(
        changed.params["omega"], batch.params["omega"]
    )
    step = matrix_exponential().values(changed)[:, 0, :].reshape(-1, 2, 2)
    assert np.allclose(
        np.einsum("nab,ntb->nta", step, batch.inputs.double().numpy()), changed.targets.numpy(), atol=2e-6
    )


def test_bad_generator_arguments_are_one_line_errors():
    with pytest.raises(ConfigError, match="unknown task 'sho'; valid tasks"):
        generate("sho", 4)
    with pytest.raises(ConfigError, match="unknown split"):
        generate("regression", 4, split="val")
    with pytest.raises(ConfigError, match="n must be a whole number"):
        generate("regression", 0)


def test_nan_in_the_data_is_refused():
    batch = sho(8, seed=0)
    batch.inputs[3, 2, 0] = float("nan")
    with pytest.raises(DataError, match="1 NaN or infinite values \\(first in sequence 3\\)"):
        batch.check()


def test_builtin_hypotheses_have_their_shapes_and_values():
    from intelligible.worldmodel.data import sho_matrix
    from intelligible.worldmodel.hypotheses import builtin_hypotheses

    batch = sho(8, kind="underdamped", length=6, seed=0)
    widths = {"linear-multistep": 4, "taylor": 20, "matrix-exponential": 4, "linear-multistep-2": 8,
              "matrix-exponential-3": 12}  # fmt: skip
    for name, hyp in builtin_hypotheses(batch.task).items():
        assert hyp.values(batch).shape == (8, 5, widths[name]), name
    a_dt = sho_matrix(batch.params["omega"], batch.params["gamma"]) * batch.params["dt"][:, None, None]
    lmm = builtin_hypotheses(batch.task)["linear-multistep-2"].values(batch)
    states = batch.inputs.double().numpy()
    assert np.allclose(lmm[:, 3, 4:6], np.einsum("nab,nb->na", a_dt, states[:, 3]))
    assert np.allclose(lmm[:, 3, 6:8], np.einsum("nab,nb->na", a_dt, states[:, 2]))
    assert np.allclose(lmm[:, 0, 6:8], 0.0)  # no state before the first
    taylor = builtin_hypotheses(batch.task)["taylor"].values(batch)[:, 0]
    assert np.allclose(taylor[:, 4:8].reshape(-1, 2, 2), a_dt @ a_dt)
    reg = linear_regression(4, pairs=3, seed=0)
    w = reg.params["w"]
    values = {h.name: h.values(reg) for h in builtin_hypotheses("regression").values()}
    x_tokens = reg.inputs[..., 0].double().numpy()
    assert np.allclose(values["w^i x"][:, 1, 1], w**2 * x_tokens[:, 0])  # at the y token: the x before it
    assert np.allclose(values["w^i x^i"][:, 2, 2], (w * x_tokens[:, 2]) ** 3)


def test_an_omega_counterfactual_keeps_the_damping_regime():
    batch = sho(200, kind="overdamped", seed=6)
    changed = counterfactual(batch, seed=0, change="omega")
    assert (changed.params["gamma"] > changed.params["omega"]).all()
