"""Expert parallelism for Switch SAEs: experts sharded over ranks, tokens exchanged with all-to-all.

With R processes in a torch.distributed group (torchrun, or `init_process_group` yourself),
`shard_experts(model)` keeps on each rank only the encoder and decoder rows of its E / R experts
(rank r owns experts r*E/R .. (r+1)*E/R - 1); the router, the biases and a shared expert stay
replicated. Each rank trains on its own slice of every batch (data parallelism) and a step goes:

1. route the local tokens (replicated router), sort them by expert;
2. all-to-all: every token goes to the rank that owns its expert;
3. the owner runs its experts' encoders (grouped matmul), TopK, and decodes with its own rows;
4. all-to-all back: the decoded vector (d numbers) returns to the token's rank, which adds the
   router-probability scaling and b_dec and computes the loss.

The backward pass exchanges the gradients the same way (`_AllToAll` below). An expert's weight
gradient collects the contributions of every rank's tokens, so `train` divides it by R instead of
all-reducing it; replicated parameters are all-reduced as in data parallelism. The result follows
the single-process trajectory (tests: 2 gloo processes on CPU). Memory for the dictionary and its
Adam state is divided by R, which is what makes very wide Switch SAEs fit.

`gather_experts(model)` (a collective: call it on every rank) returns an ordinary SwitchSAE with
the whole dictionary, for evaluation and saving.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from intelligible.core.errors import ConfigError
from intelligible.lm.saes._kernels import sparse_decode
from intelligible.lm.saes.models import Code, SwitchSAE, _GroupedMatmul, inverse_permutation, permute_rows

SHARDED = ("W_enc", "W_dec")  # parameters split by expert; everything else is replicated


class _AllToAll(torch.autograd.Function):
    """all_to_all_single with a backward: gradients travel back along the same routes."""

    @staticmethod
    def forward(ctx, x: Tensor, out_splits: list[int], in_splits: list[int]) -> Tensor:  # noqa: ANN001
        ctx.splits = (out_splits, in_splits)
        return _exchange(x, out_splits, in_splits)

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205
        out_splits, in_splits = ctx.splits
        return _exchange(grad, in_splits, out_splits), None, None


def _exchange(x: Tensor, out_splits: list[int], in_splits: list[int]) -> Tensor:
    out = x.new_empty((sum(out_splits), *x.shape[1:]))
    dist.all_to_all_single(out, x.contiguous(), out_splits, in_splits)
    return out


def _group() -> tuple[int, int]:
    if not (dist.is_available() and dist.is_initialized()):
        raise ConfigError(
            "expert parallelism needs an initialised torch.distributed group (launch with torchrun)"
        )
    return dist.get_rank(), dist.get_world_size()


def shard_experts(model: SwitchSAE) -> SwitchSAE:
    """Keep only this rank's experts (in place); every rank must call it on an identical model."""
    if not isinstance(model, SwitchSAE):
        raise ConfigError(f"expert parallelism is for Switch SAEs, got a {model.kind} SAE")
    if model.expert_shard is not None:
        raise ConfigError("the model is already sharded over experts")
    if model.dense_reference:
        raise ConfigError(
            "dense_reference=True runs the whole dictionary on every token; it cannot be sharded"
        )
    rank, world = _group()
    if model.n_experts % world:
        raise ConfigError(
            f"expert parallelism needs the number of experts ({model.n_experts}) to be divisible by "
            f"the number of processes ({world})"
        )
    rows = model.n_latents // world
    for name in SHARDED:
        full = getattr(model, name)
        setattr(model, name, nn.Parameter(full.detach()[rank * rows : (rank + 1) * rows].clone()))
    model.expert_shard = (rank, world)
    return model


def local_rows(full: Tensor, model: SwitchSAE) -> Tensor:
    """This rank's rows of a whole-dictionary tensor (a weight or its Adam state)."""
    rank, world = model.expert_shard
    rows = full.shape[0] // world
    return full[rank * rows : (rank + 1) * rows].clone()


def gather_rows(local: Tensor) -> Tensor:
    """Concatenate every rank's rows in rank order (a collective)."""
    parts = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, local.contiguous())
    return torch.cat(parts)


def gather_experts(model: SwitchSAE) -> SwitchSAE:
    """An unsharded copy with the whole dictionary, on every rank (a collective)."""
    if model.expert_shard is None:
        return model
    cfg = model.config()
    cfg.pop("kind")
    full = SwitchSAE(**cfg)
    state = dict(model.state_dict())
    for name in SHARDED:
        state[name] = gather_rows(state[name])
    full.load_state_dict(state)
    full.train(model.training)
    return full


def expert_parallel_forward(model: SwitchSAE, x: Tensor) -> tuple[Tensor, Code]:
    """Reconstruction (without a shared expert) and Code of the local tokens, experts on their owners."""
    rank, world = model.expert_shard
    n_local, m, k = model.n_experts // world, model.per_expert, model.k
    probs, expert, gate = model.route(x)
    scale = torch.ones_like(gate) if model.heaviside else gate
    order = torch.argsort(expert)
    unsort = inverse_permutation(order)
    counts = torch.bincount(expert, minlength=model.n_experts)
    # how many tokens each rank sends to each of this rank's experts: (sources, local experts)
    incoming = torch.empty_like(counts)
    dist.all_to_all_single(incoming, counts)
    incoming = incoming.view(world, n_local)
    send = counts.view(world, n_local).sum(1).tolist()
    receive = incoming.sum(1).tolist()
    received = _AllToAll.apply(permute_rows(x - model.b_dec, order, unsort), receive, send)
    # received rows come by source, then by expert; regroup them by local expert for the matmul
    local_expert = torch.arange(n_local, device=x.device).repeat(world).repeat_interleave(incoming.flatten())
    regroup = torch.argsort(local_expert, stable=True)
    restore = inverse_permutation(regroup)
    per_expert = incoming.sum(0).tolist()
    w_enc = model.W_enc.view(n_local, m, model.d)
    pre = _GroupedMatmul.apply(permute_rows(received, regroup, restore), w_enc, per_expert)
    # the router scale p > 0 does not change which latents are the top k, so the owner takes TopK of
    # the unscaled latents and the token's rank multiplies the decoded vector by p
    values, local = F.relu(pre).topk(k, dim=-1, sorted=False)
    rows = local + (local_expert[regroup] * m)[:, None]
    decoded = sparse_decode(values, rows, model.W_dec)
    decoded = _AllToAll.apply(permute_rows(decoded, restore, regroup), send, receive)
    # the code (values and global latent indices, no gradient) travels back for metrics and dead tracking
    meta = torch.cat([values.detach().double(), (rows + rank * n_local * m).double()], dim=1)[restore]
    meta = _exchange(meta, send, receive)
    decoded, meta = permute_rows(decoded, unsort, order), meta[unsort]
    x_hat = scale[:, None] * decoded + model.b_dec
    code = Code(values=meta[:, :k].to(x.dtype) * scale[:, None], indices=meta[:, k:].long(),
                expert=expert, probs=probs)  # fmt: skip
    return x_hat, code
