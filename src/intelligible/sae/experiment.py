"""SAE runs: `train_run` (one SAE on one layer's activations, into a run folder), `eval_run`, and
`reproduce` (the Switch SAE paper's comparisons on SmolLM2-135M, one Report)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from intelligible.core.artifacts import check_artifact
from intelligible.core.config import config_from_dict, config_to_dict, shown, to_jsonable
from intelligible.core.errors import ConfigError, DataError
from intelligible.core.memory import check_fits
from intelligible.core.report import Claim, Report
from intelligible.core.runs import RunDir, atomic_write_text
from intelligible.core.seeding import seed_everything
from intelligible.lm.loading import ModelInfo, load_model, model_info
from intelligible.lm.model import LanguageModel
from intelligible.lm.saes.io import load_sae, save_sae
from intelligible.lm.saes.models import ReLUSAE, SparseAutoencoder, SwitchSAE, TopKSAE
from intelligible.lm.text import check_text_length, load_text, token_windows
from intelligible.sae.activations import Activations, collect_activations
from intelligible.sae.metrics import evaluate, spliced_losses
from intelligible.sae.parallel import gather_experts, shard_experts
from intelligible.sae.train import TensorBatches, TrainConfig, checkpoint_step, train

PAPER = "Mudide, Engels, Michaud, Tegmark, de Witt 2024, Efficient Dictionary Learning with Switch Sparse Autoencoders"
ARCHS = ("relu", "topk", "switch")


TRAIN_KIND = "sae-train"  # the `kind` in config.json of a folder `sae train` writes
# Plausibility limits, far beyond any real run: a value past them is a typo (`1e30`), not a plan.
MAX_LATENTS = 2**24
MAX_WINDOWS = 10**9
MAX_SEQ_LEN = 2**20
MAX_LAYER = 10_000
MAX_COEFFICIENT = 1e6


@dataclass
class SAERunConfig:
    """`intelligible sae train`: the LM, the layer, the text, the SAE and its schedule."""

    model: str = "smollm2-135m"
    layer: int = 15
    text: str = "pydoc"
    seq_len: int = 128
    n_windows: int = 512
    eval_windows: int = 16  # held out: the last windows of the text, for MSE/FVU and spliced CE
    normalize: bool = True
    arch: str = "switch"
    latents: int = 4096
    k: int = 32
    experts: int = 8
    lb_alpha: float = 3.0
    heaviside: bool = False
    expert_parallel: bool = False  # under torchrun: experts sharded over the processes
    l1_coeff: float = 5.0
    steps: int = 300
    batch: int = 1024
    lr: float = 0.0  # 0: 2e-4 / sqrt(M / 2^14)
    cache_dir: str = ""  # where to keep activations between runs ("" = no cache)
    # until-flat training (the `long` preset): held-out MSE every eval_every steps; when it improves
    # by less than plateau_tol over two evaluations the lr decays and the run ends (steps is a cap)
    eval_every: int = 0
    plateau_tol: float = 0.0
    seed: int = 0

    def validate(self) -> None:
        """Every value on its own and against the others; nothing is read or loaded here."""
        if self.arch not in ARCHS:
            raise ConfigError(f"arch must be one of {', '.join(ARCHS)}, got {shown(self.arch)}")
        if not self.model.strip():
            raise ConfigError(
                "model is empty; give smollm2-135m, a Hugging Face id, a model folder or a .gguf file"
            )
        if not self.text.strip():
            raise ConfigError("text is empty; give 'pydoc' (the built-in corpus), a text file or a folder")
        if not 0 <= self.layer <= MAX_LAYER:
            raise ConfigError(f"layer must be >= 0 (and below the model's layer count), got {self.layer}")
        if not 2 <= self.seq_len <= MAX_SEQ_LEN:
            raise ConfigError(
                f"seq_len must be in 2..{MAX_SEQ_LEN:,} (BOS plus at least one token), got {self.seq_len}"
            )
        if not (1 <= self.n_windows <= MAX_WINDOWS and 1 <= self.eval_windows <= MAX_WINDOWS):
            raise ConfigError(
                f"n_windows and eval_windows must be in 1..{MAX_WINDOWS:,}, got {self.n_windows}, {self.eval_windows}"
            )
        if not 1 <= self.latents <= MAX_LATENTS:
            raise ConfigError(f"latents must be in 1..{MAX_LATENTS:,} (2**24), got {self.latents}")
        for name in ("lb_alpha", "l1_coeff"):
            value = getattr(self, name)
            if not 0 <= value <= MAX_COEFFICIENT:
                raise ConfigError(f"{name} must be in [0, {MAX_COEFFICIENT:g}], got {value}")
        if self.expert_parallel and self.arch != "switch":
            raise ConfigError(f"expert_parallel needs arch 'switch', got {shown(self.arch)}")
        self.schedule().validate()
        tokens = self.n_windows * (self.seq_len - 1)  # BOS positions are dropped
        if tokens < self.batch:
            raise ConfigError(
                f"{tokens:,} training tokens ({self.n_windows} windows x {self.seq_len - 1}) are fewer than "
                f"one batch ({self.batch:,}); raise n_windows or seq_len, or lower batch"
            )
        build_sae(self, d=1)  # architecture arguments (k, experts, latents) fail here, before any loading

    @property
    def train_tokens(self) -> int:
        return self.n_windows * (self.seq_len - 1)

    def schedule(self) -> TrainConfig:
        """The training schedule this run config implies (checkpoints about every fifth of the cap,
        at most 2,000 steps apart)."""
        return TrainConfig(steps=self.steps, batch=self.batch, lr=self.lr, seed=self.seed,
                           checkpoint_every=min(max(self.steps // 5, 1), 2000), eval_every=self.eval_every,
                           plateau_tol=self.plateau_tol)  # fmt: skip


def build_sae(cfg: SAERunConfig, d: int) -> SparseAutoencoder:
    if cfg.arch == "relu":
        return ReLUSAE(d, cfg.latents, l1_coeff=cfg.l1_coeff, seed=cfg.seed)
    if cfg.arch == "topk":
        return TopKSAE(d, cfg.latents, cfg.k, seed=cfg.seed)
    return SwitchSAE(
        d, cfg.latents, cfg.k, cfg.experts, lb_alpha=cfg.lb_alpha, heaviside=cfg.heaviside, seed=cfg.seed
    )


def memory_needed(cfg: SAERunConfig, info: ModelInfo, processes: int = 1) -> float:
    """Bytes a run needs at its peak, roughly: activations (collected, concatenated, normalised),
    the SAE with its gradients and Adam moments, one step's pre-activations, and the LM; times the
    processes on this machine (each holds all of it)."""
    d = info.d_model
    tokens = (cfg.n_windows + cfg.eval_windows) * (cfg.seq_len - 1)
    activations = 3 * 4 * tokens * d + 8 * tokens
    sae = 8 * 4 * cfg.latents * d
    width = cfg.latents // cfg.experts if cfg.arch == "switch" else cfg.latents
    step = 4 * 4 * cfg.batch * (width + d)
    return float(processes) * (activations + sae + step + info.bytes_float32)


def check_inputs(cfg: SAERunConfig) -> tuple[ModelInfo, str]:
    """What needs only the model's config and the files, checked before the model loads: the layer
    and the window length against the model, memory, the activation cache folder, the text.

    Returns the model's description and the text.
    """
    info = model_info(cfg.model)
    if not 0 <= cfg.layer < info.n_layers:
        raise ConfigError(f"layer must be in 0..{info.n_layers - 1} for {shown(info.name)}, got {cfg.layer}")
    if info.max_positions and cfg.seq_len > info.max_positions:
        raise ConfigError(
            f"seq_len must be at most {info.max_positions} for {shown(info.name)} (its context length), got {cfg.seq_len}"
        )
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    check_fits(
        memory_needed(cfg, info, processes),
        f"the activations of {cfg.n_windows + cfg.eval_windows:,} windows of {cfg.seq_len}, the SAE and the LM"
        + (f" in each of {processes} processes" if processes > 1 else ""),
        "lower --n-windows, --seq-len, --latents or --batch",
    )
    _check_cache_dir(cfg.cache_dir)
    text = load_text(cfg.text)
    check_text_length(text, (cfg.n_windows + cfg.eval_windows) * (cfg.seq_len - 1), cfg.text)
    return info, text


def _check_cache_dir(cache_dir: str) -> None:
    """The activation cache folder exists as a folder or can be made (nothing is written here)."""
    if not cache_dir:
        return
    path = Path(cache_dir).expanduser()
    existing = path
    try:
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        is_folder = existing.is_dir()
    except OSError as error:  # a name too long for the file system, a loop of links
        raise ConfigError(f"cache_dir {shown(cache_dir)} cannot be used: {error.strerror or error}") from None
    if not is_folder:
        where = "is a file" if existing == path else f"is inside {shown(str(existing))}, which is a file"
        raise ConfigError(f"cache_dir {shown(cache_dir)} cannot hold activations: it {where}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(
            f"cache_dir {shown(cache_dir)} cannot hold activations: {shown(str(existing))} is not writable"
        )


def prepare_windows(cfg: SAERunConfig, lm: LanguageModel, text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(training windows, held-out windows): the last `eval_windows` windows of the text are held out."""
    if not 0 <= cfg.layer < lm.n_layers:
        raise ConfigError(f"layer must be in 0..{lm.n_layers - 1} for {shown(lm.name)}, got {cfg.layer}")
    windows = token_windows(lm.tokenizer, text, seq_len=cfg.seq_len, n_windows=cfg.n_windows + cfg.eval_windows,
                            bos_token_id=lm.bos_token_id)  # fmt: skip
    return windows[: cfg.n_windows], windows[cfg.n_windows :]


