"""KAN runs from the command line: fit a formula typed by the user, optionally distil it to symbols.

The paper reproductions (`reproduce`) are not here yet (issue 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from intelligible.core.errors import ConfigError
from intelligible.core.runs import RunDir
from intelligible.core.seeding import seed_everything
from intelligible.kan.data import create_dataset
from intelligible.kan.model import KAN
from intelligible.kan.prune import prune
from intelligible.kan.symbolic import auto_symbolic, symbolic_formula
from intelligible.kan.train import FitConfig, fit
from intelligible.symbolic.library import SYMBOLIC_LIB
from intelligible.symbolic.parse import parse_formula


@dataclass
class FitRunConfig:
    """`intelligible kan fit`: the target function, the network, and the training schedule."""

    function: str = "exp(sin(pi*x0) + x1**2)"
    width: tuple[int, ...] = (2, 5, 1)
    grid: int = 5
    k: int = 3
    opt: str = "LBFGS"
    steps: int = 50
    lr: float = 1.0
    batch: int = -1
    lamb: float = 0.0
    train_num: int = 1000
    test_num: int = 1000
    range_low: float = -1.0
    range_high: float = 1.0
    symbolic: bool = False  # prune, auto_symbolic over `lib`, polish, print the formula
    lib: tuple[str, ...] = ()  # empty: the whole library
    seed: int = 0

    def validate(self) -> None:
        if len(self.width) < 2 or self.width[-1] != 1:
            raise ConfigError(
                f"width must go from the number of variables to 1 output, got {list(self.width)}"
            )
        unknown = [name for name in self.lib if name not in SYMBOLIC_LIB]
        if unknown:
            raise ConfigError(f"unknown symbolic function(s) {unknown}; valid: {', '.join(SYMBOLIC_LIB)}")
        FitConfig(opt=self.opt, steps=self.steps, lr=self.lr, batch=self.batch).validate()


def fit_run(config: FitRunConfig, out_dir: str | Path) -> dict:
    """Fit a KAN to `config.function` in a run folder; returns the summary written to summary.json."""
    config.validate()
    formula = parse_formula(config.function, n_var=config.width[0])
    run = RunDir.create(out_dir, config, config.seed)
    seed_everything(config.seed)
    dataset = create_dataset(
        formula, n_var=config.width[0], ranges=(config.range_low, config.range_high),
        train_num=config.train_num, test_num=config.test_num, seed=config.seed,
    )  # fmt: skip
    model = KAN(list(config.width), grid=config.grid, k=config.k, seed=config.seed)
    schedule = FitConfig(
        opt=config.opt,
        steps=config.steps,
        lr=config.lr,
        batch=config.batch,
        lamb=config.lamb,
        seed=config.seed,
    )
    history = fit(model, dataset, schedule)
    for step, (train, test) in enumerate(zip(history["train_loss"], history["test_loss"])):
        run.log_metrics(step, train_rmse=train, test_rmse=test)
    summary: dict = {"function": config.function, "test_rmse": history["test_loss"][-1]}
    if config.symbolic:
        # the paper's recipe: prune, retrain the smaller network, then snap edges to functions and polish
        retrain = FitConfig(
            opt=config.opt, steps=config.steps, lr=config.lr, batch=config.batch, seed=config.seed
        )
        model = prune(model, dataset["train_input"])
        fit(model, dataset, retrain)
        model = model.refine(
            config.grid * 4, dataset["train_input"]
        )  # a finer grid sharpens each edge's curve
        fit(model, dataset, retrain)
        chosen = auto_symbolic(model, dataset["train_input"], lib=list(config.lib) or None)
        polish = FitConfig(
            opt=config.opt, steps=config.steps, lr=config.lr, update_grid=False, seed=config.seed
        )
        history = fit(model, dataset, polish)
        (expression,) = symbolic_formula(model, var_names=[f"x{i}" for i in range(config.width[0])])
        summary.update(
            symbolic_test_rmse=history["test_loss"][-1],
            formula=str(expression),
            edges={f"{layer},{i},{j}": name for (layer, i, j), (name, _) in chosen.items()},
            pruned_width=[list(w) for w in model.width],
        )
    model.save(run.path / "model")
    run.write_json("summary.json", summary)
    return summary
