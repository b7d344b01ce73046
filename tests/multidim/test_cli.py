"""`intelligible multidim ...`: every bad input the issue lists is one line naming the value, exit code 2."""

from __future__ import annotations

import numpy as np
import pytest

from intelligible.cli import main
from intelligible.lm.saes import ReLUSAE, save_sae
from intelligible.multidim.shapes import make_shape


@pytest.fixture(autouse=True)
def _registered(monkeypatch):
    """Until the registry line lands, register the study for these tests only."""
    from intelligible.core import registry

    if "multidim" not in registry.STUDIES:
        entry = registry.Study("multidim", "Multi-dimensional features (Engels et al. 2024).", 50)
        monkeypatch.setitem(registry.STUDIES, "multidim", entry)


def _error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_indices_prints_a_reading(tmp_path, capsys):
    path = tmp_path / "points.npy"
    np.save(path, np.stack([make_shape("circle", 1600, seed=0), make_shape("separable", 1600, seed=0)]))
    code = main(["multidim", "indices", str(path), "--bins", "20", "--n-angles", "40", "--steps", "200"])
    out = capsys.readouterr().out
    assert code == 0
    assert "feature 0" in out and "irreducible candidate" in out and "separable" in out


@pytest.mark.parametrize(
    ("points", "message"),
    [
        (np.zeros((100, 2)) + np.arange(100)[:, None] * [1, 2], "fewer points than bins: 100 points"),
        (np.full((2000, 2), 3.0), "feature 0 is constant"),
        (np.where(np.arange(4000).reshape(2000, 2) == 7, np.nan, 1.0 * np.arange(4000).reshape(2000, 2)),
         "feature 0 holds NaN"),
    ],
)  # fmt: skip
def test_indices_bad_points(tmp_path, capsys, points, message):
    path = tmp_path / "points.npy"
    np.save(path, points)
    assert main(["multidim", "indices", str(path)]) == 2
    assert message in _error(capsys)


def test_indices_not_an_array(tmp_path, capsys):
    path = tmp_path / "points.npy"
    path.write_text("not numpy\n")
    assert main(["multidim", "indices", str(path)]) == 2
    assert "is not a .npy array" in _error(capsys)


def test_discover_refuses_the_wrong_sae_and_layer_before_any_work(tmp_path, capsys):
    narrow = ReLUSAE(16, 8)
    save_sae(narrow, tmp_path / "narrow")
    out = tmp_path / "out"
    assert main(["multidim", "discover", "--sae", str(tmp_path / "narrow.json"), "--out", str(out)]) == 2
    assert (
        "the SAE reads 16-dimensional activations but smollm2-135m's residual is 576-dimensional"
        in _error(capsys)
    )
    wide = ReLUSAE(576, 8)
    save_sae(wide, tmp_path / "wide")
    assert (
        main(
            ["multidim", "discover", "--sae", str(tmp_path / "wide.json"), "--layer", "31", "--out", str(out)]
        )
        == 2
    )
    assert "layer 31 is out of range: smollm2-135m has layers 1..30" in _error(capsys)
    (tmp_path / "kan.json").write_text('{"kind": "kan", "format": 1, "config": {}}')
    assert main(["multidim", "discover", "--sae", str(tmp_path / "kan.json"), "--out", str(out)]) == 2
    assert "is not a usable SAE" in _error(capsys)
    assert not out.exists()


def test_circles_unknown_set(capsys):
    assert main(["multidim", "circles", "--sets", "weekdays,years"]) == 2
    assert "unknown prompt set 'years'; valid: weekdays, months" in _error(capsys)
