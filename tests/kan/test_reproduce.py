"""The KAN paper reproductions: presets, resumable parts, and (slow) the whole quick preset."""

from __future__ import annotations

import json

import pytest
import torch

from intelligible.core.errors import ConfigError
from intelligible.kan import create_dataset
from intelligible.kan.experiment import ReproduceConfig, _cached, reproduce_config


def test_presets_and_unknown_preset():
    assert reproduce_config("quick").grids == (3, 5, 10, 20, 50)
    assert reproduce_config("paper").grids[-1] == 1000
    with pytest.raises(ConfigError, match="unknown preset 'huge'; valid presets: quick, paper"):
        reproduce_config("huge")


def test_parts_are_cached_by_config_and_recomputed_when_it_changes(tmp_path):
    calls = []

    def compute(cfg):
        calls.append(cfg.seed)
        return {"value": cfg.seed * 2}

    assert _cached(tmp_path, "part", ReproduceConfig(seed=1), compute) == {"value": 2}
    assert _cached(tmp_path, "part", ReproduceConfig(seed=1), compute) == {"value": 2}
    assert calls == [1]  # the second call resumed from parts/part.json
    assert _cached(tmp_path, "part", ReproduceConfig(seed=3), compute) == {"value": 6}
    assert calls == [1, 3]
    (tmp_path / "parts" / "part.json").write_text("{not json")
    assert _cached(tmp_path, "part", ReproduceConfig(seed=3), compute) == {"value": 6}
    assert json.loads((tmp_path / "parts" / "part.json").read_text())["result"] == {"value": 6}


def test_float64_dataset():
    data = create_dataset(lambda x: x.sum(dim=1), n_var=2, dtype=torch.float64)
    assert data["train_input"].dtype == data["train_label"].dtype == torch.float64


@pytest.mark.slow(seconds=240, shared="kan_quick_page")  # the `reproduce --only kan` run
def test_quick_reproduction_holds_every_claim(kan_quick_page):
    (report,), html = kan_quick_page  # through `intelligible reproduce --only kan`, the page test's run
    assert [claim.holds for claim in report.claims] == [True] * 5, [c.measured_value for c in report.claims]
    assert (html.parent / "kan" / "report.json").exists()
    assert report.figures and all(path.exists() for path in report.figures.values())
    assert len(report.tables["functions"]) == 10
