"""The single-subtask sweep (10 alphas x 5 seeds at width 1,000, the same step count): the vectorised
trainer as `run_grid` runs it (`intelligible.scaling.sweep.train_groups`: groups of models through
`train_batched`, which on the CPU picks the fused numba kernel for these one-hidden-layer networks)
against a Python loop over single runs (`train_single`: one `nn.Sequential` and `torch.optim.Adam`
per run).

    python benchmarks/scaling_sweep.py [--width 1000] [--steps 100] [--repeats 3] [--threads 1]
                                       [--small-width 32] [--no-write]

Both sides start from the same initial weights and data and run in this process, interleaved
(batched, loop, loop, batched, ...), on --threads threads each (`core.threads.configure_threads`),
after one untimed warm-up of each (loading the compiled kernel, importing torch.optim), timing the
training only; the speedup is the median of the
per-repeat ratios. It also checks that the two give the same final test losses, run by run, and
repeats the comparison at a small width, where per-step overheads dominate. Writes
benchmarks/results/scaling.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from pathlib import Path

import torch

from intelligible.core.threads import configure_threads
from intelligible.scaling.mlp import Spec, forward_layers, fused_reason, sequential_layers, train_single
from intelligible.scaling.sweep import SweepConfig, train_groups
from intelligible.scaling.tasks import make_task
from results_file import write_results

ALPHAS = tuple(float(2**i) for i in range(10))  # 1 .. 512
SEEDS = (0, 1, 2, 3, 4)


def compare(width: int, steps: int, repeats: int, config: SweepConfig) -> dict:
    """Time both trainers `repeats` times (interleaved) and compare their final test losses."""
    task = make_task("square")
    x, y = task.sample(config.n_train, config.x_low, config.x_high, config.data_seed)
    x_test, y_test = task.sample(config.n_test, config.x_low, config.x_high, config.data_seed + 1)
    specs = [Spec(width, alpha, (1.0,), seed) for alpha in ALPHAS for seed in SEEDS]
    config = dataclasses.replace(config, widths=(width,), steps=steps)
    train = {"steps": steps, "lr": config.lr, "l1": config.l1, "lr_final": config.lr_final}

    def batched() -> tuple[float, list[float]]:
        # the grid exactly as `run_grid` trains it (groups, trainer chosen by `train_batched`)
        start = time.perf_counter()
        nets = list(train_groups(config, task, x, y, specs=specs, disable_progress=True))
        seconds = time.perf_counter() - start
        with torch.no_grad():
            losses = torch.cat([(net.forward(x_test) - y_test).square().mean(dim=(1, 2)) for net in nets])
        return seconds, [float(v) for v in losses]

    def loop() -> tuple[float, list[float]]:
        start = time.perf_counter()
        models = [train_single(1, 1, 1, spec, x, y, **train) for spec in specs]
        seconds = time.perf_counter() - start
        with torch.no_grad():
            losses = [
                float((forward_layers(sequential_layers(m), x_test) - y_test).square().mean()) for m in models
            ]
        return seconds, losses

    times: dict[str, list[float]] = {"batched": [], "loop": []}
    losses: dict[str, list[float]] = {}
    for repeat in range(repeats):
        order = (
            (("batched", batched), ("loop", loop))
            if repeat % 2 == 0
            else (("loop", loop), ("batched", batched))
        )
        for name, run in order:
            seconds, found = run()
            times[name].append(seconds)
            losses[name] = found
            print(f"width {width}, repeat {repeat}: {name} {seconds:.2f} s", flush=True)
    ratios = [lo / ba for lo, ba in zip(times["loop"], times["batched"])]
    relative = [abs(a - b) / max(abs(b), 1e-12) for a, b in zip(losses["batched"], losses["loop"])]
    return {
        "width": width,
        "batched_trainer": "torch" if fused_reason(1, config.device, config.activation) else "fused (numba)",
        "models": len(specs),
        "steps": steps,
        "seconds_batched": times["batched"],
        "seconds_loop": times["loop"],
        "speedup_per_repeat": ratios,
        "speedup_median": statistics.median(ratios),
        "loss_relative_difference_max": max(relative),
        "loss_relative_difference_median": statistics.median(relative),
        "losses_batched": losses["batched"],
        "losses_loop": losses["loop"],
    }


def warm_up(config: SweepConfig) -> None:
    """One tiny untimed run of each side: loads the compiled kernel (or compiles it, the first time
    after a change) and imports torch.optim, costs that are paid once per process, not per sweep."""
    task = make_task("square")
    x, y = task.sample(16, config.x_low, config.x_high, config.data_seed)
    specs = [Spec(4, 1.0, (1.0,), 0), Spec(4, 2.0, (1.0,), 1)]
    tiny = dataclasses.replace(config, widths=(4,), steps=2)
    list(train_groups(tiny, task, x, y, specs=specs, disable_progress=True))
    train_single(1, 1, 1, specs[0], x, y, steps=2, lr=config.lr, l1=config.l1, lr_final=config.lr_final)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--small-width", type=int, default=32)
    parser.add_argument("--no-write", action="store_true", help="print only (a trial at a tiny size)")
    args = parser.parse_args()
    # the same thread count for both sides (torch and the fused kernel follow it); on a shared 2-core
    # machine one thread each is the stable choice
    configure_threads(args.threads)
    config = SweepConfig(task="square", widths=(args.width,), alphas=ALPHAS, seeds=SEEDS, steps=args.steps)
    config.validate()
    warm_up(config)
    main_run = compare(args.width, args.steps, args.repeats, config)
    small = compare(args.small_width, args.steps, args.repeats, config)
    same = main_run["loss_relative_difference_max"] < 1e-2
    targets = [
        {"name": f"vectorised_speedup_vs_loop[width {args.width}, 10 alphas x 5 seeds, {args.steps} steps]",
         "value": round(main_run["speedup_median"], 2), "target": ">= 10", "holds": main_run["speedup_median"] >= 10},
        {"name": "same_final_losses_for_the_same_seeds (max relative difference of the 50 test MSEs)",
         "value": main_run["loss_relative_difference_max"], "target": "< 1e-2", "holds": same},
    ]  # fmt: skip
    print(f"speedup at width {args.width}: {main_run['speedup_median']:.2f}x; at width {args.small_width}: "
          f"{small['speedup_median']:.2f}x; largest relative loss difference {main_run['loss_relative_difference_max']:.2e}")  # fmt: skip
    if args.no_write:
        return
    load = Path("/proc/loadavg").read_text().split()[:3]
    path = write_results(
        "scaling",
        "python benchmarks/scaling_sweep.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "no_write"),
        targets,
        {"main": main_run, "small_width": small, "threads": args.threads, "n_train": config.n_train,
         "n_test": config.n_test, "load_average_at_end": load,
         "note": "shared 2-core machine with other jobs running; both sides timed in the same process, interleaved"},
    )  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
