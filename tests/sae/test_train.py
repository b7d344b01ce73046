"""SAE training: learning-rate rule and schedule, geometric median, unit-norm decoder, resume, errors."""

from __future__ import annotations

import pytest
import torch

from intelligible.core.errors import ConfigError, DataError
from intelligible.core.runs import RunDir
from intelligible.sae import SwitchSAE, TopKSAE
from intelligible.sae.train import (
    TensorBatches,
    TrainConfig,
    base_learning_rate,
    geometric_median,
    lr_factor,
    train,
)


def _activations(n=2048, d=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    # a sparse-ish signal: each token is a combination of 3 of 64 directions, plus an offset
    directions = torch.randn(64, d, generator=generator)
    weights = torch.zeros(n, 64)
    picks = torch.randint(0, 64, (n, 3), generator=generator)
    weights.scatter_(1, picks, torch.rand(n, 3, generator=generator) + 0.5)
    return weights @ directions + 2.0


def test_learning_rate_rule_and_schedule():
    assert base_learning_rate(2**14) == pytest.approx(2e-4)
    assert base_learning_rate(2**16) == pytest.approx(1e-4)
    cfg = TrainConfig(steps=100, warmup_steps=10, decay_fraction=0.2)
    assert lr_factor(0, cfg) == pytest.approx(0.1) and lr_factor(9, cfg) == 1.0
    assert lr_factor(50, cfg) == 1.0 and lr_factor(80, cfg) == 1.0
    assert lr_factor(90, cfg) == pytest.approx(0.5) and lr_factor(99, cfg) == pytest.approx(0.05)


def test_geometric_median_resists_outliers():
    points = torch.cat([torch.randn(200, 3) * 0.01, torch.full((20, 3), 100.0)])
    median = geometric_median(points)
    assert median.norm() < 0.5 < points.mean(0).norm()


@pytest.mark.parametrize(
    "factory", [lambda: TopKSAE(16, 64, k=4), lambda: SwitchSAE(16, 64, k=4, n_experts=4)]
)
def test_training_reduces_mse_and_keeps_unit_decoder_rows(factory):
    model = factory()
    acts = _activations()
    history = train(
        model, TensorBatches(acts, 256), TrainConfig(steps=200, batch=256, lr=3e-3), show_progress=False
    )
    assert history[-1]["mse"] < 0.5 * history[0]["mse"]
    torch.testing.assert_close(model.W_dec.norm(dim=1), torch.ones(64), atol=1e-5, rtol=0)
    assert 0 <= history[-1]["dead_fraction"] <= 1 and history[-1]["lr"] == pytest.approx(3e-3 / 40)


def test_resume_continues_the_same_trajectory(tmp_path):
    acts = _activations()
    cfg = TrainConfig(steps=12, batch=256, lr=3e-3, checkpoint_every=4)
    straight = SwitchSAE(16, 64, k=4, n_experts=4)
    full = train(straight, TensorBatches(acts, 256), cfg, show_progress=False)

    class Interrupted(TensorBatches):
        def batch_at(self, step):
            if step == 6:
                raise KeyboardInterrupt  # Ctrl-C in the middle of the run: a checkpoint at step 6
            return super().batch_at(step)

    interrupted = SwitchSAE(16, 64, k=4, n_experts=4)
    run = RunDir.create(tmp_path / "run", cfg, cfg.seed)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, Interrupted(acts, 256), cfg, run=run, show_progress=False)
    state = run.load_checkpoint()[1]
    assert (
        state["step"] == 6
        and state["parts"] == 1
        and state["final"]["loss"] == pytest.approx(full[5]["loss"])
    )
    # a new process: a fresh model, resumed from the step-6 checkpoint
    resumed = SwitchSAE(16, 64, k=4, n_experts=4, seed=5)
    rest = train(resumed, TensorBatches(acts, 256), cfg, run=run, resume=True, show_progress=False)
    assert len(rest) == 6
    assert rest[-1]["loss"] == pytest.approx(full[-1]["loss"], rel=1e-5)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


class _Crash(RuntimeError):
    pass


