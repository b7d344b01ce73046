"""The MIPS benchmark: all 62 tasks, each solved only when the program chosen on the validation split is
right on every sequence of an untouched test split and of longer sequences.

    python benchmarks/mips_benchmark.py [--out runs/mips-benchmark] [--workers 2] [--seeds 0,1]

Resumable: finished tasks are cached in OUT/tasks/ (run the same command again after an
interruption). Writes benchmarks/results/mips.json with the per-task table beside the paper's
figures (benchmarks/data/mips_paper.json, where the paper's per-task results were found).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from intelligible.mips.experiment import GPT4_LENIENT, GPT4_STRICT, PAPER_SOLVED, MipsConfig, benchmark
from results_file import write_results

PAPER_TABLE = Path(__file__).parent / "data" / "mips_paper.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/mips-benchmark"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--tasks", default="", help="comma-separated subset (default: all 62)")
    args = parser.parse_args()
    cfg = MipsConfig(workers=args.workers, seeds=tuple(int(s) for s in args.seeds.split(",")))
    tasks = [t for t in args.tasks.split(",") if t] or None
    start = time.perf_counter()
    records = benchmark(tasks, cfg, args.out)
    elapsed = time.perf_counter() - start
    # a resumed run only times what it still had to do; the per-task seconds add up the whole work
    work = sum(r.get("seconds", 0.0) for r in records)
    paper = json.loads(PAPER_TABLE.read_text())["tasks"] if PAPER_TABLE.exists() else {}
    rows = []
    for r in records:
        theirs = paper.get(r["task"], {})
        rows.append({
            "task": r["task"], "solved": bool(r.get("solved")), "paper_mips": theirs.get("mips"),
            "paper_gpt4": theirs.get("gpt4"),
            "rnn": r.get("rnn"), "method": r.get("method"), "program_lines": r.get("program_length"),
            "verification": r.get("verification"), "limits": r.get("limits"),
            "seconds": round(r.get("seconds", 0.0), 1), "reason": r.get("reason"), "program": r.get("program"),
        })  # fmt: skip
    solved = sum(row["solved"] for row in rows)
    targets = [
        {"name": "tasks_solved_verified_on_untouched_test_split_and_longer_sequences", "value": solved,
         "target": ">= 40 of 62",
         "holds": solved >= 40 and len(rows) == 62},
        {"name": "full_benchmark_hours_on_2_cores", "value": round(work / 3600 / max(args.workers, 1), 2),
         "target": "< 3", "holds": work / 3600 / max(args.workers, 1) < 3},
    ]  # fmt: skip
    measurements = {
        "git_commit": _commit(),
        "tasks": len(rows), "solved": solved, "paper_mips_solved": PAPER_SOLVED,
        "paper_gpt4_solved_lenient": GPT4_LENIENT, "paper_gpt4_solved_strict": GPT4_STRICT,
        "config": {"n_train": cfg.n_train, "n_val": cfg.n_val, "n_test": cfg.n_test, "n_long": cfg.n_long,
                   "long_factor": cfg.long_factor, "steps": cfg.steps, "seeds": list(cfg.seeds)},
        "wall_seconds_this_invocation": round(elapsed, 1), "task_seconds_total": round(work, 1),
        "rows": rows,
    }  # fmt: skip
    name = "mips" if tasks is None else "mips_subset"
    path = write_results(name, f"python benchmarks/mips_benchmark.py --workers {args.workers} --seeds {args.seeds}",
                         targets, measurements)  # fmt: skip
    print(f"solved {solved}/{len(rows)}; wrote {path}")


def _commit() -> str | None:
    import subprocess

    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


if __name__ == "__main__":
    main()
