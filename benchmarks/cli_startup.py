"""How long `intelligible --help` takes, beside a bare Python start and beside importing torch.

    python benchmarks/cli_startup.py [--repeats 7]

The CLI finds the studies through the registry and imports none of them (nor torch) to list them.
Target: under 2 s. The peers run in the same session, interleaved, so a busy machine slows all three
alike; the medians and their ratios are recorded. Writes benchmarks/results/cli_startup.json.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from results_file import write_results

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "intelligible --help": [sys.executable, "-m", "intelligible.cli", "--help"],
    "python -c 'import torch'": [sys.executable, "-c", "import torch"],
}


def _wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for command in COMMANDS.values():
        _wall(command)  # warm the file cache
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(_wall(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    help_s = medians["intelligible --help"]
    path = write_results(
        "cli_startup",
        f"python benchmarks/cli_startup.py --repeats {args.repeats}",
        [
            {
                "name": "intelligible --help wall time (s, median)",
                "value": round(help_s, 3),
                "target": "< 2",
                "holds": help_s < 2.0,
            }
        ],  # fmt: skip
        {
            "median_s": {name: round(value, 3) for name, value in medians.items()},
            "help_over_bare_python": round(help_s / medians["python -c pass"], 2),
            "import_torch_over_help": round(medians["python -c 'import torch'"] / help_s, 2),
            "all_s": {name: [round(v, 3) for v in values] for name, values in times.items()},
        },
    )
    for name, value in medians.items():
        print(f"{name:<28} {value:.3f} s")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
