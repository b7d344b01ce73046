"""Stage diagnostics on hand-built inputs, the stage rules, and the claims check."""

from __future__ import annotations

import pytest
import torch

from intelligible.core.errors import ConfigError, DataError
from intelligible.stages import STAGE_NAMES, Diagnostics, StageRules, SweepResult, assign_stages, diagnose
from intelligible.stages.diagnostics import local_attention_mass, neuron_classes
from intelligible.stages.experiment import evaluate_claims, stage_table


def test_local_attention_mass_on_known_patterns():
    seq = 10
    previous = torch.zeros(1, 1, seq, seq)  # every query attends only to the token right before it
    for t in range(1, seq):
        previous[0, 0, t, t - 1] = 1.0
    assert local_attention_mass(previous) == pytest.approx([1.0] * 5)
    uniform = torch.ones(seq, seq).tril()
    uniform = (uniform / uniform.sum(-1, keepdim=True))[None, None]
    # query t attends 1/(t+1) to each token; over t = 5..9 the mass on the previous k is mean(k/(t+1))
    expected = [sum(k / (t + 1) for t in range(5, seq)) / 5 for k in range(1, 6)]
    assert local_attention_mass(uniform) == pytest.approx(expected)
    with pytest.raises(ConfigError, match="too short"):
        local_attention_mass(torch.ones(1, 1, 4, 4))


def test_neuron_classes_find_planted_neurons(tiny_llama_lm):
    lm = tiny_llama_lm
    unembed = lm.unembedding_matrix().detach()
    with torch.no_grad():
        w = lm.blocks[1].mlp.down_proj.weight  # (d_model, d_mlp): column j is neuron j's output
        torch.manual_seed(0)
        w.copy_(torch.randn_like(w) * 0.01)
        target = unembed[7] / unembed[7].norm()
        w[:, 0] = target  # promotes token 7 only
        w[:, 1] = -target  # suppresses token 7 only
    predict, suppress = neuron_classes(lm, kurtosis_threshold=3.0)
    assert predict[1] >= 1 and suppress[1] >= 1
    # the planted pair are the most selective: a high threshold keeps exactly them (one of each sign)
    cos = torch.nn.functional.normalize(w.detach().T, dim=1) @ torch.nn.functional.normalize(unembed, dim=1).T
    z = (cos - cos.mean(1, keepdim=True)) / cos.std(1, unbiased=False, keepdim=True)
    kurt = (z**4).mean(1) - 3
    high = float(kurt[2:].max()) + 1e-3
    assert float(kurt[0]) > high
    predict, suppress = neuron_classes(lm, kurtosis_threshold=high)
    assert predict[1] == 1 and suppress[1] == 1


def test_diagnose_shapes_and_invariants(trained_lm, trained_windows):
    diag = diagnose(trained_lm, trained_windows, attention_windows=2)
    n = trained_lm.n_layers
    assert len(diag.local_attention) == n and all(len(row) == 5 for row in diag.local_attention)
    for row in diag.local_attention:
        assert all(0 <= a <= b <= 1 + 1e-9 for a, b in zip(row, row[1:]))  # more lookback, more mass
    assert diag.lens_kl_to_final[-1] == pytest.approx(0.0, abs=1e-5)
    assert diag.lens_top1_agreement[-1] == pytest.approx(1.0)
    assert all(k >= 0 for k in diag.lens_kl_to_final)
    assert len(diag.prediction_neurons) == n
    assert Diagnostics.from_dict(diag.to_dict()) == diag


