"""Sparse autoencoders with one interface: ReLU (L1), TopK (AuxK) and Switch (Mudide et al. 2024).

Every model maps activations x (batch, d) to latents and back:

- `encode(x)` returns a `Code`: for TopK and Switch the k active latents per token as (values,
  indices) into the M-wide dictionary; for ReLU the dense (batch, M) activations.
- `decode(code)` reconstructs x; sparse codes gather only the k active decoder rows
  (`_kernels.sparse_decode`), never an (batch, M) matrix.
- `loss(x)` returns a dict with "loss" (what is minimised), "mse" (squared error summed over d,
  averaged over tokens) and the terms that make it up.
- `flops_per_token()` counts multiply-adds x 2 of the forward and backward passes.

The Switch SAE follows the authors' trainer (amudide/switch_sae, trainers/switch.py): a bias-free
router on x - b_router picks one expert per token; that expert's bias-free encoder runs on x - b_dec,
its ReLU latents are scaled by the router probability p (or by 1 with `heaviside=True`), the top k
of them are kept, and the decoder (unit-norm rows) adds b_dec back. The loss adds
alpha * d * E * sum_i f_i P_i (f_i: fraction of tokens routed to expert i, P_i: mean router
probability), which is 1 * alpha * d at perfect balance. Unlike the authors' code, which runs the
dense M-wide encoder and masks it, tokens are sorted by expert and each expert multiplies only its
own tokens: the encoder costs d * M / E per token instead of d * M. `dense_reference=True` runs the
masked formulation instead, for checking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from intelligible.core.errors import ConfigError, DataError
from intelligible.lm.saes._kernels import normalize_rows, project_out_parallel, sparse_decode


@dataclass
class Code:
    """Latents of a batch: sparse (values, indices) of shape (batch, k), or dense (batch, M)."""

    values: Tensor
    indices: Tensor | None = None  # None: `values` is the dense (batch, M) activation matrix
    expert: Tensor | None = None  # Switch: the expert of each token
    probs: Tensor | None = None  # Switch: router probabilities (batch, E)

    @property
    def l0(self) -> Tensor:
        """Mean number of non-zero latents per token."""
        return (self.values != 0).sum(-1).float().mean()

    def dense(self, n_latents: int) -> Tensor:
        """The (batch, M) activation matrix (for analysis; training never builds it for sparse codes)."""
        if self.indices is None:
            return self.values
        out = self.values.new_zeros(self.values.shape[0], n_latents)
        return out.scatter_add(1, self.indices, self.values)


class SparseAutoencoder(nn.Module):
    """Shared parts: decoder rows W_dec (M, d), decoder bias b_dec, input checks, sparse decode."""

    kind = "base"

    def __init__(self, d: int, n_latents: int, *, seed: int = 0) -> None:
        super().__init__()
        for name, value in (("d", d), ("n_latents", n_latents)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        self.d, self.n_latents, self.seed = d, n_latents, seed
        generator = torch.Generator().manual_seed(seed)
        bound = 1 / math.sqrt(d)  # nn.Linear's default range, drawn from our own generator
        self.W_enc = nn.Parameter((torch.rand(n_latents, d, generator=generator) * 2 - 1) * bound)
        # decoder starts as the encoder's transpose with unit-norm rows, as in both reference trainers
        self.W_dec = nn.Parameter(self.W_enc.detach().clone())
        self.b_dec = nn.Parameter(torch.zeros(d))
        self.normalize_decoder()

    # ------------------------------------------------------------------ checks and shared pieces
    def check_input(self, x: Tensor) -> None:
        if x.dim() != 2 or x.shape[1] != self.d:
            raise DataError(f"expected activations of shape (batch, {self.d}), got {tuple(x.shape)}")
        if not torch.isfinite(x).all():
            raise DataError("activations contain NaN or inf values")

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Scale every decoder row to unit norm."""
        normalize_rows(self.W_dec)

    @torch.no_grad()
    def remove_parallel_decoder_grad(self) -> None:
        """Drop the gradient component along each decoder row, so unit-norm rows stay on the sphere."""
        if self.W_dec.grad is not None:
            project_out_parallel(self.W_dec.grad, self.W_dec)

    def decode(self, code: Code) -> Tensor:
        """Reconstruction (batch, d) from latents; sparse codes touch only their k decoder rows."""
        if code.indices is None:
            return code.values @ self.W_dec + self.b_dec
        return sparse_decode(code.values, code.indices, self.W_dec) + self.b_dec

    def encode(self, x: Tensor) -> Code:
        raise NotImplementedError

    def forward(self, x: Tensor) -> tuple[Tensor, Code]:
        code = self.encode(x)
        return self.decode(code), code

    @staticmethod
    def mse(x: Tensor, x_hat: Tensor) -> Tensor:
        """Squared error summed over the d dimensions, averaged over tokens (the papers' L2 loss)."""
        return (x_hat - x).pow(2).sum(dim=-1).mean()

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        """Training loss terms; also keeps the batch's (detached) latents in `self.last_code`."""
        raise NotImplementedError

    def _remember(self, code: Code) -> None:
        self.last_code = Code(values=code.values.detach(), indices=code.indices, expert=code.expert,
                              probs=None if code.probs is None else code.probs.detach())  # fmt: skip

    def flops_per_token(self) -> dict[str, int]:
        raise NotImplementedError

    def config(self) -> dict:
        raise NotImplementedError


