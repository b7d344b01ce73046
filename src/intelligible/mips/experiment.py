"""MIPS end to end: `solve` one task (train the smallest RNN, read its states, regress, emit, verify),
`benchmark` many tasks in parallel with a per-task cache, and `reproduce` (the paper's headline count).

Four sets per task, each from its own seeded stream (`tasks.splits`): the RNN trains on `train`;
every choice (when training stops, which architecture, which simplification, which candidate
program) is made on `validation`; the chosen program is then run, once, on the untouched `test`
split and on `long` sequences (`long_factor` times the training length). A task is solved only when
the chosen program is right on every test and every long sequence.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from intelligible.core.config import config_to_dict
from intelligible.core.errors import ConfigError, DataError, OutputError
from intelligible.core.memory import check_fits
from intelligible.core.progress import progress
from intelligible.core.report import Claim, Report
from intelligible.core.runs import atomic_write_text, ensure_writable_dir
from intelligible.core.threads import single_thread_worker
from intelligible.mips.extract import hidden_trace, read_fsm, read_lattice, read_shift_register
from intelligible.mips.limits import architectures, derive_limits
from intelligible.mips.program import Program, check, programs_from_trace, verify
from intelligible.mips.rnn import RNN, sequence_accuracy, smallest_rnn
from intelligible.mips.simplify import integer_krylov_form, quantize_weights, sparsify
from intelligible.mips.tasks import Splits, Task, get_task, load_task_file, splits, task_names

PAPER = "Michaud et al. 2024, Opening the AI black box: program synthesis via mechanistic interpretability"
# what the paper reports over the 62 tasks
PAPER_SOLVED, GPT4_LENIENT, GPT4_STRICT = 32, 30, 20
# representative tasks for the quick preset (a parity, two sums, a memory), few enough for its share of
# `make demo` (docs/design.md)
QUICK_TASKS = ("Parity_Last2", "Sum_All", "Sum_Last2", "Prev1")
EXECUTORS = ("process", "ray")
SEED_LIMIT = 2**32  # torch and numpy seeds; one message for --seed and --seeds alike
MAX_STEPS = 10_000_000  # training steps per RNN: far past any use, short of a typo like 1e30
MAX_WORKERS = 1024
MAX_LONG_FACTOR = 100.0
# bytes per generated value: int64 inputs/outputs, their float32 copies for torch, and headroom
# for the temporaries of generation (cumulative sums) and evaluation
_BYTES_PER_VALUE = 32
# settings that only say how to split a task file (absent from a named task's runs)
_FILE_ONLY = ("file_holdout",)
# settings that only apply to a named task (a task file brings its own sequences)
_TASK_ONLY = ("n_train", "n_val", "n_test", "n_long", "long_factor", "length")


@dataclass
class MipsConfig:
    """How hard to try on each task, and how much to verify on."""

    n_train: int = 8192
    n_val: int = 10000  # validation: stops training, picks the RNN, the simplification and the program
    n_test: int = 10000  # untouched test split: the chosen program is verified on it, in full, once
    n_long: int = 1000  # sequences long_factor x longer than training, verified likewise (0: none)
    long_factor: float = 3.0
    n_extract: int = 1000  # training sequences whose hidden states are read
    steps: int = 2000  # training steps per RNN tried
    seeds: tuple[int, ...] = (0, 1)
    length: int = 0  # 0: each task's own length
    seed: int = 0
    file_holdout: float = 0.2  # task files: this fraction for validation and as much again for test
    workers: int = 2
    executor: str = "process"

    def validate(self) -> None:
        """Raise ConfigError for any value out of range (before anything is generated or written)."""
        for name in ("n_train", "n_val", "n_test", "n_extract", "steps"):
            _check_int(name, getattr(self, name), low=1)
        _check_int("n_long", self.n_long, low=0)
        _check_int("length", self.length, low=0)
        _check_int("steps", self.steps, low=1, high=MAX_STEPS)
        _check_int("workers", self.workers, low=1, high=MAX_WORKERS)
        check_seed(self.seed)
        if not isinstance(self.seeds, tuple | list) or not self.seeds:
            raise ConfigError("seeds must list at least one seed, e.g. --seeds 0,1")
        for value in self.seeds:
            check_seed(value, option="seeds")
        _check_float("long_factor", self.long_factor, above=1.0, high=MAX_LONG_FACTOR)
        _check_float("file_holdout", self.file_holdout, above=0.0, below=0.5)
        if self.executor not in EXECUTORS:
            raise ConfigError(
                f"executor must be one of {', '.join(EXECUTORS)}, got {str(self.executor)[:80]!r}"
            )


def check_seed(value: object, option: str = "seed") -> int:
    """A seed in [0, 2^32), or ConfigError: the same rule and message for --seed and --seeds."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= value < SEED_LIMIT:
        shown = str(value)[:80]
        raise ConfigError(f"{option}: a seed must be a whole number from 0 to 2^32 - 1, got {shown}")
    return int(value)


