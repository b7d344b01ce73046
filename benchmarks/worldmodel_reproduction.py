"""The world-model reproduction at a CPU-sized "medium" scale, between the demo's quick preset and the
paper's grid: its claims and tables as a results file.

    python benchmarks/worldmodel_reproduction.py [--out runs/worldmodel-medium]

Main model L = 3, H = 16 for 3,000 steps on 32-position oscillator sequences (lr 1e-3, as the paper),
a 2 x 2 grid (L in {1, 2}, H in {4, 8}, 1,000 steps) with 4 snapshots each for criterion 2,
regression L = 2, H = 16 (2,000 steps, 16 pairs), both damped oscillators (L = 2, H = 16, 1,000 steps),
1,024 probe sequences, CCA of degree 3. Finished models in --out are reused. Writes
benchmarks/results/worldmodel_reproduction.json; docs/worldmodel.md cites it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from intelligible.worldmodel.experiment import ReproduceConfig, reproduce
from results_file import write_report_results

MEDIUM = ReproduceConfig(
    sho_steps=3000, sho_length=33, grid_layers=(1, 2), grid_hidden=(4, 8), grid_steps=1000,
    intervention_model=(3, 16), regression_steps=2000, regression_pairs=16, damped_steps=1000,
    damped_layers=2, damped_hidden=16, snapshots=4, n_probe=1024, cca_degree=3, lr=1e-3,
)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/worldmodel-medium"))
    args = parser.parse_args()
    start = time.process_time()
    report = reproduce("quick", args.out, config=MEDIUM)
    path = write_report_results(
        "worldmodel_reproduction",
        "python benchmarks/worldmodel_reproduction.py",
        report,
        {
            "notes": report.notes,
            "config": "MEDIUM in the script",
            "cpu_s_this_call": time.process_time() - start,
            **report.tables,
        },  # fmt: skip
    )
    print(f"{report.n_holding}/{len(report.claims)} claims hold; wrote {path}")


if __name__ == "__main__":
    main()
