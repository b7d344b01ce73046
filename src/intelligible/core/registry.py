"""The study registry: which studies exist, their commands, their artifacts, their share of `make demo`.

`intelligible` (the CLI) and `intelligible reproduce` read this table and nothing else to find the
studies, so adding a study is one line in `STUDIES`. Nothing here imports a study: its modules
are imported only when one of its commands runs, so one study's heavy or broken imports cannot
slow down or break `intelligible --help` or another study's commands.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from intelligible.core.artifacts import ARTIFACT_KINDS, check_artifact
from intelligible.core.errors import ConfigError, DataError, IntelligibleError
from intelligible.core.report import Claim, Report, write_combined_json, write_html
from intelligible.core.runs import ensure_writable_dir

PRESETS = ("quick", "paper")


@dataclass(frozen=True)
class Study:
    """One study as the CLI and `intelligible reproduce` see it.

    name: the package `intelligible.<name>` and the command `intelligible <name>`.
    summary: one line for `intelligible --help` (read without importing the study).
    quick_budget_s: seconds its `quick` preset may take on 2 cores: its share of `make demo`.
    produces / consumes: artifact kinds (see `core.artifacts.ARTIFACT_KINDS`) its reproduction
      writes into `Report.artifacts` / needs as `reproduce(..., artifacts={kind: path})`.
    experiment / cli: module paths, `intelligible.<name>.experiment` and `.cli` unless given.
    """

    name: str
    summary: str
    quick_budget_s: float
    produces: tuple[str, ...] = ()
    consumes: tuple[str, ...] = ()
    experiment: str = ""
    cli: str = ""

    def reproduce(self, preset: str, out_dir: str | Path, artifacts: dict[str, Path] | None = None) -> Report:
        """Import the study's experiment module and run its `reproduce`; a consumer gets `artifacts`."""
        module = importlib.import_module(self.experiment)
        kwargs = {"artifacts": dict(artifacts or {})} if self.consumes else {}
        report = module.reproduce(preset=preset, out_dir=out_dir, **kwargs)
        if not isinstance(report, Report):
            raise TypeError(f"{self.experiment}.reproduce returned {type(report).__name__}, not a Report")
        return report

    def __post_init__(self) -> None:
        if not self.experiment:
            object.__setattr__(self, "experiment", f"intelligible.{self.name}.experiment")
        if not self.cli:
            object.__setattr__(self, "cli", f"intelligible.{self.name}.cli")
        for kind in (*self.produces, *self.consumes):
            if kind not in ARTIFACT_KINDS:
                raise ValueError(
                    f"study {self.name!r}: unknown artifact kind {kind!r}; known: {', '.join(ARTIFACT_KINDS)}"
                )


# One line per study, in the order `intelligible reproduce` runs them (producers are moved before
# their consumers whatever the order here). Budgets: docs/design.md, "The demo budget".
_ALL = [
    Study("stages", "Stages of inference: layer deletion/swap sweeps and the four stages (Lad et al. 2024).", 210),
    Study("kan", "Kolmogorov-Arnold networks (Liu et al. 2024): fit, prune, distil to formulas.", 260),
    Study("sae", "Sparse autoencoders (ReLU, TopK, Switch) on LM activations: train, evaluate, reproduce.", 180, produces=("sae",)),
    Study("mips", "MIPS (Michaud et al. 2024): distil trained RNNs into verified Python programs.", 60),
    Study("dafnybench", "DafnyBench (Loughridge et al. 2024): LLM-written Dafny verification hints, checked strictly.", 210),
    Study("worldmodel", "World models (Kantamneni et al. 2024): probe, rank and intervene on a network's intermediates.", 50),
    Study("optpde", "OptPDE (Kantamneni et al. 2024): count and prove conserved quantities of PDEs, search for more.", 50),
    Study("geneft", "GenEFT (Baek et al. 2024): generalisation bounds, learning-rate phases, the repon theory.", 50),
    Study("scaling", "Resource model of scaling (Song et al. 2024): neurons per subtask, fits, the N_p^-1/3 law.", 50),
    Study("multidim", "Multi-dimensional features (Engels et al. 2024): reducibility indices, SAE clusters, circles.", 80),
]  # fmt: skip
STUDIES: dict[str, Study] = {study.name: study for study in _ALL}

