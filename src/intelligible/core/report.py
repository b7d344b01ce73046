"""The Report every study's `reproduce()` returns, and the pages built from a set of them."""

from __future__ import annotations

import base64
import html
import json
import numbers
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from intelligible.core.config import to_jsonable
from intelligible.core.errors import DataError
from intelligible.core.runs import atomic_write_text, package_versions


@dataclass
class Claim:
    """One claim of a paper: what it says, its number, ours, and whether the claim's shape holds.

    `holds` is None when the claim could not be tested (e.g. a missing dependency).
    """

    statement: str
    paper_value: str | float | None
    measured_value: str | float | None
    holds: bool | None
    detail: str = ""


@dataclass
class Report:
    """The outcome of one study's reproduction: claims, figures (name -> PNG path) and tables.

    `artifacts` maps an artifact kind (e.g. "sae") to the file this run wrote for other studies
    to consume; the registry passes it on to them.
    """

    study: str
    title: str
    preset: str
    claims: list[Claim]
    figures: dict[str, Path] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    notes: str = ""
    elapsed_s: float | None = None
    artifacts: dict[str, Path] = field(default_factory=dict)

    @property
    def n_holding(self) -> int:
        """How many claims hold."""
        return sum(claim.holds is True for claim in self.claims)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (figure paths as strings)."""
        return {
            "study": self.study,
            "title": self.title,
            "preset": self.preset,
            "claims": [to_jsonable(vars(claim)) for claim in self.claims],
            "figures": {name: str(path) for name, path in self.figures.items()},
            "tables": to_jsonable(self.tables),
            "notes": self.notes,
            "elapsed_s": self.elapsed_s,
            "artifacts": {kind: str(path) for kind, path in self.artifacts.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Rebuild a Report from `to_dict()` output."""
        try:
            return cls(
                study=data["study"],
                title=data["title"],
                preset=data["preset"],
                claims=[Claim(**claim) for claim in data["claims"]],
                figures={name: Path(path) for name, path in data.get("figures", {}).items()},
                tables=data.get("tables", {}),
                notes=data.get("notes", ""),
                elapsed_s=data.get("elapsed_s"),
                artifacts={kind: Path(path) for kind, path in data.get("artifacts", {}).items()},
            )
        except (KeyError, TypeError, AttributeError) as error:
            raise DataError(f"not a valid report: {error!r}") from None

    def to_markdown(self, relative_to: str | Path | None = None) -> str:
        """Markdown: claims table (claim | paper | ours | holds), figures, tables.

        Figure links are made relative to `relative_to` (the folder the markdown file will live
        in) so the page renders wherever that folder is moved.
        """
        lines = [f"# {self.title}", "", _meta_line(self), ""]
        lines += ["| claim | paper | ours | holds |", "|---|---|---|---|"]
        for claim in self.claims:
            statement = claim.statement + (f" — *{claim.detail}*" if claim.detail else "")
            cells = [statement, format_value(claim.paper_value), format_value(claim.measured_value)]
            lines.append(_markdown_row([*cells, _HOLDS_SYMBOL[claim.holds]]))
        if self.notes:
            lines += ["", self.notes]
        if self.figures:
            lines += ["", "## Figures"]
            for name, path in self.figures.items():
                link = Path(os.path.relpath(path, relative_to)) if relative_to is not None else Path(path)
                lines += ["", f"![{name}]({link.as_posix()})"]
        for name, rows in self.tables.items():
            lines += ["", f"## {name}", "", *_markdown_table(rows)]
        if self.artifacts:
            lines += ["", "## Artifacts", ""]
            lines += [f"- `{kind}`: `{path}`" for kind, path in self.artifacts.items()]
        return "\n".join(lines).rstrip() + "\n"

    def save(self, out_dir: str | Path) -> Path:
        """Write `report.json` and `report.md` into `out_dir`; return the markdown path."""
        out_dir = Path(out_dir)
        atomic_write_text(out_dir / "report.json", json.dumps(self.to_dict(), indent=2) + "\n")
        return atomic_write_text(out_dir / "report.md", self.to_markdown(relative_to=out_dir))


_HOLDS_SYMBOL = {True: "✓", False: "✗", None: "–"}
_HOLDS_CLASS = {True: "yes", False: "no", None: "na"}


def format_value(value: Any) -> str:
    """Format a cell: floats to 4 significant digits, None as a dash."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.4g}"
    return str(value)


def _meta_line(report: Report) -> str:
    parts = [f"study `{report.study}`", f"preset `{report.preset}`"]
    if report.elapsed_s is not None:
        parts.append(f"{report.elapsed_s:.1f} s")
    parts.append(f"{report.n_holding}/{len(report.claims)} claims hold")
    return " · ".join(parts)


def _markdown_row(cells: list[str]) -> str:
    # A pipe or newline inside a cell would break the table.
    cleaned = [cell.replace("|", "\\|").replace("\n", " ") for cell in cells]
    return "| " + " | ".join(cleaned) + " |"


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    return columns


def _markdown_table(rows: list[dict[str, Any]]) -> list[str]:
    columns = _columns(rows)
    if not columns:
        return ["(empty)"]
    lines = [_markdown_row(columns), "|" + "---|" * len(columns)]
    lines += [_markdown_row([format_value(row.get(column)) for column in columns]) for row in rows]
    return lines


def write_combined_json(reports: list[Report], path: str | Path) -> Path:
    """Write all reports to one JSON file with the date and package versions."""
    combined = {
        "generated": datetime.now().astimezone().isoformat(timespec="seconds"),
        "versions": package_versions(),
        "reports": [report.to_dict() for report in reports],
    }
    return atomic_write_text(path, json.dumps(combined, indent=2) + "\n")


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.yes { color: #1a7f37; font-weight: bold; }
td.no { color: #cf222e; font-weight: bold; }
td.na { color: #888; }
.meta, .detail { color: #666; font-size: 0.9em; }
.notes { white-space: pre-wrap; }
.missing { color: #cf222e; }
figure { display: inline-block; margin: 0 1rem 1rem 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
section { border-top: 1px solid #ddd; margin-top: 2rem; }
"""


