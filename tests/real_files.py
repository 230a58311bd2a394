"""Real provider files for the tests: ``scripts/fetch_test_data.py`` through one small helper.

``fetch_or_skip(key)`` returns the verified path of a registered file
(``tests/real_files.yaml``), downloading its sdist on first use. An offline
machine skips the test with the reason; a checksum mismatch fails it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fetch_test_data.py"


def fetch_module() -> ModuleType:
    """``scripts/fetch_test_data.py`` imported as a module (scripts/ is not a package)."""
    name = "fluxbridge_fetch_test_data"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses need the module registered while it runs
        spec.loader.exec_module(module)
    return sys.modules[name]


#: Failed downloads of this test session, by key: an offline machine tries pip once per file.
_FAILED: dict[str, str] = {}


def fetch_or_skip(key: str) -> Path:
    """Path of the real file ``key``; skips the calling test when the download fails."""
    if key in _FAILED:
        pytest.skip(_FAILED[key])
    fetch = fetch_module()
    try:
        return fetch.fetch(key)
    except fetch.DownloadError as exc:
        _FAILED[key] = f"offline: {exc}"
        pytest.skip(_FAILED[key])
