"""Switch SAE training speed and memory vs a dense TopK SAE of the same width; dispatch vs the masked
reference; our TopK vs SAELens' TopK SAE.

    python benchmarks/sae_switch.py [--steps 5] [--saelens-python /path/to/venv/bin/python]

Activations: SmolLM2-135M's residual stream after layer 15 on the pydoc corpus, normalised to norm
sqrt(d). d = 576, M = 16384, k = 32, batch 4096. Times are medians of training steps (loss, backward,
grad clip, decoder-gradient projection, fused Adam) measured side by side in one process; peak memory
is the high-water RSS growth over training steps in a fresh subprocess per model. Writes
benchmarks/results/sae.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from intelligible.sae import SwitchSAE, TopKSAE
from results_file import status_kib, write_results

D, M, K, BATCH = 576, 16384, 32, 4096
EXPERTS = (8, 16, 32)


def build(name: str) -> torch.nn.Module:
    if name == "topk":
        return TopKSAE(D, M, K, seed=0)
    if name == "switch16-dense-reference":
        return SwitchSAE(D, M, K, 16, dense_reference=True, seed=0)
    return SwitchSAE(D, M, K, int(name.removeprefix("switch")), seed=0)


def step_fn(model: torch.nn.Module):  # noqa: ANN201
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)

    def step(x: torch.Tensor) -> float:
        model.normalize_decoder()
        loss = model.loss(x)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        model.remove_parallel_decoder_grad()
        optimizer.step()
        return float(loss.detach())

    return step


def time_steps(model: torch.nn.Module, data: torch.Tensor, steps: int) -> float:
    step = step_fn(model)
    times = []
    for i in range(steps + 1):
        x = data[(i * BATCH) % (data.shape[0] - BATCH) :][:BATCH]
        start = time.perf_counter()
        step(x)
        if i:  # the first step allocates optimizer state
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def activations(path: Path) -> torch.Tensor:
    if path.exists():
        return torch.load(path)
    from intelligible.lm import load_model
    from intelligible.lm.text import builtin_corpus, token_windows
    from intelligible.sae import collect_activations

    lm = load_model("smollm2-135m")
    windows = token_windows(
        lm.tokenizer, builtin_corpus(), seq_len=128, n_windows=96, bos_token_id=lm.bos_token_id
    )
    values = collect_activations(lm, windows, layer=15, normalize=True).values
    torch.save(values, path)
    return values


def memory_probe(name: str, data_path: str) -> None:
    """Subprocess: high-water RSS growth (MiB) over two training steps after a warm-up step."""
    data = torch.load(data_path)[:BATCH]
    model = build(name)
    step = step_fn(model)
    step(data[:64])  # loads code paths and allocates optimizer state (full size), not step memory
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before = status_kib("VmRSS")
    for _ in range(2):
        step(data)
    print(json.dumps({"peak_mib": (status_kib("VmHWM") - before) / 1024}))


def peak_memory(name: str, data_path: Path) -> float:
    out = subprocess.run([sys.executable, __file__, "--memory-probe", name, str(data_path)],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])["peak_mib"]


SAELENS_SCRIPT = r"""
import sys, time, statistics, json, torch
from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
from sae_lens.saes.sae import TrainStepInput
data = torch.load(sys.argv[1])
d, m, k, batch, steps = 576, 16384, 32, 4096, int(sys.argv[2])
sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d, d_sae=m, k=k, dtype="float32", device="cpu"))
optimizer = torch.optim.Adam(sae.parameters(), lr=1e-4, fused=True)
times = []
for i in range(steps + 1):
    x = data[(i * batch) % (data.shape[0] - batch):][:batch]
    start = time.perf_counter()
    out = sae.training_forward_pass(TrainStepInput(sae_in=x, coefficients={}, dead_neuron_mask=None, n_training_steps=i, is_logging_step=False))
    optimizer.zero_grad()
    out.loss.backward()
    torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
    optimizer.step()
    if i:
        times.append(time.perf_counter() - start)
import sae_lens
print(json.dumps({"step_s": statistics.median(times), "version": sae_lens.__version__}))
"""


def saelens_step(python: str, data_path: Path, steps: int) -> dict:
    script = Path(tempfile.mkdtemp()) / "saelens_topk.py"
    script.write_text(SAELENS_SCRIPT)
    result = subprocess.run([python, str(script), str(data_path), str(steps)], capture_output=True, text=True)
    if result.returncode:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-probe", nargs=2, metavar=("NAME", "DATA"))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument(
        "--saelens-python", default="", help="a Python with sae-lens installed (its own venv)"
    )
    parser.add_argument(
        "--data", type=Path, default=Path(tempfile.gettempdir()) / "intelligible_sae_bench_acts.pt"
    )
    args = parser.parse_args()
    if args.memory_probe:
        memory_probe(*args.memory_probe)
        return
    torch.manual_seed(0)
    data = activations(args.data)
    rows = {}
    for name in ["topk", *[f"switch{e}" for e in EXPERTS], "switch16-dense-reference"]:
        model = build(name)
        rows[name] = {"step_s": time_steps(model, data, args.steps), "peak_mib": peak_memory(name, args.data),
                      "flops_per_token": model.flops_per_token()["total"]}  # fmt: skip
        print(
            f"{name:26s} step {rows[name]['step_s']:.3f} s  peak {rows[name]['peak_mib']:.0f} MiB", flush=True
        )
    targets = []
    for e in EXPERTS:
        speedup = rows["topk"]["step_s"] / rows[f"switch{e}"]["step_s"]
        targets.append({"name": f"switch{e}_speedup_vs_topk", "value": round(speedup, 2),
                        "target": f">= {e / 3:.2f} (E/3)", "holds": speedup >= e / 3})  # fmt: skip
    # the dispatch and the masked formulation compute the same thing
    fast, reference = build("switch16"), build("switch16-dense-reference")
    x = data[:BATCH]
    out_fast, out_ref = fast(x)[0], reference(x)[0]
    difference = float((out_fast - out_ref).abs().max())
    targets.append({"name": "switch16_dispatch_vs_dense_reference_max_abs_diff", "value": difference,
                    "target": "<= 1e-5", "holds": difference <= 1e-5})  # fmt: skip
    measurements: dict = {"sizes": {"d": D, "M": M, "k": K, "batch": BATCH, "tokens": data.shape[0]}, "rows": rows,
                          "dispatch_speedup_vs_dense_reference": rows["switch16-dense-reference"]["step_s"] / rows["switch16"]["step_s"]}  # fmt: skip
    if args.saelens_python:
        peer = saelens_step(args.saelens_python, args.data, args.steps)
        measurements["saelens_topk"] = peer
        if "step_s" in peer:
            ratio = peer["step_s"] / rows["topk"]["step_s"]
            targets.append({"name": "topk_tokens_per_s_vs_saelens", "value": round(ratio, 2), "target": ">= 1.5",
                            "holds": ratio >= 1.5})  # fmt: skip
    for target in targets:
        print(
            f"{target['name']:52s} {target['value']!s:>10} {target['target']:>12}  {'holds' if target['holds'] else 'MISSED'}"
        )
    path = write_results("sae", "python benchmarks/sae_switch.py", targets, measurements)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
