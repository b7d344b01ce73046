"""The experiments on tiny sizes, their configs' validation, and the boundary and curve helpers."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from intelligible.core.errors import ConfigError, DataError
from intelligible.geneft.experiment import (
    BoundConfig,
    GoldilocksConfig,
    PhasesConfig,
    SweepConfig,
    bound,
    critical_from_curve,
    goldilocks,
    phase_boundary,
    phases,
    preset_config,
    reproduce,
    sweep,
)


def test_bound_of_a_matrix_file_equals_the_built_in(tmp_path):
    x = np.arange(6)
    path = tmp_path / "mod2.npy"
    np.save(path, (x[:, None] % 2) == (x[None, :] % 2))
    from_file = bound(BoundConfig(relation=str(path), n=6, fractions=(0.3, 1.0), mc_seeds=2))
    built_in = bound(BoundConfig(relation="mod2", n=6, fractions=(0.3, 1.0), mc_seeds=2))
    assert from_file["automorphisms"] == built_in["automorphisms"] == math.factorial(3) ** 2 * 2
    assert from_file["bits"] == pytest.approx(built_in["bits"])
    assert from_file["by_fraction"] == built_in["by_fraction"]
    assert built_in["by_fraction"][-1]["test_accuracy_bound"] == 1.0


@pytest.mark.parametrize(
    ("config", "message"),
    [(BoundConfig(n=1), "n must be a whole number from 2"),
     (BoundConfig(relation="mod4", n=30), "mod 4 needs k to divide n = 30"),
     (BoundConfig(fractions=(0.2, 1.5)), r"fractions must be a share of the n\^2 pairs in \(0, 1\], got 1.5"),
     (BoundConfig(fractions=(0.0,)), r"in \(0, 1\], got 0.0"),
     (BoundConfig(alpha=1.0), "alpha must lie strictly between 0 and 1"),
     (BoundConfig(method="guess"), "method must be auto, formula or search"),
     (BoundConfig(redundancy=1.0), r"redundancy must be a share in \[0, 1\), got 1.0"),
     (SweepConfig(redundancy=-0.5), r"redundancy must be a share in \[0, 1\), got -0.5"),
     (SweepConfig(lr_encoder=0.0), "lr_encoder must be a finite number above 0, got 0.0"),
     (SweepConfig(lr_decoder=-1.0), "lr_decoder must be a finite number above 0, got -1.0"),
     (SweepConfig(relations=("greater", "mod7")), "mod 7 needs k to divide n = 30"),
     (SweepConfig(relations=()), "relations must name at least one"),
     (SweepConfig(seeds=(1, 1)), "seeds must differ"),
     (SweepConfig(combiner="sum"), "combiner must be one of"),
     (SweepConfig(depth=0), "depth must be a whole number from 1"),
     (GoldilocksConfig(fraction=2.0), r"fraction must be a share .* got 2.0"),
     (GoldilocksConfig(depths=()), "depths must list at least one depth"),
     (PhasesConfig(lr_min=0.0), "lr_min must be a finite number above 0"),
     (PhasesConfig(lr_min=0.1, lr_max=0.01), "lr_max must be at least lr_min"),
     (PhasesConfig(decoder="both"), "phases trains one decoder"),
     (PhasesConfig(grid=0), "grid must be a whole number from 1"),
     (PhasesConfig(grid=64, seeds=tuple(range(30))), "122,880 runs"),
     (SweepConfig(device="tpu"), "device must be cpu, cuda or cuda:N, got 'tpu'"),
     (GoldilocksConfig(device="cuda:99"), "device 'cuda:99' is not available here")],
)  # fmt: skip
def test_bad_configs_are_one_line_errors(config, message):
    with pytest.raises(ConfigError, match=message) as caught:
        config.validate()
    assert "\n" not in str(caught.value)


def test_a_relation_matrix_of_the_wrong_shape_or_kind(tmp_path):
    square = tmp_path / "five.txt"
    square.write_text("\n".join(" ".join("1" if i == j else "0" for j in range(5)) for i in range(5)))
    with pytest.raises(ConfigError, match=r"is 5 x 5 but n is 30; pass --n 5"):
        BoundConfig(relation=str(square)).validate()
    wide = tmp_path / "wide.npy"
    np.save(wide, np.zeros((3, 4), dtype=bool))
    with pytest.raises(DataError, match="must be square, n x n; got shape \\(3, 4\\)"):
        BoundConfig(relation=str(wide), n=3).validate()
    floats = tmp_path / "floats.npy"
    np.save(floats, np.full((3, 3), 0.5))
    with pytest.raises(DataError, match="must be boolean .* found 0.5"):
        BoundConfig(relation=str(floats), n=3).validate()
    cyclic = tmp_path / "cycle.npy"
    np.save(cyclic, np.roll(np.eye(3, dtype=bool), 1, axis=1))
    with pytest.raises(ConfigError, match="no ideal decoder"):
        SweepConfig(relations=(str(cyclic),), n=3, decoder="ideal").validate()


def test_critical_fraction_from_a_curve():
    assert critical_from_curve([0.1, 0.2, 0.4], [0.5, 0.7, 0.95], 0.9) == pytest.approx(0.2 + 0.2 * 0.8)
    assert critical_from_curve([0.1, 0.2], [0.95, 0.99], 0.9) == 0.1
    assert critical_from_curve([0.1, 0.2], [0.5, 0.6], 0.9) is None


def test_phase_boundary_of_a_constant_ratio():
    rates = np.geomspace(1e-3, 1e-1, 5)
    cells = [{"lr_encoder": e, "lr_decoder": d, "phase": "generalisation" if d / e < 5 else "memorisation"}
             for e in rates for d in rates]  # fmt: skip
    found = phase_boundary(cells, rates)
    assert found["slope"] == pytest.approx(1.0)
    assert found["ratio"] == pytest.approx(10**0.5 * 10**0.25)  # between the grid ratios 10^0.5 and 10^1
    assert phase_boundary([{**c, "phase": "confusion"} for c in cells], rates)["slope"] is None


def test_sweep_goldilocks_and_phases_on_tiny_sizes():
    tiny = {"n": 6, "steps": 40, "eval_every": 20, "seeds": (0, 1), "width": 6}
    swept = sweep(SweepConfig(relations=("mod2", "greater"), fractions=(0.3, 0.7), **tiny))
    assert set(swept["relations"]) == {"mod2", "greater"}
    curves = swept["relations"]["mod2"]["curves"]
    assert len(curves["mlp"]) == len(curves["ideal"]) == len(curves["exact_bound"]) == 2
    assert all(0.0 <= v <= 1.0 for v in curves["mlp"] + curves["f_ub"])
    rows = goldilocks(GoldilocksConfig(relation="mod2", depths=(1, 3), **tiny))
    assert [r["depth"] for r in rows] == [1, 3]
    phased = phases(PhasesConfig(relation="mod3", grid=2, lr_min=1e-3, lr_max=1e-2, **tiny))
    assert len(phased["cells"]) == 8 and {c["phase"] for c in phased["cells"]} <= {
        "generalisation", "grokking", "memorisation", "confusion"}  # fmt: skip
    assert phased["sigma_a"] > 0 and phased["sigma_c"] > 0
    assert all(0 <= row["p_r"] <= 1 for row in phased["comparison"])
    assert len(phased["trajectories"]["low_ratio"]["embeddings"]) == 2


def test_the_correlated_claim_compares_critical_fractions():
    from intelligible.geneft.experiment import _correlated_claim

    uniform = {"relations": {"mod3": {"exact_critical": 0.1, "mlp_critical": 0.2}}}
    later = {"fractions": [0.1, 0.5], "redundancy": 0.5,
             "relations": {"mod3": {"exact_critical": 0.2, "mlp_critical": None}}}  # fmt: skip
    claim = _correlated_claim(uniform, later)
    assert (
        claim.holds
        and "mod3 bound +0.100" in claim.measured_value
        and "mod3 MLP +0.300" in claim.measured_value
    )
    earlier = {**later, "relations": {"mod3": {"exact_critical": 0.2, "mlp_critical": 0.15}}}
    assert not _correlated_claim(uniform, earlier).holds


def test_a_correlated_sweep_reports_its_redundancy():
    tiny = {"n": 6, "steps": 20, "eval_every": 20, "seeds": (0,), "width": 4, "decoder": "mlp"}
    swept = sweep(SweepConfig(relations=("mod2",), fractions=(0.3, 0.7), redundancy=0.5, **tiny))
    assert swept["redundancy"] == 0.5
    uniform = sweep(SweepConfig(relations=("mod2",), fractions=(0.3, 0.7), **tiny))
    assert (
        swept["relations"]["mod2"]["curves"]["exact_bound"]
        != uniform["relations"]["mod2"]["curves"]["exact_bound"]
    )


def test_presets():
    quick = preset_config("quick")
    quick.sweep.validate()
    quick.phases.validate()
    assert preset_config("paper").phases.grid == 12
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        preset_config("fast")


def test_reproduce_refuses_another_commands_run(tmp_path):
    from intelligible.core.runs import RunDir

    RunDir.create(tmp_path, {"x": 1}, 0, kind="geneft-sweep").write_json("summary.json", {})
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(Exception, match="holds an earlier run"):
        reproduce("quick", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.slow(seconds=60)
def test_quick_reproduction(tmp_path):
    report = reproduce("quick", tmp_path)
    assert len(report.claims) == 10
    assert {"accuracy against data fraction", "phase diagram", "repon trajectories"} <= set(report.figures)
    for path in report.figures.values():
        assert path.is_file() and path.stat().st_size > 1000
    assert (tmp_path / "report.md").is_file() and (tmp_path / "results.json").is_file()

    def claim(start):
        return next(c for c in report.claims if c.statement.startswith(start))

    assert claim("C = a^2/(2 eta_A)").holds and claim("p_r matches a Monte Carlo").holds
    assert claim("the generalisation/memorisation boundary").holds is not None
    # the exact bound on correlated sets comes later for both relations (a property of the closure, not of training)
    assert "mod3 bound +" in claim("correlated data delays").measured_value
    assert "greater bound +" in claim("correlated data delays").measured_value
    assert any(title.startswith("correlated data") for title in report.tables)


def test_preset_overrides_keep_validation():
    quick = preset_config("quick")
    with pytest.raises(ConfigError, match="steps must be a whole number"):
        replace(quick.sweep, steps=0).validate()
