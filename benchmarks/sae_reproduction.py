"""Run the Switch SAE study's reproduction and record its claims and tables.

    python benchmarks/sae_reproduction.py [--preset quick|paper|long] [--out FOLDER]

Writes benchmarks/results/sae_reproduction[_PRESET].json (shared results format); docs/sae.md cites
it. `long` trains every model until its held-out MSE flattens on 2M tokens of the Python docs
(Debian's python3-doc): about 2 hours on 2 cores; with --out it resumes where it was interrupted.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from intelligible.sae.experiment import SAERunConfig, reproduce
from results_file import write_report_results

BENCHMARK_BASE = SAERunConfig(n_windows=384, eval_windows=16, latents=1024, k=32, steps=1000, batch=1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", choices=["quick", "paper", "long"])
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="sae-"))
    # "quick" here is the benchmark's size (49k tokens, 1,024 latents, 1,000 steps): larger than the
    # demo's quick preset, which is cut to fit its share of `make demo` (docs/design.md)
    base = BENCHMARK_BASE if args.preset == "quick" else None
    report = reproduce(args.preset, out, base=base)
    suffix = "" if args.preset == "quick" else "_" + args.preset
    path = write_report_results(
        f"sae_reproduction{suffix}",
        f"python benchmarks/sae_reproduction.py --preset {args.preset}",
        report,
        {"notes": report.notes, **report.tables, "figures": {k: str(v) for k, v in report.figures.items()}},
    )
    print(f"{report.n_holding}/{len(report.claims)} claims hold; wrote {path}")


if __name__ == "__main__":
    main()