# The whole quick demo's budget on 2 cores (`make demo`); the studies' budgets must fit in it,
# leaving room for the five studies still to come (docs/design.md).
DEMO_BUDGET_S = 20 * 60


def study(name: str) -> Study:
    """The registered study `name`, or a ConfigError listing the valid names."""
    if name not in STUDIES:
        raise ConfigError(f"unknown study {name!r}; valid studies: {', '.join(STUDIES)}")
    return STUDIES[name]


def producers_of(kind: str) -> list[Study]:
    """The registered studies whose reproduction writes an artifact of `kind`."""
    return [s for s in STUDIES.values() if kind in s.produces]


def missing_artifact_hint(kind: str, consumer: str | None = None) -> str:
    """What to run to get an artifact of `kind`: the sentence every 'missing artifact' error ends with."""
    description = ARTIFACT_KINDS.get(kind, kind)
    makers = producers_of(kind)
    ways = [f"`intelligible {s.name} reproduce` (its report names the file)" for s in makers]
    if consumer and makers:
        ways.append(
            f"`intelligible reproduce --only {makers[0].name},{consumer}` (runs both and passes it on)"
        )
    how = "; ".join(ways) if ways else "no registered study produces one"
    return f"an artifact of kind '{kind}' ({description}) is needed; to make one run {how}"


def order_studies(names: Iterable[str]) -> list[str]:
    """`names` ordered so that every producer runs before its consumers (registry order otherwise)."""
    names = list(dict.fromkeys(names))
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered:
            return
        if name in visiting:
            raise ConfigError(f"studies {', '.join(sorted(visiting))} need each other's artifacts (a cycle)")
        visiting.add(name)
        for kind in STUDIES[name].consumes:
            for maker in producers_of(kind):
                if maker.name in names and maker.name != name:
                    visit(maker.name)
        visiting.discard(name)
        ordered.append(name)

    for name in names:
        visit(name)
    return ordered


