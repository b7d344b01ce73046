"""Data-parallel and expert-parallel SAE training on 2 gloo processes (CPU) follow the single-process
trajectory."""

from __future__ import annotations

import contextlib
import os
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from intelligible.core.errors import ConfigError
from intelligible.core.runs import RunDir
from intelligible.sae import SwitchSAE, TensorBatches, TopKSAE, TrainConfig, save_sae, train
from intelligible.sae.parallel import gather_experts, shard_experts

STEPS = 8


def _data():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(1024, 16, generator=generator) @ torch.randn(16, 16, generator=generator) + 1.0


def _model(kind):
    if kind == "topk":
        return TopKSAE(16, 64, k=4)
    # load balancing on and a shared expert: every replicated and sharded path is exercised
    return SwitchSAE(16, 64, k=4, n_experts=4, lb_alpha=3.0, shared_expert=2)


def _config(**overrides):
    return TrainConfig(steps=STEPS, batch=256, lr=3e-3, **overrides)


class _Crash(RuntimeError):
    pass


class _CrashingBatches(TensorBatches):
    """Fails at `crash_at`, as a killed job would, after the periodic checkpoint at step 4."""

    def __init__(self, crash_at: int) -> None:
        super().__init__(_data(), 256)
        self.crash_at = crash_at

    def batch_at(self, step: int):
        if step == self.crash_at:
            raise _Crash
        return super().batch_at(step)


def _worker(rank, world, init_file, mode, out_file, run_dir):
    _train_worker(rank, world, init_file, mode, out_file, run_dir)
    # Leave without interpreter teardown: on a loaded machine gloo's background threads were still
    # joinable at exit and C++ aborted the finished worker (SIGABRT, "terminate called without an
    # active exception"). Everything this worker writes is on disk by now.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _train_worker(rank, world, init_file, mode, out_file, run_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    try:
        kind = "topk" if mode == "topk" else "switch"
        model = _model(kind)
        if mode.startswith("expert"):
            with pytest.raises(
                ConfigError, match=r"number of experts \(3\) to be divisible by the number of processes \(2\)"
            ):
                shard_experts(SwitchSAE(16, 48, k=4, n_experts=3))
            shard_experts(model)
            with pytest.raises(ConfigError, match="save gather_experts"):
                save_sae(model, run_dir + "/shard")
            assert model.W_enc.shape == (32, 16)  # half of the dictionary on each rank
        run = RunDir(run_dir)
        if mode == "expert-resume":
            with contextlib.suppress(_Crash):
                train(model, _CrashingBatches(6), _config(checkpoint_every=4), run=run, show_progress=False)
            model = shard_experts(_model(kind))  # a fresh process would start from scratch like this
            history = train(model, TensorBatches(_data(), 256), _config(checkpoint_every=4), run=run,
                            resume=True, show_progress=False)  # fmt: skip
            assert len(history) == STEPS - 4
        else:
            history = train(model, TensorBatches(_data(), 256), _config(), show_progress=False)
        full = gather_experts(model) if mode.startswith("expert") else model
        if rank == 0:
            torch.save({"state": full.state_dict(), "losses": [h["mse"] for h in history]}, out_file)
    finally:
        dist.barrier()  # nobody tears the group down while a peer still talks to it
        dist.destroy_process_group()


@pytest.mark.parametrize("mode", ["topk", "switch", "expert", "expert-resume"])
def test_two_processes_match_one(tmp_path, mode):
    single = _model("topk" if mode == "topk" else "switch")
    train(single, TensorBatches(_data(), 256), _config(), show_progress=False)
    out_file = tmp_path / "rank0.pt"
    (tmp_path / "run").mkdir()
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), mode, str(out_file), str(tmp_path / "run")),
             nprocs=2, join=True)  # fmt: skip
    result = torch.load(out_file)
    for key, value in single.state_dict().items():
        torch.testing.assert_close(result["state"][key], value, atol=1e-4, rtol=1e-4, msg=key)


def test_expert_parallel_refusals():
    with pytest.raises(ConfigError, match="initialised torch.distributed group"):
        shard_experts(_model("switch"))
    with pytest.raises(ConfigError, match="Switch SAEs, got a topk SAE"):
        shard_experts(_model("topk"))
