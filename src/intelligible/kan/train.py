"""Training KANs: pykan's `fit` (LBFGS or Adam, mini-batches, grid updates, sparsity regularisation),
with per-step callbacks and checkpoints that resume the same trajectory.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError, DataError
from intelligible.core.memory import check_fits
from intelligible.core.optim import LBFGS
from intelligible.core.progress import progress
from intelligible.core.runs import interrupt_guard
from intelligible.kan.model import KAN

MAX_STEPS = 10_000_000  # about a day of the smallest LBFGS steps; more is a typo (or `1e30`)
MAX_LR = 100.0  # LBFGS takes lr as a step scale; beyond 100 no KAN trains


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_number(name: str, value: object, low: float, high: float, *, integer: bool = False) -> None:
    """ConfigError unless `value` is a finite number (an int if `integer`) in [low, high]."""
    if integer and not _is_int(value):
        raise ConfigError(f"{name} must be an integer, got {shown(value)}")
    if not integer and (isinstance(value, bool) or not isinstance(value, numbers.Real)):
        raise ConfigError(f"{name} must be a number, got {shown(value)}")
    if not math.isfinite(value) or not low <= value <= high:  # type: ignore[arg-type]
        raise ConfigError(f"{name} must be between {low:g} and {high:g}, got {shown(value)}")


def check_seed(seed: object) -> None:
    if not _is_int(seed) or not 0 <= seed < 2**63:  # type: ignore[operator]
        raise ConfigError(f"seed must be an integer in 0..2**63-1, got {shown(seed)}")


@dataclass
class FitConfig:
    """pykan's defaults (LBFGS, 100 steps, grids updated 10 times during the first 50 steps) but a longer
    L-BFGS history."""

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
    # L-BFGS curvature pairs kept (pykan keeps 10). On the KAN suite (issue 20) 50 gave a lower test
    # RMSE on 37 of 40 functions for about 1.3x the time per fit; see docs/kan.md, Benchmark suite
    history_size: int = 50
    seed: int = 0

    def validate(self) -> None:
        if self.opt not in ("LBFGS", "Adam"):
            raise ConfigError(f"opt must be 'LBFGS' or 'Adam', got {shown(self.opt)}")
        if _is_int(self.steps) and self.steps < 1:
            raise ConfigError(f"steps must be >= 1, got {self.steps}")
        check_number("steps", self.steps, 1, MAX_STEPS, integer=True)
        if isinstance(self.lr, numbers.Real) and math.isfinite(self.lr) and self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        check_number("lr", self.lr, 0, MAX_LR)
        if not _is_int(self.batch) or self.batch == 0 or self.batch < -1:
            raise ConfigError(f"batch must be -1 (full batch) or >= 1, got {shown(self.batch)}")
        for name in ("lamb", "lamb_l1", "lamb_entropy", "lamb_coef"):
            check_number(name, getattr(self, name), 0, 1e6)
        check_number("grid_update_num", self.grid_update_num, 0, MAX_STEPS, integer=True)
        check_number("stop_grid_update_step", self.stop_grid_update_step, 0, MAX_STEPS, integer=True)
        check_number("history_size", self.history_size, 1, 1000, integer=True)
        check_seed(self.seed)


def fit_memory_bytes(
    width: list[int], grid: int, k: int, n_train: int, n_test: int, batch: int = -1, itemsize: int = 4
) -> int:
    """About how many bytes fitting a KAN of `width` (node counts) on these sample counts needs.

    The data (inputs and labels, train and test), the per-step temporaries (basis values of the
    widest layer for every sample of the RMSE pass or the grid update) and the weights with
    LBFGS's ten-step history; an estimate to refuse impossible runs, not a promise.
    """
    layers = list(zip(width, width[1:]))
    data = (n_train + n_test) * (width[0] + width[-1]) * itemsize * 2  # the samples and one copy
    rows = max(n_train, n_test)
    widest = max(n_in * (n_out + grid + k + 1) for n_in, n_out in layers)
    temporaries = 4 * rows * widest * itemsize
    weights = sum(n_in * n_out for n_in, n_out in layers) * (grid + k + 7) * itemsize * 25
    return data + temporaries + weights


@dataclass
class FitCheckpoint:
    """What `fit` needs to continue exactly where it stopped: `step` steps done, the model (weights
    and structure), the optimiser's state and the mini-batch generator's state.

    `tensors` and `state` are what `RunDir.save_checkpoint` writes; rebuild the model with `model()`.
    """

    step: int
    tensors: dict[str, Tensor]
    state: dict[str, Any]

    def model(self) -> KAN:
        """The model as it was at the checkpoint (grids, symbolic edges and dtype included)."""
        weights = {key[6:]: value for key, value in self.tensors.items() if key.startswith("model.")}
        return KAN.from_config(self.state["model"], weights)


def _encode(value: Any, name: str, tensors: dict[str, Tensor]) -> Any:
    """`value` (an optimiser state: tensors, numbers, lists, dicts) as JSON; tensors go to `tensors`."""
    if isinstance(value, Tensor):
        tensors[name] = value.detach().clone()
        return {"tensor": name}
    if isinstance(value, Mapping):
        return {"dict": [[key, _encode(item, f"{name}.{key}", tensors)] for key, item in value.items()]}
    if isinstance(value, (list, tuple)):
        return {"list": [_encode(item, f"{name}.{index}", tensors) for index, item in enumerate(value)]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    raise TypeError(f"cannot checkpoint a {type(value).__name__} in the optimiser state")


def _decode(value: Any, tensors: Mapping[str, Tensor]) -> Any:
    if "tensor" in value:
        return tensors[value["tensor"]].clone()
    if "dict" in value:
        return {key: _decode(item, tensors) for key, item in value["dict"]}
    if "list" in value:
        return [_decode(item, tensors) for item in value["list"]]
    return value["value"]


def _capture(
    model: KAN, optimizer: torch.optim.Optimizer, generator: torch.Generator, step: int
) -> FitCheckpoint:
    tensors = {f"model.{key}": value.detach().clone() for key, value in model.state_dict().items()}
    tensors["rng"] = generator.get_state()
    optimizer_state = _encode(optimizer.state_dict()["state"], "opt", tensors)
    state = {"step": step, "model": model.config(), "optimizer": optimizer_state}
    return FitCheckpoint(step, tensors, state)


def _restore(
    model: KAN, optimizer: torch.optim.Optimizer, generator: torch.Generator, saved: FitCheckpoint
) -> None:
    from intelligible.core.config import to_jsonable

    if to_jsonable(model.config()) != to_jsonable(saved.state["model"]):
        raise ConfigError(
            "the model does not have the checkpoint's structure (grids, width, symbolic edges); "
            "resume with checkpoint.model()"
        )
    model.load_state_dict(
        {key[6:]: value for key, value in saved.tensors.items() if key.startswith("model.")}
    )
    current = optimizer.state_dict()
    try:
        optimizer.load_state_dict(
            {
                "state": _decode(saved.state["optimizer"], saved.tensors),
                "param_groups": current["param_groups"],
            }
        )
        generator.set_state(saved.tensors["rng"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise DataError(f"the checkpoint's optimiser state cannot be restored: {error}") from None


def _check_dataset(model: KAN, dataset: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The dataset's tensors, shapes checked and cast to the model's dtype (DataError otherwise).

    Every split present must have matching input and label: a test_input without test_label (or a
    (n,) label) would otherwise be scored against the wrong numbers.
    """
    if not isinstance(dataset, Mapping):
        raise DataError(f"dataset must be a dict of tensors, got {type(dataset).__name__}")
    for key in ("train_input", "train_label"):
        if key not in dataset:
            raise DataError(
                f"dataset needs '{key}' (and optionally test_input/test_label); got {sorted(map(str, dataset))}"
            )
    if ("test_input" in dataset) != ("test_label" in dataset):
        present, absent = (
            ("test_input", "test_label") if "test_input" in dataset else ("test_label", "test_input")
        )
        raise DataError(f"dataset has '{present}' but no '{absent}'; give both or neither")
    out_dim = sum(model.width[-1])
    checked: dict[str, Tensor] = {}
    for split in ("train", "test"):
        if f"{split}_input" not in dataset:
            continue
        for key in (f"{split}_input", f"{split}_label"):
            value = dataset[key]
            if not isinstance(value, Tensor):
                raise DataError(f"dataset['{key}'] must be a torch tensor, got {type(value).__name__}")
            if value.is_complex() or not torch.isfinite(value).all():
                raise DataError(f"dataset['{key}'] contains NaN or inf values" if not value.is_complex()
                                else f"dataset['{key}'] is complex; give real numbers")  # fmt: skip
        x, y = dataset[f"{split}_input"], dataset[f"{split}_label"]
        try:
            x = model.check_input(x)
        except DataError as error:
            raise DataError(f"dataset['{split}_input']: {error}") from None
        n = x.shape[0]
        if n == 0:
            raise DataError(f"dataset['{split}_input'] has no samples")
        if y.dim() != 2 or y.shape != (n, out_dim):
            hint = "; add the output axis with label.unsqueeze(1)" if y.shape == (n,) else ""
            raise DataError(
                f"{split}_label must have shape ({n}, {out_dim}) to match {split}_input, got {tuple(y.shape)}{hint}"
            )
        checked[f"{split}_input"], checked[f"{split}_label"] = x, y.to(model.dtype)
    return checked


