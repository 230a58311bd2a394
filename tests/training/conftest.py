"""Shared tiny canonical dataset and bridges for the training tests (built once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _tiny_dataset import write_tiny_bridges, write_tiny_dataset


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    # Tiny matrices: thread start-up dominates, and the test machine's cores are shared.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_dataset(
        tmp_path_factory.mktemp("tiny") / "data", years=(2001, 2003), tower_bias=0.6
    )


@pytest.fixture(scope="session")
def tiny_bridges(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bridges(tiny_data, tmp_path_factory.mktemp("bridges") / "bridges.nc")


@pytest.fixture
def run_dir(tiny_bridges: Path, tmp_path: Path) -> Path:
    """A fresh run directory holding the tiny bridges.nc."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "bridges.nc").write_bytes(tiny_bridges.read_bytes())
    return run


@pytest.fixture
def tiny_config(tmp_path: Path) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text("batch_size: 2048\nmax_epochs: 2\nprogress_bar: false\n")
    return path
