"""Run the stages study's quick reproduction and record its claims and per-layer table.

    python benchmarks/stages_reproduction.py [--preset quick]

Writes benchmarks/results/stages_reproduction.json (shared results format); docs/stages.md cites it.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from intelligible.stages.experiment import StagesConfig, reproduce, run_experiment
from results_file import write_report_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", choices=["quick", "paper"])
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="stages-"))
    # "quick" here is the benchmark's size, StagesConfig() (2,048 tokens): larger than the demo's quick
    # preset (512 tokens), which is cut to fit its share of `make demo` (docs/design.md)
    if args.preset == "quick":
        report = run_experiment(StagesConfig(), out, preset="quick")
    else:
        report = reproduce(args.preset, out)
    stages = json.loads((out / "stages.json").read_text())
    path = write_report_results(
        "stages_reproduction",
        f"python benchmarks/stages_reproduction.py --preset {args.preset}",
        report,
        {
            "notes": report.notes,
            "stage_boundaries": stages["boundaries"],
            "per_layer": report.tables["per layer"],
        },
    )
    print(f"{report.n_holding}/{len(report.claims)} claims hold; wrote {path}")


if __name__ == "__main__":
    main()
