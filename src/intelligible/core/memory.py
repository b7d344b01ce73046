"""How much memory a run may use, so a config that cannot fit is refused before anything loads.

`available_memory()` is the smaller of the machine's available memory (MemAvailable) and what the
process's cgroup still allows; None where neither can be read (the check is then skipped).
`check_fits(needed, what, hint)` raises a ConfigError when an estimate exceeds it.
"""

from __future__ import annotations

from pathlib import Path

from intelligible.core.errors import ConfigError


def _meminfo_available(path: str | Path = "/proc/meminfo") -> int | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_available(root: str | Path = "/sys/fs/cgroup") -> int | None:
    """Bytes the cgroup still allows (v2 memory.max - memory.current, else v1), or None if unlimited."""
    root = Path(root)
    for limit_name, usage_name in (
        ("memory.max", "memory.current"),
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),
    ):
        try:
            limit = (root / limit_name).read_text().strip()
            usage = int((root / usage_name).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or not limit.isdigit() or int(limit) >= 2**60:  # v1 writes a huge number
            return None
        return max(int(limit) - usage, 0)
    return None


def available_memory(device: str = "cpu") -> int | None:
    """Bytes this process can still allocate on `device` (host memory, or a CUDA device's free
    memory), or None when the platform does not say."""
    if device.startswith("cuda"):
        try:
            import torch  # only for a GPU question; the CLI's checks stay torch-free on the CPU

            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        except Exception:  # no CUDA, an old driver: no check
            return None
    values = [value for value in (_meminfo_available(), _cgroup_available()) if value is not None]
    if not values:
        try:
            import psutil  # not a dependency; used where /proc is missing (macOS, Windows)

            values = [int(psutil.virtual_memory().available)]
        except Exception:  # absent or unsupported: no check
            return None
    return min(values)


def format_bytes(count: float) -> str:
    """`1.5 GiB`, `820 MiB`, ... for messages."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(count) < 1024 or unit == "PiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} PiB"  # pragma: no cover - the loop always returns


def check_fits(
    needed: float, what: str, hint: str, *, device: str = "cpu", available: int | None = None
) -> None:
    """Raise ConfigError when `needed` bytes exceed the memory available on `device` (or `available`).

    `what` says what needs the memory ("the activations of 512 windows"), `hint` what to lower.
    """
    free = available_memory(device) if available is None else available
    if free is None or needed <= free:
        return
    raise ConfigError(
        f"{what} need about {format_bytes(needed)} of memory, but only {format_bytes(free)} is available; {hint}"
    )
