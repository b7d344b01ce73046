"""Many small MLPs trained at once: one batched tensor program for a whole widths x alphas x betas x seeds grid.

Every model of the grid is a slice of one stack of weights, `(models, fan_in, fan_out)` per layer.
Models of different widths are padded to the widest: a padded neuron has zero weights in and out
and a zero mask, so it computes nothing, gets no gradient and is never counted. Adam acts on each
number separately, so training the stack is the same computation as training each model alone
(`train_single` is that loop, kept as the reference the tests and the benchmark compare against).

On the CPU a one-hidden-layer stack trains by default with the fused numba kernel of `_fused`
(forward, backward and Adam in one pass per model, no (points x width) tensors); deeper networks,
other devices, or `fused=False` use the torch program below. Both give the same numbers up to
float32 rounding.

The objective of model m is  alpha_m * sum_k w_mk * MSE_k  +  l1 * sum |W|  over its weight
matrices, with w_m from beta (`tasks.subtask_weights`); l1 = 0 gives the plain width sweep.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from intelligible.core.errors import ConfigError
from intelligible.core.progress import progress
from intelligible.scaling import _fused

ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": torch.relu,
    "silu": torch.nn.functional.silu,
    "tanh": torch.tanh,
}


@dataclass
class Spec:
    """One model of a grid: hidden width, loss weight alpha, subtask weights, seed."""

    width: int
    alpha: float
    weights: tuple[float, ...]
    seed: int


def init_layers(sizes: list[int], seed: int) -> list[tuple[Tensor, Tensor]]:
    """Weights `(fan_in, fan_out)` and biases `(fan_out,)` of one MLP, drawn like `torch.nn.Linear`.

    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for both, in nn.Linear's order (weight then bias, layer by
    layer) from a generator seeded with `seed`: the same seed gives the same network whatever
    alpha, beta or the other models of the grid are.
    """
    generator = torch.Generator().manual_seed(int(seed))
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        weight = (torch.rand(fan_out, fan_in, generator=generator) * 2 - 1) * bound
        bias = (torch.rand(fan_out, generator=generator) * 2 - 1) * bound
        layers.append((weight.T.contiguous(), bias))
    return layers


class BatchedMLP:
    """A stack of MLPs `n_inputs -> width x depth -> n_outputs`, one per Spec, as batched tensors.

    `weights[l]` is `(models, fan_in, fan_out)`, `biases[l]` is `(models, 1, fan_out)`,
    `masks[l]` `(models, 1, width_max)` marks each model's real neurons in hidden layer l.
    """

    def __init__(
        self, n_inputs: int, n_outputs: int, depth: int, specs: list[Spec], activation: str = "relu",
        device: str | torch.device = "cpu",
    ) -> None:  # fmt: skip
        self.n_inputs, self.n_outputs, self.depth = n_inputs, n_outputs, depth
        self.specs = list(specs)
        self.activation = activation
        self.act = ACTIVATIONS[activation]
        width_max = max(s.width for s in specs)
        padded = [n_inputs] + [width_max] * depth + [n_outputs]
        n = len(specs)
        self.weights = [torch.zeros(n, a, b) for a, b in zip(padded[:-1], padded[1:])]
        self.biases = [torch.zeros(n, 1, b) for b in padded[1:]]
        for m, spec in enumerate(specs):
            sizes = [n_inputs] + [spec.width] * depth + [n_outputs]
            for layer, (weight, bias) in enumerate(init_layers(sizes, spec.seed)):
                self.weights[layer][m, : weight.shape[0], : weight.shape[1]] = weight
                self.biases[layer][m, 0, : bias.shape[0]] = bias
        self.masks = []
        for _ in range(depth):
            mask = torch.zeros(n, 1, width_max)
            for m, spec in enumerate(specs):
                mask[m, 0, : spec.width] = 1.0
            self.masks.append(mask)
        # all models as wide as the widest: the masks are all ones and the forward skips them
        self.padded = any(s.width != width_max for s in specs)
        self.to(device)

    def to(self, device: str | torch.device) -> BatchedMLP:
        self.weights = [w.to(device) for w in self.weights]
        self.biases = [b.to(device) for b in self.biases]
        self.masks = [m.to(device) for m in self.masks]
        return self

    @property
    def parameters(self) -> list[Tensor]:
        return [*self.weights, *self.biases]

    def forward(self, x: Tensor, keep: bool = False) -> Tensor | tuple[Tensor, list[Tensor], list[Tensor]]:
        """Outputs `(models, batch, n_outputs)` for inputs `(batch, n_inputs)` shared by all models.

        With `keep`, also the hidden pre-activations and activations, layer by layer.
        """
        h = x.unsqueeze(0).expand(len(self.specs), *x.shape)
        pres, posts = [], []
        for layer in range(self.depth):
            pre = torch.baddbmm(self.biases[layer], h, self.weights[layer])
            # the mask zeroes padded neurons, whose bias-free zero input would give silu/tanh(0) = 0
            # anyway; it matters for a neuron whose weights are zero but whose bias is not (never here)
            h = self.act(pre) * self.masks[layer] if self.padded else self.act(pre)
            pres.append(pre)
            posts.append(h)
        out = torch.baddbmm(self.biases[-1], h, self.weights[-1])
        return (out, pres, posts) if keep else out

    def l1(self) -> Tensor:
        """Sum of |W| over the weight matrices, per model `(models,)`."""
        return sum(w.abs().sum(dim=(1, 2)) for w in self.weights)  # type: ignore[return-value]

    def model(self, m: int) -> list[tuple[Tensor, Tensor]]:
        """Model m's own (unpadded) weights and biases, `(fan_in, fan_out)` and `(fan_out,)`."""
        width = self.specs[m].width
        sizes = [self.n_inputs] + [width] * self.depth + [self.n_outputs]
        return [
            (w[m, :a, :b].detach().clone(), bias[m, 0, :b].detach().clone())
            for w, bias, a, b in zip(self.weights, self.biases, sizes[:-1], sizes[1:])
        ]


