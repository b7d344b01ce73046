"""Fitting: LBFGS and Adam reduce the error, mini-batches, regularisation, bad input."""

from __future__ import annotations

import pytest
import torch

from intelligible.core.errors import ConfigError, DataError
from intelligible.kan.data import create_dataset
from intelligible.kan.model import KAN
from intelligible.kan.train import FitConfig, fit, regularization


def target(x):
    return torch.sin(torch.pi * x[:, 0]) + x[:, 1] ** 2


@pytest.fixture
def dataset():
    return create_dataset(target, n_var=2, train_num=400, test_num=200, seed=0)


def test_create_dataset(dataset):
    assert dataset["train_input"].shape == (400, 2) and dataset["test_label"].shape == (200, 1)
    torch.testing.assert_close(dataset["train_label"][:, 0], target(dataset["train_input"]))
    again = create_dataset(target, n_var=2, train_num=400, test_num=200, seed=0)
    assert torch.equal(again["train_input"], dataset["train_input"])


def test_lbfgs_fits_a_smooth_function(dataset):
    model = KAN([2, 5, 1], grid=5, seed=0)
    history = fit(model, dataset, FitConfig(steps=20), show_progress=False)
    assert len(history["train_loss"]) == 20
    assert history["test_loss"][-1] < 0.02 < history["test_loss"][0]


def test_adam_minibatch_reduces_loss(dataset):
    model = KAN([2, 5, 1], grid=5, seed=0)
    history = fit(
        model,
        dataset,
        FitConfig(opt="Adam", lr=0.01, steps=60, batch=64, update_grid=False),
        show_progress=False,
    )
    assert history["train_loss"][-1] < 0.5 * history["train_loss"][0]


def test_regularisation_is_positive_and_trains(dataset):
    model = KAN([2, 5, 1], grid=5, seed=0)
    cfg = FitConfig(steps=5, lamb=0.01, lamb_coef=1.0)
    assert float(regularization(model, dataset["train_input"], cfg).detach()) > 0
    history = fit(model, dataset, cfg, show_progress=False)
    assert all(r > 0 for r in history["reg"])


@pytest.mark.parametrize(
    ("cfg", "message"),
    [(FitConfig(opt="SGD"), "opt must be 'LBFGS' or 'Adam'"), (FitConfig(steps=0), "steps must be >= 1"),
     (FitConfig(batch=0), "batch must be -1"), (FitConfig(lr=0), "lr must be > 0")],
)  # fmt: skip
def test_bad_fit_config(dataset, cfg, message):
    with pytest.raises(ConfigError, match=message):
        fit(KAN([2, 1]), dataset, cfg)


def test_bad_datasets(dataset):
    model = KAN([2, 3, 1])
    with pytest.raises(DataError, match="needs 'train_label'"):
        fit(model, {"train_input": dataset["train_input"]})
    bad = dict(dataset, train_input=dataset["train_input"].clone())
    bad["train_input"][0, 0] = float("inf")
    with pytest.raises(DataError, match="train_input'\\] contains NaN or inf"):
        fit(model, bad)
    with pytest.raises(DataError, match=r"expected input of shape \(batch, 3\)"):
        fit(KAN([3, 1]), dataset)
    with pytest.raises(DataError, match="train_label must have shape"):
        fit(KAN([2, 2]), dataset)


def test_create_dataset_errors():
    with pytest.raises(ConfigError, match="ranges has 1 pairs for 2 variables"):
        create_dataset(target, n_var=2, ranges=[[0, 1]])
    with pytest.raises(DataError, match="NaN or inf"):
        create_dataset(lambda x: torch.log(x[:, 0]), n_var=1, ranges=(-1, 1))


def test_fit_method_matches_function(dataset):
    a, b = KAN([2, 3, 1], seed=0), KAN([2, 3, 1], seed=0)
    history_a = a.fit(dataset, steps=3, show_progress=False)
    history_b = fit(b, dataset, FitConfig(steps=3), show_progress=False)
    assert history_a["train_loss"] == pytest.approx(history_b["train_loss"])
    with pytest.raises(TypeError):
        a.fit(dataset, stepz=3)
