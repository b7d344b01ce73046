"""Data-parallel and expert-parallel SAE training on 2 gloo processes (CPU) follow the single-process
trajectory."""

from __future__ import annotations

import contextlib
import os
import sys
import time

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from intelligible.core.errors import ConfigError, DataError
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
        if mode == "diverge":
            # rank 1's loss turns NaN at step 3: both ranks must stop there with the same error
            model = _NanOnRank(fail_rank=1, at=3)
            try:
                train(model, TensorBatches(_data(), 256), _config(), show_progress=False)
            except DataError as error:
                with open(f"{out_file}.{rank}", "w") as file:
                    file.write(str(error))
            return
        if mode == "expert-resume":
            with contextlib.suppress(_Crash):
                train(model, _CrashingBatches(6), _config(checkpoint_every=4), run=run, show_progress=False)
            model = shard_experts(_model(kind))  # a fresh process would start from scratch like this
            history = train(model, TensorBatches(_data(), 256), _config(checkpoint_every=4), run=run,
                            resume=True, show_progress=False)  # fmt: skip
            assert len(history) == STEPS - 4
        else:
            # metrics.jsonl (rank 0) must hold the whole batch's numbers, as one process logs them
            history = train(model, TensorBatches(_data(), 256), _config(), run=run, show_progress=False)
        full = gather_experts(model) if mode.startswith("expert") else model
        if rank == 0:
            torch.save({"state": full.state_dict(), "history": list(history)}, out_file)
    finally:
        dist.barrier()  # nobody tears the group down while a peer still talks to it
        dist.destroy_process_group()


def _spawn(tmp_path, mode, timeout=120.0):
    """Run `_worker` on 2 processes; fail (killing them) if they have not finished within `timeout`."""
    (tmp_path / "run").mkdir()
    args = (2, str(tmp_path / "init"), mode, str(tmp_path / "rank0.pt"), str(tmp_path / "run"))
    context = mp.start_processes(_worker, args=args, nprocs=2, join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the ranks did not finish within {timeout:.0f} s (one waits for the other)")


@pytest.mark.parametrize("mode", ["topk", "switch", "expert", "expert-resume"])
def test_two_processes_match_one(tmp_path, mode):
    single = _model("topk" if mode == "topk" else "switch")
    expected = train(single, TensorBatches(_data(), 256), _config(), show_progress=False)
    _spawn(tmp_path, mode)
    result = torch.load(tmp_path / "rank0.pt")
    for key, value in single.state_dict().items():
        torch.testing.assert_close(result["state"][key], value, atol=1e-4, rtol=1e-4, msg=key)
    if mode in ("topk", "switch"):
        logged = RunDir(tmp_path / "run").read_metrics()
        assert [row["step"] for row in logged] == list(range(STEPS))
        for name in ("loss", "mse", "l0", "load_balance", "dead_fraction", "lr"):
            if name in expected[0]:
                got = [row[name] for row in logged]
                assert got == pytest.approx([h[name] for h in expected], rel=1e-4, abs=1e-6), name
                assert [h[name] for h in result["history"]] == pytest.approx(got, rel=1e-9), name


class _NanOnRank(TopKSAE):
    """A TopK SAE whose loss turns NaN on one rank from step `at` on."""

    def __init__(self, fail_rank: int, at: int) -> None:
        super().__init__(16, 64, k=4)
        self.fail_rank, self.at, self.calls = fail_rank, at, 0

    def loss(self, x):
        terms = super().loss(x)
        self.calls += 1
        if self.calls > self.at and dist.get_rank() == self.fail_rank:
            terms["loss"] = terms["loss"] * float("nan")
        return terms


def test_a_diverging_rank_stops_every_rank(tmp_path):
    _spawn(tmp_path, "diverge", timeout=90.0)
    messages = [(tmp_path / f"rank0.pt.{rank}").read_text() for rank in (0, 1)]
    assert messages[0] == messages[1] == "training diverged at step 3 (loss nan); lower the lr"


def test_expert_parallel_refusals():
    with pytest.raises(ConfigError, match="initialised torch.distributed group"):
        shard_experts(_model("switch"))
    with pytest.raises(ConfigError, match="Switch SAEs, got a topk SAE"):
        shard_experts(_model("topk"))
