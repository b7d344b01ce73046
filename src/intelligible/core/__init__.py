"""What two or more studies share: configs, seeding, progress bars, run folders, reports, the study registry.

Names are imported on first use (PEP 562), so `import intelligible` and `intelligible --help` do
not pay for torch or numpy.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "config_from_dict": "config",
    "config_to_dict": "config",
    "parse_cli_overrides": "config",
    "ConfigError": "errors",
    "DataError": "errors",
    "IntelligibleError": "errors",
    "MissingDependencyError": "errors",
    "ModelError": "errors",
    "OutputError": "errors",
    "PRESETS": "registry",
    "STUDIES": "registry",
    "Study": "registry",
    "run_reproductions": "registry",
    "Claim": "report",
    "Report": "report",
    "format_value": "report",
    "write_combined_json": "report",
    "write_html": "report",
    "RunDir": "runs",
    "atomic_write_bytes": "runs",
    "atomic_write_text": "runs",
    "ensure_writable_dir": "runs",
    "interrupt_guard": "runs",
    "package_versions": "runs",
    "seed_everything": "seeding",
}

# Imported now, not lazily: `progress` is also the name of its submodule, and importing the submodule
# anywhere (`import intelligible.core.progress`) would otherwise bind the module over the function.
from intelligible.core.progress import progress as progress  # noqa: E402  (tqdm only; cheap)

__all__ = sorted([*_WHERE, "progress"])


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'intelligible.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"intelligible.core.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
