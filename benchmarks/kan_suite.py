"""The KAN suite (issue 20): ours vs pykan 0.2.8 vs an equal-size MLP on functions nobody tuned for.

    python benchmarks/kan_suite.py                          # the whole suite (hours on 2 cores)
    python benchmarks/kan_suite.py --functions I.12.11,jv1 --seeds 0 --steps 20 --no-write

The functions are drawn by a fixed rule: every equation of the AI Feynman database
(benchmarks/data/feynman_equations.csv, Udrescu & Tegmark 2020) with at most 4 variables, on the
database's input ranges, plus the special functions of SPECIALS (scipy). Every function gets the same
budget: width [n, 5, 1], grid 5, k 3, LBFGS for `--steps` (200) steps with grid updates as each
library does by default, seeds 0, 1, 2, the same 1000 training and 1000 test points for every model.

Per function: test RMSE of ours, pykan and an MLP with about the KAN's parameter count (median over
seeds); the symbolic pipeline (`intelligible.kan.discover` with its documented defaults, and the same
recipe through pykan's API: fit with the same penalty, prune, refit, auto_symbolic on the same
library, polish) with whether the snapped formula equals the truth (sympy) and its test RMSE; and the
check of our displayed formula against our model on the test points (`symbolic_formula`).
Writes benchmarks/results/kan_suite.json unless --no-write.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import json
import math
import re
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import sympy
import torch

import results_file
from intelligible.core.threads import single_thread_worker
from intelligible.kan import KAN, create_dataset
from intelligible.kan.discover import DiscoverConfig, discover
from intelligible.kan.experiment import fit_mlp
from intelligible.kan.train import FitConfig, fit
from intelligible.symbolic.parse import parse_formula
from intelligible.symbolic.simplify import canonical, same_expression, snap_constants
from results_file import write_results

FEYNMAN_CSV = Path(__file__).parent / "data" / "feynman_equations.csv"
MAX_VARIABLES = 4
HIDDEN, GRID, K = 5, 5, 3
TRAIN_NUM = TEST_NUM = 1000
# ours_pykan_init: ours started from pykan's initial draws (KAN(init="pykan")), the same start as
# pykan's network with the same seed, so ours vs pykan is the fit alone, seed by seed
IMPLS = ("ours", "pykan", "mlp", "ours_pykan_init")


@dataclass(frozen=True)
class Task:
    """One suite function: its name, formula in x0.. (sympy-parsable text or a scipy call), ranges."""

    name: str
    formula: str
    ranges: tuple[tuple[float, float], ...]
    special: str = ""  # scipy.special function name, called on the columns after `fixed` arguments
    fixed: tuple[float, ...] = ()

    @property
    def n_var(self) -> int:
        return len(self.ranges)


# Special functions (scipy.special): 1-D ones on the range scipy documents as the function's natural
# one (elliptic parameter m < 1), 2-D ones on the ranges of the paper's special-function table
# (as in intelligible.kan.experiment.TABLE_TASKS).
SPECIALS: list[Task] = [
    Task("jv1", "besselj(1, x0)", ((0.0, 10.0),), "jv", (1.0,)),
    Task("jv0", "besselj(0, x0)", ((0.0, 10.0),), "jv", (0.0,)),
    Task("ellipk", "elliptic_k(x0)", ((0.0, 0.9),), "ellipk"),
    Task("ellipe", "elliptic_e(x0)", ((0.0, 1.0),), "ellipe"),
    Task("erf", "erf(x0)", ((-2.0, 2.0),), "erf"),
    Task("ellipkinc", "elliptic_f(x0, x1)", ((0.0, 1.0), (0.0, 0.9)), "ellipkinc"),
    Task("ellipeinc", "elliptic_e(x0, x1)", ((0.0, 1.0), (0.0, 0.9)), "ellipeinc"),
    Task("jv", "besselj(x0, x1)", ((0.0, 2.0), (0.5, 4.0)), "jv"),
    Task("iv", "besseli(x0, x1)", ((0.0, 2.0), (0.0, 2.0)), "iv"),
    Task("kv", "besselk(x0, x1)", ((0.0, 2.0), (0.5, 4.0)), "kv"),
]


def feynman_tasks(path: Path = FEYNMAN_CSV, max_variables: int = MAX_VARIABLES) -> list[Task]:
    """Every equation of the database with at most `max_variables` variables, variables renamed x0.."""
    tasks = []
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            if not row["Filename"] or int(row["# variables"]) > max_variables:
                continue
            n = int(row["# variables"])
            names = [row[f"v{i}_name"] for i in range(1, n + 1)]
            text = row["Formula"].replace("ln(", "log(")
            # longest names first, whole words only: `x1` must not rename inside `x12`, `m` not in `m_0`
            for index in sorted(range(n), key=lambda i: -len(names[i])):
                text = re.sub(rf"\b{re.escape(names[index])}\b", f"X{index}", text)
            text = re.sub(r"\bX(\d+)\b", r"x\1", text)
            ranges = tuple((float(row[f"v{i}_low"]), float(row[f"v{i}_high"])) for i in range(1, n + 1))
            tasks.append(Task(row["Filename"], text, ranges))
    return tasks


def suite(feynman_max: int = 0) -> list[Task]:
    """The Feynman equations (the first `feynman_max` in database order when > 0) and SPECIALS."""
    feynman = feynman_tasks()
    return (feynman[:feynman_max] if feynman_max > 0 else feynman) + SPECIALS


def truth(task: Task) -> sympy.Expr:
    symbols = sympy.symbols([f"x{i}" for i in range(task.n_var)])
    if task.special:
        return sympy.sympify(task.formula, locals={f"x{i}": s for i, s in enumerate(symbols)})
    return parse_formula(task.formula, n_var=task.n_var).sympy


def dataset_for(task: Task) -> dict[str, torch.Tensor]:
    """The task's fixed data (seed 0): uniform samples of its ranges, float64."""
    if task.special:
        from scipy import special

        fn = getattr(special, task.special)

        def f(x: torch.Tensor) -> torch.Tensor:
            return torch.from_numpy(np.asarray(fn(*task.fixed, *x.numpy().T), dtype=np.float64))
    else:
        f = parse_formula(task.formula, n_var=task.n_var)
    return create_dataset(f, n_var=task.n_var, ranges=[list(r) for r in task.ranges], train_num=TRAIN_NUM,
                          test_num=TEST_NUM, seed=0, dtype=torch.float64, name=task.name)  # fmt: skip