class Adam:
    """Adam (Kingma and Ba 2015) over a list of tensors: the update of `torch.optim.Adam` without
    weight decay, written out because importing `torch.optim` loads torch._dynamo, seconds that a
    50-second demo cannot spare. Adam acts on each number alone, so one Adam over a stack of models
    is one Adam per model."""

    def __init__(
        self, params: list[Tensor], betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8
    ) -> None:
        self.params = params
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.t = 0
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    @torch.no_grad()
    def step(self, lr: float) -> None:
        self.t += 1
        step_size = lr / (1 - self.beta1**self.t)
        root = math.sqrt(1 - self.beta2**self.t)
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m.lerp_(p.grad, 1 - self.beta1)
            v.mul_(self.beta2).addcmul_(p.grad, p.grad, value=1 - self.beta2)
            p.addcdiv_(m, (v.sqrt() / root).add_(self.eps), value=-step_size)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None


# Below this many numbers per batched op a second thread costs more than it brings: each op is
# microseconds long, and on a busy machine every parallel region waits for a descheduled partner.
SMALL_OP_ELEMENTS = 2**21


@contextlib.contextmanager
def threads_for(elements: int) -> Iterator[None]:
    """Use one torch thread inside the block when the ops are small (`elements` per op), then restore."""
    before = torch.get_num_threads()
    if elements < SMALL_OP_ELEMENTS and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def cosine_factor(step: int, steps: int, final: float) -> float:
    """Learning-rate factor: 1 at the start, `final` at the end, cosine in between.

    Why decay: the L1 subgradient makes Adam rattle a weight that should be zero by about lr per
    step; decaying lr lets those weights settle far below the counting threshold.
    """
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * step / max(steps, 1)))


def objective_terms(out: Tensor, y: Tensor, alphas: Tensor, weights: Tensor) -> tuple[Tensor, Tensor]:
    """(alpha-weighted task loss per model, per-subtask MSE `(models, n_outputs)`)."""
    mse = (out - y.unsqueeze(0)).square().mean(dim=1)
    return alphas * (weights * mse).sum(dim=1), mse


def fused_reason(
    depth: int, device: str | torch.device, activation: str, dtype: torch.dtype = torch.float32
) -> str | None:
    """Why the fused CPU trainer cannot train such networks, or None when it can."""
    if not _fused.AVAILABLE:
        return "numba is not installed (pip install numba)"
    if depth != 1:
        return f"it trains one hidden layer, not {depth}"
    if torch.device(device).type != "cpu":
        return f"it runs on the CPU, not on {str(device)[:40]}"
    if dtype != torch.float32:
        return f"it trains float32 weights, not {dtype}"
    if activation not in _fused.KINDS:
        return f"it knows the activations {', '.join(_fused.KINDS)}, not {activation[:40]!r}"
    return None


def fused_unavailable(net: BatchedMLP) -> str | None:
    """Why the fused CPU trainer cannot train `net`, or None when it can."""
    dtype = next((p.dtype for p in net.parameters if p.dtype != torch.float32), torch.float32)
    return fused_reason(net.depth, net.weights[0].device, net.activation, dtype)


