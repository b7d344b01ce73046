"""Every registered study keeps the contract of docs/design.md, and the docs keep to the repository."""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path

import click
import pytest

from intelligible.core.artifacts import ARTIFACT_KINDS
from intelligible.core.registry import DEMO_BUDGET_S, STUDIES, producers_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", list(STUDIES))
def test_study_has_its_commands_reproduction_docs_and_row(name):
    entry = STUDIES[name]
    group = importlib.import_module(entry.cli).cli
    assert isinstance(group, click.Group) and group.name == name
    assert "reproduce" in group.commands
    reproduce = importlib.import_module(entry.experiment).reproduce
    parameters = inspect.signature(reproduce).parameters
    assert list(parameters)[:2] == ["preset", "out_dir"]
    assert ("artifacts" in parameters) == bool(entry.consumes)
    assert (ROOT / "docs" / f"{name}.md").is_file()
    assert f"[`{name}`](docs/{name}.md)" in (ROOT / "README.md").read_text()
    assert entry.summary.endswith(".") and len(entry.summary) <= 100


def test_every_consumed_kind_has_a_producer():
    for entry in STUDIES.values():
        for kind in entry.consumes:
            assert kind in ARTIFACT_KINDS and producers_of(kind), (entry.name, kind)


def test_budgets_fit_the_demo_and_match_the_design_doc():
    assert sum(entry.quick_budget_s for entry in STUDIES.values()) <= DEMO_BUDGET_S
    design = (ROOT / "docs" / "design.md").read_text()
    for entry in STUDIES.values():
        # the budget table: | `stages` | 150 s | ...
        assert re.search(rf"\| `{entry.name}` \| {entry.quick_budget_s:g} s \|", design), entry.name


def _markdown_files() -> list[Path]:
    skip = {".venv", ".git", "runs", "node_modules", ".venv-saelens"}
    return [p for p in ROOT.rglob("*.md") if not skip & set(p.relative_to(ROOT).parts)]


def test_no_link_in_the_repository_points_outside_it():
    link = re.compile(r"\]\(([^)\s]+)\)")
    broken = []
    for path in _markdown_files():
        for target in link.findall(path.read_text(encoding="utf-8")):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue  # a web address or an anchor on the same page
            resolved = (path.parent / target.split("#")[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert broken == []
    assert (ROOT / "docs" / "design.md").is_file()
    assert "](docs/design.md)" in (ROOT / "README.md").read_text()


@pytest.mark.parametrize(
    "path", sorted((ROOT / "benchmarks" / "results").glob("*.json")), ids=lambda p: p.name
)
def test_benchmark_results_follow_the_shared_format(path):
    import json

    result = json.loads(path.read_text())
    assert {"benchmark", "date", "machine", "command", "targets", "measurements"} <= set(result)
    assert result["benchmark"] == path.stem
    assert isinstance(result["targets"], list) and result["targets"], "every result records its targets"
    for target in result["targets"]:
        assert {"name", "value", "target", "holds"} <= set(target), target
        assert isinstance(target["holds"], bool) or target["holds"] is None, target
