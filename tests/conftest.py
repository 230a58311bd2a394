"""Shared fixtures: one tiny twin-world demo run per test session (real files, real Trainer)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parents[1]
TINY_SCENARIO = ROOT / "configs" / "twin" / "tiny.yaml"


def demo_settings(base: Path) -> dict[str, object]:
    """Small demo settings for tests: 2 folds × 2 epochs, 4 bridge runs, no progress bars."""
    bridges = base / "bridges.yaml"
    bridges.write_text("n_runs: 4\nn_jobs: 1\n")
    train = base / "train.yaml"
    train.write_text("max_epochs: 2\nprogress_bar: false\n")
    return {"DEMO_FOLDS": 2, "DEMO_EPOCHS": 2, "DEMO_BRIDGES": bridges, "DEMO_TRAIN": train}


@pytest.fixture(scope="session")
def tiny_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`invoke demo` on the tiny scenario with 2 folds × 2 epochs: a complete run directory."""
    from fluxbridge import logs, pipeline

    base = tmp_path_factory.mktemp("demo")
    out = base / "run"
    mp = pytest.MonkeyPatch()
    for name, value in demo_settings(base).items():
        mp.setattr(pipeline, name, value)
    # as `fluxbridge demo` runs it: console lines kept in console.log beside the run
    try:
        with (
            (base / "console.log").open("w") as console,
            contextlib.redirect_stdout(console),
            logs.session(out),
        ):
            assert pipeline.run_demo(TINY_SCENARIO, out, force=False) == 0
    finally:
        mp.undo()
    return out


@pytest.fixture
def real_file() -> Callable[[str], Path]:
    """``real_file("be_vie_2014_hh")`` → path of a real provider file (tests/real_files.yaml).

    Downloaded on first use into ``$FLUXBRIDGE_TESTDATA`` (default
    ``~/.cache/fluxbridge-testdata``); the test is skipped with the reason when
    the download fails (offline), and fails on a checksum mismatch.
    """
    from tests.real_files import fetch_or_skip

    return fetch_or_skip
