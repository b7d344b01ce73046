from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from intelligible.core import Claim, DataError, Report, format_value, write_combined_json, write_html

# A real 1x1 PNG, so embedding is checked on PNG bytes.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


def _report(tmp_path: Path, statement: str = "layer deletion keeps most accuracy") -> Report:
    figure = tmp_path / "study" / "figures" / "curve.png"
    figure.parent.mkdir(parents=True)
    figure.write_bytes(PNG)
    return Report(
        study="stages",
        title="Stages of inference",
        preset="quick",
        claims=[
            Claim(
                statement, paper_value=0.72, measured_value=0.712345678, holds=True, detail="middle layers"
            ),
            Claim("swapping hurts less than deleting", "yes", "no", holds=False),
            Claim("untested claim", None, None, holds=None),
        ],
        figures={"curve": figure},
        tables={
            "per layer": [
                {"layer": 0, "kept": 0.123456},
                {"layer": 1, "kept": np.float32(0.5), "note": "a|b"},
            ]
        },
        notes="quick preset: tiny model",
        elapsed_s=1.25,
    )


def test_format_value():
    assert format_value(0.712345678) == "0.7123"
    assert format_value(123456.0) == "1.235e+05"
    assert format_value(np.float32(0.5)) == "0.5"
    assert format_value(np.int64(3)) == "3"
    assert format_value(None) == "–"
    assert format_value("text") == "text"
    assert format_value(True) == "True"


def test_dict_round_trip_is_json_safe(tmp_path):
    report = _report(tmp_path)
    data = report.to_dict()
    assert data["figures"]["curve"] == str(tmp_path / "study" / "figures" / "curve.png")
    back = Report.from_dict(json.loads(json.dumps(data)))
    assert back.claims == report.claims
    assert back.figures == report.figures
    assert back.tables["per layer"][1]["kept"] == 0.5
    assert (back.study, back.title, back.preset, back.notes, back.elapsed_s) == (
        "stages",
        "Stages of inference",
        "quick",
        "quick preset: tiny model",
        1.25,
    )


def test_from_dict_rejects_garbage():
    with pytest.raises(DataError):
        Report.from_dict({"study": "x"})


def test_markdown_has_claims_figures_and_tables(tmp_path):
    markdown = _report(tmp_path).to_markdown(relative_to=tmp_path / "study")
    assert "| claim | paper | ours | holds |" in markdown
    assert "| layer deletion keeps most accuracy — *middle layers* | 0.72 | 0.7123 | ✓ |" in markdown
    assert "| swapping hurts less than deleting | yes | no | ✗ |" in markdown
    assert "| untested claim | – | – | – |" in markdown
    assert "![curve](figures/curve.png)" in markdown
    assert "| layer | kept | note |" in markdown
    assert "| 1 | 0.5 | a\\|b |" in markdown


def test_save_writes_json_and_markdown(tmp_path):
    report = _report(tmp_path)
    markdown_path = report.save(tmp_path / "study")
    assert markdown_path == tmp_path / "study" / "report.md"
    assert "![curve](figures/curve.png)" in markdown_path.read_text()
    saved = json.loads((tmp_path / "study" / "report.json").read_text())
    assert Report.from_dict(saved).claims == report.claims


def test_html_is_self_contained_and_escaped(tmp_path):
    evil = _report(tmp_path, statement="<script>alert(1)</script>")
    page = write_html([evil], tmp_path / "out" / "report.html", title="t & <b>").read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "t &amp; &lt;b&gt;" in page
    assert "data:image/png;base64," in page
    # Every src/href points inside the page: data URIs or anchors only.
    references = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert references
    assert all(ref.startswith(("data:", "#")) for ref in references)
    assert "<link" not in page and "http://" not in page and "https://" not in page
    assert 'class="yes">✓' in page and 'class="no">✗' in page and 'class="na">–' in page
    assert "1 / 3" in page  # summary: one claim of three holds
    assert "0.7123" in page and "per layer" in page
    assert "torch" in page and "quick" in page


def test_html_notes_missing_figure(tmp_path):
    report = _report(tmp_path)
    report.figures["gone"] = tmp_path / "nowhere.png"
    page = write_html([report], tmp_path / "report.html").read_text()
    assert "gone" in page and "missing" in page
    assert page.count("data:image/png;base64,") == 1


def test_combined_json(tmp_path):
    reports = [_report(tmp_path)]
    path = write_combined_json(reports, tmp_path / "report.json")
    data = json.loads(path.read_text())
    assert set(data) == {"generated", "versions", "reports"}
    assert "torch" in data["versions"]
    assert Report.from_dict(data["reports"][0]).claims == reports[0].claims