def regularization(model: KAN, x: Tensor, cfg: FitConfig) -> Tensor:
    """pykan's sparsity penalty on edge activation scales, plus the coefficient proxy.

    Edge scale = std over the batch of the edge's numeric output / (std of its input + 0.1); per
    layer, lamb_l1 * sum(scales) + lamb_entropy * (mean row entropy + mean column entropy), each
    row (an output's incoming edges) and column (an input's outgoing edges) normalised by its sum + 1.
    """
    total = x.new_zeros(())
    if cfg.lamb_l1 or cfg.lamb_entropy:
        h = x
        for index, layer in enumerate(model.layers):
            # the whole numeric edge (base and spline, as pykan's postacts), symbolic edges excluded
            edges = layer.numeric_edge_activations(h)
            scales = edges.std(dim=0) / (h.std(dim=0) + 0.1)  # (out, in)
            l1 = scales.sum()
            # pykan's entropies, per node: each output's incoming edges (rows) and each input's outgoing
            # edges (columns). One entropy over the whole layer (as here before issue 20) charged a node
            # fed by two inputs beside a dead node exactly as much as two nodes fed by one input each.
            p_row = scales / (scales.sum(dim=1, keepdim=True) + 1)
            p_col = scales / (scales.sum(dim=0, keepdim=True) + 1)
            entropy_row = -(p_row * torch.log2(p_row + 1e-4)).sum(dim=1).mean()
            entropy_col = -(p_col * torch.log2(p_col + 1e-4)).sum(dim=0).mean()
            total = total + cfg.lamb_l1 * l1 + cfg.lamb_entropy * (entropy_row + entropy_col)
            h = model._combine(index, layer(h))
    if cfg.lamb_coef:
        total = total + cfg.lamb_coef * sum(layer.coef.abs().mean() for layer in model.layers)
    return total