def _previous_artifacts(out_dir: Path, study_name: str) -> dict[str, Path]:
    """Artifacts named in an earlier run's `out_dir/<study>/report.json` whose files still exist."""
    path = out_dir / study_name / "report.json"
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        found = {kind: Path(p) for kind, p in (record.get("artifacts") or {}).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        return {}
    usable = {}
    for kind, artifact in found.items():
        try:
            usable[kind] = check_artifact(artifact, kind)
        except DataError:
            continue
    return usable


def plan_run(
    names: list[str], out_dir: Path, given: dict[str, Path]
) -> tuple[list[str], dict[str, Path], list[str]]:
    """Which studies to run, in which order, with which artifacts known before the run starts.

    A consumer whose artifact is neither given (`--artifact kind=path`), nor made by a selected
    study, nor left by an earlier run in `out_dir`, pulls its producer into the run. Returns the
    ordered names, the artifacts known up front, and one line per decision for the log.
    """
    artifacts = {kind: check_artifact(path, kind) for kind, path in given.items()}
    selected = list(names)
    log = []
    changed = True
    while changed:
        changed = False
        for name in list(selected):
            for kind in STUDIES[name].consumes:
                makers = producers_of(kind)
                if kind in artifacts or any(m.name in selected for m in makers):
                    continue
                if not makers:
                    raise ConfigError(f"study {name!r}: {missing_artifact_hint(kind)}")
                earlier = [
                    found[kind] for m in makers if kind in (found := _previous_artifacts(out_dir, m.name))
                ]
                if earlier:
                    artifacts[kind] = earlier[0]
                    log.append(f"{name} uses the '{kind}' artifact of an earlier run: {earlier[0]}")
                else:
                    selected.append(makers[0].name)
                    log.append(f"{name} needs a '{kind}' artifact: running {makers[0].name} first")
                    changed = True
    return order_studies(selected), artifacts, log


def format_minutes(seconds: float) -> str:
    """`95` -> '1.6 min'; a budget read by people, not machines."""
    return f"{seconds / 60:.1f} min"


def run_reproductions(
    preset: str,
    out_dir: str | Path,
    only: list[str] | None = None,
    *,
    artifacts: dict[str, str | Path] | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list[Report], Path]:
    """Run each study's `reproduce` into `out_dir/<study>`, then write `report.html` and `report.json`.

    Producers run before consumers and each consumer gets the paths of the artifacts it declares
    (`artifacts` gives some up front, as `{kind: path}`). A study that crashes with an unexpected
    exception becomes a Report with one failed claim carrying the error and its traceback, so the
    other studies' results are kept; a user error inside a study (IntelligibleError: missing data, a
    bad setting) becomes a failed claim with its one-line reason. Errors in the arguments themselves
    (unknown study, preset or artifact kind) are raised before anything runs.
    Progress (which study runs, how long the rest should take) goes to `log` (stderr by default).
    Returns the reports and the HTML page's path.
    """
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
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
    for kind in artifacts or {}:
        if kind not in ARTIFACT_KINDS:
            raise ConfigError(f"unknown artifact kind {kind!r}; valid kinds: {', '.join(ARTIFACT_KINDS)}")
    out_dir = Path(out_dir)
    names, known, decisions = plan_run(names, out_dir, {k: Path(v) for k, v in (artifacts or {}).items()})
    out_dir = ensure_writable_dir(out_dir)
    for line in decisions:
        say(line)

    reports = []
    for index, name in enumerate(names, start=1):
        entry = STUDIES[name]
        rest = sum(STUDIES[n].quick_budget_s for n in names[index - 1 :])
        budget = (
            f"; budget {format_minutes(entry.quick_budget_s)}, about {format_minutes(rest)} for it and the rest"
            if preset == "quick"
            else ""
        )
        say(f"[{index}/{len(names)}] reproducing {name} (preset {preset}{budget})")
        start = time.perf_counter()
        needed = {kind: known[kind] for kind in entry.consumes if kind in known}
        missing = [kind for kind in entry.consumes if kind not in needed]
        if missing:
            report = _skipped_report(name, preset, missing)
        else:
            report = _run_one(entry, preset, out_dir / name, needed, say)
        report.elapsed_s = time.perf_counter() - start
        for kind in entry.produces:
            if kind in report.artifacts:
                known[kind] = Path(report.artifacts[kind])
        reports.append(report)
        say(f"      {name}: {report.n_holding}/{len(report.claims)} claims hold in {report.elapsed_s:.0f} s")

    html_path = write_html(reports, out_dir / "report.html")
    write_combined_json(reports, out_dir / "report.json")
    return reports, html_path


def _run_one(
    entry: Study, preset: str, out_dir: Path, needed: dict[str, Path], say: Callable[[str], None]
) -> Report:
    try:
        report = entry.reproduce(preset, out_dir, needed)
    except IntelligibleError as error:
        # the user's to fix (missing data, a bad setting): one line on the page, the other studies kept
        say(f"study {entry.name} stopped: {error}")
        return _failed_report(entry.name, preset, error, traceback_notes=False)
    except Exception as error:
        say(f"study {entry.name} failed: {type(error).__name__}: {error}")
        return _failed_report(entry.name, preset, error)
    for kind in entry.produces:
        if kind not in report.artifacts:
            say(f"study {entry.name} declares a '{kind}' artifact but its report names none")
    return report


def _skipped_report(study_name: str, preset: str, missing: list[str]) -> Report:
    reasons = "; ".join(missing_artifact_hint(kind, study_name) for kind in missing)
    claim = Claim(
        statement="the reproduction runs to completion",
        paper_value=None,
        measured_value=f"not run: its producer did not deliver: {reasons}",
        holds=None,
    )
    return Report(study=study_name, title=f"{study_name} (not run)", preset=preset, claims=[claim])


def _failed_report(study_name: str, preset: str, error: Exception, traceback_notes: bool = True) -> Report:
    claim = Claim(
        statement="the reproduction runs to completion",
        paper_value=None,
        measured_value=f"{type(error).__name__}: {error}",
        holds=False,
    )
    # The traceback goes in the notes: a crash in a long run should be debuggable from the page alone.
    notes = (
        "".join(traceback.format_exception(type(error), error, error.__traceback__))
        if traceback_notes
        else ""
    )
    return Report(
        study=study_name, title=f"{study_name} (failed)", preset=preset, claims=[claim], notes=notes
    )


__all__ = [
    "DEMO_BUDGET_S",
    "PRESETS",
    "STUDIES",
    "Study",
    "missing_artifact_hint",
    "order_studies",
    "plan_run",
    "producers_of",
    "run_reproductions",
    "study",
]
