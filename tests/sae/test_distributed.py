"""Data-parallel SAE training on 2 gloo processes (CPU) follows the single-process trajectory."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from intelligible.sae import SwitchSAE, TensorBatches, TopKSAE, TrainConfig, train


def _data():
    generator = torch.Generator().manual_seed(0)
    return torch.randn(1024, 16, generator=generator) @ torch.randn(16, 16, generator=generator) + 1.0


def _model(kind):
    return TopKSAE(16, 64, k=4) if kind == "topk" else SwitchSAE(16, 64, k=4, n_experts=4, lb_alpha=0.0)


def _worker(rank, world, init_file, kind, out_file):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    model = _model(kind)
    history = train(
        model, TensorBatches(_data(), 256), TrainConfig(steps=8, batch=256, lr=3e-3), show_progress=False
    )
    if rank == 0:
        torch.save({"state": model.state_dict(), "losses": [h["mse"] for h in history]}, out_file)
    dist.destroy_process_group()


@pytest.mark.parametrize("kind", ["topk", "switch"])
def test_two_processes_match_one(tmp_path, kind):
    single = _model(kind)
    train(single, TensorBatches(_data(), 256), TrainConfig(steps=8, batch=256, lr=3e-3), show_progress=False)
    out_file = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), kind, str(out_file)), nprocs=2, join=True)
    result = torch.load(out_file)
    for key, value in single.state_dict().items():
        torch.testing.assert_close(result["state"][key], value, atol=1e-4, rtol=1e-4, msg=key)
