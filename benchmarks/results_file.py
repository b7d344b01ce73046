"""Write a benchmark result in the shared format (see DESIGN.md): benchmark, date, machine, command, targets."""

from __future__ import annotations

import json
import os
import platform
from datetime import date
from pathlib import Path

import torch

from intelligible.core.runs import package_versions

RESULTS_DIR = Path(__file__).parent / "results"


def write_results(name: str, command: str, targets: list[dict], measurements: dict) -> Path:
    """Write benchmarks/results/<name>.json; package versions are added to the measurements."""
    result = {
        "benchmark": name,
        "date": date.today().isoformat(),
        "machine": f"{os.cpu_count()}-core {platform.machine()}, {'GPU' if torch.cuda.is_available() else 'no GPU'}",
        "command": command,
        "targets": targets,
        "measurements": {**measurements, "versions": package_versions()},
    }
    path = RESULTS_DIR / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def status_kib(field: str) -> int:
    """A field of /proc/self/status in KiB (VmRSS, VmHWM); memory probes reset VmHWM via clear_refs."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def write_report_results(name: str, command: str, report: object, measurements: dict) -> Path:
    """A study's reproduction Report as a results file: one target per claim (paper value as target)."""
    targets = [
        {
            "name": c.statement,
            "value": c.measured_value,
            "target": c.paper_value,
            "holds": c.holds,
            "detail": c.detail,
        }
        for c in report.claims
    ]
    return write_results(
        name, command, targets, {"elapsed_s": round(report.elapsed_s or 0.0, 1), **measurements}
    )