def test_resume_after_a_crash_logs_each_step_once(tmp_path):
    # a killed job: steps 4 and 5 were logged after the step-4 checkpoint, then the process died
    acts = _activations()
    cfg = TrainConfig(steps=12, batch=256, lr=3e-3, checkpoint_every=4)
    full = train(SwitchSAE(16, 64, k=4, n_experts=4), TensorBatches(acts, 256), cfg, show_progress=False)

    class Crashing(TensorBatches):
        def batch_at(self, step):
            if step == 6:
                raise _Crash
            return super().batch_at(step)

    run = RunDir.create(tmp_path / "run", cfg, cfg.seed)
    with pytest.raises(_Crash):
        train(SwitchSAE(16, 64, k=4, n_experts=4), Crashing(acts, 256), cfg, run=run, show_progress=False)
    assert [row["step"] for row in run.read_metrics()] == list(range(6))
    first_seconds = run.load_checkpoint()[1]["train_seconds"]
    rest = train(SwitchSAE(16, 64, k=4, n_experts=4), TensorBatches(acts, 256), cfg, run=run, resume=True,
                 show_progress=False)  # fmt: skip
    rows = run.read_metrics()
    assert [row["step"] for row in rows] == list(range(12))  # 4 and 5 once, from the resumed part
    assert [row["loss"] for row in rows] == pytest.approx([h["loss"] for h in full], rel=1e-5)
    # the history describes the whole run: two parts, both parts' time, the last step's metrics
    assert rest.start_step == 4 and rest.parts == 2 and len(rest) == 8
    assert rest.train_seconds > first_seconds > 0
    assert rest.final["mse"] == pytest.approx(full[-1]["mse"], rel=1e-5)
    # resumed once more after it finished (a crash while evaluating): nothing to train, same numbers
    again = train(SwitchSAE(16, 64, k=4, n_experts=4), TensorBatches(acts, 256), cfg, run=run, resume=True,
                  show_progress=False)  # fmt: skip
    assert (
        len(again) == 0
        and again.parts == 3
        and again.final["mse"] == pytest.approx(full[-1]["mse"], rel=1e-5)
    )
    assert [row["step"] for row in run.read_metrics()] == list(range(12))


class _DivergingTopK(TopKSAE):
    """A TopK SAE whose loss turns NaN at step `at` (a diverging run, without waiting for one)."""

    def __init__(self, at: int) -> None:
        super().__init__(16, 64, k=4)
        self.at, self.calls = at, 0

    def loss(self, x):
        terms = super().loss(x)
        self.calls += 1
        if self.calls > self.at:
            terms["loss"] = terms["loss"] * float("nan")
        return terms


def test_diverging_loss_stops_before_the_update():
    model = _DivergingTopK(at=2)
    acts = _activations()
    with pytest.raises(DataError, match=r"training diverged at step 2 \(loss nan\); lower the lr"):
        train(model, TensorBatches(acts, 256), TrainConfig(steps=8, batch=256, lr=3e-3), show_progress=False)
    assert torch.isfinite(model.W_enc).all()  # the NaN step changed no weight


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    run = RunDir.create(tmp_path / "run", TrainConfig(), 0)
    (run.path / "checkpoint.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="checkpoint .* cannot be read"):
        train(TopKSAE(16, 64, k=4), TensorBatches(_activations(), 256), TrainConfig(steps=2, batch=256),
              run=run, resume=True, show_progress=False)  # fmt: skip


@pytest.mark.parametrize(
    ("cfg", "message"),
    [
        (TrainConfig(steps=0), "steps must be in 1..1,000,000,000, got 0"),
        (TrainConfig(steps=10**12), "steps must be in 1..1,000,000,000, got 1000000000000"),
        (TrainConfig(batch=2**40), "batch must be in 1..16,777,216, got 1099511627776"),
        (
            TrainConfig(lr=-1.0),
            r"lr must be >= 0 \(0 picks 2e-4 / sqrt\(M / 2\^14\)\) and at most 1.0, got -1.0",
        ),
        (TrainConfig(lr=1e300), r"and at most 1.0, got 1e\+300"),
        (TrainConfig(seed=-1), r"seed must be in 0..4294967295 \(2\*\*32 - 1\), got -1"),
        (TrainConfig(grad_clip=0.0), r"grad_clip must be in \(0, 1e6\], got 0.0"),
        (TrainConfig(decay_fraction=1.5), r"decay_fraction must be in \[0, 1\], got 1.5"),
        (TrainConfig(batch=128), "the batch source yields 256 rows but cfg.batch is 128"),
    ],
)
def test_bad_train_config(cfg, message):
    with pytest.raises(ConfigError, match=message):
        train(TopKSAE(16, 64, k=4), TensorBatches(_activations(), 256), cfg, show_progress=False)


def test_too_few_activations():
    with pytest.raises(DataError, match=r"at least batch = 256 rows, got \(100, 16\)"):
        TensorBatches(torch.zeros(100, 16), 256)
