"""Activation caching speed: the truncated forward (layers 0..L only) vs a full forward pass.

    python benchmarks/sae_activations.py [--layer 15] [--windows 64] [--repeats 3]

Both sides run in this process, interleaved (ours, full, ours, full, ...), on the same batches of
128-token windows of the Python documentation (pydoc when it is not installed), with the same
threads. "Full" is what a user would otherwise run: the Hugging Face model's forward pass with
output_hidden_states=True (every block, the final norm and the unembedding), reading the residual
after block L. The activations must be identical. Writes benchmarks/results/sae_activations.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch

from intelligible.lm import load_model
from intelligible.lm.text import load_text, token_windows
from intelligible.sae.activations import collect_activations
from results_file import write_results

TARGET = 1.8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layer", type=int, default=15)
    parser.add_argument("--windows", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    lm = load_model("smollm2-135m")
    try:
        source = "python-docs"
        text = load_text(source)
    except Exception:  # not installed: the bundled text measures the same forward passes
        source, text = "pydoc", load_text("pydoc")
    windows = token_windows(lm.tokenizer, text[:2_000_000], seq_len=128, n_windows=args.windows,
                            bos_token_id=lm.bos_token_id)  # fmt: skip
    tokens = windows.shape[0] * (windows.shape[1] - 1)

    def ours() -> torch.Tensor:
        return collect_activations(lm, windows, args.layer, batch_size=args.batch, show_progress=False).values

    @torch.inference_mode()
    def full() -> torch.Tensor:
        parts = []
        for start in range(0, windows.shape[0], args.batch):
            out = lm.hf_model(windows[start : start + args.batch], output_hidden_states=True)
            h = out.hidden_states[args.layer + 1]
            parts.append(h[:, 1:].reshape(-1, h.shape[-1]).float())
        return torch.cat(parts)

    reference, candidate = full(), ours()  # warm-up, and the equality check
    max_diff = float((reference - candidate).abs().max())
    scale = float(reference.abs().max())
    ours_s, full_s = [], []
    for _ in range(args.repeats):
        for fn, times in ((ours, ours_s), (full, full_s)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    ratio = statistics.median(f / o for f, o in zip(full_s, ours_s))
    # the on-disk, sharded, resumable cache: its own tokens/s, written and then read back
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        written = collect_activations(lm, windows, args.layer, batch_size=args.batch, cache_dir=folder,
                                      shard_windows=16, show_progress=False)  # fmt: skip
        cache_s = time.perf_counter() - start
        start = time.perf_counter()
        collect_activations(lm, windows, args.layer, cache_dir=folder, show_progress=False)
        read_s = time.perf_counter() - start
    identical = max_diff <= 1e-5 * max(scale, 1.0)
    targets = [
        {"name": f"tokens/s caching layer {args.layer} of {lm.n_layers}, vs a full forward pass",
         "value": round(ratio, 2), "target": f">= {TARGET}x", "holds": ratio >= TARGET and identical,
         "detail": f"ours {tokens / statistics.median(ours_s):,.0f} tokens/s, full forward "
                   f"{tokens / statistics.median(full_s):,.0f} tokens/s (median of {args.repeats} interleaved rounds)"},
        {"name": "the cached activations equal the full forward's residual", "value": max_diff,
         "target": "max |difference| <= 1e-5 x max |activation|", "holds": identical,
         "detail": f"max |activation| {scale:.4g}"},
    ]  # fmt: skip
    path = write_results("sae_activations", "python benchmarks/sae_activations.py", targets, {
        "text": source, "tokens": tokens, "layer": args.layer, "batch_windows": args.batch,
        "threads": torch.get_num_threads(), "ours_s": ours_s, "full_s": full_s,
        "disk_cache_tokens_per_s": tokens / cache_s, "disk_cache_read_tokens_per_s": tokens / read_s,
        "lm_tokens_per_s_reported": written.stats.tokens_per_s,
    })  # fmt: skip
    print(
        f"truncated forward {ratio:.2f}x the full forward's tokens/s, max diff {max_diff:.2e}; wrote {path}"
    )


if __name__ == "__main__":
    main()