class _GroupedMatmul(torch.autograd.Function):
    """Rows of x sorted by expert (counts[e] rows each) times their expert's weight (E, m, d)^T.

    Written by hand because indexing a weight per expert under autograd would materialise a
    full-size zero gradient per expert (E x M x d memory traffic per step); here each expert's
    weight gradient is written once into its slice.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, counts: list[int]) -> Tensor:  # noqa: ANN001
        out = x.new_empty(x.shape[0], weight.shape[1])
        start = 0
        for e, count in enumerate(counts):
            if count:
                torch.mm(x[start : start + count], weight[e].T, out=out[start : start + count])
            start += count
        ctx.save_for_backward(x, weight)
        ctx.counts = counts
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_w = torch.empty_like(weight) if ctx.needs_input_grad[1] else None
        start = 0
        for e, count in enumerate(ctx.counts):
            if not count:
                if grad_w is not None:
                    grad_w[e].zero_()  # an expert without tokens gets no gradient
                continue
            g = grad[start : start + count]
            if grad_x is not None:
                torch.mm(g, weight[e], out=grad_x[start : start + count])
            if grad_w is not None:
                torch.mm(g.T, x[start : start + count], out=grad_w[e])
            start += count
        return grad_x, grad_w, None


class _PermuteRows(torch.autograd.Function):
    """x[perm] for a permutation, whose backward is a gather by the inverse permutation (autograd's
    backward of indexing is a zero fill plus an accumulating scatter, several times slower)."""

    @staticmethod
    def forward(ctx, x: Tensor, perm: Tensor, inverse: Tensor) -> Tensor:  # noqa: ANN001
        ctx.save_for_backward(inverse)
        return x[perm]

    @staticmethod
    def backward(ctx, grad: Tensor):  # noqa: ANN001, ANN205
        (inverse,) = ctx.saved_tensors
        return grad[inverse], None, None


def inverse_permutation(perm: Tensor) -> Tensor:
    inverse = torch.empty_like(perm)
    inverse[perm] = torch.arange(perm.numel(), device=perm.device)
    return inverse


def permute_rows(x: Tensor, perm: Tensor, inverse: Tensor) -> Tensor:
    """x[perm] (perm a permutation of the rows, `inverse` its inverse), with a cheap backward."""
    return _PermuteRows.apply(x, perm, inverse)


def _training_flops(forward_matmul: int, other: int) -> dict[str, int]:
    # backward of a product costs two products of the same size (input and weight gradients)
    return {
        "forward": forward_matmul + other,
        "backward": 2 * forward_matmul,
        "total": 3 * forward_matmul + other,
    }


class ReLUSAE(SparseAutoencoder):
    """f = ReLU(W_enc (x - b_dec) + b_enc); loss = mse + l1_coeff * sum_i f_i (times |W_dec,i| if
    penalty='norm_weighted', in which case decoder rows are free instead of unit-norm)."""

    kind = "relu"

    def __init__(
        self, d: int, n_latents: int, *, l1_coeff: float = 5.0, penalty: str = "l1", seed: int = 0
    ) -> None:
        super().__init__(d, n_latents, seed=seed)
        if penalty not in ("l1", "norm_weighted"):
            raise ConfigError(f"penalty must be 'l1' or 'norm_weighted', got {penalty!r}")
        if l1_coeff < 0:
            raise ConfigError(f"l1_coeff must be >= 0, got {l1_coeff}")
        self.l1_coeff, self.penalty = float(l1_coeff), penalty
        self.b_enc = nn.Parameter(torch.zeros(n_latents))

    def encode(self, x: Tensor) -> Code:
        self.check_input(x)
        return Code(values=F.relu((x - self.b_dec) @ self.W_enc.T + self.b_enc))

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        x_hat, code = self(x)
        self._remember(code)
        mse = self.mse(x, x_hat)
        acts = code.values
        if self.penalty == "norm_weighted":
            sparsity = (acts * self.W_dec.norm(dim=1)).sum(-1).mean()
        else:
            sparsity = acts.sum(-1).mean()
        return {"loss": mse + self.l1_coeff * sparsity, "mse": mse, "sparsity": sparsity, "l0": code.l0}

    def flops_per_token(self) -> dict[str, int]:
        # dense encoder and dense decoder, d x M each
        return _training_flops(2 * 2 * self.d * self.n_latents, other=0)

    def config(self) -> dict:
        return {"kind": self.kind, "d": self.d, "n_latents": self.n_latents, "l1_coeff": self.l1_coeff,
                "penalty": self.penalty, "seed": self.seed}  # fmt: skip


class TopKSAE(SparseAutoencoder):
    """z = ReLU(TopK(W_enc (x - b_dec) + b_enc)); AuxK (Gao et al. 2024) reconstructs the residual from
    the top k_aux = d/2 dead latents (no activation for `dead_after` tokens), weight `auxk_alpha`."""

    kind = "topk"

    def __init__(
        self, d: int, n_latents: int, k: int, *, auxk_alpha: float = 1 / 32, dead_after: int = 10_000_000,
        seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(d, n_latents, seed=seed)
        if not isinstance(k, int) or not 1 <= k <= n_latents:
            raise ConfigError(f"k must be an integer in 1..{n_latents} (n_latents), got {k!r}")
        self.k, self.auxk_alpha, self.dead_after = k, float(auxk_alpha), int(dead_after)
        self.b_enc = nn.Parameter(torch.zeros(n_latents))
        # tokens seen since each latent last fired; updated by `loss` in training mode
        self.register_buffer("tokens_since_fired", torch.zeros(n_latents, dtype=torch.long))

    def pre_activations(self, x: Tensor) -> Tensor:
        return (x - self.b_dec) @ self.W_enc.T + self.b_enc

    def encode(self, x: Tensor) -> Code:
        self.check_input(x)
        values, indices = self.pre_activations(x).topk(self.k, dim=-1, sorted=False)
        return Code(values=F.relu(values), indices=indices)

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        self.check_input(x)
        pre = self.pre_activations(x)
        values, indices = pre.topk(self.k, dim=-1, sorted=False)
        code = Code(values=F.relu(values), indices=indices)
        self._remember(code)
        x_hat = self.decode(code)
        mse = self.mse(x, x_hat)
        terms = {"mse": mse, "l0": code.l0}
        aux = x.new_zeros(())
        if self.training:
            with torch.no_grad():
                fired = torch.zeros(self.n_latents, dtype=torch.bool, device=x.device)
                fired[indices[values > 0]] = True
                tokens = x.shape[0]
                if torch.distributed.is_available() and torch.distributed.is_initialized():
                    # data-parallel: a latent is alive if it fired on any rank's slice of the batch
                    counts = fired.to(torch.int32)
                    torch.distributed.all_reduce(counts)
                    fired, tokens = counts > 0, tokens * torch.distributed.get_world_size()
                self.tokens_since_fired += tokens
                self.tokens_since_fired[fired] = 0
            dead = self.tokens_since_fired > self.dead_after
            n_dead = int(dead.sum())
            if self.auxk_alpha > 0 and n_dead > 0:
                k_aux = min(self.d // 2, n_dead)
                dead_pre = torch.where(dead[None], pre, torch.full_like(pre, -torch.inf))
                aux_values, aux_indices = dead_pre.topk(k_aux, dim=-1, sorted=False)
                residual = (x - x_hat).detach()
                aux_hat = sparse_decode(F.relu(aux_values), aux_indices, self.W_dec)
                scale = min(n_dead / (self.d // 2), 1.0)
                aux = scale * self.mse(residual, aux_hat) / residual.pow(2).sum(-1).mean().clamp_min(1e-12)
            terms["dead"] = torch.tensor(float(n_dead))
        terms["auxk"] = aux
        terms["loss"] = mse + self.auxk_alpha * aux
        return terms

    def flops_per_token(self) -> dict[str, int]:
        # dense encoder d x M; decoder gathers k rows of d
        return _training_flops(2 * self.d * self.n_latents + 2 * self.k * self.d, other=0)

    def config(self) -> dict:
        return {"kind": self.kind, "d": self.d, "n_latents": self.n_latents, "k": self.k,
                "auxk_alpha": self.auxk_alpha, "dead_after": self.dead_after, "seed": self.seed}  # fmt: skip


class SwitchSAE(SparseAutoencoder):
    """Switch SAE: E experts of M / E latents each, one expert per token, TopK inside the expert."""

    kind = "switch"

    def __init__(
        self, d: int, n_latents: int, k: int, n_experts: int, *, lb_alpha: float = 3.0,
        heaviside: bool = False, shared_expert: int = 0, dense_reference: bool = False, seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__(d, n_latents, seed=seed)
        if not isinstance(n_experts, int) or n_experts < 1 or n_latents % n_experts:
            raise ConfigError(
                f"n_experts must be an integer >= 1 that divides n_latents ({n_latents}), got {n_experts!r}"
            )
        per_expert = n_latents // n_experts
        if not isinstance(k, int) or not 1 <= k <= per_expert:
            raise ConfigError(
                f"k must be an integer in 1..{per_expert} (latents per expert = {n_latents} / {n_experts}), got {k!r}"
            )
        if not isinstance(shared_expert, int) or not 0 <= shared_expert < per_expert:
            raise ConfigError(
                f"shared_expert must be an integer in 0..{per_expert - 1}, got {shared_expert!r}"
            )
        self.k, self.n_experts, self.per_expert = k, n_experts, per_expert
        self.lb_alpha, self.heaviside, self.dense_reference = (
            float(lb_alpha),
            bool(heaviside),
            bool(dense_reference),
        )
        self.shared_expert = (
            shared_expert  # latents of an always-on expert, taken from outside the routed ones
        )
        self.expert_shard: tuple[int, int] | None = None  # (rank, world) once sharded over processes
        generator = torch.Generator().manual_seed(seed + 1)
        self.W_router = nn.Parameter((torch.rand(n_experts, d, generator=generator) * 2 - 1) / math.sqrt(d))
        self.b_router = nn.Parameter(torch.zeros(d))
        if shared_expert:
            self.W_shared = nn.Parameter(
                (torch.rand(shared_expert, d, generator=generator) * 2 - 1) / math.sqrt(d)
            )
            self.W_dec_shared = nn.Parameter(self.W_shared.detach().clone())
            with torch.no_grad():
                self.W_dec_shared.div_(self.W_dec_shared.norm(dim=1, keepdim=True))

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        super().normalize_decoder()
        if getattr(self, "shared_expert", 0):
            normalize_rows(self.W_dec_shared)

    def route(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(router probabilities (batch, E), chosen expert (batch,), its probability (batch,))."""
        probs = torch.softmax((x - self.b_router) @ self.W_router.T, dim=-1)
        gate, expert = probs.max(dim=-1)
        return probs, expert, gate

    def encode(self, x: Tensor) -> Code:
        if self.expert_shard is not None:
            return self.forward(x)[1]
        self.check_input(x)
        probs, expert, gate = self.route(x)
        scale = torch.ones_like(gate) if self.heaviside else gate
        centred = x - self.b_dec
        if self.dense_reference:
            # the authors' formulation: the whole M-wide encoder, masked to the chosen expert
            z = F.relu(centred @ self.W_enc.T)
            mask = F.one_hot(expert, self.n_experts).to(z.dtype) * scale[:, None]
            z = z * mask.repeat_interleave(self.per_expert, dim=1)
            values, indices = z.topk(self.k, dim=-1, sorted=False)
            return Code(values=values, indices=indices, expert=expert, probs=probs)
        # group tokens by expert: one product per expert on its own tokens (d x M / E per token)
        order = torch.argsort(expert)
        inverse = inverse_permutation(order)
        counts = torch.bincount(expert, minlength=self.n_experts).tolist()
        w_enc = self.W_enc.view(self.n_experts, self.per_expert, self.d)
        pre = _GroupedMatmul.apply(permute_rows(centred, order, inverse), w_enc, counts)  # sorted by expert
        z = F.relu(pre) * scale[order, None]
        values, local = z.topk(self.k, dim=-1, sorted=False)
        indices = local + (expert[order] * self.per_expert)[:, None]
        values, indices = permute_rows(values, inverse, order), indices[inverse]
        return Code(values=values, indices=indices, expert=expert, probs=probs)

    def decode(self, code: Code) -> Tensor:
        if self.expert_shard is not None:
            raise ConfigError(
                "this rank holds only its own experts' decoder rows; decode with gather_experts(model)"
            )
        return super().decode(code)

    def forward(self, x: Tensor) -> tuple[Tensor, Code]:
        if self.expert_shard is not None:
            from intelligible.sae.parallel import expert_parallel_forward

            self.check_input(x)
            x_hat, code = expert_parallel_forward(self, x)
        else:
            code = self.encode(x)
            x_hat = self.decode(code)
        if self.shared_expert:
            shared = F.relu((x - self.b_dec) @ self.W_shared.T)
            x_hat = x_hat + shared @ self.W_dec_shared
        return x_hat, code

    def load_balance(self, code: Code) -> Tensor:
        """E * sum_i f_i P_i: 1 at perfect balance, E when every token goes to one expert."""
        counts = torch.bincount(code.expert, minlength=self.n_experts).to(code.probs.dtype)
        tokens = code.expert.numel()
        if self.training and torch.distributed.is_available() and torch.distributed.is_initialized():
            # data-parallel training: f_i over the whole batch, P_i over this rank's slice; the
            # average over ranks of E * sum_i f_i P_i is then the whole batch's term, as in one process
            torch.distributed.all_reduce(counts)
            tokens *= torch.distributed.get_world_size()
        fraction = counts / tokens
        return self.n_experts * (fraction * code.probs.mean(dim=0)).sum()

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        x_hat, code = self(x)
        self._remember(code)
        mse = self.mse(x, x_hat)
        balance = self.load_balance(code)
        return {
            "loss": mse + self.lb_alpha * self.d * balance,
            "mse": mse,
            "load_balance": balance,
            "l0": code.l0,
        }

    def flops_per_token(self) -> dict[str, int]:
        # router d x E, one expert's encoder d x M / E, decoder gathers k rows of d (+ a shared expert)
        matmul = 2 * self.d * self.n_experts + 2 * self.d * self.per_expert + 2 * self.k * self.d
        matmul += 2 * 2 * self.d * self.shared_expert
        if self.dense_reference:
            matmul += 2 * self.d * (self.n_latents - self.per_expert)
        return _training_flops(matmul, other=0)

    def config(self) -> dict:
        return {"kind": self.kind, "d": self.d, "n_latents": self.n_latents, "k": self.k,
                "n_experts": self.n_experts, "lb_alpha": self.lb_alpha, "heaviside": self.heaviside,
                "shared_expert": self.shared_expert, "dense_reference": self.dense_reference,
                "seed": self.seed}  # fmt: skip
