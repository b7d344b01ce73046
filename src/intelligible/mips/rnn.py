"""The RNNs MIPS distils: h_t = f([h_{t-1}, x_t]), y_t = g(h_t), with small MLPs f and g.

`depth` counts linear layers: depth 1 is a single affine map (f linear makes the recurrence linear,
the case the lattice path reads best), depth 2 puts one ReLU layer of `width` units in between.
Training follows the paper: AdamW, loss 0.5 log(1 + err^2) (robust to the large errors of integer
targets early in training), accuracy = every rounded output of a sequence exactly right.
`smallest_rnn` searches sizes from small to large (up to limits derived from the task, `limits.py`)
and keeps the first that is perfect on the validation split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from intelligible.core.errors import ConfigError


def _mlp(n_in: int, n_out: int, depth: int, width: int) -> nn.Sequential:
    if depth == 1:
        return nn.Sequential(nn.Linear(n_in, n_out))
    layers: list[nn.Module] = [nn.Linear(n_in, width), nn.ReLU()]
    for _ in range(depth - 2):
        layers += [nn.Linear(width, width), nn.ReLU()]
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class RNN(nn.Module):
    """h_t = f([h_{t-1}, x_t]) from h_0 = 0, y_t = g(h_t)."""

    def __init__(
        self, input_dim: int, hidden: int, output_dim: int, *, f_depth: int = 1, g_depth: int = 1,
        width: int = 16, seed: int = 0,
    ) -> None:  # fmt: skip
        super().__init__()
        for name, value in (("input_dim", input_dim), ("hidden size", hidden), ("output_dim", output_dim)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        for name, value in (("f_depth", f_depth), ("g_depth", g_depth), ("width", width)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        torch.manual_seed(seed)
        self.input_dim, self.hidden, self.output_dim = input_dim, hidden, output_dim
        self.f_depth, self.g_depth, self.width, self.seed = f_depth, g_depth, width, seed
        self.f = _mlp(hidden + input_dim, hidden, f_depth, width)
        self.g = _mlp(hidden, output_dim, g_depth, width)
        # inputs are divided and outputs multiplied by these during training (values up to 100 make
        # plain training stall); `fold_scales` moves them into the weights afterwards
        self.register_buffer("input_scale", torch.ones(()))
        self.register_buffer("output_scale", torch.ones(()))

    def step(self, h: Tensor, x: Tensor) -> Tensor:
        return self.f(torch.cat([h, x / self.input_scale], dim=-1))

    def readout(self, h: Tensor) -> Tensor:
        return self.g(h) * self.output_scale

    @torch.no_grad()
    def fold_scales(self) -> None:
        """Absorb the input/output scales into f's input columns and g's last layer (same function)."""
        first, last = self.f[0], self.g[-1]
        first.weight[:, self.hidden :] /= self.input_scale
        last.weight *= self.output_scale
        last.bias *= self.output_scale
        self.input_scale.fill_(1.0)
        self.output_scale.fill_(1.0)

    def forward(self, x: Tensor, *, return_hidden: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """x (batch, T, input_dim) -> y (batch, T, output_dim) [, hidden states (batch, T + 1, hidden)]."""
        h = x.new_zeros(x.shape[0], self.hidden)
        states = [h]
        for t in range(x.shape[1]):
            h = self.step(h, x[:, t])
            states.append(h)
        hidden = torch.stack(states, dim=1)
        y = self.readout(hidden[:, 1:])
        return (y, hidden) if return_hidden else y

    def config(self) -> dict:
        return {"input_dim": self.input_dim, "hidden": self.hidden, "output_dim": self.output_dim,
                "f_depth": self.f_depth, "g_depth": self.g_depth, "width": self.width, "seed": self.seed}  # fmt: skip


def robust_loss(y: Tensor, target: Tensor) -> Tensor:
    """The paper's 0.5 log(1 + err^2), averaged over outputs."""
    return 0.5 * torch.log1p((y - target).pow(2)).mean()


