"""Run the KAN study's reproduction and record its claims and tables.

    python benchmarks/kan_reproduction.py [--preset quick]

Writes benchmarks/results/kan_reproduction.json (shared results format); docs/kan.md cites it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from intelligible.kan.experiment import ReproduceConfig, reproduce
from results_file import write_report_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", choices=["quick", "paper"])
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="kan-"))
    # "quick" here is the benchmark's size, ReproduceConfig(): larger than the demo's quick preset,
    # which is cut to fit its share of `make demo` (docs/design.md)
    report = reproduce(args.preset, out, config=ReproduceConfig() if args.preset == "quick" else None)
    suffix = "" if args.preset == "quick" else "_" + args.preset
    path = write_report_results(
        f"kan_reproduction{suffix}",
        f"python benchmarks/kan_reproduction.py --preset {args.preset}",
        report,
        {"notes": report.notes, **report.tables},
    )
    print(f"{report.n_holding}/{len(report.claims)} claims hold; wrote {path}")


if __name__ == "__main__":
    main()
