"""The report: ``report.md``, ``index.html`` (same content) and ``summary.json``.

Sections, tables and the Markdown/HTML rendering are the project's shared
:mod:`fluxbridge.reporting`; this module adds the NBP sign statement, the
number formats of the analysis and summary.json.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from fluxbridge.reporting import Figure, Section, Table
from fluxbridge.reporting import write_report as render

__all__ = ["SIGN_STATEMENT", "Figure", "Section", "Table", "fmt", "pm", "write_report"]

SIGN_STATEMENT = (
    "All numbers and figures state net biome production, NBP = -NEE, positive = carbon "
    "sink (uptake by the land), as He et al. (2023) do. Products are read once and "
    "converted to NEE in gC m-2 d-1, positive = source; only the report flips the sign."
)


def fmt(x: float, digits: int = 3) -> str:
    """A number for a table; "n/a" for NaN."""
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def pm(median: float, std: float, digits: int = 3) -> str:
    """ "median ± std" (std omitted when undefined)."""
    if isinstance(std, float) and math.isnan(std):
        return fmt(median, digits)
    return f"{fmt(median, digits)} ± {fmt(std, digits)}"


def _clean(obj: Any) -> Any:
    """JSON-safe copy: NaN → null, numpy scalars → Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item"):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def write_report(directory: Path, title: str, sections: list[Section], summary: dict) -> None:
    """Write report.md, index.html and summary.json into ``directory``."""
    render(title, sections, directory)
    (directory / "summary.json").write_text(json.dumps(_clean(summary), indent=2) + "\n")
