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


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"test_label": "flat"},
            r"test_label must have shape \(200, 1\) to match test_input, got \(200,\); add",
        ),
        ({"test_label": None}, "dataset has 'test_input' but no 'test_label'; give both or neither"),
        ({"test_input": None}, "dataset has 'test_label' but no 'test_input'"),
        (
            {"test_label": "short"},
            r"test_label must have shape \(200, 1\) to match test_input, got \(150, 1\)",
        ),
        (
            {"test_input": "wide"},
            r"dataset\['test_input'\]: expected input of shape \(batch, 2\), got \(200, 3\)",
        ),
        (
            {"train_label": "flat"},
            r"train_label must have shape \(400, 1\) to match train_input, got \(400,\)",
        ),
        ({"test_label": "list"}, r"dataset\['test_label'\] must be a torch tensor, got list"),
        ({"test_label": "nan"}, r"dataset\['test_label'\] contains NaN or inf"),
        ({"train_input": "empty"}, r"dataset\['train_input'\] has no samples"),
    ],
)
def test_g_every_split_is_checked_before_training(dataset, change, message):
    ((key, how),) = change.items()
    bad = dict(dataset)
    value = bad[key]
    if how is None:
        del bad[key]
    else:
        bad[key] = {"flat": value[:, 0], "short": value[:150], "wide": torch.zeros(len(value), 3),
                    "list": value.tolist(), "nan": value * float("nan"), "empty": value[:0]}[how]  # fmt: skip
        if how == "empty":
            bad["train_label"] = bad["train_label"][:0]
    model = KAN([2, 3, 1], seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(DataError, match=message):
        fit(model, bad, FitConfig(steps=1), show_progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_g_test_rmse_is_measured_on_the_test_split(dataset):
    no_test = {key: dataset[key] for key in ("train_input", "train_label")}
    model = KAN([2, 3, 1], seed=0)
    history = fit(model, no_test, FitConfig(steps=2), show_progress=False)
    assert history["test_loss"] == history["train_loss"]  # documented: no test split, train is scored
    other = fit(KAN([2, 3, 1], seed=0), dataset, FitConfig(steps=2), show_progress=False)
    with torch.no_grad():
        expected = float(torch.sqrt(torch.mean((model(dataset["test_input"]) - dataset["test_label"]) ** 2)))
    assert other["test_loss"][-1] == pytest.approx(expected, rel=1e-5)


def test_g_dataset_dtypes_follow_the_model(dataset):
    model = KAN([2, 3, 1], seed=0).double()
    history = fit(model, dataset, FitConfig(steps=2), show_progress=False)  # float32 data, float64 model
    assert len(history["train_loss"]) == 2 and model.dtype == torch.float64


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (FitConfig(lr=float("nan")), "lr must be between 0 and 100, got nan"),
        (FitConfig(lr=float("inf")), "lr must be between 0 and 100"),
        (FitConfig(steps=10**30), "steps must be between 1 and 1e\\+07"),
        (FitConfig(steps=2.5), "steps must be an integer, got 2.5"),
        (FitConfig(seed=-1), "seed must be an integer in 0..2\\*\\*63-1, got -1"),
        (FitConfig(seed="abc"), "seed must be an integer in 0..2\\*\\*63-1, got 'abc'"),
        (FitConfig(lamb=float("nan")), "lamb must be between 0"),
        (FitConfig(batch=1.5), "batch must be -1"),
        (FitConfig(history_size=0), "history_size must be between 1 and 1000, got 0"),
        (FitConfig(history_size=2.5), "history_size must be an integer, got 2.5"),
    ],
)
def test_c_implausible_numbers_are_refused(dataset, cfg, message):
    with pytest.raises(ConfigError, match=message):
        fit(KAN([2, 1]), dataset, cfg)


def test_a_lbfgs_keeps_at_most_history_size_curvature_pairs(dataset, monkeypatch):
    import intelligible.kan.train as train

    made = []

    def recording(*args, **kwargs):
        made.append(train_lbfgs(*args, **kwargs))
        return made[-1]

    train_lbfgs = train.LBFGS
    monkeypatch.setattr(train, "LBFGS", recording)
    fit(KAN([2, 3, 1], seed=0), dataset, FitConfig(steps=3, history_size=4), show_progress=False)
    (optimizer,) = made
    state = optimizer.state[optimizer.param_groups[0]["params"][0]]
    # 3 steps of up to 20 iterations each made more than 4 pairs; only the last 4 are kept
    assert optimizer.param_groups[0]["history_size"] == 4
    assert state["n_iter"] > 4 and len(state["s"]) == len(state["y"]) == 4
    assert FitConfig().history_size == 50  # the documented default (pykan keeps 10)


