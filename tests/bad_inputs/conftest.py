"""Session inputs of the bad-input matrix: the tiny demo run (read-only) and its world."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bad_inputs.harness import Inputs


@pytest.fixture(scope="session")
def inputs(tiny_demo: Path) -> Inputs:
    """The tiny twin world and the trained, evaluated tiny run (``tests/conftest.py``).

    Shared with the rest of the suite: cases copy what they change.
    """
    return Inputs(world=tiny_demo / "data", run=tiny_demo)
