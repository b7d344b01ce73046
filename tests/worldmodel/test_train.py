"""Training runs: snapshots, resume, refusals; the probe on a run."""

from __future__ import annotations

import importlib

import pytest
import torch

from intelligible.core.errors import ConfigError, DataError, OutputError
from intelligible.worldmodel.experiment import ProbeConfig, probe_run, reproduce_config
from intelligible.worldmodel.train import TrainConfig, load_run, snapshots_of, train


def _config(**changes):
    base = dict(
        task="sho-undamped", layers=1, hidden=4, steps=12, length=6, n_val=16, snapshots=3, checkpoint_every=5
    )
    return TrainConfig(**{**base, **changes})


def test_train_writes_weights_snapshots_and_a_summary(tmp_path):
    summary = train(_config(), tmp_path / "run", quiet=True)
    assert summary["steps"] == 12 and summary["val_mse"] > 0
    assert len(snapshots_of(tmp_path / "run")) == 3
    model, config = load_run(tmp_path / "run")
    assert config.layers == 1 and model(torch.zeros(2, 5, 2)).shape == (2, 5, 2)
    assert not (tmp_path / "run" / "checkpoint.safetensors").exists()


def test_resume_after_ctrl_c_reaches_the_same_weights(tmp_path, monkeypatch):
    train_module = importlib.import_module("intelligible.worldmodel.train")

    train(_config(), tmp_path / "whole", quiet=True)
    real = train_module.batch_for_step

    def interrupted(config, step, n=None):
        if step == 7:
            raise KeyboardInterrupt
        return real(config, step, n)

    monkeypatch.setattr(train_module, "batch_for_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(_config(), tmp_path / "part", quiet=True)
    assert (tmp_path / "part" / "checkpoint.safetensors").is_file()
    monkeypatch.setattr(train_module, "batch_for_step", real)
    summary = train(_config(), tmp_path / "part", resume=True, quiet=True)
    whole, _ = load_run(tmp_path / "whole")
    part, _ = load_run(tmp_path / "part")
    for (name, a), b in zip(whole.state_dict().items(), part.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6), name
    assert summary["steps"] == 12
    with pytest.raises(DataError, match="not a folder"):
        load_run(tmp_path / "nowhere")


def test_an_earlier_run_is_not_cleared(tmp_path):
    train(_config(), tmp_path / "run", quiet=True)
    before = sorted(p.name for p in (tmp_path / "run").iterdir())
    with pytest.raises(OutputError, match="holds an earlier run"):
        train(_config(hidden=8), tmp_path / "run", quiet=True)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == before
    with pytest.raises(ConfigError, match="config differs"):
        train(_config(hidden=8), tmp_path / "run", resume=True, quiet=True)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"layers": 0}, "layers must be"),
        ({"lr": -1.0}, "lr must be"),
        ({"device": "tpu"}, "device must be"),
        ({"length": 1}, "length must be"),
        ({"steps": 0}, "steps must be"),
    ],  # fmt: skip
)
def test_bad_train_configs(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        train(_config(**changes), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()


def test_probe_refuses_bad_names_before_writing(tmp_path):
    train(_config(), tmp_path / "run", quiet=True)
    with pytest.raises(ConfigError, match="unknown hypothesis 'w'"):
        probe_run(tmp_path / "run", ProbeConfig(n_sequences=40, hypotheses=("w",)))
    with pytest.raises(ConfigError, match="no site 'mlp-3'"):
        probe_run(tmp_path / "run", ProbeConfig(n_sequences=40, sites=("mlp-3",)))
    assert not (tmp_path / "run" / "probe").exists()


def test_presets():
    assert reproduce_config("quick").sho_steps < reproduce_config("paper").sho_steps
    assert reproduce_config("paper").grid_hidden == (2, 4, 8, 16, 32)
    with pytest.raises(ConfigError, match="unknown preset 'fast'"):
        reproduce_config("fast")


def test_our_adam_takes_torch_adams_steps():
    train_module = importlib.import_module("intelligible.worldmodel.train")
    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    theirs.load_state_dict(ours.state_dict())
    opt_ours = train_module.Adam(list(ours.parameters()), 1e-2)
    opt_theirs = torch.optim.Adam(theirs.parameters(), 1e-2)
    for _ in range(30):
        x = torch.randn(8, 3)
        for model, opt in ((ours, opt_ours), (theirs, opt_theirs)):
            opt.zero_grad()
            (model(x) ** 2).sum().backward()
            opt.step()
    for a, b in zip(ours.parameters(), theirs.parameters()):
        assert torch.allclose(a, b, atol=1e-6)


def test_probe_refuses_what_would_not_fit_in_memory(tmp_path):
    train(_config(length=200, steps=2), tmp_path / "run", quiet=True)  # 199 positions: about 1.7 TB of states
    with pytest.raises(ConfigError, match="lower --n-sequences"):
        probe_run(tmp_path / "run", ProbeConfig(n_sequences=4_000_000, from_position=1))
    assert not (tmp_path / "run" / "probe").exists()


def test_a_batch_that_would_not_fit_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="lower --batch-size"):
        train(_config(batch_size=65536, length=4096, hidden=4096, layers=64), tmp_path / "run", quiet=True)
    assert not (tmp_path / "run").exists()
