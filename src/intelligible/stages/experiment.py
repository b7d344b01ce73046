"""The stages-of-inference experiment: sweep, diagnose, assign stages, and check the paper's claims."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from intelligible.core.config import config_to_dict, shown
from intelligible.core.errors import ConfigError
from intelligible.core.memory import check_fits
from intelligible.core.report import Claim, Report
from intelligible.core.runs import RunDir
from intelligible.core.seeding import seed_everything
from intelligible.lm.loading import ModelInfo, check_device, load_model, model_info
from intelligible.lm.model import LanguageModel
from intelligible.lm.text import check_text_length, load_text, stream_hf_dataset, token_windows
from intelligible.stages.assign import STAGE_NAMES, StageAssignment, StageRules, assign_stages, stage_means
from intelligible.stages.diagnostics import MAX_LOOKBACK, Diagnostics, diagnose
from intelligible.stages.plot import plot_diagnostics, plot_kl, plot_overview, plot_retained_accuracy
from intelligible.stages.sweep import KINDS, SweepResult, make_interventions, run_sweep

PAPER = "Lad, Gurnee, Tegmark 2024, 'The Remarkable Robustness of LLMs: Stages of Inference?'"


# Plausibility limits, far beyond any real run: a value past them is a typo (`1e30`), not a plan.
MAX_TOKENS = 10**10
MAX_SEQ_LEN = 2**20
MAX_BATCH = 2**16
MAX_SEED = 2**32 - 1


@dataclass
class StagesConfig:
    """Everything a stages run depends on. `n_tokens` counts tokens in the windows (BOS included)."""

    model: str = "smollm2-135m"
    text: str = "pydoc"  # "pydoc" (built-in corpus), a text file or a folder
    dataset: str | None = None  # a Hugging Face dataset id to stream instead of `text` (needs the hub)
    n_tokens: int = 2048
    seq_len: int = 256
    batch_size: int = 4
    kinds: tuple[str, ...] = KINDS
    layers: tuple[int, ...] | None = None  # edit only these layers (default: all)
    attention_windows: int = 8
    kurtosis_threshold: float = 10.0
    detok_fraction: float = 0.9
    lens_fraction: float = 0.8
    device: str = "cpu"
    seed: int = 0

    def validate(self) -> None:
        """Every value on its own and against the others (and the device against this machine);
        nothing is read or loaded here."""
        if not self.model.strip():
            raise ConfigError(
                "model is empty; give smollm2-135m, a Hugging Face id, a model folder or a .gguf file"
            )
        if self.dataset is not None and not self.dataset.strip():
            raise ConfigError(
                "dataset is empty; give a Hugging Face dataset id, or leave it unset to use text"
            )
        if self.dataset is None and not self.text.strip():
            raise ConfigError("text is empty; give 'pydoc' (the built-in corpus), a text file or a folder")
        if not MAX_LOOKBACK + 2 <= self.seq_len <= MAX_SEQ_LEN:
            raise ConfigError(f"seq_len must be in {MAX_LOOKBACK + 2}..{MAX_SEQ_LEN:,}, got {self.seq_len}")
        if not self.seq_len <= self.n_tokens <= MAX_TOKENS:
            raise ConfigError(
                f"n_tokens must be in {self.seq_len}..{MAX_TOKENS:,} (at least seq_len, {self.seq_len}), got {self.n_tokens}"
            )
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ConfigError(f"batch_size must be in 1..{MAX_BATCH:,}, got {self.batch_size}")
        bad = [k for k in self.kinds if k not in KINDS]
        if bad or not self.kinds:
            raise ConfigError(
                f"kinds must be a subset of {', '.join(KINDS)}, got {shown(', '.join(self.kinds) or 'nothing')}"
            )
        if self.layers is not None:
            if not self.layers:
                raise ConfigError(
                    "layers is empty; name the layers to edit (e.g. 3,4) or leave it unset for all"
                )
            negative = [i for i in self.layers if i < 0]
            if negative:
                raise ConfigError(f"layer index {negative[0]} is out of range: layer indices start at 0")
        if not 1 <= self.attention_windows <= MAX_TOKENS:
            raise ConfigError(f"attention_windows must be in 1..{MAX_TOKENS:,}, got {self.attention_windows}")
        if not 0 <= self.kurtosis_threshold <= 1e6:
            raise ConfigError(f"kurtosis_threshold must be in [0, 1e6], got {self.kurtosis_threshold}")
        for name in ("detok_fraction", "lens_fraction"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ConfigError(f"{name} must be in [0, 1], got {value}")
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"seed must be in 0..{MAX_SEED} (2**32 - 1), got {self.seed}")
        check_device(self.device)

    @property
    def n_windows(self) -> int:
        return math.ceil(self.n_tokens / self.seq_len)


PRESETS = {
    # two windows of 256 tokens: the four claims and stage boundaries match the 2,048-token run
    # (benchmarks/stages_reproduction.py) at a quarter of the time, within the demo budget.
    "quick": StagesConfig(n_tokens=512, attention_windows=2),
    # The paper measured on far more text; this is what a single GPU does in minutes.
    "paper": StagesConfig(n_tokens=65_536, seq_len=512, batch_size=16, attention_windows=32),
}


def preset_config(preset: str) -> StagesConfig:
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {shown(preset)}; valid presets: {', '.join(PRESETS)}")
    config = PRESETS[preset]
    if preset == "paper" and torch.cuda.is_available():
        config = replace(config, device="cuda")
    return config


def memory_needed(config: StagesConfig, info: ModelInfo) -> tuple[float, float]:
    """(bytes of the windows, bytes on the compute device) a sweep needs at its peak, roughly: one
    batch's residual after every layer (the unedited run and the edit before, kept for prefix reuse),
    a few batch x vocabulary logit matrices, and the LM."""
    windows = 8 * config.n_windows * config.seq_len
    positions = min(config.batch_size, config.n_windows) * config.seq_len
    residuals = 2 * 4 * positions * info.d_model * (info.n_layers + 1)
    logits = 6 * 4 * positions * info.vocab_size
    return float(windows), float(residuals + logits + info.bytes_float32)


def check_inputs(config: StagesConfig) -> tuple[ModelInfo, str]:
    """What needs only the model's config and the text, checked before the model loads: the layers
    and the window length against the model, memory, and the text (read, and long enough).

    Returns the model's description and the text.
    """
    info = model_info(config.model)
    if config.layers is not None:
        make_interventions(info.n_layers, config.kinds, config.layers)  # validates the indices
    if info.max_positions and config.seq_len > info.max_positions:
        raise ConfigError(
            f"seq_len must be at most {info.max_positions} for {shown(info.name)} (its context length), "
            f"got {config.seq_len}"
        )
    windows, compute = memory_needed(config, info)
    what = f"{config.n_windows:,} windows of {config.seq_len} tokens in batches of {config.batch_size} and the LM"
    hint = "lower --n-tokens, --seq-len or --batch-size"
    if config.device.startswith("cuda"):
        check_fits(windows, f"{config.n_windows:,} windows of {config.seq_len} tokens", "lower --n-tokens")
        check_fits(
            compute, f"{what} on {config.device}", "lower --seq-len or --batch-size", device=config.device
        )
    else:
        check_fits(windows + compute, what, hint)
    # text before the model: a bad file fails in a second, not after loading a model
    text = stream_hf_dataset(config.dataset) if config.dataset else load_text(config.text)
    check_text_length(text, config.n_windows * (config.seq_len - 1), config.dataset or config.text)
    return info, text


def prepare(
    config: StagesConfig, model: LanguageModel | None = None, *, text: str | None = None
) -> tuple[LanguageModel, torch.Tensor]:
    """Load the model (unless given) and tokenise the text into the configured windows."""
    config.validate()
    seed_everything(config.seed)
    if text is None:
        text = stream_hf_dataset(config.dataset) if config.dataset else load_text(config.text)
    model = model if model is not None else load_model(config.model, device=config.device)
    if config.layers is not None:
        make_interventions(model.n_layers, config.kinds, config.layers)  # validates the indices
    windows = token_windows(
        model.tokenizer,
        text,
        seq_len=config.seq_len,
        n_windows=config.n_windows,
        bos_token_id=model.bos_token_id,
    )
    return model, windows


def saved_sweep_state(out_dir: str | Path, config: StagesConfig, n_layers: int) -> dict | None:
    """The sweep state a run in `out_dir` saved (None when there is none), checked against `config`
    before anything loads: a damaged file or a state for other edits or batches is an error now."""
    run = RunDir(out_dir)
    if not run.config_path.exists():
        return None
    saved = run.load_checkpoint("sweep_state")
    if saved is None:
        return None
    state = saved[1]
    names = [edit.name for edit in make_interventions(n_layers, config.kinds, config.layers)]
    if (
        not isinstance(state, dict)
        or state.get("names") != names
        or state.get("batch_size") != config.batch_size
    ):
        raise ConfigError(
            f"the saved sweep state in {shown(str(run.path))} is for other interventions or batch size; "
            "drop --resume and add --overwrite to start over"
        )
    return state


def sweep_run(
    config: StagesConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    model: LanguageModel | None = None,
    windows: torch.Tensor | None = None,
    kind: str = "stages-sweep",
) -> tuple[SweepResult, RunDir]:
    """Run the deletion/swap sweep into a run folder (resumable batch by batch); writes sweep.json and figures.

    A folder holding an earlier sweep is refused unless `resume` or `overwrite` (RunDir.create). The
    checks come first (config, --out, then the model's config, memory, text and the state to resume
    from), then the model loads, then the folder is written. A resumed sweep logs each intervention
    once in metrics.jsonl, and sweep.json's `seconds` and `parts` count every part of the run.
    """
    if resume and overwrite:
        raise ConfigError(
            "--resume continues the sweep in --out and --overwrite replaces it; give one of them"
        )
    config.validate()
    rerunnable = kind == "stages-reproduce"
    RunDir.check(
        out_dir, config, config.seed, resume=resume, overwrite=overwrite, kind=kind, rerunnable=rerunnable
    )
    if model is None or windows is None:
        info, text = check_inputs(config)
        state = saved_sweep_state(out_dir, config, info.n_layers) if resume else None
        model, windows = prepare(config, model, text=text)
    else:
        state = saved_sweep_state(out_dir, config, model.n_layers) if resume else None
    run = RunDir.create(
        out_dir, config, config.seed, resume=resume, overwrite=overwrite, kind=kind, rerunnable=rerunnable
    )
    before = float(state.get("seconds", 0.0)) if state else 0.0
    parts = int(state.get("parts", 1)) + 1 if state else 1
    clock = time.perf_counter()

    def save_state(sums: dict) -> None:
        # the running sums after every batch, so Ctrl-C or a crash loses at most one batch
        seconds = before + time.perf_counter() - clock
        run.save_checkpoint({}, {**sums, "seconds": seconds, "parts": parts}, name="sweep_state")

    result = run_sweep(
        model,
        windows,
        make_interventions(model.n_layers, config.kinds, config.layers),
        batch_size=config.batch_size,
        resume_state=state,
        on_batch=save_state,
    )
    result.seconds, result.parts = before + time.perf_counter() - clock, parts
    run.truncate_metrics(-1)  # rows a crashed part logged before its figures: logged once, below
    for step, row in enumerate(result.rows):
        run.log_metrics(step, **row)
    run.write_json("sweep.json", result.to_dict())
    run.save_figure(plot_retained_accuracy(result), "retained_accuracy")
    run.save_figure(plot_kl(result), "kl")
    return result, run


def _diagnose_into(
    run: RunDir, config: StagesConfig, model: LanguageModel, windows: torch.Tensor
) -> Diagnostics:
    diag = diagnose(
        model,
        windows,
        batch_size=config.batch_size,
        attention_windows=config.attention_windows,
        kurtosis_threshold=config.kurtosis_threshold,
    )
    run.write_json("diagnostics.json", diag.to_dict())
    return diag


def diagnose_run(
    config: StagesConfig, out_dir: str | Path, *, overwrite: bool = False, model: LanguageModel | None = None
) -> tuple[Diagnostics, RunDir]:
    """Compute the per-layer stage signals into a run folder; writes diagnostics.json and a figure.

    A folder holding an earlier run is refused unless `overwrite`; everything is checked before
    the model loads and the folder is written only after it loaded.
    """
    config.validate()
    RunDir.check(out_dir, config, config.seed, overwrite=overwrite, kind="stages-diagnose")
    text = check_inputs(config)[1] if model is None else None
    model, windows = prepare(config, model, text=text)
    run = RunDir.create(out_dir, config, config.seed, overwrite=overwrite, kind="stages-diagnose")
    diag = _diagnose_into(run, config, model, windows)
    run.save_figure(plot_diagnostics(diag), "diagnostics")
    return diag, run


def evaluate_claims(result: SweepResult, diag: Diagnostics, assignment: StageAssignment) -> list[Claim]:
    """The paper's four claims, measured. Each threshold is stated in the claim's detail."""
    n = result.n_layers
    delete = {r["layer"]: r["retained_accuracy"] for r in result.of_kind("delete")}
    swap = {r["layer"]: r["retained_accuracy"] for r in result.of_kind("swap")}
    middle = [i for i in delete if 0.1 * (n - 1) <= i <= 0.9 * (n - 1)]
    claims = []
    if middle:
        mean_middle = float(np.mean([delete[i] for i in middle]))
        claims.append(
            Claim(
                statement="deleting a middle layer retains 72-95% of top-1 accuracy on average",
                paper_value="0.72-0.95",
                measured_value=round(mean_middle, 4),
                holds=0.72 <= mean_middle <= 0.95,
                detail=f"mean over layers {middle[0]}-{middle[-1]} (relative depth 0.1-0.9); "
                f"min {min(delete[i] for i in middle):.3f} at layer {min(middle, key=delete.get)}",
            )
        )
        if 0 in delete and n - 1 in delete:
            drop_middle = 1 - mean_middle
            drop_first, drop_last = 1 - delete[0], 1 - delete[n - 1]
            claims.append(
                Claim(
                    statement="deleting the first or the last layer hurts far more than a middle layer",
                    paper_value="first and last layers are the least robust",
                    measured_value=f"retained: first {delete[0]:.3f}, last {delete[n - 1]:.3f}, middle mean {mean_middle:.3f}",
                    holds=drop_first >= 2 * drop_middle and drop_last >= 2 * drop_middle,
                    detail="holds when the accuracy lost by each end deletion is at least twice the middle mean loss",
                )
            )
    common = sorted(set(delete) & set(swap))
    if common:
        better = [i for i in common if swap[i] >= delete[i]]
        share = len(better) / len(common)
        claims.append(
            Claim(
                statement="swapping adjacent layers hurts less than deleting at most layers",
                paper_value="swap more robust than delete",
                measured_value=round(share, 4),
                holds=share > 0.5,
                detail=f"fraction of layers i where swap(i, i+1) retains at least as much as delete(i): "
                f"{len(better)}/{len(common)}; swapping the last two layers retains {swap.get(n - 2, float('nan')):.3f}",
            )
        )
    claims.append(_stage_order_claim(diag, assignment))
    return claims


def _stage_order_claim(diag: Diagnostics, assignment: StageAssignment) -> Claim:
    """The stages appear in depth order, and each stage's defining signal is strongest in that stage."""
    local = stage_means(diag.local_attention_at(MAX_LOOKBACK), assignment)
    kl = stage_means(diag.lens_kl_to_final, assignment)
    total = [p + s for p, s in zip(diag.prediction_neurons, diag.suppression_neurons)]
    share_supp = [s / t if t else 0.0 for s, t in zip(diag.suppression_neurons, total)]
    pred = stage_means([float(p) for p in diag.prediction_neurons], assignment)
    supp_share = stage_means(share_supp, assignment)
    non_empty = all(assignment.layers_of(s) for s in range(4))
    checks = {}
    if non_empty:
        checks = {
            "local attention highest in detokenization": local[0] == max(local),
            "logit-lens KL drops from feature engineering to ensembling to sharpening": kl[1] > kl[2] > kl[3],
            "prediction neurons denser in ensembling than feature engineering": pred[2] > pred[1],
            "suppression share highest in sharpening": supp_share[3] == max(supp_share),
        }
    passed = [name for name, ok in checks.items() if ok]
    failed = [name for name, ok in checks.items() if not ok]
    return Claim(
        statement="four stages appear in depth order: detokenization, feature engineering, prediction ensembling, residual sharpening",
        paper_value="4 stages in order",
        measured_value=assignment.describe(),
        holds=non_empty and not failed,
        detail=("signals agree: " + "; ".join(passed) if passed else "")
        + ("; disagree: " + "; ".join(failed) if failed else "")
        + ("" if non_empty else "some stage is empty"),
    )


