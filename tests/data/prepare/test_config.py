"""The prepare config's ``{data_dir}`` placeholder (manifest and fold list in the data folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fluxbridge.data.prepare.config import load_prepare_config
from fluxbridge.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[3] / "configs" / "prepare" / "twin_raw.yaml"


def test_data_dir_placeholder_resolved(tmp_path: Path) -> None:
    loaded = load_prepare_config(SHIPPED, tmp_path / "raw")
    assert loaded.manifest == tmp_path / "raw" / "data_manifest.yaml"
    assert loaded.resolve("{data_dir}/twin_folds.csv") == tmp_path / "raw" / "twin_folds.csv"
    assert loaded.resolve("folds.csv") == SHIPPED.parent / "folds.csv"  # unchanged rule


def test_data_dir_placeholder_without_data_dir_is_one_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"twin_raw\.yaml.*\{data_dir\}.*no data directory"):
        load_prepare_config(SHIPPED)
