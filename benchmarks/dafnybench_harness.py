"""The DafnyBench harness measured: self-check on the development split (every ground truth through
our verifier and the strict check), verification throughput with 2 workers against 1, the cheat
corpus, and the published models' successes re-scored with the strict check.

    python benchmarks/dafnybench_harness.py [--data FOLDER] [--verify-published]

Timing runs use no verdict cache, one after the other, with nothing else running.
Writes benchmarks/results/dafnybench.json.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from intelligible.dafnybench.analysis import PUBLISHED_MODELS, read_published, rescore, success_at
from intelligible.dafnybench.cheats import CHEATS, GROUND_TRUTH, HONEST, TASK
from intelligible.dafnybench.checks import paper_check, strict_check
from intelligible.dafnybench.data import data_defects
from intelligible.dafnybench.experiment import default_data_dir, default_tasks
from intelligible.dafnybench.verifier import Verifier
from results_file import write_results

# the paper's headline over all 782 tasks (the other models' full-set figures are in its Table 2; only the
# development split's per-task results ship with the data, and those are what we compare)
PAPER_SUCCESS_ALL_782 = {"claude-3-opus": 0.678}


def _verified_and(rows: list[dict], check: str) -> int:
    """Rescored programs that verify here and pass `check`."""
    return sum(bool(r["verifies"] and r[check]) for r in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument(
        "--verify-published", action="store_true", help="also re-verify every published success"
    )
    parser.add_argument("--skip-single-worker", action="store_true")
    args = parser.parse_args()
    # the bundled development split, $INTELLIGIBLE_DAFNYBENCH_DATA, or the file/folder given
    tasks = default_tasks(args.data)
    folder = args.data if args.data is not None and args.data.is_dir() else default_data_dir()
    verifier = Verifier()  # no cache: every program really runs
    sources = [t.ground_truth for t in tasks]

    start = time.perf_counter()
    verdicts = verifier.verify_many(sources, workers=2)
    two = time.perf_counter() - start
    print(f"2 workers: {two:.0f} s", flush=True)
    one = None
    if not args.skip_single_worker:
        start = time.perf_counter()
        verifier.verify_many(sources, workers=1)
        one = time.perf_counter() - start
        print(f"1 worker: {one:.0f} s", flush=True)

    accepted = [strict_check(t.hints_removed, t.ground_truth, ground_truth=t.ground_truth).ok for t in tasks]
    both = [v.ok and a for v, a in zip(verdicts, accepted)]
    failures = {}
    for task, verdict in zip(tasks, verdicts):
        if not verdict.ok:
            failures[task.test_id] = {
                "status": verdict.status,
                "first_message": (verdict.messages or [""])[0][:200],
            }
    verifying = [t for t, v in zip(tasks, verdicts) if v.ok]
    strict_accepts_verifying = sum(
        strict_check(t.hints_removed, t.ground_truth, ground_truth=t.ground_truth).ok for t in verifying
    )

    cheats_rejected = sum(not strict_check(TASK, a, ground_truth=GROUND_TRUTH).ok for a in CHEATS.values())
    honest_accepted = sum(strict_check(TASK, a, ground_truth=GROUND_TRUTH).ok for a in HONEST.values())
    paper_misses = sorted(name for name, a in CHEATS.items() if paper_check(TASK, a).ok)

    ground_truth_verifies = {t.test_id for t in verifying}
    published = []
    for model in PUBLISHED_MODELS:
        outcomes, programs = read_published(folder / "published_results", model)
        rescored = rescore(tasks, outcomes, programs, verifier, verify=args.verify_published)
        scored, rows = rescored["summary"], rescored["rows"]
        row = {"model": model, "paper_success_all_782": PAPER_SUCCESS_ALL_782.get(model),
               "paper_success_this_split": round(scored["paper_success"], 4),
               "success_at_1_this_split": round(success_at(outcomes, 1), 4),
               "success_without_trivial_this_split": round(success_at(outcomes, 10, without_trivial=True), 4),
               "paper_successes": scored["paper_success_count"],
               "pass_strict_check": scored["strict_check_pass_count"],
               "strict_survival": round(scored["strict_check_pass_count"] / scored["paper_success_count"], 4),
               "stored_program_fails_paper_check": len(scored["stored_program_fails_paper_check"])}  # fmt: skip
        consistent = scored["paper_success_count"] - row["stored_program_fails_paper_check"]
        row["strict_survival_of_consistent_programs"] = round(
            scored["strict_check_pass_count"] / consistent, 4
        )
        if args.verify_published:
            row.update(ours_paper_check=round(scored["ours_paper_check"], 4),
                       ours_strict_check=round(scored["ours_strict_check"], 4),
                       verify_here=scored["verifies_count"],
                       verify_here_and_pass_paper_check=_verified_and(rows, "paper_check"),
                       verify_here_and_pass_strict_check=_verified_and(rows, "strict_check"))  # fmt: skip
            # Dafny 2.3.0 cannot verify every ground truth: the fair comparison is on the tasks it can
            fair = [r for r in rows if r["test_id"] in ground_truth_verifies]
            row["on_tasks_whose_ground_truth_verifies_here"] = {
                "tasks": len(ground_truth_verifies),
                "paper_successes": len(fair),
                "verify_here_and_pass_paper_check": _verified_and(fair, "paper_check"),
                "verify_here_and_pass_strict_check": _verified_and(fair, "strict_check"),
            }
        published.append(row)
        print(row, flush=True)

    rate = sum(both) / len(tasks)
    targets = [
        {"name": "self_check_ground_truths_verify_and_pass_strict_check", "value": round(rate, 4),
         "target": ">= 0.90 (Dafny 2.3.0 through the compatibility layer)", "holds": rate >= 0.9},
        {"name": "strict_check_rejects_cheat_corpus", "value": f"{cheats_rejected}/{len(CHEATS)}",
         "target": "all of >= 20", "holds": cheats_rejected == len(CHEATS) >= 20},
        {"name": "strict_check_accepts_every_verifying_ground_truth", "value": f"{strict_accepts_verifying}/{len(verifying)}",
         "target": "all", "holds": strict_accepts_verifying == len(verifying)},
    ]  # fmt: skip
    if one is not None:
        targets.append({"name": "verify_throughput_2_workers_vs_1", "value": round(one / two, 2), "target": ">= 1.8",
                        "holds": one / two >= 1.8})  # fmt: skip
    measurements = {
        "tasks": len(tasks), "dafny": verifier.version, "legacy_compatibility_layer": verifier.legacy,
        "ground_truths_verified": sum(v.ok for v in verdicts), "strict_check_accepted": sum(accepted),
        "verified_and_accepted": sum(both),
        "verdicts": dict(Counter(v.status for v in verdicts)), "failures": failures,
        "seconds_2_workers": round(two, 1), "seconds_1_worker": None if one is None else round(one, 1),
        "cheat_corpus": {"cheats": len(CHEATS), "rejected_by_strict": cheats_rejected,
                         "honest": len(HONEST), "honest_accepted": honest_accepted,
                         "accepted_by_paper_check": paper_misses},
        "data_defects": dict(Counter(d.kind for t in tasks for d in data_defects(t))),
        "published": published,
    }  # fmt: skip
    command = "python benchmarks/dafnybench_harness.py" + (
        " --verify-published" if args.verify_published else ""
    )
    path = write_results("dafnybench", command, targets, measurements)
    print(f"self-check {sum(both)}/{len(tasks)} = {100 * rate:.1f}%; wrote {path}")


if __name__ == "__main__":
    main()
