"""scripts/report.py's Markdown-to-HTML step (`make report` without Chromium): docs/REPORT.md
becomes one standalone page with its title, real tables and both charts inlined."""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DELIMITER_ROW = re.compile(r"^\s*\|[-:| ]+\|\s*$", re.MULTILINE)  # |---|---:|


def load_report() -> ModuleType:
    """scripts/ is no package: load report.py by its path."""
    spec = importlib.util.spec_from_file_location("report", ROOT / "scripts" / "report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = load_report()


def test_the_report_renders_with_its_title_tables_and_both_charts_inlined() -> None:
    text = (DOCS / "REPORT.md").read_text(encoding="utf-8")
    page = report.render_html(text, DOCS)
    title = report.title_of(text)
    assert title.startswith("First Price Twitter")
    assert f"<title>{title}</title>" in page and f"<h1>{title}</h1>" in page
    assert "<table>" in page and "@page" in page
    assert page.count("<table>") == len(DELIMITER_ROW.findall(text))
    assert not DELIMITER_ROW.search(page), "a table left as text"
    assert "<img" not in page, "an image left to a relative path"
    assert page.count('<svg class="chart"') == 2
    for chart in ("reads.svg", "likes.svg"):
        svg = (DOCS / "bench" / chart).read_text(encoding="utf-8")
        assert svg.strip()[4:].lstrip() in page, chart
    assert "<pre><code>browser" in page


def test_an_image_that_is_not_there_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="bench/missing.svg"):
        report.render_html("# T\n\n![chart](bench/missing.svg)\n", tmp_path)


def test_the_markdown_the_report_uses_renders_as_html() -> None:
    page = report.to_html(
        "## Two\n\nA **`make bench` run** and *this*, `<tag>` & [a link](x.html).\n"
        "wrapped #hashtag line\n\n"
        "- one item\n  wrapped\n- **a loose item**:\n\n"
        "    | a | b |\n    |---|--:|\n    | 1 | `2` |\n\n"
        "    a paragraph inside it\n\n"
        "- the last\n\nAfter the list.\n")
    assert page.startswith("<h2>Two</h2>\n<p>A <strong><code>make bench</code> run</strong> and "
                           "<em>this</em>, <code>&lt;tag&gt;</code> &amp; "
                           '<a href="x.html">a link</a>. wrapped #hashtag line</p>')
    assert "<li>one item wrapped</li>" in page
    assert ('<li><p><strong>a loose item</strong>:</p>\n<table>\n<thead><tr><th>a</th>'
            '<th style="text-align: right">b</th></tr></thead>') in page
    assert '<td style="text-align: right"><code>2</code></td>' in page
    assert "<p>a paragraph inside it</p></li>\n<li>the last</li>\n</ul>" in page
    assert page.endswith("<p>After the list.</p>")