def train_batched(
    net: BatchedMLP,
    x: Tensor,
    y: Tensor,
    *,
    steps: int,
    lr: float,
    l1: float,
    lr_final: float = 0.01,
    desc: str = "training",
    disable_progress: bool | None = None,
    fused: bool | None = None,
) -> list[dict[str, float]]:
    """Train every model of `net` at once on the full batch (x, y); return a short loss history.

    fused: None picks the fused CPU kernel whenever it applies (one hidden layer, CPU, float32,
    numba installed) and the torch program otherwise; True insists on the kernel (a ConfigError
    saying why when it cannot), False forces torch. Either way, per model, the same numbers as
    `train_single` up to float rounding (sums run in another order than a single matrix product).
    """
    reason = fused_unavailable(net)
    if fused and reason is not None:
        raise ConfigError(
            f"the fused trainer cannot train this network: {reason}; leave fused unset to use torch"
        )
    if fused is None:
        fused = reason is None
    if fused:
        return _train_fused(net, x, y, steps=steps, lr=lr, l1=l1, lr_final=lr_final, desc=desc,
                            disable_progress=disable_progress)  # fmt: skip
    device = net.weights[0].device
    x, y = x.to(device), y.to(device)
    alphas = torch.tensor([s.alpha for s in net.specs], device=device)
    weights = torch.tensor([s.weights for s in net.specs], device=device)
    params = [p.requires_grad_() for p in net.parameters]
    optimizer = Adam(params)
    history = []
    bar = progress(range(steps), desc=desc, disable=disable_progress)
    with threads_for(len(net.specs) * x.shape[0] * net.weights[0].shape[2]):
        _train_loop(
            net, x, y, alphas, weights, optimizer, bar, history, steps=steps, lr=lr, l1=l1, lr_final=lr_final
        )
    for p in params:
        p.requires_grad_(False)
    return history


