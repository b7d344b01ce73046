"""Saving and loading SAEs: our format (safetensors + JSON, kind "sae") and SAELens folders
(cfg.json + sae_weights.safetensors with W_enc (d_in, d_sae), b_enc, W_dec (d_sae, d_in), b_dec)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from intelligible.core.artifacts import load_artifact, save_artifact
from intelligible.core.errors import ConfigError, DataError
from intelligible.lm.saes.models import ReLUSAE, SparseAutoencoder, SwitchSAE, TopKSAE

_KINDS = {"relu": ReLUSAE, "topk": TopKSAE, "switch": SwitchSAE}


def save_sae(model: SparseAutoencoder, path: str | Path) -> Path:
    """Write `path.safetensors` and `path.json` (config with the architecture)."""
    if getattr(model, "expert_shard", None) is not None:
        raise ConfigError("this model holds one rank's experts; save gather_experts(model) instead")
    return save_artifact(path, "sae", model.config(), model.state_dict())


def load_sae(path: str | Path) -> SparseAutoencoder:
    """Rebuild a model written by `save_sae`."""
    _, config, tensors = load_artifact(path, kind="sae")
    config = dict(config)
    kind = config.pop("kind", None)
    if kind not in _KINDS:
        raise DataError(f"{path}: unknown SAE architecture {kind!r}; valid: {', '.join(_KINDS)}")
    model = _KINDS[kind](**config)
    try:
        model.load_state_dict(tensors)
    except RuntimeError as error:
        raise DataError(f"{path}: weights do not match the saved config: {error}") from None
    return model


def load_saelens(folder: str | Path) -> ReLUSAE | TopKSAE:
    """Import a SAELens ReLU ("standard") or TopK SAE folder."""
    folder = Path(folder)
    cfg_path, weights_path = folder / "cfg.json", folder / "sae_weights.safetensors"
    if not cfg_path.is_file() or not weights_path.is_file():
        raise DataError(f"{folder} is not a SAELens SAE folder: need cfg.json and sae_weights.safetensors")
    try:
        cfg = json.loads(cfg_path.read_text())
        d, m = int(cfg["d_in"]), int(cfg["d_sae"])
        weights = load_file(str(weights_path))
        w_enc, w_dec = weights["W_enc"], weights["W_dec"]
        b_enc, b_dec = weights["b_enc"], weights["b_dec"]
    except (json.JSONDecodeError, KeyError, ValueError, OSError) as error:
        raise DataError(f"{folder}: cannot read the SAELens SAE ({error!r})") from None
    if w_enc.shape != (d, m) or w_dec.shape != (m, d):
        raise DataError(
            f"{folder}: W_enc {tuple(w_enc.shape)} / W_dec {tuple(w_dec.shape)} do not match d_in={d}, d_sae={m}"
        )
    activation = cfg.get("activation_fn_str", "relu")
    architecture = cfg.get("architecture", "standard")
    if activation == "topk" or architecture == "topk":
        k = int((cfg.get("activation_fn_kwargs") or {}).get("k", cfg.get("k", 0)))
        model: ReLUSAE | TopKSAE = TopKSAE(d, m, k)
    elif architecture == "standard" and activation == "relu":
        model = ReLUSAE(d, m, penalty="norm_weighted")  # SAELens decoders are not kept unit-norm
    else:
        raise DataError(f"{folder}: SAELens architecture {architecture!r} with {activation!r} is not supported; "
                        "supported: standard/relu and topk")  # fmt: skip
    with torch.no_grad():
        model.W_enc.copy_(w_enc.T)
        model.W_dec.copy_(w_dec)
        model.b_dec.copy_(b_dec)
        # ours always encodes x - b_dec; SAELens may not (apply_b_dec_to_input=False): fold it into b_enc
        shift = 0.0 if cfg.get("apply_b_dec_to_input", True) else b_dec @ w_enc
        model.b_enc.copy_(b_enc + shift)
    return model


def save_saelens(model: ReLUSAE | TopKSAE, folder: str | Path) -> Path:
    """Export a ReLU or TopK SAE as a SAELens folder (apply_b_dec_to_input=True)."""
    if not isinstance(model, (ReLUSAE, TopKSAE)):
        raise DataError(f"SAELens has no {model.kind} SAEs; export ReLU or TopK models")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cfg = {"d_in": model.d, "d_sae": model.n_latents, "apply_b_dec_to_input": True, "dtype": "float32"}
    if isinstance(model, TopKSAE):
        cfg.update(architecture="topk", activation_fn_str="topk", activation_fn_kwargs={"k": model.k})
    else:
        cfg.update(architecture="standard", activation_fn_str="relu", activation_fn_kwargs={})
    tensors = {"W_enc": model.W_enc.detach().T.contiguous(), "b_enc": model.b_enc.detach().clone(),
               "W_dec": model.W_dec.detach().clone(), "b_dec": model.b_dec.detach().clone()}  # fmt: skip
    save_file(tensors, str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps(cfg, indent=2))
    return folder