def test_a_history_size_changes_the_lbfgs_trajectory(dataset):
    short = fit(KAN([2, 3, 1], seed=0), dataset, FitConfig(steps=3, history_size=1), show_progress=False)
    long = fit(KAN([2, 3, 1], seed=0), dataset, FitConfig(steps=3, history_size=50), show_progress=False)
    assert short["train_loss"][-1] != long["train_loss"][-1]


def test_c_fit_memory_estimate():
    from intelligible.kan.experiment import FitRunConfig
    from intelligible.kan.train import fit_memory_bytes

    assert fit_memory_bytes([2, 5, 1], 5, 3, 1000, 1000) < 10 * 2**20
    assert fit_memory_bytes([2, 5, 1], 5, 3, 999_999_999_999, 1000) > 2**40
    with pytest.raises(ConfigError, match="need about .* of memory, but only"):
        FitRunConfig(train_num=900_000_000, test_num=900_000_000).validate()


@pytest.mark.parametrize("opt", ["LBFGS", "Adam"])
def test_a_interrupted_fit_resumes_to_the_same_model(dataset, opt, tmp_path):
    from intelligible.core.runs import RunDir
    from intelligible.kan.train import FitCheckpoint

    cfg = FitConfig(opt=opt, lr=1.0 if opt == "LBFGS" else 0.02, steps=8, batch=-1 if opt == "LBFGS" else 64,
                    stop_grid_update_step=6, grid_update_num=3)  # fmt: skip
    whole = KAN([2, 3, 1], seed=0)
    expected = fit(whole, dataset, cfg, show_progress=False)

    saved = []

    def stop(step, metrics):
        if step == 5:
            raise KeyboardInterrupt

    cut = KAN([2, 3, 1], seed=0)
    with pytest.raises(KeyboardInterrupt):
        fit(
            cut,
            dataset,
            cfg,
            show_progress=False,
            callback=stop,
            on_checkpoint=saved.append,
            checkpoint_every=3,
        )
    assert [c.step for c in saved] == [3, 5]  # periodic, then Ctrl-C: the state after the last finished step
    run = RunDir(tmp_path)  # through the checkpoint files, as a resumed run reads them
    run.save_checkpoint(saved[-1].tensors, saved[-1].state)
    tensors, state = run.load_checkpoint()
    checkpoint = FitCheckpoint(state["step"], tensors, state)
    resumed = checkpoint.model()
    rest = fit(resumed, dataset, cfg, show_progress=False, resume=checkpoint)
    assert rest["train_loss"] == expected["train_loss"][5:]
    for (key, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), key
    with pytest.raises(ConfigError, match="does not have the checkpoint's structure"):
        fit(KAN([2, 3, 1], seed=0), dataset, cfg, show_progress=False, resume=checkpoint)


def test_the_penalty_prefers_nodes_that_depend_on_few_inputs():
    # issue 20: one entropy over a whole layer charged a node fed by two inputs (and a dead node)
    # exactly as much as two nodes fed by one input each; pykan's per-node (row and column)
    # entropies charge the first more (by 0.02 here: their rows are normalised by sum + 1)
    x = torch.rand(500, 2, dtype=torch.float64) * 2 - 1
    cfg = FitConfig(lamb=1.0)

    def penalty(scale_base: list[list[float]]) -> float:
        model = KAN([2, 2], grid=3, seed=0, base="identity").double()
        with torch.no_grad():
            model.layers[0].coef.zero_()
            model.layers[0].scale_base.copy_(torch.tensor(scale_base))  # (in, out)
        return float(regularization(model, x, cfg))

    one_node_two_inputs = penalty([[1.0, 0.0], [1.0, 0.0]])
    two_nodes_one_input = penalty([[1.0, 0.0], [0.0, 1.0]])
    assert one_node_two_inputs - two_nodes_one_input > 0.01