def _synthetic(n=8):
    retained = [0.05, 0.5, 0.95, 0.93, 0.96, 0.9, 0.94, 0.7]
    rows = [
        {"kind": "delete", "layer": i, "name": f"delete {i}", "relative_depth": i / (n - 1), "accuracy": r,
         "retained_accuracy": r, "kl": 1 - r, "loss": 0.0, "loss_change": 0.0, "entropy": 1.0}
        for i, r in enumerate(retained)
    ]  # fmt: skip
    rows += [
        {"kind": "swap", "layer": i, "name": f"swap {i}", "relative_depth": (i + 0.5) / (n - 1), "accuracy": r,
         "retained_accuracy": min(1.0, r + 0.03), "kl": 0.1, "loss": 0.0, "loss_change": 0.0, "entropy": 1.0}
        for i, r in enumerate(retained[:-1])
    ]  # fmt: skip
    sweep = SweepResult(
        model="synthetic", n_layers=n, tokens=100, baseline={"accuracy": 1.0, "loss": 1.0}, rows=rows
    )
    diag = Diagnostics(
        n_layers=n,
        local_attention=[[a] * 5 for a in (0.5, 0.6, 0.2, 0.2, 0.1, 0.1, 0.1, 0.1)],
        lens_entropy=[1.0] * n,
        lens_kl_to_final=[10, 10, 10, 9.5, 6, 4, 2, 0],
        lens_top1_agreement=[0.1] * n,
        prediction_neurons=[0, 0, 0, 0, 5, 9, 3, 10],
        suppression_neurons=[0, 0, 0, 0, 1, 2, 6, 30],
        kurtosis_threshold=10.0,
    )
    return sweep, diag


def test_assign_stages_follows_the_documented_rules():
    sweep, diag = _synthetic()
    assignment = assign_stages(sweep, diag)
    # median retained 0.915 -> cheap at 0.8235: layers 0, 1 are detokenization;
    # KL <= 8 from layer 4 on -> ensembling starts at 4; supp >= pred from layer 6 on -> sharpening
    assert assignment.boundaries == [0, 2, 4, 6]
    assert assignment.labels == [0, 0, 1, 1, 2, 2, 3, 3]
    assert assignment.names[0] == STAGE_NAMES[0]
    assert assignment.describe().startswith("detokenization: layers 0-1; feature engineering: layers 2-3")
    stricter = assign_stages(sweep, diag, StageRules(detok_fraction=0.5, lens_fraction=0.3))
    assert stricter.boundaries == [0, 1, 5, 6]


def test_assign_stages_keeps_every_stage_non_empty_when_rules_collide():
    sweep, diag = _synthetic()
    diag.suppression_neurons = [9] * 8  # suppression everywhere would make all layers "sharpening"
    assignment = assign_stages(sweep, diag)
    assert all(assignment.layers_of(s) for s in range(4))
    assert assignment.labels == sorted(assignment.labels)


def test_assign_stages_needs_every_deletion():
    sweep, diag = _synthetic()
    sweep.rows = [r for r in sweep.rows if r["kind"] == "swap"]
    with pytest.raises(DataError, match="deletion sweep over every layer"):
        assign_stages(sweep, diag)


def test_claims_on_synthetic_data():
    sweep, diag = _synthetic()
    assignment = assign_stages(sweep, diag)
    claims = evaluate_claims(sweep, diag, assignment)
    assert len(claims) == 4
    middle = claims[0]  # layers 1..6 are within relative depth 0.1-0.9
    assert middle.measured_value == pytest.approx((0.5 + 0.95 + 0.93 + 0.96 + 0.9 + 0.94) / 6, abs=1e-4)
    assert middle.holds is True
    assert claims[1].holds is True  # first 0.05, last 0.7 vs middle mean 0.86
    assert claims[2].measured_value == 1.0 and claims[2].holds is True
    assert claims[3].holds is True
    table = stage_table(sweep, diag, assignment)
    assert [row["stage"] for row in table][:2] == ["detokenization"] * 2


def test_claims_fail_honestly():
    sweep, diag = _synthetic()
    for row in sweep.rows:
        if row["kind"] == "swap":
            row["retained_accuracy"] = 0.0  # swapping now hurts more than deleting everywhere
    diag.lens_kl_to_final = [0, 2, 4, 6, 8, 9, 10, 10]  # KL rising with depth contradicts the stages
    assignment = assign_stages(sweep, diag)
    claims = evaluate_claims(sweep, diag, assignment)
    assert claims[2].holds is False and claims[2].measured_value == 0.0
    assert claims[3].holds is False and "disagree" in claims[3].detail