def write_html(
    reports: list[Report], path: str | Path, *, title: str = "intelligible — reproductions"
) -> Path:
    """Write one self-contained HTML page for `reports`: summary, then each study's claims, tables and figures.

    Figures are embedded as base64 PNG, so the page can be mailed or moved alone. A figure file
    that is missing is noted on the page instead of failing the whole page.
    """
    path = Path(path)
    esc = html.escape
    versions = " · ".join(f"{name} {version}" for name, version in package_versions().items())
    presets = ", ".join(sorted({report.preset for report in reports})) or "–"
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
        f'<p class="meta">generated {esc(generated)} · preset {esc(presets)}<br>{esc(versions)}</p>',
        "<h2>Summary</h2>",
        '<table class="summary"><tr><th>study</th><th>title</th><th>claims holding</th><th>time</th></tr>',
    ]
    for report in reports:
        elapsed = "–" if report.elapsed_s is None else f"{report.elapsed_s:.1f} s"
        parts.append(
            f'<tr><td><a href="#{esc(_anchor(report))}">{esc(report.study)}</a></td>'
            f"<td>{esc(report.title)}</td><td>{report.n_holding} / {len(report.claims)}</td>"
            f"<td>{esc(elapsed)}</td></tr>"
        )
    total_s = sum(report.elapsed_s or 0.0 for report in reports)
    holding = sum(report.n_holding for report in reports)
    claims = sum(len(report.claims) for report in reports)
    parts.append(f"<tr><th>all</th><th>{len(reports)} studies</th><th>{holding} / {claims}</th>"
                 f"<th>{total_s / 60:.1f} min</th></tr></table>")  # fmt: skip
    for report in reports:
        parts += _html_section(report, base=path.parent)
    parts.append("</body></html>")
    return atomic_write_text(path, "\n".join(parts) + "\n")


def _anchor(report: Report) -> str:
    return "study-" + "".join(ch if ch.isalnum() else "-" for ch in report.study)


def _html_section(report: Report, base: Path) -> list[str]:
    esc = html.escape
    parts = [
        f'<section id="{esc(_anchor(report))}">',
        f"<h2>{esc(report.title)}</h2>",
        f'<p class="meta">{esc(_meta_line(report).replace("`", ""))}</p>',
        "<table><tr><th>claim</th><th>paper</th><th>ours</th><th>holds</th></tr>",
    ]
    for claim in report.claims:
        detail = f'<br><span class="detail">{esc(claim.detail)}</span>' if claim.detail else ""
        parts.append(
            f"<tr><td>{esc(claim.statement)}{detail}</td>"
            f"<td>{esc(format_value(claim.paper_value))}</td>"
            f"<td>{esc(format_value(claim.measured_value))}</td>"
            f'<td class="{_HOLDS_CLASS[claim.holds]}">{_HOLDS_SYMBOL[claim.holds]}</td></tr>'
        )
    parts.append("</table>")
    if report.notes:
        parts.append(f'<p class="notes">{esc(report.notes)}</p>')
    # figures before tables: the picture is what a reader looks for first, the table is for lookup
    for name, figure_path in report.figures.items():
        parts.append(_html_figure(name, Path(figure_path), base))
    for name, rows in report.tables.items():
        parts += [f"<h3>{esc(name)}</h3>", *_html_table(rows)]
    if report.artifacts:
        items = "".join(
            f"<li><code>{esc(kind)}</code>: <code>{esc(str(p))}</code></li>"
            for kind, p in report.artifacts.items()
        )
        parts.append(f"<h3>Artifacts</h3><ul>{items}</ul>")
    parts.append("</section>")
    return parts


def _html_table(rows: list[dict[str, Any]]) -> list[str]:
    esc = html.escape
    columns = _columns(rows)
    if not columns:
        return ["<p>(empty)</p>"]
    lines = ["<table><tr>" + "".join(f"<th>{esc(column)}</th>" for column in columns) + "</tr>"]
    for row in rows:
        cells = "".join(f"<td>{esc(format_value(row.get(column)))}</td>" for column in columns)
        lines.append(f"<tr>{cells}</tr>")
    lines.append("</table>")
    return lines


def _html_figure(name: str, figure_path: Path, base: Path) -> str:
    esc = html.escape
    # A relative path is tried from the working directory first, then next to the page.
    candidates = [figure_path] if figure_path.is_absolute() else [figure_path, base / figure_path]
    for candidate in candidates:
        try:
            data = candidate.read_bytes()
        except OSError:
            continue
        encoded = base64.b64encode(data).decode("ascii")
        return (
            f'<figure><img alt="{esc(name)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{esc(name)}</figcaption></figure>"
        )
    return f'<p class="missing">figure “{esc(name)}” is missing: {esc(str(figure_path))} was not found</p>'