@torch.no_grad()
def sequence_accuracy(model: RNN, inputs: Tensor, outputs: Tensor, batch: int = 8192) -> float:
    """Fraction of sequences whose rounded outputs are right at every position."""
    right = 0
    for start in range(0, inputs.shape[0], batch):
        y = model(inputs[start : start + batch]).round()
        right += int((y == outputs[start : start + batch]).flatten(1).all(dim=1).sum())
    return right / inputs.shape[0]


@dataclass
class TrainResult:
    model: RNN
    test_accuracy: float
    steps: int
    seconds: float


def train_rnn(
    model: RNN, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray], *,
    steps: int = 3000, batch: int = 4096, lr: float = 1e-2, weight_decay: float = 1e-4, check_every: int = 100,
    polish_steps: int = 300,
) -> TrainResult:  # fmt: skip
    """AdamW with cosine decay; stops `polish_steps` after every held-out sequence is first right (if still)."""
    start = time.perf_counter()
    x_train, y_train = (torch.as_tensor(a, dtype=torch.float32) for a in train)
    x_test, y_test = (torch.as_tensor(a, dtype=torch.float32) for a in test)
    with torch.no_grad():
        model.input_scale.fill_(max(float(x_train.abs().max()), 1.0))
        model.output_scale.fill_(max(float(y_train.abs().max()), 1.0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(model.seed)
    accuracy, step, stop_at = 0.0, 0, None
    for step in range(1, steps + 1):
        rows = torch.randint(0, x_train.shape[0], (min(batch, x_train.shape[0]),), generator=generator)
        loss = robust_loss(model(x_train[rows]), y_train[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % check_every == 0 or step == steps:
            accuracy = sequence_accuracy(model, x_test, y_test)
            if accuracy == 1.0 and stop_at is None:
                # keep training a little past the first perfect score: a barely-perfect RNN has
                # blurry states that the readers cannot separate
                stop_at = min(step + polish_steps, steps)
            if accuracy == 1.0 and step >= stop_at:
                break
    model.fold_scales()
    return TrainResult(model, accuracy, step, time.perf_counter() - start)


def smallest_rnn(
    input_dim: int, output_dim: int, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
    *, architectures: tuple[tuple, ...] | None = None, seeds: tuple[int, ...] = (0, 1),
    steps: int = 2000, width: int = 16, lr: float = 1e-2,
) -> tuple[TrainResult | None, list[dict]]:  # fmt: skip
    """The first (smallest) architecture that reaches 100% accuracy on `test` (the validation split
    of a MIPS run: every choice is made on it), and the log of tries.

    `architectures` (hidden, f_depth, g_depth[, width, lr]) defaults to the order derived from the
    training data (`limits.architectures`). Seeds are the outer loop: a second seed sweeps the
    architectures again only when the first found nothing, so adding seeds never changes a task the
    first seed already solved.
    """
    if architectures is None:
        from intelligible.mips.limits import architectures as derived
        from intelligible.mips.limits import derive_limits

        architectures = derived(derive_limits(*train))
    tried: list[dict] = []
    for seed in seeds:
        for architecture in architectures:
            hidden, f_depth, g_depth = architecture[:3]
            units = architecture[3] if len(architecture) > 3 else width
            rate = architecture[4] if len(architecture) > 4 else lr
            model = RNN(
                input_dim, hidden, output_dim, f_depth=f_depth, g_depth=g_depth, width=units, seed=seed
            )
            result = train_rnn(model, train, test, steps=steps, lr=rate)
            tried.append({"hidden": hidden, "f_depth": f_depth, "g_depth": g_depth, "width": units, "lr": rate,
                          "seed": seed, "test_accuracy": result.test_accuracy, "steps": result.steps,
                          "seconds": round(result.seconds, 2)})  # fmt: skip
            if result.test_accuracy == 1.0:
                return result, tried
    return None, tried
