"""S and M_eps for many features: the batched indices against a straight port of the authors' procedure.

The issue's size: 1,000 features of 10,000 points each. The port (a loop over the angles with
np.histogram2d for S; one torch autograd optimisation per feature for M_eps) takes seconds per feature,
so it runs on a sample of the features (--reference-features), interleaved with ours in repeats, and
the speed is the median over repeats of (port's seconds per feature) / (ours per feature, batched over
all features). Values: S must agree to 1e-9 bits (same bins), M_eps within 0.01 (same start).

    python benchmarks/multidim_indices.py                     # the issue's size
    python benchmarks/multidim_indices.py --features 16 --points 2000 --steps 500 --angles 100   # a smoke run
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from intelligible.multidim.indices import (
    initial_directions,
    mixture_index,
    reference_mixture,
    reference_separability,
    separability_index,
)
from intelligible.multidim.shapes import make_shape
from results_file import write_results

SHAPES = ("separable", "mixture", "circle", "gaussian")


def features(n_features: int, n_points: int, seed: int) -> np.ndarray:
    """A mix of the reference shapes, each through a random linear map (no exact symmetries)."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_features, n_points, 2))
    for f in range(n_features):
        points = make_shape(SHAPES[f % len(SHAPES)], n_points, seed=seed + f)
        out[f] = points @ (np.eye(2) + 0.3 * rng.standard_normal((2, 2)))
    return out


def numba_threads() -> int:
    from numba import get_num_threads

    return int(get_num_threads())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--features", type=int, default=1000)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--angles", type=int, default=1000)
    parser.add_argument("--bins", type=int, default=40)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument(
        "--reference-features", type=int, default=4, help="features the port runs on, per repeat"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="write benchmarks/results/multidim.json")
    args = parser.parse_args()

    data = features(args.features, args.points, args.seed)
    start = initial_directions(args.features, args.seed)
    # compile the numba kernels outside the timings
    separability_index(data[:1, :2000], bins=10, n_angles=8)
    mixture_index(data[:1, :100], steps=2, init=start[:1])

    load_before = os.getloadavg()[0]
    wall = time.perf_counter()
    ours_s, ours_m, ref_s, ref_m = [], [], [], []
    s_diff, m_diff = [], []
    for repeat in range(args.repeats):
        t = time.perf_counter()
        sep = separability_index(data, bins=args.bins, n_angles=args.angles)
        ours_s.append((time.perf_counter() - t) / args.features)
        t = time.perf_counter()
        mix = mixture_index(data, steps=args.steps, init=start)
        ours_m.append((time.perf_counter() - t) / args.features)
        sample = [
            (repeat * args.reference_features + i) % args.features for i in range(args.reference_features)
        ]
        t = time.perf_counter()
        s_ref = [reference_separability(data[f], bins=args.bins, n_angles=args.angles) for f in sample]
        ref_s.append((time.perf_counter() - t) / len(sample))
        t = time.perf_counter()
        m_ref = [reference_mixture(data[f], start[f], steps=args.steps) for f in sample]
        ref_m.append((time.perf_counter() - t) / len(sample))
        s_diff += [abs(sep.bits[f] - v) for f, v in zip(sample, s_ref)]
        m_diff += [abs(mix.fraction[f] - v) for f, v in zip(sample, m_ref)]
        print(f"repeat {repeat}: ours S {ours_s[-1] * 1e3:.1f} ms/feature, M {ours_m[-1] * 1e3:.1f} ms/feature; "
              f"port S {ref_s[-1]:.2f} s, M {ref_m[-1]:.2f} s per feature", flush=True)  # fmt: skip

    wall = time.perf_counter() - wall
    load_after = os.getloadavg()[0]
    ratios = [(rs + rm) / (os_ + om) for rs, rm, os_, om in zip(ref_s, ref_m, ours_s, ours_m)]
    speedup = statistics.median(ratios)
    speed_s = statistics.median(r / o for r, o in zip(ref_s, ours_s))
    speed_m = statistics.median(r / o for r, o in zip(ref_m, ours_m))
    print(f"speedup (S + M_eps): {speedup:.1f}x (S {speed_s:.1f}x, M_eps {speed_m:.1f}x); "
          f"max |dS| {max(s_diff):.2e} bits, max |dM| {max(m_diff):.4f}")  # fmt: skip
    if not args.write:
        return
    size = f"{args.features}x{args.points}"
    targets = [
        {"name": f"speedup_S_and_M_vs_reference[{size}]", "value": round(speedup, 1), "target": ">= 20",
         "holds": bool(speedup >= 20)},
        {"name": "max_abs_S_difference_bits", "value": float(max(s_diff)), "target": "<= 1e-9",
         "holds": bool(max(s_diff) <= 1e-9)},
        {"name": "max_abs_M_eps_difference", "value": round(float(max(m_diff)), 4), "target": "<= 0.01",
         "holds": bool(max(m_diff) <= 0.01)},
    ]  # fmt: skip
    measurements = {
        "features": args.features, "points": args.points, "angles": args.angles, "bins": args.bins,
        "steps": args.steps, "reference_features_per_repeat": args.reference_features, "repeats": args.repeats,
        "ours_s_per_feature_s": [round(v, 5) for v in ours_s], "ours_m_per_feature_s": [round(v, 5) for v in ours_m],
        "port_s_per_feature_s": [round(v, 3) for v in ref_s], "port_m_per_feature_s": [round(v, 3) for v in ref_m],
        "speedup_s": round(speed_s, 1), "speedup_m": round(speed_m, 1),
        "ours_total_s_per_repeat": [round((a + b) * args.features, 1) for a, b in zip(ours_s, ours_m)],
        "port_extrapolated_total_s_per_repeat": [round((a + b) * args.features, 1) for a, b in zip(ref_s, ref_m)],
        "numba_threads": numba_threads(), "load_average_before": round(load_before, 2),
        "load_average_after": round(load_after, 2), "wall_s": round(wall, 1),
        "note": "ours runs on every feature as one batch; the port on a sample of reference_features_per_repeat "
                "features per repeat (it takes tens of seconds a feature), so its total is extrapolated; the "
                "ratio is taken within each repeat, so both sides see the same machine load",
    }  # fmt: skip
    command = "python benchmarks/multidim_indices.py " + " ".join(sys.argv[1:])
    path = write_results("multidim", command, targets, measurements)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