def stage_table(result: SweepResult, diag: Diagnostics, assignment: StageAssignment) -> list[dict]:
    """One row per layer with every measured signal and its stage."""
    delete = {r["layer"]: r for r in result.of_kind("delete")}
    swap = {r["layer"]: r for r in result.of_kind("swap")}
    rows = []
    for layer in range(diag.n_layers):
        rows.append(
            {
                "layer": layer,
                "stage": STAGE_NAMES[assignment.labels[layer]],
                "delete_retained": delete[layer]["retained_accuracy"] if layer in delete else None,
                "delete_kl": delete[layer]["kl"] if layer in delete else None,
                "swap_retained": swap[layer]["retained_accuracy"] if layer in swap else None,
                "attn_prev5": diag.local_attention_at(MAX_LOOKBACK)[layer],
                "lens_entropy": diag.lens_entropy[layer],
                "lens_kl": diag.lens_kl_to_final[layer],
                "prediction_neurons": diag.prediction_neurons[layer],
                "suppression_neurons": diag.suppression_neurons[layer],
            }
        )
    return rows


def run_experiment(
    config: StagesConfig,
    out_dir: str | Path,
    *,
    preset: str = "custom",
    resume: bool = False,
    overwrite: bool = False,
    model: LanguageModel | None = None,
) -> Report:
    """Sweep + diagnostics + stage assignment + claims, all into `out_dir` (`model` skips loading).

    An earlier reproduction in `out_dir` is rerun over; another kind of run there is refused unless
    `overwrite`. With `resume`, the sweep continues from its saved state and the report's time
    counts the earlier parts too.
    """
    start = time.perf_counter()
    if resume and overwrite:
        raise ConfigError("--resume continues the run in --out and --overwrite replaces it; give one of them")
    config.validate()
    if "delete" not in config.kinds or config.layers is not None:
        raise ConfigError(
            "the full experiment needs a deletion of every layer: keep 'delete' in kinds and leave layers unset"
        )
    # fail before minutes of loading, not after
    RunDir.check(
        out_dir,
        config,
        config.seed,
        resume=resume,
        overwrite=overwrite,
        kind="stages-reproduce",
        rerunnable=True,
    )
    text = None
    if model is None:
        info, text = check_inputs(config)
        state = saved_sweep_state(out_dir, config, info.n_layers) if resume else None
    else:
        state = saved_sweep_state(out_dir, config, model.n_layers) if resume else None
    earlier = float(state.get("seconds", 0.0)) if state else 0.0
    model, windows = prepare(config, model, text=text)
    result, run = sweep_run(
        config,
        out_dir,
        resume=resume,
        overwrite=overwrite,
        model=model,
        windows=windows,
        kind="stages-reproduce",
    )
    out_dir = run.path
    diag = _diagnose_into(run, config, model, windows)
    assignment = assign_stages(result, diag, StageRules(config.detok_fraction, config.lens_fraction))
    run.write_json("stages.json", assignment.to_dict())
    figures = {
        "overview": run.save_figure(plot_overview(result, diag, assignment), "overview"),
        "retained accuracy": run.path / "figures" / "retained_accuracy.png",
        "KL per layer": run.path / "figures" / "kl.png",
        "diagnostics": run.save_figure(plot_diagnostics(diag), "diagnostics"),
    }
    report = Report(
        study="stages",
        title=f"Stages of inference on {result.model} ({PAPER})",
        preset=preset,
        claims=evaluate_claims(result, diag, assignment),
        figures=figures,
        tables={"per layer": stage_table(result, diag, assignment)},
        notes=(
            f"{result.tokens} predicted tokens from {config.text if not config.dataset else config.dataset}, "
            f"windows of {config.seq_len}; baseline top-1 accuracy {result.baseline['accuracy']:.4f}, "
            f"loss {result.baseline['loss']:.4f} nats. Stages: {assignment.describe()}. "
            + (f"Resumed: the sweep ran in {result.parts} parts. " if result.parts > 1 else "")
            + f"Config: {config_to_dict(config)}"
        ),
        # the whole run: this part and the sweep time of the parts before it
        elapsed_s=time.perf_counter() - start + earlier,
    )
    report.save(out_dir)
    return report


def reproduce(preset: str = "quick", out_dir: str | Path = "runs/stages") -> Report:
    """The study's entry for `intelligible reproduce`."""
    return run_experiment(preset_config(preset), out_dir, preset=preset)
