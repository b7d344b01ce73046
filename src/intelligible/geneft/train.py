"""Training: many small autoencoders at once (`train_batched`) or one at a time (`train_single`).

`train_batched` has two engines. MLP decoders on the CPU use the fused numba trainer (`_fused`):
each model's forward, backward, Adam and evaluation run as one compiled loop over data that stays
in cache, the models in parallel, a block of steps per call. Everything else (the ideal decoders,
a GPU) uses the torch engine: the B models are stacked on a leading axis and trained as one tensor
program, one forward and backward pass per step for all of them, and Adam written out on the
stacked tensors with a learning rate per model (encoder and decoder separately); each model's loss
is the mean binary cross-entropy over its own training pairs, so summing the losses gives each
model exactly its own gradient. `train_single` trains one model with `torch.optim.Adam` and two
parameter groups: the reference both engines are tested against.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from intelligible.core.config import shown
from intelligible.core.errors import ConfigError
from intelligible.core.memory import check_fits
from intelligible.core.progress import progress
from intelligible.geneft.data import check_fraction, train_count
from intelligible.geneft.model import (
    MAX_DEPTH,
    ModelSpec,
    SingleModel,
    forward,
    init_params,
    stack_mixed_depths,
    stack_params,
)
from intelligible.geneft.relations import Relation
from intelligible.geneft.statics import check_redundancy, training_split

PHASES = ("generalisation", "grokking", "memorisation", "confusion")
MAX_STEPS = 10_000_000
# multiply-adds of one step's widest layer below which one thread trains fastest
SMALL_STEP = 20_000_000
# one activation tensor's size that a chunk of runs keeps to (see train_batched)
CHUNK_BYTES = 8 * 2**20
ENGINES = ("auto", "fused", "torch")
# steps the fused engine runs per call at most: the progress bar moves and Ctrl-C is seen this often
FUSED_BLOCK = 50


@dataclass(frozen=True)
class RunSpec:
    """One training run: its seed (initialisation and data split), data fraction and learning rates;
    `redundancy` > 0 draws a correlated training set (`statics.correlated_split`)."""

    seed: int
    fraction: float
    lr_encoder: float
    lr_decoder: float
    redundancy: float = 0.0


@dataclass
class RunResult:
    """What one run learned: accuracy curves at the evaluation steps and the phase it ended in."""

    run: RunSpec
    steps: list[int]
    train_accuracy: list[float]
    test_accuracy: list[float]
    final_loss: float
    phase: str = ""
    generalised_at: int | None = None  # first evaluation step with train and test >= threshold
    embeddings: list[np.ndarray] = field(default_factory=list)  # (n, d) at each evaluation step, if kept

    @property
    def train(self) -> float:
        """Final training accuracy."""
        return self.train_accuracy[-1]

    @property
    def test(self) -> float:
        """Final held-out accuracy."""
        return self.test_accuracy[-1]


def check_learning_rate(value: object, name: str = "learning rate") -> float:
    """A learning rate: a finite number above 0."""
    ok = isinstance(value, int | float | np.floating) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a finite number above 0, got {shown(value)}")
    return float(value)


def check_steps(steps: object, eval_every: object) -> None:
    """Steps and the evaluation interval: whole numbers >= 1."""
    for name, value in (("steps", steps), ("eval_every", eval_every)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_STEPS:
            raise ConfigError(f"{name} must be a whole number from 1 to {MAX_STEPS:,}, got {shown(value)}")


def _evaluation_steps(steps: int, eval_every: int) -> list[int]:
    return sorted({*range(eval_every, steps + 1, eval_every), steps})


def classify(result: RunResult, threshold: float = 0.9, generalisation_steps: int = 1000) -> RunResult:
    """Set the run's phase: generalisation (train and test >= threshold by `generalisation_steps`),
    grokking (both reached later), memorisation (train only, at the end), confusion (neither)."""
    result.generalised_at = next(
        (s for s, tr, te in zip(result.steps, result.train_accuracy, result.test_accuracy)
         if tr >= threshold and te >= threshold),
        None,
    )  # fmt: skip
    if result.generalised_at is not None:
        result.phase = "generalisation" if result.generalised_at <= generalisation_steps else "grokking"
    else:
        result.phase = "memorisation" if result.train >= threshold else "confusion"
    return result


def _splits(relations: list[Relation], runs: list[RunSpec]) -> list[np.ndarray]:
    """Each run's training pairs; a grid repeats a few (fraction, seed) many times, each drawn once
    (a correlated split depends on the relation too)."""
    drawn: dict[tuple, np.ndarray] = {}
    keys = []
    for relation, run in zip(relations, runs):
        key = (run.fraction, run.seed, run.redundancy) + ((relation.name,) if run.redundancy else ())
        if key not in drawn:
            drawn[key] = training_split(relation, run.fraction, run.seed, run.redundancy)
        keys.append(key)
    return [drawn[key] for key in keys]


def _batch_data(
    relations: list[Relation], runs: list[RunSpec]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-model training pairs (B, P) padded with pair 0, their weights (B, P) (1/count, 0 for padding),
    the (B, n^2) training masks and the (B, n^2) labels of all pairs."""
    n = relations[0].n
    splits = _splits(relations, runs)
    width = max(len(s) for s in splits)
    pairs = torch.zeros(len(runs), width, dtype=torch.long)
    weights = torch.zeros(len(runs), width)
    masks = torch.zeros(len(runs), n * n, dtype=torch.bool)
    for i, s in enumerate(splits):
        pairs[i, : len(s)] = torch.from_numpy(s)
        weights[i, : len(s)] = 1.0 / len(s)
        masks[i, torch.from_numpy(s)] = True
    labels = torch.from_numpy(np.stack([r.matrix.reshape(-1) for r in relations]).astype(np.float32))
    return pairs, weights, masks, labels


