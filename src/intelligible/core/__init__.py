"""What two or more studies share: configs, seeding, progress bars, run folders, reports, the study registry."""

from intelligible.core.config import config_from_dict, config_to_dict, parse_cli_overrides
from intelligible.core.errors import (
    ConfigError,
    DataError,
    IntelligibleError,
    MissingDependencyError,
    ModelError,
    OutputError,
)
from intelligible.core.progress import progress
from intelligible.core.registry import PRESETS, STUDIES, run_reproductions
from intelligible.core.report import Claim, Report, format_value, write_combined_json, write_html
from intelligible.core.runs import (
    RunDir,
    atomic_write_bytes,
    atomic_write_text,
    ensure_writable_dir,
    interrupt_guard,
    package_versions,
)
from intelligible.core.seeding import seed_everything

__all__ = [
    "PRESETS",
    "STUDIES",
    "Claim",
    "ConfigError",
    "DataError",
    "IntelligibleError",
    "MissingDependencyError",
    "ModelError",
    "OutputError",
    "Report",
    "RunDir",
    "atomic_write_bytes",
    "atomic_write_text",
    "config_from_dict",
    "config_to_dict",
    "ensure_writable_dir",
    "format_value",
    "interrupt_guard",
    "package_versions",
    "parse_cli_overrides",
    "progress",
    "run_reproductions",
    "seed_everything",
    "write_combined_json",
    "write_html",
]
