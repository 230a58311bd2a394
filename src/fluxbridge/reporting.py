"""A report as a list of blocks, rendered to both Markdown and standalone HTML.

Shared by the evaluation report and the ensemble-analysis report, so both look
alike and neither needs a Markdown library. Figures are referenced by file
name relative to the report directory.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from fluxbridge.io import atomic_path


@dataclass
class Table:
    """A table of already-formatted cells; ``caption`` explains units."""

    header: Sequence[str]
    rows: Sequence[Sequence[object]]
    caption: str = ""


class Figure(NamedTuple):
    """A PNG beside the report: ``path`` absolute or relative to the report directory."""

    path: Path | str
    caption: str


@dataclass
class Section:
    title: str
    paragraphs: list[str] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure | tuple[str, str]] = field(default_factory=list)


def fmt(value: object, digits: int = 3) -> str:
    """Numbers to fixed significant digits; None/NaN to an em dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != value:  # NaN
            return "—"
        return f"{value:.{digits}g}"
    return str(value)


def _relative(path: Path | str, root: Path) -> str:
    path = Path(path)
    return (path.relative_to(root) if path.is_absolute() else path).as_posix()


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
            lines += [f"![{caption}]({_relative(path, root)})", "", f"*{caption}*", ""]
    return "\n".join(lines)


def to_html(title: str, sections: Sequence[Section], root: Path) -> str:
    e = html.escape
    body = [f"<h1>{e(title)}</h1>"]
    toc = "".join(f'<li><a href="#s{i}">{e(s.title)}</a></li>' for i, s in enumerate(sections))
    body.append(f"<ul>{toc}</ul>")
    for i, s in enumerate(sections):
        body.append(f'<h2 id="s{i}">{e(s.title)}</h2>')
        body += [f"<p>{e(p)}</p>" for p in s.paragraphs]
        for t in s.tables:
            head = "".join(f"<th>{e(h)}</th>" for h in t.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{e(fmt(c))}</td>" for c in row) + "</tr>" for row in t.rows
            )
            cap = f"<caption>{e(t.caption)}</caption>" if t.caption else ""
            body.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        for path, caption in s.figures:
            body.append(
                f'<figure><img src="{e(_relative(path, root))}" alt="{e(caption)}">'
                f"<figcaption>{e(caption)}</figcaption></figure>"
            )
    style = (
        "body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
        "table{border-collapse:collapse;margin:1em 0;font-size:0.85em}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "caption{caption-side:top;text-align:left;font-style:italic}"
        "img{max-width:100%}figcaption{font-size:0.85em;color:#444}"
    )
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{e(title)}</title>"
        f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
    )


def write_report(title: str, sections: Sequence[Section], root: Path) -> tuple[Path, Path]:
    """Write ``root/report.md`` and ``root/index.html`` (atomically, replacing earlier ones)."""
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