def estimate_bytes(spec: ModelSpec, n_models: int) -> int:
    """Memory of a batched step, about: activations and their gradients over all n^2 pairs."""
    per_pair = spec.combined_dim + (spec.depth - 1) * spec.width + 4 * spec.embed_dim + 2
    return int(n_models * spec.n**2 * per_pair * 4 * 4)


def train_batched(
    relation: Relation | list[Relation],
    spec: ModelSpec,
    runs: list[RunSpec],
    steps: int,
    *,
    eval_every: int = 50,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    threshold: float = 0.9,
    generalisation_steps: int = 1000,
    keep_embeddings: tuple[int, ...] = (),
    depths: list[int] | None = None,
    threads: int | None = None,
    device: str = "cpu",
    chunk: int | None = None,
    desc: str = "geneft",
    engine: str = "auto",
) -> list[RunResult]:
    """Train every run of `runs` at once (one architecture; `relation` one for all runs or one per
    run, all on the same n symbols); accuracy is measured every `eval_every`
    steps on all n^2 pairs (train: the run's own sample, test: the rest; with nothing held out, test
    is the training accuracy). `keep_embeddings`: run indices whose embeddings are kept at each
    evaluation (the repon trajectories). `depths`: one MLP depth per run (the runs then differ in
    depth only; `spec.depth` is ignored). `threads`: torch threads while training; None picks one
    thread for a small batch, whose steps are too short to share (a second thread mostly waits, and
    on a busy machine it slows every step many times over), and torch's setting otherwise; the fused
    engine shares the models out over `threads` threads (None: torch's setting). `device`:
    cpu, cuda or cuda:N (the models start from the same CPU-drawn parameters either way). `chunk`:
    runs trained together by the torch engine (None: as many as keep one activation tensor near
    CHUNK_BYTES). `engine`: `fused` (the numba trainer: MLP decoders on the CPU), `torch` (any
    decoder, any device) or `auto` (fused where it applies, else torch)."""
    spec.validate()
    if not runs:
        raise ConfigError("no runs to train")
    relations = list(relation) if isinstance(relation, list | tuple) else [relation] * len(runs)
    if len(relations) != len(runs):
        raise ConfigError(f"{len(relations)} relations for {len(runs)} runs; give one, or one per run")
    for r in relations:
        if r.n != spec.n:
            raise ConfigError(f"the model is for n = {spec.n} symbols but relation {shown(r.name)} has {r.n}")
    check_steps(steps, eval_every)
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
        raise ConfigError(f"chunk must be a whole number >= 1, got {shown(chunk)}")
    if depths is not None:
        if spec.decoder != "mlp" or len(depths) != len(runs):
            raise ConfigError("depths needs the MLP decoder and one depth per run")
        for depth in depths:
            if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH:
                raise ConfigError(f"depths must be whole numbers from 1 to {MAX_DEPTH}, got {shown(depth)}")
        spec = replace(spec, depth=max(depths))
    for run in runs:
        check_fraction(run.fraction)
        check_learning_rate(run.lr_encoder, "lr_encoder")
        check_learning_rate(run.lr_decoder, "lr_decoder")
        check_redundancy(run.redundancy)
    target = check_device(device)
    fused = _pick_engine(engine, spec, target)
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"threads must be a whole number >= 1, got {shown(threads)}")
    if fused:
        return _train_fused(relations, spec, runs, steps, eval_every, betas, eps, threshold, generalisation_steps,
                            keep_embeddings, depths, desc, threads)  # fmt: skip
    if threads is None:
        # multiply-adds of one step's widest layer; below SMALL_STEP one thread is fastest
        work = len(runs) * max(train_count(spec.n, r.fraction) for r in runs) * spec.width
        work *= spec.width if spec.decoder == "mlp" and spec.depth > 2 else spec.combined_dim
        threads = 1 if work < SMALL_STEP else torch.get_num_threads()
    # runs are independent, so a large batch trains as consecutive chunks whose activations stay
    # small: the allocator maps each tensor above ~32 MB afresh at every step, and those page faults
    # cost more than the arithmetic (measured: 0.69 s of CPU per step for 432 runs in one chunk,
    # 0.43 s in chunks of 108)
    per_run = max(train_count(spec.n, r.fraction) for r in runs) * max(spec.width, spec.combined_dim) * 4
    size = max(1, CHUNK_BYTES // per_run) if chunk is None else chunk
    at_once = min(size, len(runs))
    check_fits(
        estimate_bytes(spec, at_once), f"{at_once} models of n = {spec.n} at once", "give a smaller chunk"
    )
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        results: list[RunResult] = []
        for start in range(0, len(runs), size):
            part = range(start, min(start + size, len(runs)))
            kept = tuple(i - start for i in keep_embeddings if i in part)
            results += _train([relations[i] for i in part], spec, [runs[i] for i in part], steps, eval_every,
                              betas, eps, threshold, generalisation_steps, kept,
                              None if depths is None else [depths[i] for i in part], desc, target)  # fmt: skip
        return results
    finally:
        torch.set_num_threads(before)


def _pick_engine(engine: str, spec: ModelSpec, device: torch.device) -> bool:
    """Whether the fused engine trains these runs; ConfigError for an engine that cannot."""
    from intelligible.geneft import _fused  # numba loads only when a model trains

    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {', '.join(ENGINES)}, got {shown(engine)}")
    reasons = [
        why
        for why, bad in (("numba is not installed", not _fused.AVAILABLE),
                         (f"it trains MLP decoders only, not {spec.decoder}", spec.decoder != "mlp"),
                         (f"it runs on the CPU only, not {device}", device.type != "cpu"))
        if bad
    ]  # fmt: skip
    if engine == "fused" and reasons:
        raise ConfigError(f"the fused engine cannot train these runs: {'; '.join(reasons)}; use engine torch")
    return engine != "torch" and not reasons


def _flat_params(spec: ModelSpec, seed: int, depth: int) -> np.ndarray:
    """One model's initial parameters (`init_params`) as the fused engine's flat vector."""
    params = init_params(replace(spec, depth=depth), seed)
    return np.concatenate([value.numpy().reshape(-1) for value in params.values()]).astype(np.float32)


def _train_fused(
    relations: list[Relation], spec: ModelSpec, runs: list[RunSpec], steps: int, eval_every: int,
    betas: tuple[float, float], eps: float, threshold: float, generalisation_steps: int,
    keep_embeddings: tuple[int, ...], depths: list[int] | None, desc: str, threads: int | None,
) -> list[RunResult]:  # fmt: skip
    import numba

    from intelligible.geneft import _fused

    n, d, width = spec.n, spec.embed_dim, spec.width
    depth_of = np.array(depths if depths is not None else [spec.depth] * len(runs), dtype=np.int64)
    sizes = np.array([_fused.layout_size(n, d, spec.combined_dim, int(k), width) for k in depth_of], np.int64)
    splits = _splits(relations, runs)
    most = max(len(s) for s in splits)
    models = len(runs)
    threads = min(threads or torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS, models)
    scratch = (
        4 * threads * n * n * (2 * spec.combined_dim + (max(int(depth_of.max()) - 1, 1) + 2) * width + 2)
    )
    check_fits(
        3 * models * int(sizes.max()) * 4 + scratch, f"{models} models of n = {n}", "train fewer runs at once"
    )
    pairs = np.zeros((models, most), dtype=np.int64)
    ytrain = np.zeros((models, most), dtype=np.float32)
    masks = np.zeros((models, n * n), dtype=bool)
    labels = np.stack([r.matrix.reshape(-1) for r in relations]).astype(np.float32)
    params = np.zeros((models, int(sizes.max())), dtype=np.float32)
    initial: dict[tuple[int, int], np.ndarray] = {}
    for i, (run, split) in enumerate(zip(runs, splits)):
        pairs[i, : len(split)] = split
        ytrain[i, : len(split)] = labels[i, split]
        masks[i, split] = True
        key = (run.seed, int(depth_of[i]))  # drawn once per seed and depth
        if key not in initial:
            initial[key] = _flat_params(spec, *key)
        params[i, : sizes[i]] = initial[key]
    counts = np.array([len(s) for s in splits], dtype=np.int64)
    held = n * n - counts
    first_moment, second_moment = np.zeros_like(params), np.zeros_like(params)
    beta1, beta2 = betas
    # Adam's bias corrections as torch.optim.Adam computes them (Python floats, i.e. double)
    bias1 = np.array([1.0] + [1 - beta1**t for t in range(1, steps + 1)])
    root2 = np.array([1.0] + [(1 - beta2**t) ** 0.5 for t in range(1, steps + 1)])
    adam = np.array([1 - beta1, beta2, 1 - beta2, eps], dtype=np.float32)
    lr_enc = np.array([r.lr_encoder for r in runs], dtype=np.float64)
    lr_dec = np.array([r.lr_decoder for r in runs], dtype=np.float64)
    comb = _fused.COMBINER_CODES[spec.combiner]
    space = _fused.workspaces(numba.config.NUMBA_NUM_THREADS, max(n * n, most), spec.combined_dim,
                              int(depth_of.max()), width, int(sizes.max()))  # fmt: skip
    losses = np.zeros(models)
    right = np.zeros((models, 2), dtype=np.int64)
    curves: list[tuple[int, np.ndarray, np.ndarray]] = []
    kept: dict[int, list[np.ndarray]] = {i: [] for i in keep_embeddings if 0 <= i < models}
    before = numba.get_num_threads()
    numba.set_num_threads(threads)
    # models are handed to the threads a few at a time, not split in equal halves up front: on a
    # busy machine a thread that loses its core would otherwise leave the other idle at the end
    chunk_before = numba.set_parallel_chunksize(max(1, min(8, models // (8 * threads))))
    try:
        with _one_blas_thread(), progress(total=steps, desc=desc) as bar:
            step = 1
            for checkpoint in _evaluation_steps(steps, eval_every):
                while step <= checkpoint:
                    last = min(checkpoint, step + FUSED_BLOCK - 1)
                    _fused.train_block(params, first_moment, second_moment, sizes, depth_of, n, d, comb, width, pairs,
                                       counts, ytrain, lr_enc, lr_dec, step, last, bias1, root2, adam,
                                       last == checkpoint, labels, masks, losses, right, *space)  # fmt: skip
                    bar.update(last - step + 1)
                    step = last + 1
                # accuracies as float32 ratios of counts, as the torch engine and train_single compute them
                train_acc = right[:, 0].astype(np.float32) / counts.astype(np.float32)
                test_acc = np.where(held > 0, right[:, 1].astype(np.float32) / np.maximum(held, 1).astype(np.float32),
                                    train_acc)  # fmt: skip
                curves.append((checkpoint, train_acc, test_acc))
                for i in kept:
                    kept[i].append(params[i, : n * d].reshape(n, d).copy())
                bar.set_postfix(loss=f"{losses.mean():.3g}", test=f"{test_acc.mean():.3f}")
    finally:
        numba.set_num_threads(before)
        numba.set_parallel_chunksize(chunk_before)
    results = []
    for i, run in enumerate(runs):
        result = RunResult(run, [c[0] for c in curves], [float(c[1][i]) for c in curves],
                           [float(c[2][i]) for c in curves], float(losses[i]), embeddings=kept.get(i, []))  # fmt: skip
        results.append(classify(result, threshold, generalisation_steps))
    return results


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """OpenBLAS on one thread while the fused engine runs: its GEMMs are called from every numba
    thread at once, and a call that split itself over threads again would oversubscribe the cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn depends on it; without it BLAS keeps its threads
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def check_device(device: str) -> torch.device:
    """`cpu`, or `cuda` / `cuda:i` when that GPU is there; ConfigError otherwise."""
    text = str(device).strip().lower()
    if text == "cpu":
        return torch.device("cpu")
    if text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        index = int(text[5:]) if ":" in text else 0
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {shown(device)} is not available here (no such CUDA GPU); use --device cpu"
            )
        return torch.device(text)
    raise ConfigError(f"device must be cpu, cuda or cuda:N, got {shown(device)}")


def _train(
    relations: list[Relation], spec: ModelSpec, runs: list[RunSpec], steps: int, eval_every: int,
    betas: tuple[float, float], eps: float, threshold: float, generalisation_steps: int,
    keep_embeddings: tuple[int, ...], depths: list[int] | None, desc: str, device: torch.device,
) -> list[RunResult]:  # fmt: skip
    pairs, weights, masks, labels = (t.to(device) for t in _batch_data(relations, runs))
    train_labels = torch.gather(labels, 1, pairs)
    all_pairs = torch.arange(spec.n**2, device=device).expand(len(runs), -1)
    seeds = [r.seed for r in runs]
    layer_mask = None
    if depths is not None:
        stacked, layer_mask = stack_mixed_depths(spec, seeds, depths)
        layer_mask = layer_mask.to(device)
    else:
        stacked = stack_params(spec, seeds)
    # initialised on the CPU whatever the device, so a run starts the same everywhere
    params = {k: v.to(device).requires_grad_(True) for k, v in stacked.items()}
    rates = {}
    for name, value in params.items():
        per_model = [r.lr_encoder if name == "embedding" else r.lr_decoder for r in runs]
        rates[name] = torch.tensor(per_model, dtype=torch.float32, device=device).view(
            -1, *([1] * (value.dim() - 1))
        )
    names = list(params)
    values = [params[k] for k in names]
    rate_list = [rates[k] for k in names]
    first_moment = [torch.zeros_like(v) for v in values]
    second_moment = [torch.zeros_like(v) for v in values]
    beta1, beta2 = betas
    checkpoints = set(_evaluation_steps(steps, eval_every))
    curves: list[tuple[int, torch.Tensor, torch.Tensor]] = []
    kept: dict[int, list[np.ndarray]] = {i: [] for i in keep_embeddings}
    losses = torch.zeros(len(runs), device=device)
    bar = progress(range(1, steps + 1), desc=desc)
    for step in bar:
        logits = forward(spec, params, pairs, layer_mask)
        per_pair = F.binary_cross_entropy_with_logits(logits, train_labels, reduction="none")
        losses = (per_pair * weights).sum(dim=1)
        grads = list(torch.autograd.grad(losses.sum(), values))
        with torch.no_grad():
            # Adam as torch.optim.Adam computes it, on all stacked tensors at once (foreach ops: a
            # few calls per step, not a few per parameter tensor)
            torch._foreach_lerp_(first_moment, grads, 1 - beta1)
            torch._foreach_mul_(second_moment, beta2)
            torch._foreach_addcmul_(second_moment, grads, grads, 1 - beta2)
            denom = torch._foreach_sqrt(second_moment)
            torch._foreach_div_(denom, math.sqrt(1 - beta2**step))
            torch._foreach_add_(denom, eps)
            update = torch._foreach_div(first_moment, denom)
            torch._foreach_mul_(update, rate_list)
            torch._foreach_div_(update, 1 - beta1**step)
            torch._foreach_sub_(values, update)
            if step in checkpoints:
                correct = (forward(spec, params, all_pairs, layer_mask) > 0) == labels.bool()
                train_acc = (correct & masks).sum(1) / masks.sum(1)
                held = ~masks
                test_acc = torch.where(
                    held.any(1), (correct & held).sum(1) / held.sum(1).clamp(min=1), train_acc
                )
                curves.append((step, train_acc.cpu(), test_acc.cpu()))
                for i in kept:
                    kept[i].append(params["embedding"][i].detach().cpu().numpy().copy())
                bar.set_postfix(loss=f"{losses.mean().item():.3g}", test=f"{test_acc.mean().item():.3f}")
    results = []
    for i, run in enumerate(runs):
        result = RunResult(run, [c[0] for c in curves], [float(c[1][i]) for c in curves],
                           [float(c[2][i]) for c in curves], float(losses[i].detach().cpu()), embeddings=kept.get(i, []))  # fmt: skip
        results.append(classify(result, threshold, generalisation_steps))
    return results


def train_single(
    relation: Relation,
    spec: ModelSpec,
    run: RunSpec,
    steps: int,
    *,
    eval_every: int = 50,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    threshold: float = 0.9,
    generalisation_steps: int = 1000,
) -> RunResult:
    """One run as an ordinary PyTorch loop (`SingleModel`, `torch.optim.Adam` with an encoder and a
    decoder parameter group): the reference `train_batched` is checked and timed against."""
    spec.validate()
    check_steps(steps, eval_every)
    check_fraction(run.fraction)
    check_learning_rate(run.lr_encoder, "lr_encoder")
    check_learning_rate(run.lr_decoder, "lr_decoder")
    check_redundancy(run.redundancy)
    n = relation.n
    train_index = torch.from_numpy(training_split(relation, run.fraction, run.seed, run.redundancy))
    labels = torch.from_numpy(relation.matrix.reshape(-1).astype(np.float32))
    mask = torch.zeros(n * n, dtype=torch.bool)
    mask[train_index] = True
    model = SingleModel(spec, run.seed)
    optimiser = torch.optim.Adam(
        [{"params": model.encoder_parameters(), "lr": run.lr_encoder},
         {"params": model.decoder_parameters(), "lr": run.lr_decoder}],
        betas=betas, eps=eps,
    )  # fmt: skip
    checkpoints = set(_evaluation_steps(steps, eval_every))
    every = torch.arange(n * n)
    steps_seen, train_curve, test_curve = [], [], []
    loss = torch.tensor(0.0)
    for step in range(1, steps + 1):
        optimiser.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(train_index), labels[train_index])
        loss.backward()
        optimiser.step()
        if step in checkpoints:
            with torch.no_grad():
                correct = (model(every) > 0) == labels.bool()
            train_acc = float(correct[mask].float().mean())
            test_acc = float(correct[~mask].float().mean()) if (~mask).any() else train_acc
            steps_seen.append(step)
            train_curve.append(train_acc)
            test_curve.append(test_acc)
    result = RunResult(run, steps_seen, train_curve, test_curve, float(loss.detach()))
    return classify(result, threshold, generalisation_steps)
