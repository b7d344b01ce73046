"""Full delete+swap sweep on SmolLM2-135M: prefix reuse vs a naive forward per edit (and TransformerLens).

Same process, same tokens, run one after the other on a quiet machine. Writes
benchmarks/results/stages_sweep.json in the shared results format.

    python benchmarks/stages_sweep.py [--n-tokens 2048] [--seq-len 256] [--skip-transformerlens]
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time

import torch

from intelligible.lm import builtin_corpus, load_model, token_windows
from intelligible.stages import make_interventions, run_sweep
from intelligible.stages.metrics import MetricSums, reference_from_logits
from results_file import write_results

KEYS = ("accuracy", "kl", "loss", "entropy")


def max_difference(rows_a: list[dict], rows_b: list[dict]) -> float:
    return max(abs(a[k] - b[k]) for a, b in zip(rows_a, rows_b) for k in KEYS)


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def transformerlens_deletions(model, windows, batch_size: int) -> tuple[list[dict] | None, float | None, str]:
    """Delete each layer by zeroing its attention and MLP outputs with TransformerLens hooks."""
    try:
        from transformer_lens.model_bridge import TransformerBridge
    except ImportError as exc:
        return None, None, f"TransformerLens not installed ({exc}); install the bench extra"
    # The bridge needs a config folder; the model itself is handed over, so nothing is downloaded.
    folder = tempfile.mkdtemp(prefix="tl-smollm2-")
    config = copy.deepcopy(model.hf_model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.save_pretrained(folder)
    model.tokenizer.save_pretrained(folder)
    bridge = TransformerBridge.boot_transformers(
        folder, hf_model=model.hf_model, tokenizer=model.tokenizer, device="cpu"
    )

    def zero(tensor, hook):
        return torch.zeros_like(tensor)

    def sweep():
        rows = []
        sums = [MetricSums() for _ in range(model.n_layers)]
        with torch.inference_mode():
            for start in range(0, windows.shape[0], batch_size):
                batch = windows[start : start + batch_size]
                ref = reference_from_logits(bridge(batch), batch)
                for layer in range(model.n_layers):
                    hooks = [(f"blocks.{layer}.attn.hook_out", zero), (f"blocks.{layer}.mlp.hook_out", zero)]
                    sums[layer].add(bridge.run_with_hooks(batch, fwd_hooks=hooks), ref)
        for layer, acc in enumerate(sums):
            rows.append({"name": f"delete {layer}", **acc.summary()})
        return rows

    rows, seconds = timed(sweep)
    # restore the attention implementation the bridge switched to eager
    model.hf_model.set_attn_implementation("sdpa")
    return (
        rows,
        seconds,
        "TransformerBridge over the same loaded HF model, eager attention (forced by TransformerLens)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-tokens", type=int, default=2048)
    parser.add_argument("--seq-len", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--skip-transformerlens", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)

    model, load_s = timed(lambda: load_model("smollm2-135m"))
    windows = token_windows(
        model.tokenizer, builtin_corpus(), seq_len=args.seq_len, n_windows=args.n_tokens // args.seq_len,
        bos_token_id=model.bos_token_id,
    )  # fmt: skip
    edits = make_interventions(model.n_layers)
    _, single_s = timed(lambda: model(windows[: args.batch_size]))
    print(
        f"loaded in {load_s:.1f} s; one forward over {args.batch_size * args.seq_len} tokens: {single_s:.2f} s"
    )

    fast, fast_s = timed(
        lambda: run_sweep(model, windows, edits, batch_size=args.batch_size, show_progress=False)
    )
    print(f"prefix reuse: {fast_s:.1f} s for {len(edits)} edits")
    naive, naive_s = timed(
        lambda: run_sweep(
            model, windows, edits, batch_size=args.batch_size, reuse_prefix=False, show_progress=False
        )
    )
    print(f"naive:        {naive_s:.1f} s")
    diff = max_difference(fast.rows, naive.rows)
    speedup = naive_s / fast_s
    print(f"speedup {speedup:.2f}x, max metric difference {diff:.2e}")

    deletions = make_interventions(model.n_layers, ("delete",))
    ours_del, ours_del_s = timed(
        lambda: run_sweep(model, windows, deletions, batch_size=args.batch_size, show_progress=False)
    )
    tl_note = "skipped (--skip-transformerlens)"
    tl_rows = tl_s = None
    if not args.skip_transformerlens:
        tl_rows, tl_s, tl_note = transformerlens_deletions(model, windows, args.batch_size)
    tl = {"note": tl_note, "ours_deletion_sweep_s": round(ours_del_s, 2)}
    if tl_rows is not None:
        tl.update(
            transformerlens_deletion_sweep_s=round(tl_s, 2),
            speedup_vs_transformerlens=round(tl_s / ours_del_s, 2),
            max_metric_difference=max_difference(ours_del.rows, tl_rows),
        )
        print(
            f"deletions only: ours {ours_del_s:.1f} s, TransformerLens hooks {tl_s:.1f} s ({tl_s / ours_del_s:.2f}x)"
        )

    n_layers = model.n_layers
    layer_passes_naive = len(edits) * n_layers
    layer_passes_fast = n_layers + sum(
        n_layers - 1 - e.layer for e in edits
    )  # baseline + suffixes (trie reuse)
    targets = [
        {
            "name": "prefix_reuse_speedup_vs_naive",
            "value": round(speedup, 3),
            "target": ">= 1.5",
            "holds": speedup >= 1.5,
        },
        {"name": "max_metric_difference_vs_naive", "value": diff, "target": "<= 1e-4", "holds": diff <= 1e-4},
    ]
    path = write_results(
        "stages_sweep",
        "python benchmarks/stages_sweep.py",
        targets,
        {
            "model": model.name,
            "tokens_predicted": fast.tokens,
            "windows": list(windows.shape),
            "interventions": len(edits),
            "prefix_reuse_s": round(fast_s, 2),
            "naive_s": round(naive_s, 2),
            "model_load_s": round(load_s, 1),
            "single_forward_s": round(single_s, 3),
            "layer_passes": {"naive": layer_passes_naive, "prefix_reuse": layer_passes_fast},
            "unembeddings_per_sweep": len(edits) + 1,
            "baseline": fast.baseline,
            "transformerlens": tl,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
