"""The studies `intelligible reproduce` runs, and the loop that runs them into one report page."""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

from intelligible.core.errors import ConfigError, IntelligibleError
from intelligible.core.report import Claim, Report, write_combined_json, write_html
from intelligible.core.runs import ensure_writable_dir

# Study name -> module with `reproduce(preset, out_dir) -> Report`. A new study adds one line.
# Modules are imported only when run, so one study's heavy or missing imports cannot break the rest.
STUDIES: dict[str, str] = {
    "stages": "intelligible.stages.experiment",
    "kan": "intelligible.kan.experiment",
    "sae": "intelligible.sae.experiment",
    "mips": "intelligible.mips.experiment",
    "dafnybench": "intelligible.dafnybench.experiment",
}

PRESETS = ("quick", "paper")


def run_reproductions(
    preset: str, out_dir: str | Path, only: list[str] | None = None
) -> tuple[list[Report], Path]:
    """Run each study's `reproduce` into `out_dir/<study>`, then write `report.html` and `report.json`.

    A study that crashes with an unexpected exception becomes a Report with one failed claim
    carrying the error, so the other studies' results are kept; an IntelligibleError (bad input)
    is the user's to fix and propagates. Returns the reports and the HTML page's path.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    names = list(STUDIES) if only is None else list(dict.fromkeys(only))
    unknown = [name for name in names if name not in STUDIES]
    if unknown:
        raise ConfigError(
            f"unknown study {', '.join(repr(name) for name in unknown)}; valid studies: {', '.join(STUDIES)}"
        )
    if not names:
        raise ConfigError(f"no study selected; valid studies: {', '.join(STUDIES)}")
    out_dir = ensure_writable_dir(out_dir)

    reports = []
    for index, name in enumerate(names, start=1):
        print(f"[{index}/{len(names)}] reproducing {name} (preset {preset})", file=sys.stderr)
        start = time.perf_counter()
        try:
            module = importlib.import_module(STUDIES[name])
            report = module.reproduce(preset=preset, out_dir=out_dir / name)
            if not isinstance(report, Report):
                raise TypeError(f"{STUDIES[name]}.reproduce returned {type(report).__name__}, not a Report")
        except IntelligibleError:
            raise
        except Exception as error:
            print(f"study {name} failed: {type(error).__name__}: {error}", file=sys.stderr)
            report = _failed_report(name, preset, error)
        report.elapsed_s = time.perf_counter() - start
        reports.append(report)

    html_path = write_html(reports, out_dir / "report.html")
    write_combined_json(reports, out_dir / "report.json")
    return reports, html_path


def _failed_report(study: str, preset: str, error: Exception) -> Report:
    claim = Claim(
        statement="the reproduction runs to completion",
        paper_value=None,
        measured_value=f"{type(error).__name__}: {error}",
        holds=False,
    )
    # The traceback goes in the notes: a crash in a long run should be debuggable from the page alone.
    notes = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    return Report(study=study, title=f"{study} (failed)", preset=preset, claims=[claim], notes=notes)
