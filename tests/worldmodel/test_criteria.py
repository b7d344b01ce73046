"""The probes and the four criteria on models whose answers are known: planted encodings, a hand-built
model for interventions, a plain nn.Sequential, and every bad input the issue lists."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from intelligible.core.errors import ConfigError, DataError
from intelligible.worldmodel import (
    Hypothesis,
    encoding_vs_performance,
    intervene,
    matrix_exponential,
    sho,
    test_hypothesis,
)
from intelligible.worldmodel.data import SequenceBatch, counterfactual
from intelligible.worldmodel.model import PhysicsTransformer
from intelligible.worldmodel.probes import cca_r2, polynomial_features, ridge_r2


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_a_planted_linear_encoding_has_r2_near_1_and_a_random_one_near_0():
    rng = _rng()
    n, t = 600, 5
    z = rng.normal(size=(n, t, 2))
    hidden = z @ rng.normal(size=(2, 12)) + 0.01 * rng.normal(size=(n, t, 12))
    noise = rng.normal(size=(n, t, 12))
    planted = ridge_r2(hidden[:400], hidden[400:], z[:400], z[400:])
    random = ridge_r2(noise[:400], noise[400:], z[:400], z[400:])
    assert planted.shape == (t, 2) and planted.min() > 0.999
    # held out, a random encoding scores about 0 (slightly below: the probe's overfit shows)
    assert random.max() < 0.03 and random.min() > -0.15


def test_ridge_matches_scikit_learn():
    from sklearn.linear_model import Ridge

    rng = _rng(1)
    x, y = rng.normal(size=(300, 3, 6)), rng.normal(size=(300, 3, 2))
    y += x[..., :2] * 0.8
    ours = ridge_r2(x[:200], x[200:], y[:200], y[200:], alpha=0.5)
    for pos in range(3):
        for col in range(2):
            fit = Ridge(alpha=0.5).fit(x[:200, pos], y[:200, pos, col])
            assert abs(fit.score(x[200:, pos], y[200:, pos, col]) - ours[pos, col]) < 1e-9


def test_cca_finds_a_non_linear_encoding_that_ridge_misses():
    rng = _rng(2)
    w = rng.uniform(-1, 1, size=(800, 1, 1))
    hidden = np.concatenate([w**2, w**3 - 0.6 * w, rng.normal(size=(800, 1, 4))], axis=2)
    hidden = hidden @ rng.normal(size=(6, 6))
    linear = ridge_r2(hidden[:600], hidden[600:], w[:600], w[600:])[0, 0]
    features = polynomial_features(w, 3)
    cca = cca_r2(hidden[:600], hidden[600:], features[:600], features[600:])[0]
    assert cca > 0.99 and linear < 0.5


class _Token(nn.Module):
    """Reads the parameter (omega, dt) written into each token."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _param_batch(n=256, t=4, seed=0):
    batch = sho(n, length=t + 1, seed=seed)
    tokens = torch.tensor(np.stack([batch.params["omega"], batch.params["dt"]], axis=1), dtype=torch.float32)
    batch.inputs = tokens[:, None, :].expand(n, t, 2).contiguous()
    return batch


def test_the_api_works_on_a_plain_sequential():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 2))
    data = _param_batch()
    rng = _rng(3)
    noise = rng.normal(size=len(data))
    omega = Hypothesis("omega dt", lambda b: np.stack([b.params["omega"], b.params["dt"]], axis=1))
    random = Hypothesis("random", lambda b: noise)
    report = test_hypothesis(model, ["0", "2"], [omega, random], data, cca_degree=2, from_position=0)
    assert report.sites == ["0", "2"] and report.r2["omega dt"].shape == (2, 4)
    assert report.best("omega dt") == ("0", pytest.approx(1.0, abs=1e-6))
    assert report.score("random")[0] < 0.1
    assert report.variance["omega dt"][0].min() > 0.999  # the first layer is linear in (omega, dt)
    rows = report.table()
    assert [row["hypothesis"] for row in rows] == ["omega dt", "random"] and "cca_r2" in rows[0]


