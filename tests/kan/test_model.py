"""KAN network: shapes, multiplication nodes, grid update and refinement preserving the function."""

from __future__ import annotations

import pytest
import torch

from intelligible.core.errors import ConfigError, DataError
from intelligible.kan.model import KAN


def test_shapes_and_determinism():
    a, b = KAN([2, 5, 1], grid=5, k=3, seed=1), KAN([2, 5, 1], grid=5, k=3, seed=1)
    x = torch.rand(7, 2) * 2 - 1
    assert a(x).shape == (7, 1)
    torch.testing.assert_close(a(x), b(x))
    assert not torch.allclose(a(x), KAN([2, 5, 1], seed=2)(x))


def test_multiplication_nodes():
    model = KAN([2, [1, 1], 1], grid=3, seed=0)
    assert model.layers[0].out_dim == 3 and model.layers[1].in_dim == 2
    x = torch.rand(5, 2)
    sub = model.layers[0](x)
    expected = model.layers[1](torch.stack([sub[:, 0], sub[:, 1] * sub[:, 2]], dim=1))
    torch.testing.assert_close(model(x), expected)


@pytest.mark.parametrize("grid_eps", [1.0, 0.02])
def test_update_grid_preserves_the_function(grid_eps):
    model = KAN([2, 4, 1], grid=5, seed=0, grid_eps=grid_eps)
    x = torch.rand(400, 2) * 1.2 - 0.6  # data narrower than the initial [-1, 1] grid
    before = model(x).detach()
    model.update_grid(x)
    assert model.layers[0].uniform == (grid_eps == 1.0)
    # the grid covers the samples plus a 1% margin of their range on each side
    low, high = float(x[:, 0].min()), float(x[:, 0].max())
    assert float(model.layers[0].grid[0, 3]) == pytest.approx(low - 0.01 * (high - low), abs=1e-6)
    assert float(model.layers[0].grid[0, -4]) == pytest.approx(high + 0.01 * (high - low), abs=1e-6)
    # a cubic spline on 5 intervals cannot copy the old one exactly; the refit error stays small
    assert (model(x) - before).abs().max() < 0.02 * before.abs().max() + 1e-3


def test_refine_keeps_the_function_and_changes_grid():
    model = KAN([2, 3, 1], grid=3, seed=0, grid_eps=1.0)
    x = torch.rand(300, 2) * 2 - 1
    finer = model.refine(10, x)
    assert finer.layers[0].n_intervals == 10 and finer.layers[0].coef.shape == (2, 13, 3)
    # a finer grid contains the coarse spline space on the same range: the refit is near exact
    assert (finer(x) - model(x)).abs().max() < 1e-3
    torch.testing.assert_close(finer.layers[0].scale_base, model.layers[0].scale_base)


def test_refine_keeps_a_trained_model_on_held_out_points():
    # issue 20: refitting only at a few training points left the finer splines free between them
    from intelligible.kan.train import FitConfig, fit

    generator = torch.Generator().manual_seed(0)
    train_x = torch.rand(40, 2, generator=generator) * 2 - 1
    test_x = torch.rand(500, 2, generator=generator) * 2 - 1

    def target(x):
        return torch.sin(3 * x[:, :1]) * x[:, 1:] + x[:, 1:] ** 2

    model = KAN([2, 5, 1], grid=10, seed=0)
    data = {
        "train_input": train_x,
        "train_label": target(train_x),
        "test_input": test_x,
        "test_label": target(test_x),
    }
    fit(model, data, FitConfig(steps=30), show_progress=False)
    assert not model.layers[0].uniform  # trained: the grid follows the data
    finer = model.refine(20, train_x)
    # every old knot is kept (20 is a multiple of 10), extension knots included: the same function,
    # also at test points and hidden activations outside the training samples' range (5% here)
    moved = (finer(test_x) - model(test_x)).abs().max()
    assert moved < 1e-4 * model(test_x).abs().max(), float(moved)
    assert finer.layers[0].n_intervals == 20 and finer.layers[0].coef.shape[1] == 23


