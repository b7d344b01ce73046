"""Running the Dafny verifier: found on PATH or given, its version detected, each program verified in
a private temporary directory under a wall-clock limit and CPU/memory limits, verdicts parsed and
cached by content hash, many programs verified in parallel (process pool, or Ray).

Legacy verifiers (Dafny 2.x/3.x, e.g. Debian's 2.3.0) get Dafny 4 programs through the
compatibility layer (`compat.to_legacy`) first. Debian's 2.3.0 pairs Dafny with a newer Z3 that
rejects one option, printing "Prover error: ... unknown parameter 'model_compress'" and the list of
legal parameters on every run: harmless, and dropped before anyone (a model included) sees it.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from intelligible.core.errors import ConfigError, MissingDependencyError
from intelligible.core.runs import atomic_write_text
from intelligible.core.threads import single_thread_worker
from intelligible.dafnybench.source import has_code

INSTALL_HINT = (
    "install it with `apt-get install -y dafny` (Debian/Ubuntu) or from "
    "https://github.com/dafny-lang/dafny/releases, or pass its path with --dafny"
)
STATUSES = ("verified", "failed", "parse_error", "resolution_error", "timeout", "out_of_memory", "crash")
EXECUTORS = ("process", "ray")
_SUMMARY = re.compile(
    r"Dafny program verifier finished with (\d+) verified, (\d+) errors?"
    r"(?:, (\d+) time outs?)?(?:, (\d+) out of resource)?"
)
_PARSE = re.compile(r"(\d+) parse errors? detected in")
_RESOLUTION = re.compile(r"(\d+) resolution/type errors? detected in")
FILE_NAME = "program.dfy"
MAX_TIME_LIMIT = 24 * 3600.0  # seconds: a day per program is already far past any sensible run
MAX_MEMORY_MB = 1 << 20


def check_seconds(name: str, value: object, maximum: float = MAX_TIME_LIMIT) -> float:
    """`value` as a time limit in seconds: a finite number in (0, maximum]; ConfigError otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number of seconds, got {str(value)[:80]!r}")
    if not 0 < value <= maximum:
        raise ConfigError(f"{name} must be > 0 and at most {maximum:g} seconds, got {value:g}")
    return float(value)


def find_dafny(path: str | os.PathLike | None = None) -> str:
    """The dafny executable: `path` if given (it must exist), else `dafny` on PATH."""
    if path is not None:
        candidate = Path(path)
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
        found = shutil.which(str(path))
        if found:
            return found
        raise MissingDependencyError(f"dafny not found at {path}: {INSTALL_HINT}")
    found = shutil.which("dafny")
    if found is None:
        raise MissingDependencyError(f"dafny is not installed (not on PATH): {INSTALL_HINT}")
    return found