def prepare_activations(
    cfg: SAERunConfig, lm: LanguageModel, train_windows: torch.Tensor, eval_windows: torch.Tensor
) -> tuple[Activations, Activations]:
    """Training activations (normalised when cfg.normalize) and held-out ones on the same scale."""
    cache = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else None
    train_acts = collect_activations(lm, train_windows, cfg.layer, normalize=cfg.normalize,
                                     cache_dir=cache / "train" if cache else None)  # fmt: skip
    eval_acts = collect_activations(lm, eval_windows, cfg.layer, cache_dir=cache / "eval" if cache else None)
    # held-out activations use the training normalisation, so errors are comparable
    eval_acts = Activations(
        values=eval_acts.values * train_acts.scale, layer=cfg.layer, scale=train_acts.scale
    )
    if train_acts.values.shape[0] < cfg.batch:
        raise DataError(
            f"{train_acts.values.shape[0]} training tokens are fewer than one batch ({cfg.batch}); raise n_windows"
        )
    return train_acts, eval_acts


def prepare_data(
    cfg: SAERunConfig, lm: LanguageModel | None = None, text: str | None = None
) -> tuple[LanguageModel, Activations, Activations, torch.Tensor]:
    """(LM, training activations, held-out activations, held-out windows)."""
    text = load_text(cfg.text) if text is None else text  # a bad file fails before the model loads
    lm = lm if lm is not None else load_model(cfg.model)
    train_windows, eval_windows = prepare_windows(cfg, lm, text)
    train_acts, eval_acts = prepare_activations(cfg, lm, train_windows, eval_windows)
    return lm, train_acts, eval_acts, eval_windows


