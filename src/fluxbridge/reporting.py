"""A report as a list of blocks, rendered to both Markdown and standalone HTML.

Shared by the evaluation report and the ensemble-analysis report, so both look
alike and neither needs a Markdown library. Every figure and link is written
relative to the report's own folder, so a report opens in a browser from any
working directory and survives moving the run folder (docs/evaluation.md,
"Report layout"; checked in Chromium by tests/test_reports_browser.py).
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from fluxbridge.errors import FluxbridgeError
from fluxbridge.outputs import atomic_path


@dataclass
class Table:
    """A table of already-formatted cells; ``caption`` explains units."""

    header: Sequence[str]
    rows: Sequence[Sequence[object]]
    caption: str = ""


class Figure(NamedTuple):
    """A PNG shown in the report; ``path`` is a file path (absolute or from the working dir)."""

    path: Path | str
    caption: str


class Link(NamedTuple):
    """A file the reader may open next to the report (a CSV, a config); ``path`` as in Figure."""

    path: Path | str
    text: str


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)


# Cells that hold a number (or a number's placeholder) are right-aligned so digits line up;
# names, periods and subset labels stay left-aligned.
_NUMERIC = re.compile(r"^(?:[-+−]?\.?\d|—$|n/a$)")
_CODE = re.compile(r"`([^`]+)`")

STYLE = """
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
 color:#1f2328;max-width:76rem;margin:0 auto;padding:1rem 2rem 3rem}
h1{font-size:1.75rem;margin:.5rem 0 1rem}
h2{font-size:1.3rem;margin:2.2rem 0 .6rem;padding-bottom:.2rem;border-bottom:1px solid #d0d7de}
p{max-width:60rem}
a{color:#0969da}
code{font-size:.88em;background:#f3f4f6;padding:.05em .3em;border-radius:3px}
nav.toc{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:.5rem 1.2rem;
 margin-bottom:1.5rem}
nav.toc ol{columns:2;column-gap:2.5rem;margin:.3rem 0;padding-left:1.3rem}
.table-wrap{overflow-x:auto;margin:1rem 0}
table{border-collapse:collapse;font-size:.85rem;font-variant-numeric:tabular-nums}
caption{caption-side:top;text-align:left;font-style:italic;padding:0 0 .3rem;color:#424a53}
th,td{border:1px solid #d0d7de;padding:.2rem .55rem;text-align:left}
th{background:#f6f8fa;vertical-align:bottom}
td.num{text-align:right;white-space:nowrap}
tbody tr:nth-child(even){background:#fafbfc}
figure{margin:1.5rem 0}
img{display:block;max-width:100%;height:auto}
figcaption{font-size:.9rem;color:#424a53;margin-top:.3rem}
ul.files{font-size:.9rem}
@media print{
 body{max-width:none;padding:0;font-size:10pt;color:#000}
 nav.toc{display:none}
 a{color:inherit;text-decoration:none}
 h2{break-after:avoid;page-break-after:avoid}
 table,figure,.table-wrap{break-inside:avoid;page-break-inside:avoid}
 .table-wrap{overflow:visible}
 table{font-size:8pt}
 img{max-height:23cm;object-fit:contain}
}
"""


def fmt(value: object, digits: int = 3) -> str:
    """Numbers to fixed significant digits; None/NaN to an em dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        return f"{value:.{digits}g}"
    return str(value)


def relative_href(path: Path | str, root: Path) -> str:
    """``path`` as a URL relative to the report folder ``root`` (both resolved first).

    Resolving both is what makes the link right whether the run was given as an
    absolute path or relative to the working directory (``runs/demo``).
    """
    path = Path(path)
    if not path.is_file():
        raise FluxbridgeError(f"{root}: the report refers to {path}, which is not a file")
    return Path(os.path.relpath(path.resolve(), Path(root).resolve())).as_posix()


def to_markdown(title: str, sections: Sequence[Section], root: Path) -> str:
    lines = [f"# {title}", ""]
    for s in sections:
        lines += [f"## {s.title}", ""]
        for p in s.paragraphs:
            lines += [p, ""]
        for t in s.tables:
            if t.caption:
                lines += [f"*{t.caption}*", ""]
            lines.append("| " + " | ".join(t.header) + " |")
            lines.append("|" + "---|" * len(t.header))
            lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in t.rows]
            lines.append("")
        for path, caption in s.figures:
            lines += [f"![{caption}]({relative_href(path, root)})", "", f"*{caption}*", ""]
        if s.links:
            lines += [f"- [{text}]({relative_href(path, root)})" for path, text in s.links]
            lines.append("")
    return "\n".join(lines)


def _text(paragraph: str) -> str:
    """A paragraph to HTML: escaped, with Markdown `code` spans kept as code."""
    return _CODE.sub(r"<code>\1</code>", html.escape(paragraph))


def _table_html(t: Table) -> str:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in t.header)
    rows = []
    for row in t.rows:
        cells = [fmt(c) for c in row]
        rows.append(
            "<tr>"
            + "".join(
                f'<td class="num">{e(c)}</td>' if _NUMERIC.match(c) else f"<td>{e(c)}</td>"
                for c in cells
            )
            + "</tr>"
        )
    cap = f"<caption>{e(t.caption)}</caption>" if t.caption else ""
    return (
        f'<div class="table-wrap"><table>{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def to_html(title: str, sections: Sequence[Section], root: Path) -> str:
    e = html.escape
    toc = "".join(f'<li><a href="#s{i}">{e(s.title)}</a></li>' for i, s in enumerate(sections))
    body = [
        f"<h1>{e(title)}</h1>",
        f'<nav class="toc"><strong>Contents</strong><ol>{toc}</ol></nav>',
    ]
    for i, s in enumerate(sections):
        body.append(f'<section><h2 id="s{i}">{e(s.title)}</h2>')
        body += [f"<p>{_text(p)}</p>" for p in s.paragraphs]
        body += [_table_html(t) for t in s.tables]
        for path, caption in s.figures:
            body.append(
                f'<figure><img src="{e(relative_href(path, root))}" alt="{e(caption)}">'
                f"<figcaption>{e(caption)}</figcaption></figure>"
            )
        if s.links:
            items = "".join(
                f'<li><a href="{e(relative_href(path, root))}">{e(text)}</a></li>'
                for path, text in s.links
            )
            body.append(f'<ul class="files">{items}</ul>')
        body.append("</section>")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>"
    )


def write_report(title: str, sections: Sequence[Section], root: Path) -> tuple[Path, Path]:
    """Write ``root/report.md`` and ``root/index.html`` (atomically, replacing earlier ones).

    Raises FluxbridgeError when a figure or link is not a file, before writing anything.
    """
    root.mkdir(parents=True, exist_ok=True)
    outputs = []
    for name, text in (
        ("report.md", to_markdown(title, sections, root)),
        ("index.html", to_html(title, sections, root)),
    ):
        with atomic_path(root / name, overwrite=True) as tmp:
            tmp.write_text(text, encoding="utf-8")
        outputs.append(root / name)
    return outputs[0], outputs[1]
