"""Progress bars for long loops."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

# Set to 1 to show bars even when stderr is not a terminal (e.g. under `tee`), 0 to hide them.
PROGRESS_ENV = "INTELLIGIBLE_PROGRESS"


def _wanted() -> bool:
    forced = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if forced in ("1", "true", "yes", "on"):
        return True
    if forced in ("0", "false", "no", "off"):
        return False
    # Bars written to a log file or a CI console are noise, so only draw them on a terminal.
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    disable: bool | None = None,
) -> tqdm:
    """Wrap `iterable` (or count to `total`) in a tqdm bar; report the key figure with `bar.set_postfix(loss=...)`.

    With `disable=None` the bar shows only when stderr is a terminal, unless the environment
    variable INTELLIGIBLE_PROGRESS is 1 (always show) or 0 (never show). An explicit `disable`
    wins over both.
    """
    if disable is None:
        disable = not _wanted()
    return tqdm(iterable, total=total, desc=desc, disable=disable, dynamic_ncols=True)
