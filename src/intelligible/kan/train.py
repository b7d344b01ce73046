"""Training KANs: pykan's `fit` (LBFGS or Adam, mini-batches, grid updates, sparsity regularisation)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from intelligible.core.errors import ConfigError, DataError
from intelligible.core.progress import progress
from intelligible.kan.model import KAN


@dataclass
class FitConfig:
    """pykan's defaults: LBFGS, 100 steps, grids updated 10 times during the first 50 steps."""

    opt: str = "LBFGS"
    steps: int = 100
    lr: float = 1.0
    batch: int = -1  # -1: full batch
    lamb: float = 0.0  # overall weight of the regulariser
    lamb_l1: float = 1.0
    lamb_entropy: float = 2.0
    lamb_coef: float = 0.0  # cheap proxy: mean |coefficient|, no per-edge activations needed
    update_grid: bool = True
    grid_update_num: int = 10
    stop_grid_update_step: int = 50
    seed: int = 0

    def validate(self) -> None:
        if self.opt not in ("LBFGS", "Adam"):
            raise ConfigError(f"opt must be 'LBFGS' or 'Adam', got {self.opt!r}")
        if self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.batch == 0 or self.batch < -1:
            raise ConfigError(f"batch must be -1 (full batch) or >= 1, got {self.batch}")


def _check_dataset(model: KAN, dataset: dict[str, Tensor]) -> None:
    for key in ("train_input", "train_label"):
        if key not in dataset:
            raise DataError(
                f"dataset needs '{key}' (and optionally test_input/test_label); got {sorted(dataset)}"
            )
    for key, value in dataset.items():
        if not torch.isfinite(value).all():
            raise DataError(f"dataset['{key}'] contains NaN or inf values")
    model.check_input(dataset["train_input"])
    out_dim = sum(model.width[-1])
    label = dataset["train_label"]
    if label.dim() != 2 or label.shape[1] != out_dim or label.shape[0] != dataset["train_input"].shape[0]:
        raise DataError(
            f"train_label must have shape ({dataset['train_input'].shape[0]}, {out_dim}), got {tuple(label.shape)}"
        )


def regularization(model: KAN, x: Tensor, cfg: FitConfig) -> Tensor:
    """pykan's sparsity penalty on edge activation scales, plus the coefficient proxy.

    Edge scale = std over the batch of the edge's numeric output / (std of its input + 0.1); per
    layer, lamb_l1 * sum(scales) + lamb_entropy * entropy(scales / sum(scales)).
    """
    total = x.new_zeros(())
    if cfg.lamb_l1 or cfg.lamb_entropy:
        h = x
        for index, layer in enumerate(model.layers):
            # the whole numeric edge (base and spline, as pykan's postacts), symbolic edges excluded
            edges = layer.numeric_edge_activations(h)
            scales = edges.std(dim=0) / (h.std(dim=0) + 0.1)  # (out, in)
            l1 = scales.sum()
            p = scales / (l1 + 1e-12)
            entropy = -(p * torch.log(p + 1e-12)).sum()
            total = total + cfg.lamb_l1 * l1 + cfg.lamb_entropy * entropy
            h = model._combine(index, layer(h))
    if cfg.lamb_coef:
        total = total + cfg.lamb_coef * sum(layer.coef.abs().mean() for layer in model.layers)
    return total


def fit(
    model: KAN, dataset: dict[str, Tensor], cfg: FitConfig | None = None, *, show_progress: bool | None = None
) -> dict[str, list[float]]:
    """Train `model` on dataset {train_input, train_label[, test_input, test_label]}; returns the history
    of train/test RMSE and the regulariser per step."""
    cfg = cfg or FitConfig()
    cfg.validate()
    _check_dataset(model, dataset)
    generator = torch.Generator().manual_seed(cfg.seed)
    x_train, y_train = dataset["train_input"], dataset["train_label"]
    x_test, y_test = dataset.get("test_input", x_train), dataset.get("test_label", y_train)
    n = x_train.shape[0]
    batch = n if cfg.batch == -1 else min(cfg.batch, n)
    if cfg.opt == "LBFGS":
        optimizer = torch.optim.LBFGS(
            model.parameters(), lr=cfg.lr, history_size=10, line_search_fn="strong_wolfe",
            tolerance_grad=1e-32, tolerance_change=1e-32,
        )  # fmt: skip
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    grid_every = max(cfg.stop_grid_update_step // max(cfg.grid_update_num, 1), 1)
    history: dict[str, list[float]] = {"train_loss": [], "test_loss": [], "reg": []}
    bar = progress(
        range(cfg.steps), desc="kan fit", disable=None if show_progress is None else not show_progress
    )
    for step in bar:
        ids = torch.randperm(n, generator=generator)[:batch] if batch < n else slice(None)
        xb, yb = x_train[ids], y_train[ids]
        if cfg.update_grid and step % grid_every == 0 and step < cfg.stop_grid_update_step:
            model.update_grid(xb)  # refits coefficients in place, so the optimiser keeps its parameters
        last_reg = [torch.zeros(())]

        def closure(xb: Tensor = xb, yb: Tensor = yb, last_reg: list[Tensor] = last_reg) -> Tensor:
            optimizer.zero_grad()
            mse = torch.mean((model(xb) - yb) ** 2)
            last_reg[0] = regularization(model, xb, cfg) if cfg.lamb else torch.zeros(())
            loss = mse + cfg.lamb * last_reg[0]
            loss.backward()
            return loss

        if cfg.opt == "LBFGS":
            optimizer.step(closure)
        else:
            closure()
            optimizer.step()
        with torch.no_grad():
            train_rmse = torch.sqrt(torch.mean((model(x_train) - y_train) ** 2)).item()
            test_rmse = torch.sqrt(torch.mean((model(x_test) - y_test) ** 2)).item()
        history["train_loss"].append(train_rmse)
        history["test_loss"].append(test_rmse)
        history["reg"].append(float(last_reg[0].detach()))
        if not torch.isfinite(torch.tensor(train_rmse)):
            raise DataError(
                f"training diverged at step {step} (loss is {train_rmse}); lower lr or use opt='Adam'"
            )
        bar.set_postfix(train=f"{train_rmse:.2e}", test=f"{test_rmse:.2e}")
    return history