def _rmse(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float(torch.sqrt(torch.mean((model(x) - y) ** 2)))


def kan_params(n_var: int) -> int:
    """What a [n, 5, 1] KAN learns: spline coefficients and the two scales of every edge."""
    return (n_var * HIDDEN + HIDDEN) * (GRID + K + 2)


def mlp(n_var: int, seed: int) -> torch.nn.Module:
    """One hidden SiLU layer (the KAN's depth) with about the KAN's parameter count."""
    hidden = max(2, round((kan_params(n_var) - 1) / (n_var + 2)))
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(n_var, hidden), torch.nn.SiLU(), torch.nn.Linear(hidden, 1)
    ).double()


def _pykan(n_var: int, seed: int, ckpt_path: str = "./model"):  # noqa: ANN202 - pykan's MultKAN
    from kan import KAN as PyKAN

    return PyKAN(width=[n_var, HIDDEN, 1], grid=GRID, k=K, seed=seed, auto_save=False, ckpt_path=ckpt_path)


@contextlib.contextmanager
def _quiet():
    """pykan prints a progress bar and messages on every fit; keep the benchmark's output readable."""
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        yield


def fit_accuracy(impl: str, task: Task, dataset: dict, seed: int, steps: int) -> dict:
    """Test RMSE after `steps` LBFGS steps (each library's default grid updates) and seconds taken."""
    start = time.perf_counter()
    try:
        if impl in ("ours", "ours_pykan_init"):
            init = "pykan" if impl == "ours_pykan_init" else "coefficients"
            # built in the default dtype (float64 here, as pykan's): the draws are then pykan's own
            model = KAN([task.n_var, HIDDEN, 1], grid=GRID, k=K, seed=seed, init=init).double()
            fit(model, dataset, FitConfig(steps=steps, seed=seed), show_progress=False)
        elif impl == "pykan":
            model = _pykan(task.n_var, seed)
            with _quiet():
                model.fit(dataset, opt="LBFGS", steps=steps)
        else:
            model = mlp(task.n_var, seed)
            fit_mlp(model, dataset, steps)
        rmse = _rmse(model, dataset["test_input"], dataset["test_label"])
        error = None
    except Exception as failure:  # noqa: BLE001 - a peer's crash is a result, recorded per seed
        rmse, error = math.nan, f"{type(failure).__name__}: {str(failure)[:200]}"
    return {"test_rmse": rmse if math.isfinite(rmse) else math.nan, "seconds": time.perf_counter() - start,
            "error": error}  # fmt: skip


