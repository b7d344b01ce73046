"""The error family. Every user-facing failure raises a subclass of `IntelligibleError`.

The CLI prints such errors as one line and exits with code 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations


class IntelligibleError(Exception):
    """Base class for errors caused by user input (bad config, bad file, bad name)."""


class ConfigError(IntelligibleError, ValueError):
    """A configuration value is invalid (unknown key, wrong type, out of range)."""


class DataError(IntelligibleError, ValueError):
    """Input data is unusable (empty, too short, not text, wrong shape)."""


class ModelError(IntelligibleError, ValueError):
    """A model cannot be loaded or does not support the requested operation."""


class OutputError(IntelligibleError, OSError):
    """An output location cannot be written."""


class MissingDependencyError(IntelligibleError, RuntimeError):
    """An optional package or external binary that this feature needs is absent."""