def fit(
    model: KAN,
    dataset: Mapping[str, Tensor],
    cfg: FitConfig | None = None,
    *,
    show_progress: bool | None = None,
    callback: Callable[[int, dict[str, float]], None] | None = None,
    on_checkpoint: Callable[[FitCheckpoint], None] | None = None,
    checkpoint_every: int = 0,
    resume: FitCheckpoint | None = None,
) -> dict[str, list[float]]:
    """Train `model` on dataset {train_input, train_label[, test_input, test_label]}; returns the history
    of train/test RMSE and the regulariser per step (the steps run by this call).

    `callback(step, metrics)` runs after every step. `on_checkpoint(checkpoint)` receives the full
    training state every `checkpoint_every` steps (0: never), after the last step, and on Ctrl-C
    (the state after the last finished step; the interrupt is then re-raised). Passing such a
    checkpoint as `resume` (with `model=checkpoint.model()`) continues the same trajectory: the
    optimiser's state and the mini-batch order are restored.
    """
    cfg = cfg or FitConfig()
    cfg.validate()
    check_number("checkpoint_every", checkpoint_every, 0, MAX_STEPS, integer=True)
    data = _check_dataset(model, dataset)
    generator = torch.Generator().manual_seed(cfg.seed)
    x_train, y_train = data["train_input"], data["train_label"]
    x_test, y_test = data.get("test_input", x_train), data.get("test_label", y_train)
    n = x_train.shape[0]
    batch = n if cfg.batch == -1 else min(cfg.batch, n)
    if cfg.opt == "LBFGS":
        # our LBFGS: torch's drops curvature pairs with y.s < 1e-10, which stalls float64 fits near a
        # good solution (intelligible.core.optim; issue 20)
        optimizer = LBFGS(
            model.parameters(), lr=cfg.lr, history_size=cfg.history_size, line_search_fn="strong_wolfe",
            tolerance_grad=1e-32, tolerance_change=1e-32,
        )  # fmt: skip
    else:
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start = 0
    if resume is not None:
        _restore(model, optimizer, generator, resume)
        start = resume.step
    grid_every = max(cfg.stop_grid_update_step // max(cfg.grid_update_num, 1), 1)
    needed = model.grid_samples_needed()
    grid_warned = False
    history: dict[str, list[float]] = {"train_loss": [], "test_loss": [], "reg": []}
    # the state after the last finished step: what Ctrl-C saves (a step cut short is half applied)
    last = _capture(model, optimizer, generator, start) if on_checkpoint else None

    def save_last() -> None:
        if on_checkpoint is not None and last is not None:
            on_checkpoint(last)

    bar = progress(
        range(start, cfg.steps), desc="kan fit", disable=None if show_progress is None else not show_progress
    )
    with interrupt_guard(save_last):
        for step in bar:
            ids = torch.randperm(n, generator=generator)[:batch] if batch < n else slice(None)
            xb, yb = x_train[ids], y_train[ids]
            if cfg.update_grid and step % grid_every == 0 and step < cfg.stop_grid_update_step:
                # a mini-batch too small for a grid update borrows the whole training input; a training
                # set too small keeps the grid (a refit on a few samples wrecks a trained model)
                samples = xb if xb.shape[0] >= needed else x_train if n >= needed else None
                if samples is not None:
                    model.update_grid(samples)  # refits coefficients in place: the optimiser keeps them
                elif not grid_warned:
                    grid_warned = True
                    warnings.warn(f"grid updates skipped: they need at least {needed} training samples, "
                                  f"the dataset has {n}", stacklevel=2)  # fmt: skip
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
            if not math.isfinite(train_rmse):
                raise DataError(
                    f"training diverged at step {step} (loss is {train_rmse}); lower lr or use opt='Adam'"
                )
            reg = float(last_reg[0].detach())
            history["train_loss"].append(train_rmse)
            history["test_loss"].append(test_rmse)
            history["reg"].append(reg)
            if callback is not None:
                callback(step, {"train_rmse": train_rmse, "test_rmse": test_rmse, "reg": reg})
            if on_checkpoint is not None:
                last = _capture(model, optimizer, generator, step + 1)
                if (checkpoint_every and (step + 1) % checkpoint_every == 0) or step + 1 == cfg.steps:
                    on_checkpoint(last)
            bar.set_postfix(train=f"{train_rmse:.2e}", test=f"{test_rmse:.2e}")
    return history


def check_fit_memory(width: list[int], grid: int, k: int, n_train: int, n_test: int, batch: int = -1,
                     itemsize: int = 4) -> None:  # fmt: skip
    """ConfigError when `fit_memory_bytes` exceeds the memory this process can still use."""
    needed = fit_memory_bytes(width, grid, k, n_train, n_test, batch, itemsize)
    check_fits(
        needed,
        f"{n_train} training and {n_test} test samples for a KAN of width {width} and grid {grid}",
        "lower train_num/test_num, the width or the grid",
    )
