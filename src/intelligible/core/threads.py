"""Thread counts that follow the CPUs this process may use, and waits that do not spin.

Torch (OpenMP, MKL) and numba size their thread pools from the machine's core count and, by
default, busy-wait between parallel regions. On a shared machine that oversubscribes: with one
other CPU-bound process on 2 cores, a 2-thread step waits at every barrier for a descheduled
thread while its partner spins. So:

- `available_cpus()` is the number of CPUs the process may really use: the environment override
  `INTELLIGIBLE_NUM_THREADS`, else the smaller of the affinity mask and the cgroup CPU quota.
- `set_env_defaults()` (run when `intelligible` is imported) sets `OMP_WAIT_POLICY=PASSIVE` and
  the OpenMP/MKL/numba thread counts in the environment, unless the user set them; it must run
  before torch or numba start their pools to take effect, which importing `intelligible` first does.
- `configure_threads()` applies the count to torch and numba when they are already loaded.
- `single_thread_worker()` is the initializer for process-pool workers: each uses one thread, so a
  pool of N workers uses N CPUs, not N times the machine.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from intelligible.core.errors import ConfigError

ENV_OVERRIDE = "INTELLIGIBLE_NUM_THREADS"
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def _override() -> int | None:
    raw = os.environ.get(ENV_OVERRIDE, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigError(f"{ENV_OVERRIDE} must be a positive whole number of threads, got {raw!r}")
    return value


def _affinity_cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def cgroup_cpu_limit(root: str | Path = "/sys/fs/cgroup") -> int | None:
    """CPUs allowed by the cgroup quota (v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), or None if unlimited."""
    root = Path(root)
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max" and float(period) > 0:
            return max(1, math.ceil(float(quota) / float(period)))
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = float((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = float((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    if quota_us > 0 and period_us > 0:
        return max(1, math.ceil(quota_us / period_us))
    return None


def available_cpus() -> int:
    """How many threads the library uses: the override, else min(affinity mask, cgroup quota)."""
    override = _override()
    if override is not None:
        return override
    cpus = _affinity_cpus()
    limit = cgroup_cpu_limit()
    return min(cpus, limit) if limit else cpus


def set_env_defaults() -> None:
    """Set thread counts and the passive wait policy in the environment, keeping what the user set."""
    try:
        count = str(available_cpus())
    except ConfigError:  # a bad override is reported when a command runs, not at import
        count = str(_affinity_cpus())
    if os.environ.get(ENV_OVERRIDE, "").strip() == "":
        # a count the user gave one library (OMP_NUM_THREADS=1, say) is meant for all of them
        count = next((os.environ[n] for n in _THREAD_VARIABLES if os.environ.get(n, "").strip()), count)
    for name in _THREAD_VARIABLES:
        os.environ.setdefault(name, count)
    # Idle OpenMP threads sleep instead of spinning for a while, which on a busy machine steals the
    # core from the very thread the others are waiting for.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("KMP_BLOCKTIME", "0")


def configure_threads(threads: int | None = None) -> int:
    """Use `threads` (default `available_cpus()`) in torch and numba if loaded; return the count."""
    count = available_cpus() if threads is None else int(threads)
    if count < 1:
        raise ConfigError(f"the number of threads must be at least 1, got {count}")
    numba = sys.modules.get("numba")
    if numba is not None and hasattr(numba, "set_num_threads"):
        # numba cannot grow past the pool size fixed when it was first loaded
        numba.set_num_threads(max(1, min(count, numba.config.NUMBA_NUM_THREADS)))
    # torch last: numba's OpenMP layer shares the OpenMP runtime, and setting its count resets the
    # one torch reports and uses (torch 1 -> numba 1 left torch at 2)
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads") and torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count


def single_thread_worker() -> None:
    """Process-pool initializer: the worker and anything it loads use one thread."""
    for name in _THREAD_VARIABLES:
        os.environ[name] = "1"
    os.environ[ENV_OVERRIDE] = "1"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    configure_threads(1)