def _truth_constants(target: sympy.Expr) -> list[sympy.Expr]:
    """The numbers the truth is built from (1/(4 pi), sqrt(2 pi), 3/2, ...), as its terms hold them."""
    found: set[sympy.Expr] = set()
    symbols = sorted(target.free_symbols, key=str)
    for sub in sympy.preorder_traversal(canonical(target)):
        if isinstance(sub, (sympy.Add, sympy.Mul)) and symbols:
            constant = sub.as_independent(*symbols, as_Add=isinstance(sub, sympy.Add))[0]
            if constant.is_number and constant not in (0, 1):
                found.add(constant)
        elif sub.is_number and not sub.is_Integer:
            found.add(sub)
    return [c for c in found if c.is_real and math.isfinite(float(c)) and float(c) != 0]


def _snap_to_truth(formula: sympy.Expr, target: sympy.Expr, rtol: float = 1e-3) -> sympy.Expr:
    """Floats within `rtol` of one of the truth's own constants (or its negative) become that constant:
    the nice values of `snap_constants` (integers, halves, pi multiples) miss 1/(4 pi) and the like."""
    constants = _truth_constants(target)
    replacements = {}
    for number in canonical(formula).atoms(sympy.Float):
        value = float(number)
        for constant in constants:
            for exact in (constant, -constant):
                if abs(value - float(exact)) <= rtol * abs(float(exact)):
                    replacements[number] = exact
    return canonical(formula).xreplace(replacements)


def _recovered(formula: sympy.Expr, target: sympy.Expr) -> tuple[bool, str]:
    """Whether `formula` is the truth once its constants are snapped (to the truth's own constants
    within a relative 1e-3, then to integers, halves and pi multiples within 1e-3).

    The two snaps alternate: snapping exponents and offsets (x3**2.0000001, + 1e-12) merges the
    constants around them, and only the merged one (0.0795775 x0 x1 / (x2 x3^2)) is near 1/(4 pi)."""
    try:
        snapped = formula
        for _ in range(3):
            snapped, moved = snap_constants(_snap_to_truth(snapped, target), tol=1e-3)
            if math.isfinite(moved):
                break
        return bool(math.isfinite(moved) and same_expression(snapped, target)), str(snapped)
    except Exception as failure:  # noqa: BLE001 - sympy may fail to simplify; that is not a recovery
        return False, f"{type(failure).__name__}: {str(failure)[:120]}"


def _relative_check(values: np.ndarray, reference: np.ndarray, bound: float) -> dict:
    """The same measure as symbolic_formula's check, for pykan's formula against pykan's model."""
    scale = float(reference.std()) or float(np.abs(reference).mean()) or 1.0
    finite = np.isfinite(values).all()
    error = float(np.sqrt(np.mean((values - reference) ** 2))) / scale if finite else math.inf
    return {"bound": bound, "error": error, "passed": error <= bound}


def symbolic_ours(task: Task, dataset: dict, seed: int, steps: int, standardize: bool = False) -> dict:
    start = time.perf_counter()
    model = KAN([task.n_var, HIDDEN, 1], grid=GRID, k=K, seed=seed).double()
    result = discover(model, dataset, DiscoverConfig(steps=steps, seed=seed, standardize=standardize))
    exact, snapped = _recovered(result.raw, truth(task))
    return {"equals_truth": exact, "test_rmse": result.test_rmse, "formula": str(result.formula[0]),
            "snapped": snapped, "check": result.formula.check(), "seconds": time.perf_counter() - start}  # fmt: skip


