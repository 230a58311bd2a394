"""Shared fixtures of the analysis tests: the hand-made data set and one full run over it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

# Loaded under a unique name so that other test folders' helper modules cannot shadow it.
_NAME = "fluxbridge_tests_analysis_fixtures"
_spec = importlib.util.spec_from_file_location(_NAME, Path(__file__).with_name("_fixtures.py"))
fixtures = importlib.util.module_from_spec(_spec)
sys.modules[_NAME] = fixtures
_spec.loader.exec_module(fixtures)


@pytest.fixture(scope="session")
def analysis_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(fixture directory, output directory) of one complete ``run_analyze`` on the fixture."""
    from fluxbridge.analysis.run import run_analyze

    root = tmp_path_factory.mktemp("analysis")
    config = fixtures.write_config(root)
    assert run_analyze(config) == 0
    return root, root / "out"