@pytest.mark.parametrize(
    ("width", "message"),
    [
        ([3], "at least an input and an output"),
        ([2, 0, 1], "n >= 1 or \\[n_sum, n_mult\\]"),
        ([[1, 1], 1], "input layer"),
    ],
)
def test_bad_width(width, message):
    with pytest.raises(ConfigError, match=message):
        KAN(width)


def test_bad_inputs():
    model = KAN([2, 3, 1])
    with pytest.raises(DataError, match=r"expected input of shape \(batch, 2\), got \(4, 3\)"):
        model(torch.zeros(4, 3))
    with pytest.raises(DataError, match="NaN or inf"):
        model(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ConfigError, match="grid must be an integer >= 1, got 0"):
        model.refine(0)
    with pytest.raises(ConfigError, match="grid_eps must be in"):
        KAN([2, 1], grid_eps=2.0)


def test_save_load_round_trip(tmp_path):
    model = KAN([2, [2, 1], 1], grid=4, seed=3, grid_eps=0.5, init="pykan")
    x = torch.rand(50, 2) * 2 - 1
    model.update_grid(x)  # non-uniform grids must survive too
    finer = model.refine(7, x)
    path = finer.save(tmp_path / "net")
    assert path.name == "net.json" and (tmp_path / "net.safetensors").exists()
    loaded = KAN.load(tmp_path / "net")
    torch.testing.assert_close(loaded(x), finer(x))
    assert finer.init == loaded.init == "pykan"  # the record of how it started
    assert [layer.uniform for layer in loaded.layers] == [layer.uniform for layer in finer.layers]


def test_load_errors(tmp_path):
    from intelligible.core.artifacts import save_artifact

    with pytest.raises(DataError, match="no artifact at"):
        KAN.load(tmp_path / "missing")
    save_artifact(tmp_path / "other", "sae", {}, {"w": torch.zeros(1)})
    with pytest.raises(DataError, match="holds a 'sae' artifact, not a 'kan'"):
        KAN.load(tmp_path / "other")
    KAN([2, 1]).save(tmp_path / "net")
    (tmp_path / "net.safetensors").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot be read as safetensors"):
        KAN.load(tmp_path / "net")


def test_refine_and_prune_keep_float64():
    from intelligible.kan import prune

    model = KAN([2, 3, 1], grid=5, seed=0).double()
    x = torch.rand(64, 2, dtype=torch.float64) * 2 - 1
    finer = model.refine(8, x)
    assert all(p.dtype == torch.float64 for p in finer.parameters())
    assert finer(x).dtype == torch.float64
    assert prune(finer, x).layers[0].coef.dtype == torch.float64


def test_e_dotted_names_are_two_files(tmp_path):
    first, second = KAN([2, 1], seed=1), KAN([2, 1], seed=2)
    first.save(tmp_path / "model_lr0.01")
    second.save(tmp_path / "model_lr0.001")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model_lr0.001.json", "model_lr0.001.safetensors", "model_lr0.01.json", "model_lr0.01.safetensors",
    ]  # fmt: skip
    x = torch.rand(5, 2)
    torch.testing.assert_close(KAN.load(tmp_path / "model_lr0.01")(x), first(x))
    torch.testing.assert_close(KAN.load(tmp_path / "model_lr0.001.json")(x), second(x))
    torch.testing.assert_close(KAN.load(tmp_path / "model_lr0.001.safetensors")(x), second(x))


def test_f_float64_survives_save_and_load(tmp_path):
    model = KAN([2, 3, 1], grid=4, seed=0).double()
    x = torch.rand(40, 2, dtype=torch.float64) * 2 - 1
    model.update_grid(x)
    model.save(tmp_path / "net")
    loaded = KAN.load(tmp_path / "net")
    assert loaded.dtype == torch.float64 and all(
        t.dtype == torch.float64 for t in loaded.state_dict().values()
    )
    assert torch.equal(loaded(x), model(x))
    # what used to raise a dtype RuntimeError after such a load
    from intelligible.kan import attribute, prune

    attribute(loaded, x)
    prune(loaded, x)
    loaded.plot(x)


