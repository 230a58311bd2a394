"""The schema constants live in a leaf module, and the data and geo packages do not import
each other in a cycle (issue 13: one home for schema constants and units)."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "fluxbridge"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_schema_imports_nothing_from_fluxbridge():
    assert not {m for m in _imports(SRC / "schema.py") if m.startswith("fluxbridge")}


def test_geo_does_not_import_data():
    offenders = {
        path.name: sorted(m for m in _imports(path) if m.startswith("fluxbridge.data"))
        for path in (SRC / "geo").glob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_units_are_defined_once():
    defined = [
        path.relative_to(SRC).as_posix()
        for path in SRC.rglob("*.py")
        if "\nNEE_UNITS = " in path.read_text() or "\nGRAMS_PER_PETAGRAM = " in path.read_text()
    ]
    assert defined == ["schema.py"]