class _HandBuilt(nn.Module):
    """Its hidden state is e^{A dt} of the token's (omega, dt); the output is a fixed readout of it."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Identity()
        self.readout = nn.Linear(4, 2)
        torch.manual_seed(1)
        nn.init.normal_(self.readout.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a_dt = torch.zeros(*x.shape[:2], 2, 2, dtype=torch.float64)
        a_dt[..., 0, 1] = x[..., 1].double()
        a_dt[..., 1, 0] = -(x[..., 0].double() ** 2) * x[..., 1].double()
        return self.readout(self.hidden(torch.linalg.matrix_exp(a_dt).reshape(*x.shape[:2], 4).float()))


def test_an_intervention_on_a_hand_built_model_moves_the_output_exactly_as_predicted():
    model = _HandBuilt()
    data = _param_batch(n=200, seed=4)
    changed = counterfactual(data, seed=2, change="dt")
    # the intended answer for this model: its readout of the new intermediate
    new_state = torch.tensor(matrix_exponential().values(changed), dtype=torch.float32)
    with torch.no_grad():
        changed.targets = model.readout(new_state)
    result = intervene(model, "hidden", matrix_exponential(), data, changed, alpha=1e-9, from_position=0)
    assert result.intervened < 1e-9
    assert len(result.curves["intervened"]) == 4 and max(result.curves["intervened"]) < 1e-9
    assert min(result.curves["clean"]) > 0.01
    assert result.clean > 0.1 and result.random > 0.1
    assert torch.allclose(result.outputs, changed.targets[-len(result.outputs) :] * 0 + result.outputs)


def test_intervention_outputs_equal_the_readout_of_the_new_value():
    model = _HandBuilt()
    data = _param_batch(n=120, seed=5)
    changed = counterfactual(data, seed=3, change="omega")
    result = intervene(
        model, "hidden", matrix_exponential(), data, changed, alpha=1e-9, from_position=0, seed=0
    )
    from intelligible.worldmodel.criteria import split_indices

    _, test = split_indices(len(data), 0.25, 0)
    new_state = torch.tensor(matrix_exponential().values(changed)[test], dtype=torch.float32)
    with torch.no_grad():
        expected = model.readout(new_state)
    assert torch.allclose(result.outputs, expected, atol=1e-4)


def test_criterion_2_rank_correlation_and_interval():
    result = encoding_vs_performance([0.1, 0.3, 0.5, 0.7, 0.9], [1.0, 0.5, 0.2, 0.1, 0.05], n_boot=200)
    assert result["rho"] == pytest.approx(-1.0) and result["high"] <= -0.5 + 1e-9 or result["high"] < 0.5
    assert result["n"] == 5
    with pytest.raises(DataError, match="at least 3"):
        encoding_vs_performance([0.1, 0.2], [1.0, 2.0])


def _small_transformer():
    torch.manual_seed(0)
    return PhysicsTransformer(2, 2, layers=2, hidden=8, max_len=8)


def test_our_transformer_names_its_sites():
    model = _small_transformer()
    data = sho(64, length=9, seed=0)
    report = test_hypothesis(model, None, ["matrix-exponential", "taylor"], data, cca_degree=0)
    assert report.sites == ["inp", "attn-0", "attn-res-0", "mlp-0", "mlp-res-0",
                            "attn-1", "attn-res-1", "mlp-1", "mlp-res-1"]  # fmt: skip
    assert np.isfinite(report.model_mse) and report.positions == 8


def test_an_unknown_site_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="no site 'mlp-7'; valid sites: inp, attn-0, attn-res-0, mlp-0"):
        test_hypothesis(_small_transformer(), ["mlp-7"], ["taylor"], sho(32, length=9))
    with pytest.raises(ConfigError, match="no site '5'; valid sites: 0, 1, 2"):
        test_hypothesis(
            nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 2)), ["5"], ["taylor"], sho(32, length=9)
        )


def test_a_hypothesis_of_the_wrong_length_is_refused():
    short = Hypothesis("short", lambda b: b.params["omega"][:-3])
    with pytest.raises(DataError, match="hypothesis 'short' returned 29 rows .* for a batch of 32 sequences"):
        test_hypothesis(_small_transformer(), ["inp"], [short], sho(32, length=9))
    positions = Hypothesis("positions", lambda b: np.zeros((32, 3, 1)))
    with pytest.raises(DataError, match="must be \\(n, 8, k\\) for 8 positions"):
        test_hypothesis(_small_transformer(), ["inp"], [positions], sho(32, length=9))


def test_too_few_sequences_for_a_held_out_split():
    with pytest.raises(DataError, match="10 sequences are too few for a held-out split .* give at least 16"):
        test_hypothesis(_small_transformer(), ["inp"], ["taylor"], sho(10, length=9))


def test_nan_in_the_data_is_one_line_error():
    data = sho(32, length=9)
    data.targets[0, 0, 0] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        test_hypothesis(_small_transformer(), ["inp"], ["taylor"], data)
    bad = sho(32, length=9)
    bad.params["omega"][4] = float("nan")
    with pytest.raises(DataError, match="parameter 'omega' holds NaN"):
        test_hypothesis(_small_transformer(), ["inp"], ["taylor"], bad)


def test_unknown_hypothesis_name():
    with pytest.raises(
        ConfigError, match="unknown hypothesis 'euler' for task 'sho-undamped'; valid: linear-multistep"
    ):
        test_hypothesis(_small_transformer(), ["inp"], ["euler"], sho(32, length=9))


def test_a_batch_is_its_own_type():
    assert isinstance(sho(4), SequenceBatch)