def dafny_version(binary: str) -> str:
    """The verifier's version, e.g. "2.3.0.10506" or "4.8.0"."""
    for args in (["--version"], ["/version"]):
        try:
            run = subprocess.run([binary, *args], capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise MissingDependencyError(f"could not run {binary}: {error}") from error
        match = re.search(r"(\d+\.\d+\.\d+(?:\.\d+)?)", run.stdout + run.stderr)
        if match:
            return match.group(1)
    raise MissingDependencyError(f"{binary} did not report a Dafny version: {INSTALL_HINT}")


def is_legacy(version: str) -> bool:
    """Dafny before 4 reads `function` as ghost and has no `for` loops: programs need `to_legacy`."""
    return int(version.split(".")[0]) < 4


def clean_output(text: str) -> str:
    """Verifier output without known solver noise (see the module docstring) and the banner."""
    lines = text.splitlines()
    kept: list[str] = []
    skipping = False
    for line in lines:
        if "unknown parameter 'model_compress'" in line:
            skipping = True
            continue
        if skipping:
            if line.startswith("Legal parameters are") or line.startswith("  "):
                continue
            skipping = False
        if re.fullmatch(r"Dafny \d+\.\d+\.\d+(\.\d+)?", line.strip()):
            continue
        kept.append(line)
    return "\n".join(kept).strip()


@dataclass
class Verdict:
    """What the verifier said about one program."""

    status: str  # one of STATUSES
    verified: int = 0
    errors: int = 0
    messages: list[str] = field(default_factory=list)  # the error lines, noise removed
    output: str = ""
    seconds: float = 0.0
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "verified"

    def to_dict(self) -> dict:
        return asdict(self)


def parse_output(text: str, returncode: int | None = 0) -> Verdict:
    """A verdict from Dafny's (cleaned) output."""
    messages = [line for line in text.splitlines() if re.search(r"\bError\b", line)]
    if _PARSE.search(text):
        return Verdict("parse_error", messages=messages, output=text)
    if _RESOLUTION.search(text):
        return Verdict("resolution_error", messages=messages, output=text)
    summary = _SUMMARY.search(text)
    if 'error "out of memory"' in text:  # z3 hit the memory limit; Boogie then reports the VC as inconclusive
        return Verdict("out_of_memory", messages=messages or ["the solver ran out of memory"], output=text)
    if summary is None:
        return Verdict("crash", messages=messages or text.splitlines()[-5:], output=text)
    verified, errors = int(summary.group(1)), int(summary.group(2))
    timeouts = int(summary.group(3) or 0) + int(summary.group(4) or 0)
    if timeouts:
        status = "timeout"
    elif errors == 0:
        status = "verified"
    else:
        status = "failed"
    return Verdict(status, verified=verified, errors=errors, messages=messages, output=text)


def _limits(cpu_seconds: int, memory_mb: int):  # noqa: ANN202
    def apply() -> None:
        import resource

        os.setsid()  # its own process group: a timeout kills z3 too
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
        if memory_mb:
            # the data segment, not the address space: Mono reserves far more address space than it uses
            limit = memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    return apply


@dataclass
class Verifier:
    """`Verifier().verify(source)`: verify one Dafny program; `verify_many` for lists."""

    dafny: str | None = None
    time_limit: float = 120.0  # wall-clock seconds per program (the paper's runs used 15 s; Mono is slower)
    solver_time_limit: int = 60  # seconds per verification condition (/timeLimit)
    memory_mb: int = 4096
    cache_dir: str | os.PathLike | None = None
    legacy: bool | None = None  # None: from the version
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.time_limit = check_seconds("time_limit", self.time_limit)
        check_seconds("solver_time_limit", self.solver_time_limit)
        if not isinstance(self.solver_time_limit, int) or isinstance(self.solver_time_limit, bool):
            raise ConfigError(
                f"solver_time_limit must be a whole number of seconds, got {self.solver_time_limit!r}"
            )
        if (
            isinstance(self.memory_mb, bool)
            or not isinstance(self.memory_mb, int)
            or not 0 <= self.memory_mb <= MAX_MEMORY_MB
        ):
            raise ConfigError(
                f"memory_mb must be a whole number in 0..{MAX_MEMORY_MB} (0: no limit), got {self.memory_mb!r}"
            )
        self.binary = find_dafny(self.dafny)
        self.version = dafny_version(self.binary)
        if self.legacy is None:
            self.legacy = is_legacy(self.version)

    # -------------------------------------------------------------------------------- one program
    def command(self, file: str, *, resolve_only: bool = False) -> list[str]:
        if self.legacy:
            check = ["/noVerify"] if resolve_only else [f"/timeLimit:{self.solver_time_limit}"]
            return [self.binary, "/compile:0", "/nologo", *check, *self.extra_args, file]
        if resolve_only:
            return [self.binary, "resolve", *self.extra_args, file]
        return [self.binary, "verify", "--verification-time-limit", str(self.solver_time_limit),
                *self.extra_args, file]  # fmt: skip

    def key(self, source: str, resolve_only: bool = False) -> str:
        text = json.dumps([self.version, self.legacy, self.solver_time_limit, self.time_limit, self.extra_args,
                           resolve_only, source])  # fmt: skip
        return hashlib.sha256(text.encode()).hexdigest()

    def prepare(self, source: str, *, deadline: float | None = None) -> str:
        """What is actually given to the verifier: through the compatibility layer for legacy ones.
        `deadline` (a `time.monotonic()` value): past it, `compat.CompatTimeout` is raised."""
        if self.legacy:
            from intelligible.dafnybench.compat import to_legacy

            return to_legacy(source, deadline=deadline)
        return source

    def parse(self, source: str) -> Verdict:
        """Parse and resolve `source` without verifying it ("verified" here means it resolves)."""
        return self.verify(source, resolve_only=True)

    def verify(self, source: str, *, resolve_only: bool = False) -> Verdict:
        """Verify `source` (Dafny 4 syntax); cached by content when a cache directory is set."""
        cache_file = (
            Path(self.cache_dir) / f"{self.key(source, resolve_only)}.json" if self.cache_dir else None
        )
        if cache_file is not None and cache_file.is_file():
            try:
                verdict = Verdict(**json.loads(cache_file.read_text()))
                verdict.cached = True
                return verdict
            except (json.JSONDecodeError, TypeError):
                pass  # a damaged cache entry is recomputed
        verdict = self._prepare_and_run(source, resolve_only)
        if cache_file is not None and verdict.status != "crash" and _LAYER_TIMEOUT not in verdict.messages:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(cache_file, json.dumps(verdict.to_dict()))
        return verdict

    def _prepare_and_run(self, source: str, resolve_only: bool) -> Verdict:
        """The compatibility layer and the verifier, both inside the one wall-clock time limit."""
        from intelligible.dafnybench.compat import CompatTimeout

        start = time.perf_counter()
        if not has_code(source):
            return Verdict(
                "parse_error", messages=["the program is empty: no code outside comments, nothing to verify"]
            )
        try:
            program = self.prepare(source, deadline=time.monotonic() + self.time_limit)
        except CompatTimeout:
            return Verdict("timeout", messages=[_LAYER_TIMEOUT], seconds=time.perf_counter() - start)
        remaining = self.time_limit - (time.perf_counter() - start)
        if remaining <= 0:
            return Verdict("timeout", messages=[_LAYER_TIMEOUT], seconds=time.perf_counter() - start)
        verdict = self._run(program, resolve_only, remaining)
        verdict.seconds = time.perf_counter() - start
        return verdict

    def _run(self, program: str, resolve_only: bool = False, time_limit: float | None = None) -> Verdict:
        start = time.perf_counter()
        time_limit = self.time_limit if time_limit is None else time_limit
        with tempfile.TemporaryDirectory(prefix="dafny-") as folder:
            path = Path(folder) / FILE_NAME
            path.write_text(program)
            process = subprocess.Popen(
                self.command(FILE_NAME, resolve_only=resolve_only), cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                preexec_fn=_limits(int(time_limit) + 1, self.memory_mb),
                env={**os.environ, "HOME": folder, "DOTNET_CLI_TELEMETRY_OPTOUT": "1"},
            )  # fmt: skip
            try:
                raw, _ = process.communicate(timeout=time_limit)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                raw, _ = process.communicate()
                text = clean_output(raw or "")
                return Verdict("timeout", output=text, messages=[f"verifier killed after {self.time_limit:g} s"],
                               seconds=time.perf_counter() - start)  # fmt: skip
        text = clean_output(raw)
        verdict = parse_output(text, process.returncode)
        if resolve_only and verdict.status == "crash" and "did not attempt verification" in text:
            verdict.status = "verified"  # resolved; verification was not asked for
        if verdict.status == "crash" and process.returncode is not None and process.returncode < 0:
            if -process.returncode in (signal.SIGXCPU, signal.SIGKILL):
                verdict.status = "timeout"
            verdict.messages.append(f"verifier ended by signal {-process.returncode}")
        verdict.seconds = time.perf_counter() - start
        return verdict

    # -------------------------------------------------------------------------------- many programs
    def parse_many(self, sources: list[str], *, workers: int = 2) -> list[Verdict]:
        """`parse` for many programs, in order."""
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        if workers == 1 or len(sources) <= 1:
            return [self.parse(source) for source in sources]
        with ProcessPoolExecutor(max_workers=workers, initializer=single_thread_worker) as pool:
            return list(pool.map(self.parse, sources, chunksize=1))

    def verify_many(
        self, sources: list[str], *, workers: int = 2, executor: str = "process"
    ) -> list[Verdict]:
        """Verdicts for many programs, in order; cached ones are not re-run."""
        if executor not in EXECUTORS:
            raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        if workers == 1 or len(sources) <= 1:
            return [self.verify(source) for source in sources]
        if executor == "ray":
            return self._verify_ray(sources, workers)
        with ProcessPoolExecutor(max_workers=workers, initializer=single_thread_worker) as pool:
            return list(pool.map(self.verify, sources, chunksize=1))

    def _verify_ray(self, sources: list[str], workers: int) -> list[Verdict]:
        try:
            import ray
        except ImportError as error:
            raise MissingDependencyError(
                "--executor ray needs ray: pip install 'intelligible[dist]'"
            ) from error
        if not ray.is_initialized():
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        remote = ray.remote(num_cpus=1)(lambda verifier, source: verifier.verify(source))
        return ray.get([remote.remote(self, source) for source in sources])


_LAYER_TIMEOUT = "the compatibility layer used up the time limit before the verifier could start"


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