def _check_int(name: str, value: object, *, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"{name} must be a whole number, got {str(value)[:80]!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"from {low} to {high:,}"
        raise ConfigError(f"{name} must be {bound}, got {str(value)[:80]}")


def _check_float(name: str, value: object, *, above: float, below: float | None = None,
                 high: float | None = None) -> None:  # fmt: skip
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and value > above and (below is None or value < below) and (high is None or value <= high)
    if not ok:
        limit = f"below {below}" if below is not None else f"at most {high}"
        raise ConfigError(f"{name} must be a finite number above {above} and {limit}, got {str(value)[:80]}")


def long_length(task: Task, cfg: MipsConfig) -> int | None:
    """The length of the longer verification sequences: long_factor x the training length, within
    what the task allows; None when it allows nothing longer (or n_long is 0)."""
    length = cfg.length or task.length
    wanted = int(round(cfg.long_factor * length))
    if task.max_length is not None:
        wanted = min(wanted, task.max_length)
    return wanted if cfg.n_long and wanted > length else None


def estimate_bytes(cfg: MipsConfig, task: Task) -> int:
    """Memory the generated sequences of one task need, about (validation/test evaluate in batches)."""
    values = task.input_dim + task.output_dim
    length = cfg.length or task.length
    sequences = (cfg.n_train + cfg.n_val + cfg.n_test) * length + cfg.n_long * (long_length(task, cfg) or 0)
    return sequences * values * _BYTES_PER_VALUE


def check_memory(cfg: MipsConfig, tasks: list[Task], *, at_once: int = 1) -> None:
    """ConfigError, before anything is allocated, when `at_once` of the largest of `tasks` would not fit."""
    if not tasks:
        return
    largest = max(tasks, key=lambda task: estimate_bytes(cfg, task))
    workers = f" ({at_once} workers at once)" if at_once > 1 else ""
    check_fits(
        estimate_bytes(cfg, largest) * at_once,
        f"{largest.name}: the sequences{workers}",
        "lower --n-train, --n-val, --n-test, --n-long or --length (or --workers)",
    )


def solve(name: str, cfg: MipsConfig | None = None) -> dict:
    """Train, read, regress, emit and verify one task (one of the 62 or a family member beyond them)."""
    cfg = cfg or MipsConfig()
    cfg.validate()
    task = get_task(name)
    if cfg.length:
        task._check_length(cfg.length)  # a too-long --length fails before the memory estimate
    check_memory(cfg, [task])
    data = splits(task, cfg.n_train, cfg.n_val, cfg.n_test, cfg.seed, length=cfg.length or None,
                  n_long=cfg.n_long, long_length=long_length(task, cfg))  # fmt: skip
    return solve_arrays(name, data, cfg=cfg)


def solve_file(path: str | Path, cfg: MipsConfig | None = None) -> dict:
    """`solve` for a user's task file (.npz or .json with inputs and outputs). Its last
    `file_holdout` of sequences are the untouched test split, the same share before them the
    validation split, the rest training; a file has one length, so there is no long set."""
    cfg = cfg or MipsConfig()
    cfg.validate()
    inputs, outputs = load_task_file(path)
    held = max(1, int(round(len(inputs) * cfg.file_holdout)))
    if len(inputs) - 2 * held < 1:
        raise DataError(
            f"{path}: {len(inputs)} sequences are too few to hold out validation and test sequences "
            f"({held} each at --file-holdout {cfg.file_holdout}); give at least 3"
        )
    cut, last = len(inputs) - 2 * held, len(inputs) - held
    data = Splits(train=(inputs[:cut], outputs[:cut]), validation=(inputs[cut:last], outputs[cut:last]),
                  test=(inputs[last:], outputs[last:]), long=None)  # fmt: skip
    return solve_arrays(Path(path).stem, data, cfg=cfg)


def solve_arrays(name: str, data: Splits, *, cfg: MipsConfig) -> dict:
    """The MIPS pipeline on arrays (n, T, d): smallest RNN, simplification, state reading, programs,
    each choice on the validation split; then the chosen program checked on the test and long sets."""
    start = time.perf_counter()
    (x_train, y_train), (x_val, y_val) = data.train, data.validation
    limits = derive_limits(x_train, y_train)
    record: dict = {"task": name, "solved": False, "rnn": None, "method": None, "program_length": None,
                    "program": None, "reason": None, "limits": limits.to_dict(),
                    "verification": {"validation": None, "test": None, "long": None}}  # fmt: skip
    result, tried = smallest_rnn(x_train.shape[-1], y_train.shape[-1], (x_train, y_train), (x_val, y_val),
                                 architectures=architectures(limits), seeds=cfg.seeds, steps=cfg.steps)  # fmt: skip
    record["rnn_tries"] = tried
    if result is None:
        record.update(reason="no RNN reached 100% validation accuracy", seconds=time.perf_counter() - start)
        return record
    model = result.model
    record["rnn"] = {
        "hidden": model.hidden,
        "f_depth": model.f_depth,
        "g_depth": model.g_depth,
        "width": model.width,
    }
    x_read = x_train[: cfg.n_extract]
    readers: list[dict] = []
    failures: list[int | None] = []
    candidates_seen = 0

    def attempt(label: str, version: RNN | None) -> Program | None:
        """Read one version of the RNN, regress, and return its first program right on all validation."""
        nonlocal candidates_seen
        if version is None:
            return None
        hidden, predicted = hidden_trace(version, x_read)
        candidates: list[Program] = []
        for reader in (read_fsm, read_lattice, read_shift_register):
            try:
                trace = reader(version, hidden, x_read, predicted)
            except (np.linalg.LinAlgError, ArithmeticError, ValueError) as error:
                # a numerically degenerate RNN defeats one reader; the others may still read it
                readers.append(
                    {"rnn": label, "reader": reader.__name__, "found": False, "error": repr(error)}
                )
                continue
            readers.append({"rnn": label, "reader": reader.__name__, "found": trace is not None,
                            **(trace.detail if trace is not None else {})})  # fmt: skip
            if trace is not None:
                candidates += programs_from_trace(trace)
        candidates_seen += len(candidates)
        for program in sorted(candidates, key=lambda p: len(p.source)):
            ok, bad = verify(program, x_val, y_val)
            if ok:
                return program
            failures.append(bad)
        return None

    # simplified versions first (their states are crisper), the trained RNN itself, and if none of
    # them reads into a program right on the validation split, an L1-sparsified retrained copy and
    # its simplifications; every acceptance is judged on the validation split
    versions = [("integer-krylov", lambda: integer_krylov_form(model, x_val, y_val)),
                ("quantized", lambda: quantize_weights(model, x_val, y_val)), ("trained", lambda: model)]  # fmt: skip
    program = None
    for label, make in versions:
        program = attempt(label, make())
        if program is not None:
            break
    if program is None:
        sparse = sparsify(model, (x_train, y_train), (x_val, y_val), seed=model.seed)
        if sparse is not None:
            for label, make in (("sparse-integer-krylov", lambda: integer_krylov_form(sparse, x_val, y_val)),
                                ("sparse-quantized", lambda: quantize_weights(sparse, x_val, y_val)),
                                ("sparse", lambda: sparse)):  # fmt: skip
                program = attempt(label, make())
                if program is not None:
                    break
    record["state_readers"] = readers
    record["rnn_accuracy"] = _rnn_accuracy(model, data)
    if program is None:
        if not candidates_seen:
            record["reason"] = "no finite-state machine or integer lattice with formulas for every rule"
        else:
            record["reason"] = (
                f"every candidate program failed a validation sequence (first failures: {failures[:5]})"
            )
    else:
        record.update(method=program.method, program_length=program.length, program=program.source)
        record["solved"], record["reason"] = _final_verification(program, data, record["verification"])
    record["seconds"] = time.perf_counter() - start
    return record


def _final_verification(program: Program, data: Splits, verification: dict) -> tuple[bool, str | None]:
    """Run the chosen program, once, on the untouched test split and on the long sequences."""
    verification["validation"] = check(program, *data.validation)
    test = verification["test"] = check(program, *data.test)
    long = verification["long"] = check(program, *data.long) if data.long is not None else None
    if test["wrong"]:
        return False, (
            f"the program chosen on the validation split is wrong on {test['wrong']} of {test['sequences']} "
            f"untouched test sequences (first: {test['first_wrong']})"
        )
    if long is not None and long["wrong"]:
        return False, (
            f"right on all {test['sequences']} test sequences but wrong on {long['wrong']} of "
            f"{long['sequences']} longer sequences (length {long['length']}; first: {long['first_wrong']})"
        )
    return True, None


def _rnn_accuracy(model: RNN, data: Splits) -> dict:
    """The trained RNN's own sequence accuracy on each held-out set (evaluation only)."""
    sets = {"validation": data.validation, "test": data.test, "long": data.long}
    found = {}
    for key, pair in sets.items():
        if pair is None:
            found[key] = None
            continue
        x, y = (torch.as_tensor(a, dtype=torch.float32) for a in pair)
        found[key] = round(sequence_accuracy(model, x, y), 6)
    return found


def _solve_in_worker(args: tuple[str, dict]) -> dict:
    name, cfg = args
    torch.set_num_threads(1)  # one task per core; intra-op threads would only fight each other
    config = MipsConfig(**{**cfg, "seeds": tuple(cfg["seeds"])})
    try:
        return solve(name, config)
    except Exception as error:  # noqa: BLE001 - one task's crash must not lose the others' results
        return {"task": name, "solved": False, "reason": f"crashed: {error!r}"}


def benchmark(tasks: list[str] | None, cfg: MipsConfig, out_dir: str | Path, *, cache_dir: str | Path | None = None,
              show_progress: bool | None = None, notify: Callable[[str], None] | None = None) -> list[dict]:  # fmt: skip
    """Solve many tasks in parallel; each finished task is cached in `cache_dir` (default
    OUT/tasks/<name>.json), so a rerun resumes. A cached file that cannot be read (truncated,
    garbage, not a MIPS result) is recomputed, and `notify` (default: stderr) is told which."""
    cfg.validate()
    names = list(tasks) if tasks else task_names()
    chosen = [get_task(name) for name in names]  # unknown names fail before any work
    if cfg.length:
        for task in chosen:
            task._check_length(cfg.length)
    check_memory(cfg, chosen, at_once=1 if cfg.executor == "ray" else min(cfg.workers, len(chosen)))
    folder = Path(cache_dir) if cache_dir is not None else Path(out_dir) / "tasks"
    for place in (folder, *folder.parents):
        if place.exists() and not place.is_dir():
            raise OutputError(f"cache folder {str(folder)[:80]} cannot be made: {str(place)[:80]} is a file; "
                              "give a folder (--cache-dir or --out)")  # fmt: skip
    out = ensure_writable_dir(folder)
    say = notify or (lambda text: print(text, file=sys.stderr))
    settings = config_to_dict(cfg)
    for key in ("workers", "executor", *_FILE_ONLY):
        settings.pop(key)  # how the work is spread does not change a task's result
    results: dict[str, dict] = {}
    todo = []
    for name in names:
        cached = _read_cached(out / f"{name}.json", name, settings, say)
        if cached is not None:
            results[name] = cached
        else:
            todo.append(name)
    payload = asdict(cfg)

    def keep(record: dict) -> None:
        results[record["task"]] = record
        atomic_write_text(
            out / f"{record['task']}.json", json.dumps({"config": settings, "result": record}, indent=1)
        )

    bar = progress(
        total=len(todo), desc="mips tasks", disable=None if show_progress is None else not show_progress
    )
    if cfg.executor == "ray":
        for record in _run_ray(todo, payload):
            keep(record)
            bar.update(1)
    elif cfg.workers == 1 or len(todo) <= 1:
        for name in todo:
            keep(_solve_in_worker((name, payload)))
            bar.update(1)
    else:
        with ProcessPoolExecutor(
            max_workers=min(cfg.workers, len(todo)), initializer=single_thread_worker
        ) as pool:
            # kept as each finishes, so an interruption loses only the tasks still running
            futures = [pool.submit(_solve_in_worker, (name, payload)) for name in todo]
            for future in as_completed(futures):
                keep(future.result())
                bar.update(1)
    bar.close()
    return [results[name] for name in names]


def _read_cached(path: Path, name: str, settings: dict, say: Callable[[str], None]) -> dict | None:
    """The cached result of `name` made with `settings`, or None (absent, other settings, unreadable)."""
    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = " ".join(str(error).split())[:80]
        say(f"warning: cached result {path} is unreadable ({reason}); recomputing {name}")
        return None
    result = saved.get("result") if isinstance(saved, dict) else None
    if (
        not isinstance(result, dict)
        or result.get("task") != name
        or not isinstance(result.get("solved"), bool)
    ):
        say(f"warning: cached result {path} is not a MIPS result for {name}; recomputing {name}")
        return None
    return result if saved.get("config") == settings else None


def _run_ray(names: list[str], payload: dict):  # noqa: ANN202 - a generator of records
    try:
        import ray
    except ImportError:
        from intelligible.core.errors import MissingDependencyError

        raise MissingDependencyError("--executor ray needs ray: pip install 'intelligible[dist]'") from None
    ray.init(ignore_reinit_error=True, include_dashboard=False)
    remote = ray.remote(_solve_in_worker)
    pending = [remote.remote((name, payload)) for name in names]
    while pending:  # yield each task as it finishes, like the process pool
        done, pending = ray.wait(pending, num_returns=1)
        yield ray.get(done[0])


def preset_config(preset: str) -> tuple[list[str], MipsConfig]:
    if preset == "quick":
        # validation as large as the training set; the test and long checks are evaluation only
        return list(QUICK_TASKS), MipsConfig(n_train=4096, n_val=4096, n_test=4096, n_long=1000, steps=1500,
                                             seeds=(0,))  # fmt: skip
    if preset == "paper":
        return task_names(), MipsConfig()
    raise ConfigError(f"unknown preset {preset!r}; valid presets: quick, paper")


def reproduce(
    preset: str = "quick", out_dir: str | Path = "runs/mips", *, workers: int | None = None
) -> Report:
    """Solve the preset's tasks and compare the solved count with the paper's MIPS and GPT-4."""
    names, cfg = preset_config(preset)
    if workers:
        cfg = replace(cfg, workers=workers)
    start = time.perf_counter()
    records = benchmark(names, cfg, out_dir)
    solved = [r for r in records if r.get("solved")]
    test_only = [r for r in records if _passed(r, "test")]
    untouched = f"right on every sequence of an untouched test split and of sequences {cfg.long_factor:g}x longer than training"
    if preset == "paper":
        claim = Claim(
            statement=f"MIPS solves 32 of the 62 tasks (GPT-4: 30 lenient, 20 strict); our target: at least 40, "
            f"each {untouched}",
            paper_value=f"{PAPER_SOLVED}/62", measured_value=f"{len(solved)}/{len(records)}",
            holds=len(solved) >= 40,
        )  # fmt: skip
    else:
        claim = Claim(
            statement=f"programs {untouched}, for the {len(records)} quick tasks (at least 60%)",
            paper_value=f"{PAPER_SOLVED}/62 over the whole benchmark", measured_value=f"{len(solved)}/{len(records)}",
            holds=len(solved) >= 0.6 * len(records),
        )  # fmt: skip
    rows = [
        {"task": r["task"], "solved": r.get("solved", False), "rnn": _rnn_text(r.get("rnn")),
         "method": r.get("method") or "", "program_lines": r.get("program_length") or "",
         "test": _verified_text(r, "test"), "long": _verified_text(r, "long"),
         "seconds": round(r.get("seconds", 0.0), 1), "reason": r.get("reason") or ""}
        for r in records
    ]  # fmt: skip
    report = Report(study="mips", title="MIPS: RNNs distilled into verified Python programs", preset=preset,
                    claims=[claim], tables={"tasks": rows},
                    notes=f"{len(solved)}/{len(records)} tasks solved: the program chosen on the validation "
                          f"split was right on every untouched test sequence ({len(test_only)} tasks) and on every "
                          f"longer sequence. {PAPER}.",
                    elapsed_s=round(time.perf_counter() - start, 1))  # fmt: skip
    report.save(out_dir)
    return report


def _rnn_text(rnn: dict | None) -> str:
    if not rnn:
        return ""
    return f"h={rnn['hidden']} f{rnn['f_depth']} g{rnn['g_depth']}"


def _passed(record: dict, key: str) -> bool:
    found = (record.get("verification") or {}).get(key)
    return bool(found) and found["wrong"] == 0


def _verified_text(record: dict, key: str) -> str:
    """`10000/10000` (right/all) of one verification set, or '' when there was none."""
    found = (record.get("verification") or {}).get(key)
    if not found:
        return ""
    return f"{found['sequences'] - found['wrong']}/{found['sequences']}"


def verification_lines(record: dict) -> list[str]:
    """What the chosen program was checked on, for the CLI: one line per untouched set."""
    lines = []
    for key, label in (("test", "untouched test sequences"), ("long", "longer sequences")):
        found = (record.get("verification") or {}).get(key)
        if found:
            lines.append(f"# {key}: right on {found['sequences'] - found['wrong']}/{found['sequences']} {label} "
                         f"(length {found['length']})")  # fmt: skip
    if record.get("program") and not (record.get("verification") or {}).get("long"):
        lines.append("# long: none (the task allows no longer sequences, or --n-long 0, or a task file)")
    return lines


def describe(records: list[dict]) -> str:
    """One line per task, for the CLI: status, RNN, method, test and long verification, reason."""
    lines = []
    for r in records:
        status = "solved" if r.get("solved") else "unsolved"
        checks = f"test {_verified_text(r, 'test') or '-'}, long {_verified_text(r, 'long') or '-'}"
        lines.append(f"{r['task']:<26} {status:<9} {_rnn_text(r.get('rnn')):<12} {r.get('method') or '':<6} "
                     f"{checks:<32} {r.get('reason') or ''}")  # fmt: skip
    return "\n".join(lines)