def _history_every(steps: int) -> int:
    return max(1, steps // 20)


def _kernel_threads(work: int, models: int) -> int:
    """Threads for the fused kernel: the count torch is set to (the budget that `core.threads`, the
    tests' one-thread fixture or a benchmark's --threads gives), one for small work (as
    `threads_for`), never more than the models."""
    return 1 if work < SMALL_OP_ELEMENTS else max(1, min(torch.get_num_threads(), models))


def _adam_schedule(
    steps: int, lr: float, lr_final: float, betas: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Per step, Adam's step size lr_t / (1 - beta1^t) and sqrt(1 - beta2^t), in double as `Adam.step`."""
    size = np.empty(steps, dtype=np.float32)
    root = np.empty(steps, dtype=np.float32)
    for step in range(steps):
        t = step + 1
        size[step] = lr * cosine_factor(step, steps, lr_final) / (1 - betas[0] ** t)
        root[step] = math.sqrt(1 - betas[1] ** t)
    return size, root


def _train_fused(net: BatchedMLP, x: Tensor, y: Tensor, *, steps: int, lr: float, l1: float, lr_final: float,
                 desc: str, disable_progress: bool | None) -> list[dict[str, float]]:  # fmt: skip
    """`train_batched` with the fused kernel: the stack copied into flat per-model vectors, trained
    in chunks of steps (one parallel region each, so the progress bar moves), then copied back."""
    n_models, n_in, width = net.weights[0].shape
    n_out = net.n_outputs
    at_b1, at_w2, at_b2, n_params = _fused.layout(n_in, width, n_out)
    params = np.empty((n_models, n_params), dtype=np.float32)
    with torch.no_grad():
        params[:, :at_b1] = net.weights[0].detach().reshape(n_models, n_in * width).numpy()
        params[:, at_b1:at_w2] = net.biases[0].detach()[:, 0, :].numpy()
        params[:, at_w2:at_b2] = (
            net.weights[1].detach().transpose(1, 2).reshape(n_models, n_out * width).numpy()
        )
        params[:, at_b2:] = net.biases[1].detach()[:, 0, :].numpy()
    adam_m, adam_v = np.zeros_like(params), np.zeros_like(params)
    xt = np.ascontiguousarray(x.detach().cpu().numpy().T, dtype=np.float32)
    yt = np.ascontiguousarray(y.detach().cpu().numpy().T, dtype=np.float32)
    n_points = xt.shape[1]
    widths = np.array([s.width for s in net.specs], dtype=np.int64)
    # d(alpha sum_k w_k mean_n r^2) / d r_n = 2 alpha w_k / points
    coef = np.array([[2.0 * s.alpha * w / n_points for w in s.weights] for s in net.specs], dtype=np.float32)
    betas, eps = (0.9, 0.999), 1e-8  # `Adam`'s defaults, as torch.optim.Adam's
    adam = np.array([1 - betas[0], betas[1], 1 - betas[1], eps], dtype=np.float32)
    size, root = _adam_schedule(steps, lr, lr_final, betas)
    kind = _fused.KINDS[net.activation]
    every = _history_every(steps)
    chunk = max(1, math.ceil(steps / 20))
    history: list[dict[str, float]] = []
    threads = _kernel_threads(n_models * n_points * width * chunk, n_models)
    slices = _fused.split_models(widths, threads)
    bar = progress(total=steps, desc=desc, disable=disable_progress)
    # the kernel releases the GIL: each pool thread trains its slice of models for a chunk of steps
    pool = ThreadPoolExecutor(len(slices)) if len(slices) > 1 else None
    try:
        for start in range(0, steps, chunk):
            stop = min(steps, start + chunk)
            mse = np.empty((n_models, stop - start, n_out), dtype=np.float32)
            _fused.train_parallel(pool, slices, xt, yt, params, adam_m, adam_v, widths, width, coef, np.float32(l1),
                                  kind, size[start:stop], root[start:stop], adam, mse)  # fmt: skip
            for step in range(start, stop):
                if step % every == 0 or step == steps - 1:
                    mean_mse = float(mse[:, step - start].mean(dtype=np.float32))
                    history.append({"step": step, "mean_mse": mean_mse})
            bar.update(stop - start)
            bar.set_postfix(mse=f"{history[-1]['mean_mse']:.2e}")
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown()
    weights = torch.from_numpy(params)
    with torch.no_grad():
        net.weights[0].copy_(weights[:, :at_b1].reshape(n_models, n_in, width))
        net.biases[0][:, 0, :] = weights[:, at_b1:at_w2]
        net.weights[1].copy_(weights[:, at_w2:at_b2].reshape(n_models, n_out, width).transpose(1, 2))
        net.biases[1][:, 0, :] = weights[:, at_b2:]
    return history


def _train_loop(net: BatchedMLP, x: Tensor, y: Tensor, alphas: Tensor, weights: Tensor, optimizer: Adam, bar: Any,
                history: list[dict[str, float]], *, steps: int, lr: float, l1: float, lr_final: float) -> None:  # fmt: skip
    for step in bar:
        out = net.forward(x)
        task, mse = objective_terms(out, y, alphas, weights)  # type: ignore[arg-type]
        penalty = net.l1() if l1 > 0 else torch.zeros_like(task)
        loss = (task + l1 * penalty).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step(lr * cosine_factor(step, steps, lr_final))
        if step % _history_every(steps) == 0 or step == steps - 1:
            mean_mse = float(mse.detach().mean())
            history.append({"step": step, "mean_mse": mean_mse})
            bar.set_postfix(mse=f"{mean_mse:.2e}")


def train_single(
    n_inputs: int,
    n_outputs: int,
    depth: int,
    spec: Spec,
    x: Tensor,
    y: Tensor,
    *,
    steps: int,
    lr: float,
    l1: float,
    lr_final: float = 0.01,
    activation: str = "relu",
) -> torch.nn.Sequential:
    """The reference: one model as a plain `nn.Sequential`, trained alone with `torch.optim.Adam`
    (the library's, not ours, so the comparison also checks our Adam).

    The same initial weights (`init_layers`), data, objective and schedule as `train_batched`.
    """
    sizes = [n_inputs] + [spec.width] * depth + [n_outputs]
    modules: list[torch.nn.Module] = []
    linears = []
    for layer, (weight, bias) in enumerate(init_layers(sizes, spec.seed)):
        linear = torch.nn.Linear(weight.shape[0], weight.shape[1])
        with torch.no_grad():
            linear.weight.copy_(weight.T)
            linear.bias.copy_(bias)
        linears.append(linear)
        modules.append(linear)
        if layer < depth:
            modules.append(
                {"relu": torch.nn.ReLU, "silu": torch.nn.SiLU, "tanh": torch.nn.Tanh}[activation]()
            )
    model = torch.nn.Sequential(*modules)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    task_weights = torch.tensor(spec.weights)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr * cosine_factor(step, steps, lr_final)
        mse = (model(x) - y).square().mean(dim=0)
        loss = spec.alpha * (task_weights * mse).sum()
        if l1 > 0:
            loss = loss + l1 * sum(linear.weight.abs().sum() for linear in linears)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model


def sequential_layers(model: torch.nn.Sequential) -> list[tuple[Tensor, Tensor]]:
    """A `train_single` model's weights in `BatchedMLP.model` form: `(fan_in, fan_out)`, `(fan_out,)`."""
    return [
        (m.weight.detach().T.clone(), m.bias.detach().clone())
        for m in model
        if isinstance(m, torch.nn.Linear)
    ]


def forward_layers(layers: list[tuple[Tensor, Tensor]], x: Tensor, activation: str = "relu") -> Tensor:
    """Outputs of one MLP given as `(weight (fan_in, fan_out), bias)` per layer."""
    act = ACTIVATIONS[activation]
    h = x
    for i, (weight, bias) in enumerate(layers):
        h = h @ weight + bias
        if i < len(layers) - 1:
            h = act(h)
    return h