def fit_and_evaluate(
    cfg: SAERunConfig, lm: LanguageModel, train_acts: Activations, eval_acts: Activations,
    eval_windows: torch.Tensor, run: RunDir | None = None, resume: bool = False, reference: dict | None = None,
) -> tuple[SparseAutoencoder, dict]:  # fmt: skip
    seed_everything(cfg.seed)
    model = build_sae(cfg, train_acts.d)
    sharded = cfg.expert_parallel and _init_distributed()[1] > 1
    if sharded:
        model = shard_experts(model)
    history = train(model, TensorBatches(train_acts.values, cfg.batch, seed=cfg.seed), cfg.schedule(), run=run,
                    resume=resume, heldout=eval_acts.values if cfg.eval_every else None)  # fmt: skip
    if sharded:
        model = gather_experts(model)  # the whole dictionary, for evaluation and saving
    summary = evaluate(model, eval_acts.values)
    summary.update(
        spliced_losses(lm, model, eval_windows, cfg.layer, scale=train_acts.scale, reference=reference)
    )
    final = history.final or {}
    # the whole run, also when it was resumed: every part's wall time, the last step's training MSE
    steps = history.steps if history.steps is not None else cfg.steps
    summary.update(train_seconds=history.train_seconds, train_steps=steps, train_parts=history.parts,
                   resumed_at_step=history.start_step if history.parts > 1 else None,
                   train_tokens=steps * cfg.batch, final_train_mse=final.get("mse"),
                   heldout_curve=[list(point) for point in history.curve] or None, flattened=history.flattened,
                   decay_start=history.decay_start if cfg.plateau_tol else None,
                   flops_per_token=model.flops_per_token()["total"], arch=cfg.arch, latents=cfg.latents, k=cfg.k,
                   experts=cfg.experts if cfg.arch == "switch" else 1, scale=train_acts.scale)  # fmt: skip
    return model, summary


