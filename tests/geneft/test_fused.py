"""The fused numba engine: its tanh, its agreement with the torch engine and train_single, threads."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from intelligible.core.errors import ConfigError
from intelligible.geneft import _fused
from intelligible.geneft.model import ModelSpec
from intelligible.geneft.relations import get_relation
from intelligible.geneft.train import RunSpec, train_batched, train_single

pytestmark = pytest.mark.skipif(not _fused.AVAILABLE, reason="numba is not installed")


def test_fused_tanh_is_within_float32_rounding():
    rng = np.random.default_rng(0)
    values = np.concatenate(
        [np.linspace(-12, 12, 200_001), rng.standard_normal(50_000) * 3, np.geomspace(1e-30, 10, 20_000)]
    ).astype(np.float32)
    values = np.concatenate([values, -values])
    out = np.empty_like(values)
    _fused.tanh_array(values, out)
    exact = np.tanh(values.astype(np.float64))
    error = np.abs(out - exact)
    # absolute: at most one float32 ulp at tanh's scale (torch's own tanh: 3e-8)
    assert error.max() <= 2**-24
    # relative, for small values too: a few ulp of the result
    assert (error / np.spacing(np.abs(exact).astype(np.float32))).max() <= 3
    torch_tanh = torch.tanh(torch.from_numpy(values)).numpy()
    assert np.abs(out - torch_tanh).max() <= 2**-23
    assert np.all(np.abs(out) <= 1) and np.all(np.sign(out) == np.sign(values))
    special = np.array([np.nan, np.inf, -np.inf, -0.0], dtype=np.float32)
    _fused.tanh_array(special, out[:4])
    # a diverged run stays visibly diverged (NaN), as with torch.tanh
    assert np.isnan(out[0]) and out[1] == 1 and out[2] == -1 and np.signbit(out[3])


def test_auto_engine_trains_mlps_with_the_fused_kernel(monkeypatch):
    calls = []
    kernel = _fused.train_block

    def counting(*args):
        calls.append(args[14:16])  # the block's first and last step
        return kernel(*args)

    monkeypatch.setattr(_fused, "train_block", counting)
    relation = get_relation("mod3", 6)
    train_batched(relation, ModelSpec(n=6, width=4), [RunSpec(0, 0.5, 0.01, 0.01)], 120, eval_every=60)
    # blocks end at the evaluation steps; none is longer than FUSED_BLOCK (50) steps
    assert calls == [(1, 50), (51, 60), (61, 110), (111, 120)]
    calls.clear()
    train_batched(relation, ModelSpec(n=6, decoder="ideal-distance"), [RunSpec(0, 0.5, 0.01, 0.01)], 10)
    train_batched(relation, ModelSpec(n=6, width=4), [RunSpec(0, 0.5, 0.01, 0.01)], 10, engine="torch")
    assert calls == []


@pytest.mark.parametrize("combiner", ["concat", "difference", "squared-difference"])
def test_fused_engine_equals_the_torch_engine(combiner):
    relation = get_relation("mod3", 6)
    spec = ModelSpec(n=6, combiner=combiner, width=7)
    runs = [RunSpec(seed, 0.4 + 0.2 * seed, 0.02, 0.01 * (seed + 1)) for seed in range(3)]
    depths = [1, 3, 4]
    fused = train_batched(relation, spec, runs, 40, eval_every=20, depths=depths, keep_embeddings=(1,))
    plain = train_batched(
        relation, spec, runs, 40, eval_every=20, depths=depths, keep_embeddings=(1,), engine="torch"
    )
    for a, b in zip(fused, plain):
        assert a.steps == b.steps == [20, 40]
        assert a.final_loss == pytest.approx(b.final_loss, rel=1e-4, abs=1e-6)
        assert a.train_accuracy == b.train_accuracy and a.test_accuracy == b.test_accuracy
    np.testing.assert_allclose(fused[1].embeddings[-1], plain[1].embeddings[-1], rtol=1e-4, atol=1e-6)
    assert fused[0].embeddings == []
    # indices outside the batch keep nothing, as in the torch engine
    outside = train_batched(relation, spec, runs[:1], 5, keep_embeddings=(-1, 4))
    assert outside[0].embeddings == []


def test_the_issue_architecture_equals_single_model_training():
    # n = 30, 3 x 50 tanh, fraction 0.5: the benchmark's models (the GEMMs, 450 pairs, 50 units)
    relation = get_relation("mod3", 30)
    spec = ModelSpec(n=30)
    runs = [RunSpec(0, 0.5, 1e-2, 1e-3), RunSpec(1, 0.5, 1e-3, 3e-2)]
    together = train_batched(relation, spec, runs, 30, eval_every=15)
    for run, result in zip(runs, together):
        alone = train_single(relation, spec, run, 30, eval_every=15)
        assert result.final_loss == pytest.approx(alone.final_loss, rel=1e-5)
        assert result.train_accuracy == alone.train_accuracy and result.test_accuracy == alone.test_accuracy


def test_a_tiny_loss_is_reported_as_train_single_reports_it():
    # 4 training pairs fitted in 25 steps: the loss (~2e-5) is dominated by torch's float32 rounding
    # of (1 - y) z - log_sigmoid(z); the fused engine computes it the same way
    relation = get_relation("mod2", 6)
    spec = ModelSpec(n=6, depth=2, width=64)
    for run in (RunSpec(0, 0.1, 0.01, 0.02), RunSpec(2, 0.1, 0.03, 0.02)):
        fused = train_batched(relation, spec, [run], 25, eval_every=5)[0]
        alone = train_single(relation, spec, run, 25, eval_every=5)
        assert alone.final_loss < 3e-4
        assert fused.final_loss == pytest.approx(alone.final_loss, rel=1e-5)


def test_threads_do_not_change_the_numbers():
    relation = get_relation("mod2", 6)
    spec = ModelSpec(n=6, width=6)
    runs = [RunSpec(seed, 0.5, 0.01, 0.02) for seed in range(5)]
    one = train_batched(relation, spec, runs, 30, eval_every=10, threads=1)
    two = train_batched(relation, spec, runs, 30, eval_every=10, threads=2)
    for a, b in zip(one, two):
        assert a.final_loss == b.final_loss and a.test_accuracy == b.test_accuracy


def test_engine_and_thread_errors():
    relation = get_relation("mod2", 6)
    runs = [RunSpec(0, 0.5, 0.01, 0.01)]
    with pytest.raises(ConfigError, match="engine must be one of auto, fused, torch, got 'numba'"):
        train_batched(relation, ModelSpec(n=6), runs, 5, engine="numba")
    with pytest.raises(
        ConfigError, match="fused engine cannot train .* MLP decoders only, not ideal-distance"
    ):
        train_batched(relation, ModelSpec(n=6, decoder="ideal-distance"), runs, 5, engine="fused")
    with pytest.raises(ConfigError, match="threads must be a whole number >= 1, got 0"):
        train_batched(relation, ModelSpec(n=6), runs, 5, threads=0)
