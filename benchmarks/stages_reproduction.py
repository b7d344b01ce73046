"""Run the stages study's quick reproduction and record its claims and per-layer table.

    python benchmarks/stages_reproduction.py [--preset quick]

Writes benchmarks/results/stages_reproduction.json (shared results format); docs/stages.md cites it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from datetime import date
from pathlib import Path

import torch

from intelligible.core.runs import package_versions
from intelligible.stages.experiment import reproduce

RESULTS = Path(__file__).parent / "results" / "stages_reproduction.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick", choices=["quick", "paper"])
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temporary one)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="stages-"))
    report = reproduce(args.preset, out)
    stages = json.loads((out / "stages.json").read_text())
    result = {
        "benchmark": "stages_reproduction",
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()}-core {platform.machine()}, {'GPU' if torch.cuda.is_available() else 'no GPU'}",
        "command": f"python benchmarks/stages_reproduction.py --preset {args.preset}",
        "targets": [
            {
                "name": claim.statement,
                "value": claim.measured_value,
                "target": claim.paper_value,
                "holds": claim.holds,
                "detail": claim.detail,
            }
            for claim in report.claims
        ],
        "measurements": {
            "elapsed_s": round(report.elapsed_s or 0.0, 1),
            "notes": report.notes,
            "stage_boundaries": stages["boundaries"],
            "per_layer": report.tables["per layer"],
            "versions": package_versions(),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{report.n_holding}/{len(report.claims)} claims hold; wrote {RESULTS}")


if __name__ == "__main__":
    main()