def symbolic_pykan(task: Task, dataset: dict, seed: int, steps: int) -> dict:
    """The recipe of `discover` through pykan's API, with the same penalty, thresholds and library."""
    start = time.perf_counter()
    cfg = DiscoverConfig(steps=steps, seed=seed)
    # pykan's prune builds its smaller model with auto_save=True (whatever the caller chose), which
    # writes checkpoints under ckpt_path: give it a scratch folder
    scratch = tempfile.TemporaryDirectory()
    try:
        with _quiet():
            # discover's restarts: seeds seed, seed + 1, ...; the lowest training loss goes on
            tried = []
            for restart in range(cfg.restarts):
                candidate = _pykan(task.n_var, seed + restart, ckpt_path=scratch.name)
                trace = candidate.fit(dataset, opt="LBFGS", steps=cfg.steps, lamb=cfg.lamb)
                loss = float(trace["train_loss"][-1])
                tried.append((loss if math.isfinite(loss) else math.inf, restart, candidate))
            model = min(tried, key=lambda t: (t[0], t[1]))[2]
            model = model.prune(node_th=cfg.node_th, edge_th=cfg.edge_th)
            model.fit(dataset, opt="LBFGS", steps=cfg.steps)
            model.auto_symbolic(lib=list(cfg.lib), verbose=0)
            model.fit(dataset, opt="LBFGS", steps=cfg.polish_steps, update_grid=False)
            symbols = sympy.symbols([f"x{i}" for i in range(task.n_var)])
            raw = sympy.sympify(model.symbolic_formula(var=list(symbols))[0][0])
        rmse = _rmse(model, dataset["test_input"], dataset["test_label"])
        fn = sympy.lambdify(symbols, raw, "numpy")
        x = dataset["test_input"].numpy()
        with np.errstate(all="ignore"):
            values = np.broadcast_to(np.asarray(fn(*x.T), dtype=np.float64), (x.shape[0],))
        with torch.no_grad():
            reference = model(dataset["test_input"]).double().numpy()[:, 0]
        exact, snapped = _recovered(raw, truth(task))
        out = {"equals_truth": exact, "test_rmse": rmse, "formula": str(raw)[:500], "snapped": snapped[:500],
               "check": _relative_check(values, reference, 1e-2)}  # fmt: skip
    except Exception as failure:  # noqa: BLE001 - a peer's crash is a result
        out = {
            "equals_truth": False,
            "test_rmse": math.nan,
            "error": f"{type(failure).__name__}: {str(failure)[:200]}",
        }
    finally:
        scratch.cleanup()
    out["seconds"] = time.perf_counter() - start
    return out


# the symbolic pipelines: discover's defaults, discover(standardize=True) (not a target: an option
# measured beside the default), and the same recipe through pykan's API
SYMBOLIC = {
    "ours": symbolic_ours,
    "ours_std": lambda task, dataset, seed, steps: symbolic_ours(
        task, dataset, seed, steps, standardize=True
    ),
    "pykan": symbolic_pykan,
}