def train_run(
    cfg: SAERunConfig, out_dir: str | Path, *, resume: bool = False, overwrite: bool = False
) -> dict:
    """Train one SAE into a run folder: config.json, metrics.jsonl, checkpoints, sae.{json,safetensors},
    summary.json (held-out MSE/FVU/L0/dead, CE recovered, expert load, and the whole run's steps,
    wall time and final training MSE, also after --resume).

    The order keeps a rejected command from touching anything: the config, then the output folder
    (checked, not written), then what needs only the model's config, the text and the checkpoint to
    resume from, then the model loads and the text is cut into windows, and only then is the folder
    written (an earlier run in it is replaced only with `overwrite`).
    """
    if resume and overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it; give one of them")
    cfg.validate()
    RunDir.check(out_dir, cfg, cfg.seed, resume=resume, overwrite=overwrite, kind=TRAIN_KIND)
    _, text = check_inputs(cfg)
    if resume and RunDir(out_dir).config_path.exists():
        checkpoint_step(RunDir(out_dir), cfg.steps)  # a damaged checkpoint fails now, not after loading
    # joining the process group waits for every rank, so all have checked --out before rank 0 writes it
    rank = _init_distributed()[0]
    lm = load_model(cfg.model)
    train_windows, eval_windows = prepare_windows(cfg, lm, text)
    # every rank trains on its slice of each batch; rank 0 owns the run folder
    if rank == 0:
        run = RunDir.create(out_dir, cfg, cfg.seed, resume=resume, overwrite=overwrite, kind=TRAIN_KIND)
    else:
        run = RunDir(Path(out_dir))
    train_acts, eval_acts = prepare_activations(cfg, lm, train_windows, eval_windows)
    model, summary = fit_and_evaluate(cfg, lm, train_acts, eval_acts, eval_windows, run=run, resume=resume)
    if train_acts.stats is not None:
        summary["lm_tokens_per_s"] = train_acts.stats.tokens_per_s  # the LM's part (cached: when it ran)
    if rank == 0:
        save_sae(model, run.path / "sae")
        run.write_json("summary.json", _compact(summary))
    return summary


