"""`make report`: docs/REPORT.md printed as docs/REPORT.pdf.

The Markdown becomes one standalone HTML page in a temporary directory (a print stylesheet,
the SVG charts inlined), which headless Chromium prints to PDF. Needs Chromium (apt-get install
chromium) and nothing outside the standard library: the report is ours, so ``to_html`` reads
the Markdown it uses (headings, paragraphs, lists whose items may hold blocks, tables with
aligned columns, fenced code, code spans, bold, italics, links and images), not every
CommonMark corner.
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "docs" / "REPORT.md"
TARGET = ROOT / "docs" / "REPORT.pdf"
CHROMIUM_TIMEOUT_S = 120
NO_CHROMIUM = "make report needs Chromium (apt-get install chromium)"

# A4 print: a serif body at 10.5pt, small bordered tables that wrap long code spans rather
# than run off the right edge, code blocks small enough for the architecture sketch's
# ~105 columns (and wrapped if longer), and no heading left alone at a page bottom.
STYLE = """
@page { size: A4; margin: 18mm 16mm 18mm 16mm; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body {
  font-family: "Liberation Serif", "DejaVu Serif", "Times New Roman", serif;
  font-size: 10.5pt; line-height: 1.38; color: #111; margin: 0;
  overflow-wrap: break-word;
}
h1, h2, h3, h4 {
  font-family: "Liberation Sans", "DejaVu Sans", Arial, sans-serif;
  line-height: 1.2; break-after: avoid; page-break-after: avoid; break-inside: avoid;
}
h1 { font-size: 20pt; margin: 0 0 10pt; }
h2 { font-size: 14pt; margin: 18pt 0 6pt; padding-bottom: 2pt; border-bottom: 0.6pt solid #999; }
h3 { font-size: 12pt; margin: 14pt 0 5pt; }
h4 { font-size: 10.5pt; margin: 12pt 0 4pt; }
p { margin: 0 0 6pt; orphans: 2; widows: 2; }
ul, ol { margin: 0 0 6pt; padding-left: 16pt; }
li { margin: 0 0 3pt; }
li > p { margin-bottom: 3pt; }
code, pre {
  font-family: "DejaVu Sans Mono", "Liberation Mono", monospace;
}
code { font-size: 0.86em; overflow-wrap: anywhere; }
pre {
  font-size: 7.4pt; line-height: 1.3; background: #f4f4f4; border: 0.5pt solid #ccc;
  padding: 5pt 6pt; margin: 0 0 8pt; white-space: pre-wrap; overflow-wrap: anywhere;
  break-inside: avoid;
}
pre code { font-size: 1em; }
table {
  border-collapse: collapse; width: auto; max-width: 100%; margin: 4pt 0 9pt;
  font-family: "Liberation Sans", "DejaVu Sans", Arial, sans-serif; font-size: 8.3pt;
  line-height: 1.25;
}
th, td {
  border: 0.5pt solid #888; padding: 2.5pt 4pt; vertical-align: top;
  overflow-wrap: anywhere;
}
th { background: #e8e8e8; font-weight: bold; }
tr { break-inside: avoid; }
thead { display: table-header-group; }
td code, th code { font-size: 0.92em; }
img, svg { max-width: 100%; }
.chart { display: block; width: 88%; height: auto; margin: 6pt auto 10pt; break-inside: avoid; }
strong { font-weight: bold; }
"""

IMG = re.compile(r"<img\b[^>]*>")
HEADING = re.compile(r"(#{1,6}) +(.*?) *#* *\Z")
ITEM = re.compile(r"( *)([-*]|\d+\.) +(.*)\Z")
DELIMITER = re.compile(r"\|? *:?-+:? *(\| *:?-+:? *)*\|? *\Z")
INLINE = [  # after code spans are cut out and the rest escaped
    (re.compile(r"!\[([^\]]*)\]\(([^)\s]+)\)"), r'<img alt="\1" src="\2">'),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2">\1</a>'),
    (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])"), r"<em>\1</em>"),
]
ATTR = re.compile(r'\b(src|alt)="([^"]*)"')
XML_PROLOG = re.compile(r"<\?xml[^>]*\?>|<!DOCTYPE[^>]*>", re.IGNORECASE)


def title_of(text: str) -> str:
    """The first level-one heading (`# ...`), or "Report" when there is none."""
    for line in text.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return "Report"


def _image(tag: str, base: Path) -> str:
    """An <img> of the Markdown's: a local SVG inlined, another local image by absolute URI."""
    attrs = {name: html.unescape(value) for name, value in ATTR.findall(tag)}
    src = attrs.get("src", "")
    if re.match(r"^[a-z][a-z0-9+.-]*:", src, re.IGNORECASE):
        return tag  # already absolute (file:, http:, data:)
    path = (base / src).resolve()
    if not path.is_file():
        raise SystemExit(f"report: the image {src} is not at {path}")
    alt = html.escape(attrs.get("alt", ""))
    if path.suffix.lower() == ".svg":
        svg = XML_PROLOG.sub("", path.read_text(encoding="utf-8")).strip()
        if svg.startswith("<svg"):
            return f'<svg class="chart" role="img" aria-label="{alt}" ' + svg[4:].lstrip()
    return f'<img class="chart" alt="{alt}" src="{html.escape(path.as_uri())}">'


def inline(text: str) -> str:
    """Render a line's code spans, links, images, bold and italics; escape the rest."""
    spans: list[str] = []

    def hold(found: re.Match[str]) -> str:  # a code span's text is taken as it is
        spans.append(f"<code>{html.escape(found[2].strip(), quote=False)}</code>")
        return f"\0{len(spans) - 1}\0"
    plain = html.escape(re.sub(r"(`+)(.+?)\1", hold, text), quote=False)
    for pattern, replacement in INLINE:
        plain = pattern.sub(replacement, plain)
    return re.sub(r"\0(\d+)\0", lambda found: spans[int(found[1])], plain)


def cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def table(lines: list[str]) -> str:
    """A table: a header row, the delimiter row (its colons align the columns), body rows."""
    aligns = []
    for spec in cells(lines[1]):
        right, left = spec.endswith(":"), spec.startswith(":")
        aligns.append(' style="text-align: center"' if left and right else
                      ' style="text-align: right"' if right else "")

    def row(line: str, tag: str) -> str:
        return "<tr>" + "".join(f"<{tag}{align}>{inline(cell)}</{tag}>"
                                for cell, align in zip(cells(line), aligns)) + "</tr>"
    body = "\n".join(row(line, "td") for line in lines[2:])
    return f"<table>\n<thead>{row(lines[0], 'th')}</thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def item(line: str) -> re.Match[str] | None:
    """The start of a list item at the left margin ("- ", "* ", "1. "), or None."""
    found = ITEM.match(line)
    return found if found and not found[1] else None


def list_items(lines: list[str], start: int) -> tuple[str, int]:
    """A list from ``lines[start]``: each item's first line and the indented lines after it
    (blank lines inside included) are the item's own blocks. Return it and the next index."""
    first = item(lines[start])
    assert first is not None
    tag = "ol" if first[2][0].isdigit() else "ul"
    items, at = [], start
    while at < len(lines) and (found := item(lines[at])):
        body, at = [found[3]], at + 1
        while at < len(lines) and (lines[at].startswith(" ") or (
                not lines[at].strip() and lines[at + 1:at + 2] != []
                and lines[at + 1].startswith("  "))):
            body.append(lines[at])
            at += 1
        rest = [line for line in body[1:] if line.strip()]
        indent = min((len(line) - len(line.lstrip()) for line in rest), default=0)
        block = [body[0]] + [line[indent:] for line in body[1:]]
        if any(not line.strip() for line in block):  # a loose item: blocks of its own
            items.append(blocks(block))
        else:
            items.append(inline(" ".join(line.strip() for line in block)))
        if at + 1 < len(lines) and not lines[at].strip() and item(lines[at + 1]):
            at += 1  # a blank line between two items of one list
    return f"<{tag}>\n" + "\n".join(f"<li>{one}</li>" for one in items) + f"\n</{tag}>", at


def blocks(lines: list[str]) -> str:
    """Render Markdown lines as HTML blocks."""
    out, at = [], 0
    while at < len(lines):
        line = lines[at]
        if not line.strip():
            at += 1
        elif line.startswith("```"):
            end = next((n for n in range(at + 1, len(lines)) if lines[n].startswith("```")),
                       len(lines))
            code = html.escape("\n".join(lines[at + 1:end]), quote=False)
            out.append(f"<pre><code>{code}\n</code></pre>")
            at = end + 1
        elif found := HEADING.match(line):
            level = len(found[1])
            out.append(f"<h{level}>{inline(found[2])}</h{level}>")
            at += 1
        elif line.lstrip().startswith("|") and at + 1 < len(lines) \
                and DELIMITER.match(lines[at + 1].strip()):
            end = at + 2
            while end < len(lines) and lines[end].lstrip().startswith("|"):
                end += 1
            out.append(table(lines[at:end]))
            at = end
        elif item(line):
            listed, at = list_items(lines, at)
            out.append(listed)
        else:
            end = at
            while end < len(lines) and lines[end].strip() and not (end > at and (
                    lines[end].startswith(("```", "|")) or HEADING.match(lines[end])
                    or item(lines[end]))):
                end += 1
            out.append(f"<p>{inline(' '.join(x.strip() for x in lines[at:end]))}</p>")
            at = end
    return "\n".join(out)


def to_html(text: str) -> str:
    """Render the report's Markdown as HTML (see the module docstring for what it reads)."""
    return blocks(text.splitlines())


def render_html(text: str, base: Path) -> str:
    """One standalone HTML page of the Markdown `text`, whose images are relative to `base`."""
    body = to_html(text)
    body = IMG.sub(lambda match: _image(match.group(0), base), body)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
            f"<title>{html.escape(title_of(text))}</title>\n<style>{STYLE}</style>\n"
            f"</head>\n<body>\n{body}\n</body>\n</html>\n")


def find_chromium() -> str | None:
    """Debian's `chromium`, or another name the same browser goes by."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def print_pdf(page: Path, target: Path, workdir: Path) -> None:
    """Print the HTML file `page` to `target` with headless Chromium (own profile in workdir)."""
    chromium = find_chromium()
    if chromium is None:
        raise SystemExit(NO_CHROMIUM)
    out = workdir / "report.pdf"
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
               "--no-pdf-header-footer", f"--user-data-dir={workdir / 'profile'}",
               f"--print-to-pdf={out}", page.as_uri()]
    try:
        done = subprocess.run(command, capture_output=True, text=True,
                              timeout=CHROMIUM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"report: Chromium did not print within {CHROMIUM_TIMEOUT_S} s")
    except OSError as error:
        raise SystemExit(f"{NO_CHROMIUM}: {error}")
    if done.returncode != 0 or not out.is_file() or out.stat().st_size == 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemExit(f"report: Chromium failed (exit {done.returncode}): {last}")
    shutil.copyfile(out, target)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Print docs/REPORT.md as a PDF.")
    parser.add_argument("source", nargs="?", type=Path, default=SOURCE)
    parser.add_argument("-o", "--output", type=Path, default=TARGET)
    parser.add_argument("--html", type=Path, help="also keep the HTML page here")
    args = parser.parse_args(argv)
    source: Path = args.source
    text = source.read_text(encoding="utf-8")
    page_html = render_html(text, source.resolve().parent)
    if args.html is not None:
        args.html.write_text(page_html, encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="report-") as tmp:
        workdir = Path(tmp)
        page = workdir / "report.html"
        page.write_text(page_html, encoding="utf-8")
        print_pdf(page, args.output, workdir)
    print(f"wrote {args.output} ({args.output.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
