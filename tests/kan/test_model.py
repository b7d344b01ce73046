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
    model = KAN([2, [2, 1], 1], grid=4, seed=3, grid_eps=0.5)
    x = torch.rand(50, 2) * 2 - 1
    model.update_grid(x)  # non-uniform grids must survive too
    finer = model.refine(7, x)
    path = finer.save(tmp_path / "net")
    assert path.name == "net.json" and (tmp_path / "net.safetensors").exists()
    loaded = KAN.load(tmp_path / "net")
    torch.testing.assert_close(loaded(x), finer(x))
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