def _init_distributed() -> tuple[int, int]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); returns (rank, world size)."""
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def read_run_config(run_dir: str | Path) -> SAERunConfig:
    """The config of a folder `sae train` wrote; a DataError saying what the folder is otherwise
    (missing, a file, no run, another study's run, a reproduction folder, a damaged config.json)."""
    path = Path(run_dir)
    try:
        exists, is_folder = path.exists(), path.is_dir()
    except OSError as error:  # a name too long for the file system, a loop of links
        raise DataError(
            f"cannot use {shown(str(run_dir))} as a run folder: {error.strerror or error}"
        ) from None
    if not exists:
        raise DataError(
            f"{shown(str(run_dir))}: no such folder; give a folder `intelligible sae train` wrote"
        )
    if not is_folder:
        raise DataError(
            f"{shown(str(run_dir))} is a file, not a run folder; give a folder `intelligible sae train` wrote"
        )
    run = RunDir(path)
    if not run.config_path.exists():
        raise DataError(f"{shown(str(run_dir))} is not a run folder (no config.json)")
    record = run.read_config()
    kind = record.get("kind")
    made_by = (
        f" (written by `{shown(record['command'], 120)[1:-1]}`)"
        if isinstance(record.get("command"), str)
        else ""
    )
    if kind == "sae-reproduce":
        raise DataError(
            f"{shown(str(run_dir))} is an SAE reproduction folder, not one trained SAE{made_by}; its SAEs are "
            "in saes/ and parts/, and `sae eval` reads folders written by `intelligible sae train`"
        )
    if kind not in (None, "run", TRAIN_KIND):
        raise DataError(
            f"{shown(str(run_dir))} is not an SAE run: it holds a {shown(str(kind), 40)[1:-1]} run{made_by}; "
            "`sae eval` reads folders written by `intelligible sae train`"
        )
    try:
        cfg = config_from_dict(SAERunConfig, record.get("config", {}))
        cfg.validate()
    except ConfigError as error:
        raise DataError(
            f"{shown(str(run_dir))} is not an SAE run{made_by}: its config.json does not describe one ({error})"
        ) from None
    return cfg


def eval_run(run_dir: str | Path) -> dict:
    """Re-evaluate a finished run folder's SAE on its held-out data; writes eval.json."""
    cfg = read_run_config(run_dir)
    run = RunDir(Path(run_dir))
    if not (run.path / "sae.json").is_file():
        raise DataError(
            f"{shown(str(run_dir))} holds no trained SAE (sae.json): the run has not finished; continue it "
            f"with `intelligible sae train --resume --out {shown(str(run_dir))[1:-1]}` and its options"
        )
    _, text = check_inputs(cfg)
    model = load_sae(run.path / "sae")
    lm, train_acts, eval_acts, eval_windows = prepare_data(cfg, text=text)
    summary = evaluate(model, eval_acts.values)
    summary.update(spliced_losses(lm, model, eval_windows, cfg.layer, scale=train_acts.scale))
    run.write_json("eval.json", _compact(summary))
    return summary


def _compact(summary: dict) -> dict:
    # the per-latent density list is for plots; keep summaries readable
    return {key: value for key, value in summary.items() if key != "log10_density"}


# --------------------------------------------------------------------------- reproduction
def reproduce_config(preset: str) -> SAERunConfig:
    if preset == "quick":
        # the demo's share (docs/design.md); benchmarks/sae_reproduction.py trains the larger
        # n_windows=384, latents=1024, steps=1000 comparison
        return SAERunConfig(n_windows=128, eval_windows=8, latents=512, k=32, steps=250, batch=1024)
    if preset == "paper":
        return SAERunConfig(n_windows=4096, eval_windows=64, latents=8192, k=32, steps=3000, batch=4096)
    if preset == "long":
        return LONG
    raise ConfigError(f"unknown preset {preset!r}; valid presets: quick, paper, long")


# `long` (benchmarks/sae_reproduction.py --preset long, docs/sae.md): every model on the same 2.0M
# cached tokens of the Python documentation (15,872 windows of 127 tokens after BOS), each trained
# until its held-out MSE is less than 2% better than 1,000 steps before (then a decay of a quarter
# of its steps; 12,000 steps at most), resumable; about 2 hours on 2 cores, 47 min of it caching.
LONG = SAERunConfig(text="python-docs", n_windows=15_872, eval_windows=128, latents=1024, k=32, steps=12_000,
                    batch=1024, eval_every=500, plateau_tol=0.02)  # fmt: skip


def _variants(base: SAERunConfig) -> dict[str, SAERunConfig]:
    m = base.latents
    return {
        "topk": replace(base, arch="topk"),
        # FLOP-matched: each expert as wide as the TopK SAE, so the encoder costs the same per token
        **{f"switch{e}-flop": replace(base, arch="switch", experts=e, latents=m * e) for e in (2, 4, 8)},
        # width-matched: the same total number of latents split over 16 experts
        "switch16-width": replace(base, arch="switch", experts=16, latents=m),
        "switch16-width-no-lb": replace(base, arch="switch", experts=16, latents=m, lb_alpha=0.0),
        "switch16-width-heaviside": replace(base, arch="switch", experts=16, latents=m, heaviside=True),
        "relu": replace(base, arch="relu"),
    }


def reproduce(
    preset: str = "quick", out_dir: str | Path = "runs/sae", *, base: SAERunConfig | None = None
) -> Report:
    """The Switch SAE paper's comparisons on SmolLM2-135M's residual stream (layer 15).

    `base` replaces the preset's configuration (tests run the whole pipeline on a tiny model).
    """
    base = base or reproduce_config(preset)
    start = time.perf_counter()
    for variant in _variants(base).values():  # each comparison's settings, before anything loads
        variant.validate()
    RunDir.check(out_dir, base, base.seed, kind="sae-reproduce", rerunnable=True)
    _, text = check_inputs(base)
    lm = load_model(base.model)
    train_windows, eval_windows = prepare_windows(base, lm, text)
    # parts are cached by their own config (below), so the folder record is simply rewritten
    run = RunDir.create(out_dir, base, base.seed, kind="sae-reproduce", rerunnable=True)
    out = run.path
    # an until-flat run caches its activations in the run folder, so an interrupted one resumes there
    cached = (
        replace(base, cache_dir=str(out / "activations")) if base.plateau_tol and not base.cache_dir else base
    )
    train_acts, eval_acts = prepare_activations(cached, lm, train_windows, eval_windows)
    results: dict[str, dict] = {}
    reference: dict = {}  # the LM's losses that no SAE changes, computed once for all variants
    # The TopK SAE is kept as this study's 'sae' artifact (registry): the dictionary other studies read.
    artifact = out / "saes" / f"{ARTIFACT_VARIANT}.json"
    for name, cfg in _variants(base).items():
        path = out / "parts" / f"{name}.json"
        if path.exists() and (name != ARTIFACT_VARIANT or _is_artifact(artifact)):
            saved = json.loads(path.read_text())
            if saved.get("config") == config_to_dict(cfg):
                results[name] = saved["result"]
                continue
        sweep: list[dict] = []
        if cfg.arch == "relu":
            # the search is kept beside the parts, so a resumed reproduction does not repeat it
            key = {"config": config_to_dict(cfg), "target_l0": results["topk"]["l0"]}
            found = _read_json(out / "parts" / f"{name}-l1-search.json")
            if found and found.get("key") == key:
                cfg, sweep = replace(cfg, l1_coeff=float(found["l1_coeff"])), found["sweep"]
            else:
                cfg, sweep = _relu_matching_l0(cfg, lm, train_acts, eval_acts, eval_windows,
                                               target_l0=results["topk"]["l0"], reference=reference)  # fmt: skip
                atomic_write_text(out / "parts" / f"{name}-l1-search.json", json.dumps(
                    to_jsonable({"key": key, "l1_coeff": cfg.l1_coeff, "sweep": sweep}), indent=2))  # fmt: skip
        part = _part_run(out / "parts" / name, cfg) if cfg.plateau_tol else None
        model, summary = fit_and_evaluate(cfg, lm, train_acts, eval_acts, eval_windows, run=part,
                                          resume=part is not None, reference=reference)  # fmt: skip
        if name == ARTIFACT_VARIANT:
            save_sae(model, artifact)
        results[name] = _compact(summary)
        if sweep:
            results[name]["l1_coeff"], results[name]["l1_sweep"] = cfg.l1_coeff, sweep
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            path,
            json.dumps(
                to_jsonable({"config": config_to_dict(_variants(base)[name]), "result": results[name]}),
                indent=2,
            ),
        )
    tables = {"runs": [{"run": name, **_row(r)} for name, r in results.items()],
              "data": [_data_row(base, train_windows, eval_windows, train_acts)]}  # fmt: skip
    curves = [{"run": name, "step": step, "heldout_mse": mse} for name, r in results.items()
              for step, mse in (r.get("heldout_curve") or [])]  # fmt: skip
    if curves:
        tables["heldout_curves"] = curves
    if results["relu"].get("l1_sweep"):
        tables["relu_l1_sweep"] = results["relu"]["l1_sweep"]
    report = Report(study="sae", title=f"Switch sparse autoencoders ({PAPER})", preset=preset,
                    claims=_claims(results, base), tables=tables,
                    notes=f"{shown(base.model)[1:-1]} layer {base.layer}, {train_acts.values.shape[0]:,} training tokens "
                          f"of {shown(base.text)[1:-1]} (normalised to norm sqrt(d)), {eval_acts.values.shape[0]:,} held-out "
                          f"tokens. Config: {config_to_dict(base)}",
                    elapsed_s=time.perf_counter() - start, artifacts={"sae": artifact})  # fmt: skip
    report.figures["Pareto: MSE vs FLOPs and vs L0"] = run.save_figure(_plot(results), "sae_pareto")
    if curves:
        report.figures["held-out MSE while training"] = run.save_figure(_plot_curves(results), "sae_curves")
    report.save(out)
    return report