def test_f_inputs_are_cast_to_the_model_dtype():
    from intelligible.kan import attribute, prune

    single, double = KAN([2, 3, 1], seed=0), KAN([2, 3, 1], seed=0).double()
    x32 = torch.rand(30, 2) * 2 - 1
    assert double(x32).dtype == torch.float64  # no longer silently float32
    torch.testing.assert_close(double(x32), double(x32.double()))
    assert single(x32.double()).dtype == torch.float32
    attribute(single, x32.double())
    prune(single, x32.double())
    single.plot(x32.double())
    ints = torch.tensor([[0, 1], [-1, 0]])
    torch.testing.assert_close(single(ints), single(ints.float()))
    assert double.layers[0](x32).dtype == torch.float64
    with pytest.raises(DataError, match="expected real input"):
        single(torch.zeros(2, 2, dtype=torch.complex64))


@pytest.mark.parametrize(
    ("width", "message"),
    [
        (
            [4, 2.5, 1],
            "each width entry must be an integer n >= 1 or \\[n_sum, n_mult\\] \\(integers\\), got 2.5",
        ),
        ([2, True, 1], "got True"),
        ([2, [1, 0.5], 1], "got \\[1, 0.5\\]"),
        ([2, [1, 1, 1], 1], "got \\[1, 1, 1\\]"),
        ("2,3,1", "width must list at least"),
        ([2, -3, 1], "got -3"),
        ([2, 10**6, 10**6, 1], "would hold"),
    ],
)
def test_f_widths_must_be_positive_integers(width, message):
    with pytest.raises(ConfigError, match=message):
        KAN(width)


def test_f_grid_k_and_seed_are_checked():
    with pytest.raises(ConfigError, match="grid must be an integer >= 1, got 2.5"):
        KAN([2, 1], grid=2.5)
    with pytest.raises(ConfigError, match="seed must be an integer in 0..2\\*\\*63-1, got -1"):
        KAN([2, 1], seed=-1)
    assert KAN([2, 1], seed=2**40).seed == 2**40


def test_h_update_grid_refuses_too_few_samples_and_keeps_the_model():
    model = KAN([2, 3, 1], grid=5, k=3, seed=0)
    x = torch.rand(200, 2) * 2 - 1
    before = {key: value.clone() for key, value in model.state_dict().items()}
    assert model.grid_samples_needed() == 16
    for n in (1, 15):
        with pytest.raises(DataError, match=f"update_grid needs at least 16 samples .*got {n}"):
            model.update_grid(x[:n])
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    model.update_grid(x[:16])


def test_h_fit_keeps_grids_sound_with_small_batches_and_tiny_datasets():
    from intelligible.kan import create_dataset, fit
    from intelligible.kan.train import FitConfig

    data = create_dataset(lambda x: torch.sin(x[:, 0]) + x[:, 1], n_var=2, train_num=200, test_num=100)
    model = KAN([2, 3, 1], grid=5, seed=0)
    # a batch of 4 is too small for a grid update: the grid follows the whole training input
    fit(model, data, FitConfig(opt="Adam", lr=0.01, steps=3, batch=4), show_progress=False)
    low, high = float(data["train_input"][:, 0].min()), float(data["train_input"][:, 0].max())
    assert float(model.layers[0].grid[0, 3]) < low + 0.05 and float(model.layers[0].grid[0, -4]) > high - 0.05
    tiny = {key: value[:5] for key, value in data.items()}
    grid = model.layers[0].grid.clone()
    with pytest.warns(UserWarning, match="grid updates skipped: they need at least 16 training samples"):
        fit(model, tiny, FitConfig(steps=2), show_progress=False)
    assert torch.equal(model.layers[0].grid, grid)