def _median(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def run_task(
    task: Task,
    seeds: list[int],
    steps: int,
    impls: tuple[str, ...],
    symbolic: tuple[str, ...],
    symbolic_seeds: list[int],
) -> dict:
    """The accuracy fits of `impls` and the symbolic pipelines of `symbolic` on one function; medians
    over seeds."""
    torch.set_default_dtype(torch.float64)  # pykan builds its parameters in the default dtype
    dataset = dataset_for(task)
    row: dict = {"task": task.name, "formula": task.formula if not task.special else f"scipy.special.{task.special}",
                 "n_var": task.n_var, "ranges": [list(r) for r in task.ranges],
                 "label_std": float(dataset["test_label"].std())}  # fmt: skip
    for impl in impls:
        runs = [fit_accuracy(impl, task, dataset, seed, steps) for seed in seeds]
        row[impl] = {"test_rmse": _median([r["test_rmse"] for r in runs]), "per_seed": runs}
    _ratio(row)
    for impl, pipeline in SYMBOLIC.items():
        if impl in symbolic:
            runs = [pipeline(task, dataset, seed, steps) for seed in symbolic_seeds]
            row[f"symbolic_{impl}"] = {
                "recovered_seeds": sum(bool(r["equals_truth"]) for r in runs),
                "test_rmse": _median([r["test_rmse"] for r in runs]),
                "seeds": symbolic_seeds,
                "per_seed": runs,
            }
    return row


def _ratio(row: dict) -> None:
    for impl, key in (("ours", "ratio_ours_pykan"), ("ours_pykan_init", "ratio_ours_pykan_init_pykan")):
        if impl in row and "pykan" in row:
            row[key] = row[impl]["test_rmse"] / row["pykan"]["test_rmse"]


PARTS = (*IMPLS, *(f"symbolic_{name}" for name in SYMBOLIC))


def keep_parts(rows: list[dict], earlier: dict) -> dict[str, str]:
    """Fill each row's parts not measured now (an implementation's fits, a symbolic pipeline) from the
    same function's row of an earlier results file (same budget); returns part -> the command that
    measured it."""
    by_task = {row["task"]: row for row in earlier["measurements"]["rows"]}
    sources = earlier["measurements"].get("parts_from", {})
    kept: dict[str, str] = {}
    for row in rows:
        old = by_task.get(row["task"], {})
        for part in PARTS:
            if part not in row and part in old:
                row[part] = old[part]
                kept[part] = sources.get(part, earlier.get("command", "?"))
        _ratio(row)
    return kept


def _print_row(row: dict) -> None:
    cells = [f"{row['task']:>10}"]
    for impl in IMPLS:
        if impl in row:
            cells.append(f"{impl} {row[impl]['test_rmse']:.3e}")
    if "ratio_ours_pykan" in row:
        cells.append(f"ratio {row['ratio_ours_pykan']:.2f}")
    for impl in SYMBOLIC:
        sym = row.get(f"symbolic_{impl}")
        if sym:
            cells.append(f"sym {impl} {sym['recovered_seeds']}/{len(sym['per_seed'])}")
    if "symbolic_ours" in row:
        checks = [r["check"]["passed"] for r in row["symbolic_ours"]["per_seed"]]
        cells.append(f"display check {sum(checks)}/{len(checks)}")
    print("  ".join(cells), flush=True)


def summarise(rows: list[dict]) -> tuple[list[dict], dict]:
    """The issue's targets from the rows, honestly (a missed target stays with holds false)."""
    targets = []
    ratios = [r["ratio_ours_pykan"] for r in rows if math.isfinite(r.get("ratio_ours_pykan", math.nan))]
    if ratios:
        median = statistics.median(ratios)
        worse = sum(r > 2 for r in ratios) / len(ratios)
        targets += [
            {"name": "median_test_rmse_ratio_ours_over_pykan", "value": median, "target": "<= 1.0", "holds": median <= 1.0},
            {"name": "fraction_of_functions_worse_than_2x_pykan", "value": worse, "target": "<= 0.1", "holds": worse <= 0.1},
        ]  # fmt: skip
    if any("symbolic_ours" in r for r in rows):
        ours = sum(r["symbolic_ours"]["recovered_seeds"] > 0 for r in rows if "symbolic_ours" in r)
        if any("symbolic_pykan" in r for r in rows):
            theirs = sum(r["symbolic_pykan"]["recovered_seeds"] > 0 for r in rows if "symbolic_pykan" in r)
            targets.append({"name": "functions_recovered_exactly_ours_vs_pykan", "value": [ours, theirs],
                            "target": "ours >= pykan", "holds": ours >= theirs})  # fmt: skip
        checks = [
            s["check"]["passed"] for r in rows if "symbolic_ours" in r for s in r["symbolic_ours"]["per_seed"]
        ]
        share = sum(checks) / len(checks)
        targets.append({"name": "displayed_formulas_within_bound_of_model", "value": share, "target": "1.0 (100%)",
                        "holds": share == 1.0})  # fmt: skip
    summary = {"functions": len(rows), "ratios_finite": len(ratios)}
    standardized = [r["symbolic_ours_std"] for r in rows if "symbolic_ours_std" in r]
    if standardized:  # not a target: discover(standardize=True), an option beside the defaults
        summary["ours_std"] = {
            "functions": len(standardized),
            "recovered": sum(part["recovered_seeds"] > 0 for part in standardized),
            "displayed_within_bound": sum(
                run["check"]["passed"] for part in standardized for run in part["per_seed"]
            ),
        }
    paired = [r["ratio_ours_pykan_init_pykan"] for r in rows
              if math.isfinite(r.get("ratio_ours_pykan_init_pykan", math.nan))]  # fmt: skip
    if paired:
        # not a target (the default start is ours): the fit alone, both libraries from the same draws
        summary["from_pykans_start"] = {
            "median_test_rmse_ratio": statistics.median(paired),
            "fraction_worse_than_2x": sum(r > 2 for r in paired) / len(paired),
            "functions": len(paired),
        }
    return targets, summary


def _run(args: tuple) -> dict:
    return run_task(*args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", default="", help="comma-separated names (default: the whole suite)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    parser.add_argument("--steps", type=int, default=200, help="LBFGS steps per fit (default 200)")
    parser.add_argument(
        "--impls", default=",".join(IMPLS), help="accuracy fits: any of ours,pykan,mlp, or none"
    )
    parser.add_argument(
        "--symbolic", default="ours,pykan", help="symbolic pipelines: any of ours,ours_std,pykan, or none"
    )
    parser.add_argument("--no-symbolic", action="store_true", help="the same as --symbolic none")
    parser.add_argument(
        "--symbolic-seeds", default="", help="seeds of the symbolic pipelines (default: --seeds)"
    )
    parser.add_argument("--keep", default="",
                        help="an earlier results file (same steps): parts not run now are taken from its rows")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="functions run in parallel processes")
    parser.add_argument("--out", default="", help="results file (default benchmarks/results/kan_suite.json)")
    parser.add_argument("--no-write", action="store_true", help="print only; write no results file")
    parser.add_argument("--list", action="store_true", help="list the suite's functions and exit")
    parser.add_argument("--feynman-max", type=int, default=0,
                        help="only the first N Feynman equations in database order (default 0: all)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.feynman_max < 0:
        parser.error(f"--feynman-max must be >= 0, got {args.feynman_max}")

    tasks = suite(args.feynman_max)
    if args.list:
        for task in tasks:
            print(f"{task.name:>10}  n={task.n_var}  {task.formula}  {list(task.ranges)}")
        return 0
    by_name = {task.name: task for task in tasks}
    names = [name.strip() for name in args.functions.split(",") if name.strip()]
    unknown = [name for name in names if name not in by_name]
    impls = tuple(name.strip() for name in args.impls.split(",") if name.strip() and name.strip() != "none")
    symbolic = tuple(
        name.strip() for name in args.symbolic.split(",") if name.strip() and name.strip() != "none"
    )
    if args.no_symbolic:
        symbolic = ()
    try:
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
        symbolic_seeds = [int(s) for s in args.symbolic_seeds.split(",") if s.strip()] or seeds
    except ValueError:
        parser.error(f"--seeds/--symbolic-seeds must be comma-separated integers, got {args.seeds[:80]!r}")
    if unknown:
        parser.error(f"unknown function(s) {', '.join(unknown)[:200]}; see --list")
    if not seeds or any(s < 0 for s in seeds + symbolic_seeds):
        parser.error("--seeds needs at least one seed >= 0")
    if not 1 <= args.steps <= 100_000:
        parser.error(f"--steps must be in 1..100000, got {args.steps}")
    if any(impl not in IMPLS for impl in impls):
        parser.error(f"--impls must be a subset of {','.join(IMPLS)} or none, got {args.impls[:80]!r}")
    if any(impl not in SYMBOLIC for impl in symbolic):
        parser.error(
            f"--symbolic must be a subset of {','.join(SYMBOLIC)} or none, got {args.symbolic[:80]!r}"
        )
    if not impls and not symbolic:
        parser.error("nothing to run: --impls none and no symbolic pipeline")
    earlier = None
    if args.keep:
        try:
            earlier = json.loads(Path(args.keep).read_text())
            earlier["measurements"]["rows"]  # noqa: B018 - the shape check
        except (OSError, ValueError, KeyError, TypeError) as failure:
            parser.error(f"--keep: cannot read a kan_suite results file at {args.keep[:80]!r}: {failure}")
        # a kept part must have the budget of this run: ratios of fits with other steps or seeds lie
        kept_budget = earlier["measurements"].get("budget", {})
        if (kept_budget.get("steps"), kept_budget.get("seeds")) != (args.steps, seeds):
            parser.error(f"--keep: that file was run with steps {kept_budget.get('steps')} and seeds "
                         f"{kept_budget.get('seeds')}, this run has {args.steps} and {seeds}")  # fmt: skip
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    if "pykan" in impls or "pykan" in symbolic:
        try:
            import kan  # noqa: F401
        except ImportError:
            parser.error(
                "pykan is not installed: pip install -e '.[bench]' (pykan==0.2.8), or --impls ours,mlp"
            )
    out = Path(args.out) if args.out else None
    if out is not None and not args.no_write and (out.is_dir() or not out.parent.is_dir()):
        parser.error(f"--out must be a file in an existing folder, got {args.out[:80]!r}")
    chosen = [by_name[name] for name in names] if names else tasks
    jobs = [(task, seeds, args.steps, impls, symbolic, symbolic_seeds) for task in chosen]
    start = time.perf_counter()
    rows: list[dict] = []
    # every finished function is appended here at once, so a run cut short keeps what it measured
    partial = (
        None
        if args.no_write
        else Path(str(out or results_file.RESULTS_DIR / "kan_suite.json") + ".partial.jsonl")
    )
    if args.workers == 1:
        single_thread_worker()
        finished = (run_task(*job) for job in jobs)
    else:
        pool = ProcessPoolExecutor(args.workers, initializer=single_thread_worker)
        finished = pool.map(_run, jobs)
    for row in finished:
        rows.append(row)
        _print_row(row)
        if partial is not None:
            with partial.open("a") as handle:
                handle.write(json.dumps(row, default=float) + "\n")
    if args.workers > 1:
        pool.shutdown()
    command = "python benchmarks/kan_suite.py " + " ".join(argv if argv is not None else sys.argv[1:])
    parts_from = {part: command.strip() for part in PARTS if any(part in row for row in rows)}
    if earlier is not None:
        parts_from = {**keep_parts(rows, earlier), **parts_from}
    targets, summary = summarise(rows)
    for target in targets:
        print(
            f"{target['name']}: {target['value']} (target {target['target']}) {'holds' if target['holds'] else 'MISSED'}"
        )
    if args.no_write:
        return 0
    measurements = {
        "budget": {"width": f"[n, {HIDDEN}, 1]", "grid": GRID, "k": K, "opt": "LBFGS", "steps": args.steps,
                   # L-BFGS curvature pairs: fit's default for ours and the MLP (fit_mlp), pykan's own 10
                   "history_size": {"ours": FitConfig().history_size, "mlp": FitConfig().history_size, "pykan": 10},
                   "seeds": seeds, "train_num": TRAIN_NUM, "test_num": TEST_NUM, "dtype": "float64",
                   "symbolic": {k: v for k, v in vars(DiscoverConfig(steps=args.steps)).items() if k != "seed"}},
        "suite_rule": (f"the first {args.feynman_max} " if args.feynman_max else "all ")
        + f"AI Feynman equations with at most {MAX_VARIABLES} variables, in database order (database ranges) + SPECIALS",
        "elapsed_s": round(time.perf_counter() - start, 1),
        # which command measured each part of the rows (a part kept from an earlier file names its run)
        "parts_from": parts_from,
        "symbolic_seeds": symbolic_seeds if symbolic else None,
        **summary,
        "rows": rows,
    }  # fmt: skip
    if args.out:  # the shared format, written elsewhere: build it in a scratch folder, then move it
        with tempfile.TemporaryDirectory() as scratch:
            saved, results_file.RESULTS_DIR = results_file.RESULTS_DIR, Path(scratch)
            try:
                path = Path(
                    shutil.move(write_results("kan_suite", command.strip(), targets, measurements), out)
                )
            finally:
                results_file.RESULTS_DIR = saved
    else:
        path = write_results("kan_suite", command.strip(), targets, measurements)
    if partial is not None:
        partial.unlink(missing_ok=True)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