ARTIFACT_VARIANT = "topk"


def _is_artifact(path: Path) -> bool:
    try:
        check_artifact(path, "sae")
    except DataError:
        return False
    return True


def _relu_matching_l0(cfg: SAERunConfig, lm: LanguageModel, train_acts: Activations, eval_acts: Activations,
                      eval_windows: torch.Tensor, target_l0: float,
                      reference: dict | None = None) -> tuple[SAERunConfig, list[dict]]:  # fmt: skip
    """Pick the L1 coefficient whose ReLU SAE has about the TopK SAE's L0: a bisection in log space
    over [0.01, 100] on five short runs (a third of the steps, at most 1,500; a fixed schedule), then the coefficient
    interpolated in log-log between the two bracketing runs. Returns it and the sweep's points."""
    short_steps = max((cfg.steps if not cfg.plateau_tol else min(cfg.steps, 4500)) // 3, 1)
    short = replace(cfg, steps=short_steps, eval_every=0, plateau_tol=0.0)
    low, high, sweep = 0.01, 100.0, []
    below: tuple[float, float] | None = None  # (coefficient, L0) with L0 under the target
    above: tuple[float, float] | None = None
    for _ in range(5):
        mid = float(np.sqrt(low * high))
        _, summary = fit_and_evaluate(replace(short, l1_coeff=mid), lm, train_acts, eval_acts, eval_windows,
                                      reference=reference)  # fmt: skip
        sweep.append({"l1_coeff": mid, "l0": summary["l0"], "mse": summary["mse"], "steps": short_steps})
        if summary["l0"] > target_l0:
            low, above = mid, (mid, summary["l0"])
        else:
            high, below = mid, (mid, summary["l0"])
        if abs(summary["l0"] / target_l0 - 1) < 0.05:
            return replace(cfg, l1_coeff=mid), sweep
    if below and above and below[1] > 0 and above[1] > 0 and below[1] != above[1]:
        # L0 falls about as a power of the coefficient: interpolate log L0 linearly in log coefficient
        t = (np.log(target_l0) - np.log(above[1])) / (np.log(below[1]) - np.log(above[1]))
        coefficient = float(np.exp(np.log(above[0]) + t * (np.log(below[0]) - np.log(above[0]))))
    else:
        coefficient = float(np.sqrt(low * high))
    return replace(cfg, l1_coeff=coefficient), sweep


def _read_json(path: Path) -> dict | None:
    """A JSON object from `path`, or None when it is missing or damaged (then it is recomputed)."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _part_run(path: Path, cfg: SAERunConfig) -> RunDir:
    """The run folder of one model of an until-flat reproduction: continued when it holds a run of
    the same config (an interrupted reproduction resumes there), replaced otherwise."""
    try:
        return RunDir.create(path, cfg, cfg.seed, resume=True, kind="sae-part")
    except ConfigError:
        return RunDir.create(path, cfg, cfg.seed, overwrite=True, kind="sae-part")


def _data_row(base: SAERunConfig, train_windows: torch.Tensor, eval_windows: torch.Tensor,
              train_acts: Activations) -> dict[str, Any]:  # fmt: skip
    """The scale of the data: tokens, how many windows are distinct, the activation cache's speed."""
    distinct = len({tuple(row) for row in train_windows[:, 1:].tolist()})
    stats = train_acts.stats
    return {"text": base.text, "train_tokens": int(train_windows.shape[0] * (train_windows.shape[1] - 1)),
            "heldout_tokens": int(eval_windows.shape[0] * (eval_windows.shape[1] - 1)),
            "train_windows": int(train_windows.shape[0]), "distinct_train_windows": distinct,
            "distinct_tokens_in_windows": int(train_windows[:, 1:].unique().numel()),
            "lm_tokens_per_s": stats.tokens_per_s if stats else None}  # fmt: skip


def _row(result: dict) -> dict[str, Any]:
    keys = ("arch", "latents", "experts", "k", "mse", "fvu", "l0", "dead_fraction", "ce_recovered", "delta_ce",
            "expert_entropy", "duplicate_fraction", "flops_per_token", "train_seconds")  # fmt: skip
    return {key: result.get(key) for key in keys}


def _claims(results: dict[str, dict], base: SAERunConfig | None = None) -> list[Claim]:
    topk = results["topk"]
    flop = {e: results[f"switch{e}-flop"] for e in (2, 4, 8)}
    gains = {e: 1 - flop[e]["mse"] / topk["mse"] for e in flop}
    width = results["switch16-width"]
    relu = results["relu"]
    return [
        Claim(
            statement="FLOP-matched Switch SAEs (2/4/8 experts as wide as the TopK SAE) have lower MSE than "
            "the TopK SAE at equal k",  # fmt: skip
            paper_value="8 experts: -8% at k = 8, about -20% at k = 32..64 (GPT-2 small)",
            measured_value=", ".join(f"{e} experts {-100 * g:+.1f}%" for e, g in gains.items()),
            holds=all(g > 0 for g in gains.values()),
        ),
        Claim(
            statement="width-matched: a 16-expert Switch SAE is within about 15% of the TopK SAE's MSE",
            paper_value="within ~15%",
            measured_value=f"{100 * (width['mse'] / topk['mse'] - 1):+.1f}% MSE at {width['flops_per_token'] / topk['flops_per_token']:.2f}x the FLOPs",
            holds=width["mse"] <= 1.15 * topk["mse"],
        ),
        _relu_claim(width, relu),
        Claim(
            statement="load balancing (alpha = 3) improves MSE over no balancing",
            paper_value="lower MSE with balancing",
            measured_value=f"{width['mse']:.3g} vs {results['switch16-width-no-lb']['mse']:.3g} without "
            f"(expert entropy {width['expert_entropy']:.2f} vs {results['switch16-width-no-lb']['expert_entropy']:.2f} nats)",  # fmt: skip
            holds=width["mse"] < results["switch16-width-no-lb"]["mse"],
        ),
        Claim(
            statement="scaling latents by the router probability beats Heaviside gating",
            paper_value="p-scaling better",
            measured_value=f"{width['mse']:.3g} vs {results['switch16-width-heaviside']['mse']:.3g} (Heaviside)",
            holds=width["mse"] < results["switch16-width-heaviside"]["mse"],
        ),
        Claim(
            statement="fraction of latents with a near-duplicate (decoder cosine > 0.9) in another expert",
            paper_value="reported (feature duplication across experts)",
            measured_value=", ".join(
                f"{name} {r['duplicate_fraction']:.3f}"
                for name, r in results.items()
                if "duplicate_fraction" in r
            ),  # fmt: skip
            holds=None,
        ),
        Claim(
            statement="CE loss recovered when each SAE's reconstruction replaces the residual (held-out text)",
            paper_value="reported per model; Switch SAEs close to TopK at equal FLOPs",
            measured_value=", ".join(f"{name} {r['ce_recovered']:.3f}" for name, r in results.items()),
            holds=None,
        ),
        *_flat_claim(results, base),
    ]


def _relu_claim(width: dict, relu: dict) -> Claim:
    """Switch vs ReLU at equal L0; untested (None) when the L1 search did not bring the ReLU SAE's L0
    within 20% of the Switch SAE's."""
    matched = abs(relu["l0"] / max(width["l0"], 1e-9) - 1) <= 0.2
    sweep = relu.get("l1_sweep") or []
    detail = ("L1 sweep (coefficient: L0, MSE): " + ", ".join(f"{p['l1_coeff']:.3g}: {p['l0']:.1f}, {p['mse']:.3g}"
              for p in sweep)) if sweep else ""  # fmt: skip
    if not matched:
        detail = f"the ReLU SAE's L0 ({relu['l0']:.1f}) missed the Switch SAE's ({width['l0']:.1f}) by over 20%. {detail}"
    return Claim(
        statement="the 16-expert Switch SAE reconstructs better than a ReLU SAE of the same width at about the same L0",
        paper_value="Switch better than ReLU",
        measured_value=f"Switch MSE {width['mse']:.3g} (L0 {width['l0']:.1f}) vs ReLU {relu['mse']:.3g} "
        f"(L0 {relu['l0']:.1f}, L1 coefficient {relu.get('l1_coeff', float('nan')):.3g})",
        holds=(width["mse"] < relu["mse"]) if matched else None,
        detail=detail,
    )


def _flat_claim(results: dict[str, dict], base: SAERunConfig | None) -> list[Claim]:
    """Until-flat runs only: whether every model's held-out MSE flattened before the step cap."""
    flat = {name: r.get("flattened") for name, r in results.items() if r.get("flattened") is not None}
    if not flat:
        return []
    return [
        Claim(
            statement="every model was trained until its held-out MSE flattened"
            + (f" (< {100 * base.plateau_tol:g}% better over {2 * base.eval_every:,} steps)" if base else ""),
            paper_value="trained to convergence",
            measured_value=", ".join(
                f"{name} {'flat' if ok else 'still falling'} at step {results[name]['train_steps']:,}"
                for name, ok in flat.items()
            ),  # fmt: skip
            holds=all(flat.values()),
        )
    ]


def _plot(results: dict[str, dict]):  # noqa: ANN202 - a matplotlib Figure
    """The paper's Pareto views: held-out MSE against training FLOPs per token and against L0."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    colours = {"topk": "tab:blue", "switch": "tab:orange", "relu": "tab:green"}
    for ax, key, label in (
        (axes[0], "flops_per_token", "training FLOPs per token"),
        (axes[1], "l0", "L0 (latents per token)"),
    ):
        for name, r in results.items():
            ax.scatter(r[key], r["mse"], s=50, color=colours.get(r.get("arch"), "tab:gray"))
            ax.annotate(name, (r[key], r["mse"]), fontsize=7, xytext=(4, 4), textcoords="offset points")
        sweep = results.get("relu", {}).get("l1_sweep") or []
        if key == "l0" and sweep:
            ax.scatter([p["l0"] for p in sweep], [p["mse"] for p in sweep], s=18, marker="x", color="tab:green",
                       label="ReLU L1 sweep (short runs)")  # fmt: skip
            ax.legend(fontsize=8)
        ax.set(xscale="log", xlabel=label, ylabel="held-out MSE (summed over d)")
    fig.suptitle("SAEs on SmolLM2-135M layer 15: lower-left is better")
    fig.tight_layout()
    return fig


def _plot_curves(results: dict[str, dict]):  # noqa: ANN202 - a matplotlib Figure
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in results.items():
        curve = r.get("heldout_curve") or []
        if curve:
            ax.plot([p[0] for p in curve], [p[1] for p in curve], label=name)
    ax.set(xlabel="training step", ylabel="held-out MSE", yscale="log", title="learning curves (until flat)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
