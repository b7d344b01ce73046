"""The paper's four criteria as one API, for any torch model with named modules.

    report = test_hypothesis(model, ["attn-res-1", "mlp-res-1"], hypotheses, data)

1. Predictability: held-out R^2 of ridge probes from each site's hidden state to each hypothesis's
   intermediates, per context position; and a CCA probe against the intermediates' powers, which
   finds non-linear (polynomial) encodings.
2. Encoding tracks performance: `encoding_vs_performance` relates probe R^2 to model error across
   models or checkpoints (Spearman's rank correlation with a bootstrap interval).
3. Variance explained: reverse probes from the intermediate to the hidden state.
4. Intervention: `intervene` writes a chosen value of the intermediate into the hidden state through
   the reverse probe and measures how the model's output moves, against the intended answer and
   against baselines (no intervention; a random edit of the same size).

A site is read by a forward hook on the module whose output it is, and written by another that
adds to that output, so the model needs no changes: our `PhysicsTransformer` names its sites
(`model.sites()`); any other model is addressed by its `named_modules()` names ("0", "2" in an
`nn.Sequential`). A site's output must be a tensor (sequences, positions, features) or
(sequences, features).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError, DataError, ModelError
from intelligible.worldmodel.data import SequenceBatch
from intelligible.worldmodel.hypotheses import Hypothesis, builtin_hypotheses
from intelligible.worldmodel.probes import (
    Whitened,
    as_batched,
    cca_r2_batched,
    polynomial_features,
    ridge_r2_batched,
    variance_explained,
    variance_explained_batched,
)

CCA_REG = 1e-3  # ridge on the standardised covariances of the CCA probe
MIN_SPLIT = 4  # sequences on each side of the held-out split, at the least


def available_sites(model: nn.Module) -> dict[str, nn.Module]:
    """The sites of `model`: `model.sites()` when it names them, else every named submodule."""
    sites = getattr(model, "sites", None)
    if callable(sites):
        return dict(sites())
    return {name: module for name, module in model.named_modules() if name}


def resolve_sites(model: nn.Module, names: Sequence[str] | None) -> dict[str, nn.Module]:
    """Site name -> module, in the order given (all sites when `names` is empty or None)."""
    available = available_sites(model)
    if not available:
        raise ModelError(f"{type(model).__name__} has no submodules to read; a site is a named module")
    if isinstance(names, str):
        names = [names]
    if not names:
        return available
    chosen = {}
    for name in names:
        if name not in available:
            valid = list(available)
            listed = ", ".join(valid[:40]) + (f", ... ({len(valid)} in all)" if len(valid) > 40 else "")
            raise ConfigError(f"the model has no site {shown(name)}; valid sites: {listed}")
        chosen[name] = available[name]
    return chosen


def _device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def _as_positions(output: object, site: str) -> torch.Tensor:
    if not isinstance(output, torch.Tensor):
        raise ModelError(
            f"site {site!r} outputs {type(output).__name__}, not a tensor; choose a module whose output "
            "is one tensor"
        )
    if output.ndim < 2:
        raise ModelError(
            f"site {site!r} outputs shape {tuple(output.shape)}; need (sequences, ..., features)"
        )
    if output.ndim == 2:
        return output[:, None, :]
    return output.reshape(output.shape[0], output.shape[1], -1)


@contextlib.contextmanager
def _hooks(modules: dict[str, nn.Module], hook_for: dict) -> Iterator[None]:
    handles = [modules[name].register_forward_hook(hook) for name, hook in hook_for.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def run_with_sites(
    model: nn.Module,
    sites: dict[str, nn.Module],
    inputs: torch.Tensor,
    *,
    batch_size: int = 512,
    edits: dict[str, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Run `model` on `inputs` in batches, reading every site; `edits[site]` (same shape as that site's
    output over all of `inputs`) is added to the site's output on the way. Returns (outputs, site -> states)."""
    device = _device(model)
    read: dict[str, list[torch.Tensor]] = {name: [] for name in sites}
    outputs: list[torch.Tensor] = []
    edits = edits or {}
    state = {"start": 0}

    def make_hook(name: str):  # noqa: ANN202 - a torch hook
        def hook(module: nn.Module, args: object, output: object) -> object:
            out = _as_positions(output, name)
            if name in edits:
                start = state["start"]
                delta = edits[name][start : start + out.shape[0]].to(out.device, out.dtype)
                out = out + delta.reshape(out.shape)
                output = out.reshape(output.shape)  # type: ignore[union-attr]
            read[name].append(out.detach().float().cpu())
            return output if name in edits else None

        return hook

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _hooks(sites, {name: make_hook(name) for name in sites}):
            for start in range(0, inputs.shape[0], batch_size):
                state["start"] = start
                outputs.append(model(inputs[start : start + batch_size].to(device)).float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(outputs), {name: torch.cat(parts) for name, parts in read.items()}


def split_indices(n: int, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random (train, held-out) sequence indices; DataError when either side is too small."""
    if not (isinstance(holdout, float | int) and not isinstance(holdout, bool) and 0 < holdout < 1):
        raise ConfigError(f"holdout must be a fraction between 0 and 1, got {str(holdout)[:80]}")
    n_test = int(round(n * holdout))
    if n_test < MIN_SPLIT or n - n_test < MIN_SPLIT:
        need = math.ceil(max(MIN_SPLIT / holdout, MIN_SPLIT / (1 - holdout)))
        raise DataError(
            f"{n} sequences are too few for a held-out split at holdout {holdout:g} ({n - n_test} to fit, "
            f"{n_test} to score; at least {MIN_SPLIT} each): give at least {need} sequences"
        )
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def _hypotheses(hypotheses: Sequence[Hypothesis | str], task: str) -> list[Hypothesis]:
    if isinstance(hypotheses, Hypothesis | str):
        hypotheses = [hypotheses]
    if not hypotheses:
        raise ConfigError("give at least one hypothesis")
    known = None
    found = []
    for item in hypotheses:
        if isinstance(item, Hypothesis):
            found.append(item)
            continue
        known = known or builtin_hypotheses(task)
        if item not in known:
            raise ConfigError(
                f"unknown hypothesis {shown(item)} for task {task!r}; valid: {', '.join(known)}"
            )
        found.append(known[item])
    names = [h.name for h in found]
    if len(set(names)) != len(names):
        raise ConfigError(f"hypothesis names must differ; got {', '.join(names)}")
    return found


def _masked_mse(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> float:
    return float(((output - target) ** 2)[:, mask].mean())


@dataclass
class CriteriaReport:
    """Criteria 1 and 3 for each hypothesis at each site and position, on held-out sequences.

    r2[h], cca[h], variance[h]: (sites, positions) arrays; r2_columns[h]: (sites, positions, k), one per
    intermediate; summaries average positions >= from_position (earlier ones cannot know the
    parameters yet). model_mse: the model's error on the held-out sequences (loss positions).
    """

    sites: list[str]
    hypotheses: list[str]
    positions: int
    from_position: int
    r2: dict[str, np.ndarray]
    r2_columns: dict[str, np.ndarray]
    variance: dict[str, np.ndarray]
    cca: dict[str, np.ndarray] = field(default_factory=dict)
    model_mse: float = float("nan")
    n_train: int = 0
    n_test: int = 0

    def score(self, hypothesis: str, kind: str = "r2") -> np.ndarray:
        """Per site: the mean over positions >= from_position of `kind` (r2, cca or variance)."""
        table = {"r2": self.r2, "cca": self.cca, "variance": self.variance}[kind][hypothesis]
        with np.errstate(all="ignore"), _quiet_nan_warnings():
            return np.nanmean(table[:, self.from_position :], axis=1)

    def best(self, hypothesis: str, kind: str = "r2") -> tuple[str, float]:
        """(site, score) of the site where `kind` is highest for `hypothesis`."""
        scores = self.score(hypothesis, kind)
        if np.isnan(scores).all():
            return self.sites[0], float("nan")
        index = int(np.nanargmax(scores))
        return self.sites[index], float(scores[index])

    def table(self) -> list[dict]:
        """One row per hypothesis: best site and score for each criterion."""
        rows = []
        for name in self.hypotheses:
            site, r2 = self.best(name)
            row = {"hypothesis": name, "best_site": site, "r2": r2,
                   "variance_explained": float(self.score(name, "variance")[self.sites.index(site)]),
                   "best_variance_site": self.best(name, "variance")[0]}  # fmt: skip
            if name in self.cca:
                row["cca_r2"] = float(self.score(name, "cca")[self.sites.index(site)])
                row["best_cca"] = self.best(name, "cca")[1]
            rows.append(row)
        return rows

    def to_dict(self) -> dict:
        """JSON-ready: the tables and every heatmap."""
        return {
            "sites": self.sites, "hypotheses": self.hypotheses, "positions": self.positions,
            "from_position": self.from_position, "model_mse": self.model_mse,
            "n_train": self.n_train, "n_test": self.n_test, "table": self.table(),
            "r2": {k: v.tolist() for k, v in self.r2.items()},
            "cca": {k: v.tolist() for k, v in self.cca.items()},
            "variance": {k: v.tolist() for k, v in self.variance.items()},
        }  # fmt: skip


@contextlib.contextmanager
def _quiet_nan_warnings() -> Iterator[None]:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _check_common(data: SequenceBatch, from_position: int, alpha: float) -> None:
    if not isinstance(data, SequenceBatch):
        raise DataError(f"data must be a SequenceBatch (see worldmodel.data), got {type(data).__name__}")
    data.check()
    if (
        isinstance(from_position, bool)
        or not isinstance(from_position, int)
        or not 0 <= from_position < data.positions
    ):
        raise ConfigError(
            f"from_position must be from 0 to {data.positions - 1}, got {str(from_position)[:80]}"
        )
    if not (isinstance(alpha, float | int) and math.isfinite(alpha) and alpha >= 0):
        raise ConfigError(f"alpha must be a finite number >= 0, got {str(alpha)[:80]}")


def test_hypothesis(
    model: nn.Module,
    sites: Sequence[str] | None,
    hypotheses: Sequence[Hypothesis | str],
    data: SequenceBatch,
    *,
    holdout: float = 0.25,
    alpha: float = 1e-3,
    cca_degree: int = 3,
    from_position: int = 1,
    seed: int = 0,
    batch_size: int = 512,
) -> CriteriaReport:
    """Criteria 1 (ridge R^2; CCA against powers 1..cca_degree, 0 to skip) and 3 (variance explained by
    reverse probes) for every hypothesis, site and position, fitted on a random (1 - holdout) of the
    sequences and scored on the rest. `sites` empty or None: every site of the model."""
    _check_common(data, from_position, alpha)
    if isinstance(cca_degree, bool) or not isinstance(cca_degree, int) or not 0 <= cca_degree <= 10:
        raise ConfigError(f"cca_degree must be a whole number from 0 to 10, got {str(cca_degree)[:80]}")
    chosen = resolve_sites(model, sites)
    found = _hypotheses(hypotheses, data.task)
    train, test = split_indices(len(data), holdout, seed)
    values = {h.name: h.values(data) for h in found}  # all checked before the model runs
    outputs, states = run_with_sites(model, chosen, data.inputs, batch_size=batch_size)
    positions = data.positions
    for name, state in states.items():
        if state.shape[1] not in (positions, 1):
            raise ModelError(
                f"site {name!r} has {state.shape[1]} positions, the data {positions}; a site must keep "
                "one state per position (or one per sequence)"
            )
    model_mse = (
        _masked_mse(outputs[test], data.targets[test], data.loss_mask)
        if outputs.shape == data.targets.shape
        else float("nan")
    )
    widths = [values[h.name].shape[2] for h in found]
    stacked = as_batched(np.concatenate([values[h.name] for h in found], axis=2))  # (T, n, K)
    train_t, test_t = torch.from_numpy(train), torch.from_numpy(test)
    r2: dict[str, list[np.ndarray]] = {h.name: [] for h in found}
    r2_cols: dict[str, list[np.ndarray]] = {h.name: [] for h in found}
    variance: dict[str, list[np.ndarray]] = {h.name: [] for h in found}
    cca: dict[str, list[np.ndarray]] = {h.name: [] for h in found}
    for site in chosen:
        hidden = as_batched(states[site])
        target = stacked if hidden.shape[0] == positions else stacked[-1:]
        htr, hte = hidden[:, train_t], hidden[:, test_t]
        ytr, yte = target[:, train_t], target[:, test_t]
        per_position = ridge_r2_batched(htr, hte, ytr, yte, alpha)
        whitened = Whitened(htr, CCA_REG) if cca_degree else None
        start = 0
        for hyp, width in zip(found, widths):
            columns = per_position[:, start : start + width]
            sub_tr, sub_te = ytr[..., start : start + width], yte[..., start : start + width]
            start += width
            with _quiet_nan_warnings():
                r2[hyp.name].append(_pad(np.nanmean(columns, axis=1), positions))
            r2_cols[hyp.name].append(_pad(columns, positions))
            explained, _ = variance_explained_batched(sub_tr, sub_te, htr, hte, alpha)
            variance[hyp.name].append(_pad(explained, positions))
            if whitened is not None:
                score = cca_r2_batched(
                    whitened,
                    hte,
                    polynomial_features(sub_tr, cca_degree),
                    polynomial_features(sub_te, cca_degree),
                    CCA_REG,
                )
                cca[hyp.name].append(_pad(score, positions))
    return CriteriaReport(
        sites=list(chosen), hypotheses=[h.name for h in found], positions=positions,
        from_position=from_position,
        r2={k: np.stack(v) for k, v in r2.items()}, r2_columns={k: np.stack(v) for k, v in r2_cols.items()},
        variance={k: np.stack(v) for k, v in variance.items()},
        cca={k: np.stack(v) for k, v in cca.items()} if cca_degree else {},
        model_mse=model_mse, n_train=len(train), n_test=len(test),
    )  # fmt: skip


test_hypothesis.__test__ = False  # type: ignore[attr-defined] - pytest: a library function, not a test


def _pad(values: np.ndarray, positions: int) -> np.ndarray:
    """A site with one state per sequence is shown at the last position, NaN elsewhere."""
    if values.shape[0] == positions:
        return values
    padded = np.full((positions, *values.shape[1:]), np.nan)
    padded[-1] = values[0]
    return padded


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties); NaN when either side is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(a), rankdata(b)
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def encoding_vs_performance(
    r2: Sequence[float], error: Sequence[float], *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> dict:
    """Criterion 2: Spearman's rho between probe R^2 and model error over models or checkpoints, with a
    percentile bootstrap interval (pairs resampled). A good encoding that tracks performance gives rho < 0."""
    r2_arr, err_arr = np.asarray(r2, float), np.asarray(error, float)
    if r2_arr.shape != err_arr.shape or r2_arr.ndim != 1:
        raise DataError(
            f"r2 and error must be two lists of the same length, got {r2_arr.shape} and {err_arr.shape}"
        )
    keep = np.isfinite(r2_arr) & np.isfinite(err_arr)
    r2_arr, err_arr = r2_arr[keep], err_arr[keep]
    if len(r2_arr) < 3:
        raise DataError(
            f"criterion 2 needs at least 3 models or checkpoints with finite scores, got {len(r2_arr)}"
        )
    rho = spearman(r2_arr, err_arr)
    rng = np.random.default_rng(seed)
    boots = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(r2_arr), len(r2_arr))
        boots.append(spearman(r2_arr[pick], err_arr[pick]))
    boots_arr = np.asarray(boots)
    boots_arr = boots_arr[np.isfinite(boots_arr)]
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(boots_arr, [tail, 100 - tail]) if len(boots_arr) else (math.nan, math.nan)
    return {"rho": rho, "low": float(low), "high": float(high), "n": int(len(r2_arr)), "level": level}


@dataclass
class InterventionResult:
    """Criterion 4 for one hypothesis at one site: MSE of the outputs against the intended answer.

    intervened: with the intermediate's new value written in; clean: no intervention (the model still
    answers for the old parameters); random: an edit of the same size in a random direction;
    model: the clean outputs against the original targets (how good the model is).
    """

    hypothesis: str
    site: str
    intervened: float
    clean: float
    random: float
    model: float
    outputs: torch.Tensor | None = None
    curves: dict[str, list[float]] = field(default_factory=dict)  # the same MSEs per context position

    def to_dict(self) -> dict:
        return {"hypothesis": self.hypothesis, "site": self.site, "intervened": self.intervened,
                "clean": self.clean, "random": self.random, "model": self.model, "curves": self.curves}  # fmt: skip


def intervene(
    model: nn.Module,
    site: str,
    hypothesis: Hypothesis | str,
    data: SequenceBatch,
    counterfactual: SequenceBatch,
    *,
    holdout: float = 0.25,
    alpha: float = 1e-3,
    from_position: int = 1,
    seed: int = 0,
    batch_size: int = 512,
) -> InterventionResult:
    """Criterion 4: fit reverse probes (intermediate -> hidden state at `site`, per position) on the
    training part of `data`, then, on the held-out part, add probe(new) - probe(old) to the site's state
    at positions >= from_position, where new is the hypothesis on `counterfactual` (the same inputs with
    changed parameters, whose targets are the intended answers)."""
    _check_common(data, from_position, alpha)
    counterfactual.check()
    if counterfactual.inputs.shape != data.inputs.shape or not torch.equal(
        counterfactual.inputs, data.inputs
    ):
        raise DataError(
            "the counterfactual must have the same inputs as the data (only parameters and targets change)"
        )
    chosen = resolve_sites(model, [site])
    (hyp,) = _hypotheses([hypothesis], data.task)
    train, test = split_indices(len(data), holdout, seed)
    old, new = hyp.values(data), hyp.values(counterfactual)
    _, states = run_with_sites(model, chosen, data.inputs[train], batch_size=batch_size)
    hidden_train = states[site].numpy()
    if hidden_train.shape[1] != data.positions:
        raise ModelError(f"site {site!r} must keep one state per position to be intervened on")
    _, probe = variance_explained(old[train], old[train], hidden_train, hidden_train, alpha)
    shift = (
        torch.as_tensor(new[test]).permute(1, 0, 2) - torch.as_tensor(old[test]).permute(1, 0, 2)
    ) / probe["std"]
    delta = (shift @ probe["coef"]).permute(1, 0, 2)  # (n_test, T, d)
    delta[:, :from_position] = 0.0
    inputs = data.inputs[test]
    clean, clean_states = run_with_sites(model, chosen, inputs, batch_size=batch_size)
    edited, _ = run_with_sites(model, chosen, inputs, batch_size=batch_size, edits={site: delta.float()})
    generator = torch.Generator().manual_seed(seed)
    direction = torch.randn(delta.shape, generator=generator, dtype=torch.float64)
    direction *= delta.norm(dim=2, keepdim=True) / direction.norm(dim=2, keepdim=True).clamp_min(1e-300)
    randomised, _ = run_with_sites(
        model, chosen, inputs, batch_size=batch_size, edits={site: direction.float()}
    )
    mask = data.loss_mask.clone()
    mask[:from_position] = False
    intended = counterfactual.targets[test]
    return InterventionResult(
        hypothesis=hyp.name, site=site,
        intervened=_masked_mse(edited, intended, mask), clean=_masked_mse(clean, intended, mask),
        random=_masked_mse(randomised, intended, mask), model=_masked_mse(clean, data.targets[test], mask),
        outputs=edited, curves={"intervened": _curve(edited, intended, mask), "clean": _curve(clean, intended, mask),
                                "random": _curve(randomised, intended, mask)},
    )  # fmt: skip


def _curve(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> list[float]:
    """MSE at each position (NaN where the position is not scored)."""
    per_position = ((output - target) ** 2).mean(dim=(0, 2))
    return [float(v) if keep else float("nan") for v, keep in zip(per_position, mask.tolist())]
