"""The reproduction page as a reader sees it: opened in headless Chromium, every figure decoded and
visible, no console errors, summary links that land on their sections. A screenshot is kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.browser import Browser, find_chromium

from intelligible.core import Claim, Report, write_html

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH (`make setup` installs Debian's chromium when run as root; "
    "or set $INTELLIGIBLE_CHROMIUM)",
)
# Test artifacts (screenshots) land here; CI can collect the folder.
ARTIFACTS = Path(
    os.environ.get(
        "INTELLIGIBLE_TEST_ARTIFACTS", Path(__file__).resolve().parents[2] / "runs" / "test-artifacts"
    )
)

PAGE_FACTS = """(async () => {
  const images = [];
  for (const img of Array.from(document.images)) {
    let decoded = true;
    try { await img.decode(); } catch (e) { decoded = false; }
    img.scrollIntoView();
    const box = img.getBoundingClientRect();
    const style = getComputedStyle(img);
    images.push({alt: img.alt, decoded, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
                 width: box.width, height: box.height,
                 shown: style.display !== "none" && style.visibility !== "hidden" && Number(style.opacity) > 0});
  }
  const summary = Array.from(document.querySelectorAll("table.summary a")).map(a => a.getAttribute("href"));
  const targets = summary.map(href => document.getElementById(href.slice(1)) !== null);
  const sections = Array.from(document.querySelectorAll("section h2")).map(h => h.textContent);
  const firstTable = document.querySelector("table");
  return {images, summary, targets, sections, title: document.title,
          summaryFirst: firstTable !== null && firstTable.classList.contains("summary"),
          summaryHeader: firstTable ? Array.from(firstTable.querySelectorAll("th")).map(th => th.textContent) : []};
})()"""


def _facts(page: Path, screenshot: str) -> tuple[dict, list[str]]:
    with Browser(CHROMIUM) as browser:
        browser.open(page)
        facts = browser.evaluate(PAGE_FACTS)
        shot = browser.screenshot(ARTIFACTS / screenshot)
        errors = list(browser.errors)
    assert shot.stat().st_size > 1000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return facts, errors


@needs_chromium
@pytest.mark.slow(seconds=240, shared="kan_quick_page")  # the `reproduce --only kan` run
def test_quick_reproduction_page_in_a_browser(kan_quick_page):
    reports, html = kan_quick_page
    facts, errors = _facts(html, "report-quick-kan.png")
    assert errors == []
    n_figures = sum(len(report.figures) for report in reports)
    assert n_figures >= 1 and len(facts["images"]) == n_figures
    for image in facts["images"]:
        assert image["decoded"] and image["naturalWidth"] > 50 and image["naturalHeight"] > 50, image
        assert image["shown"] and image["width"] > 50 and image["height"] > 50, image
    assert facts["summaryFirst"]
    assert facts["summaryHeader"][:4] == ["study", "title", "claims holding", "time"]
    assert facts["summary"] == ["#study-kan"] and facts["targets"] == [True]


@needs_chromium
def test_page_with_a_failed_study_and_a_missing_figure(tmp_path):
    # what a reader sees when a study crashed and a figure file went missing: still no script errors
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
    )
    (tmp_path / "a.png").write_bytes(png)
    reports = [
        Report("good", "A <good> study", "quick", [Claim("x", 1, 1, True)], figures={"dot": tmp_path / "a.png"}),
        Report("broken", "broken (failed)", "quick", [Claim("runs", None, "RuntimeError: <boom>", False)],
               figures={"gone": tmp_path / "missing.png"}, notes="Traceback ..."),
    ]  # fmt: skip
    page = write_html(reports, tmp_path / "report.html")
    facts, errors = _facts(page, "report-failed-study.png")
    assert errors == []
    assert [image["decoded"] for image in facts["images"]] == [True]
    assert facts["summary"] == ["#study-good", "#study-broken"] and facts["targets"] == [True, True]
    assert facts["sections"] == ["A <good> study", "broken (failed)"]
