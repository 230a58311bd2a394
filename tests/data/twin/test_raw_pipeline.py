"""Issue 12: the pipeline's truth scores on twin → raw → prepare match those on the twin.

The tiny scenario with ``sites.driver_noise: 0``: the twin's per-tower driver noise is one
knob for all 10 drivers, and only Tair's has a raw carrier (``TA_F``), so with it on the
prepared towers see their cell's drivers where the twin's see noisy ones, a difference
no raw layout can carry (docs/twin_world.md "What does not come back"). One module
fixture builds the twin, the raw twin, prepares it with the shipped
configs/prepare/twin_raw.yaml, and runs bridges (2 runs), EC and EC-ATM (1 fold × 1
epoch), forward and evaluate on both datasets (≈ 100 s on an idle 2-core machine).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from tests.data.twin.raw_round_trip import (
    TOLERANCE_PGC_YR,
    PipelineSettings,
    build_round_trip,
    pipeline_scores,
    scenario_with_driver_noise,
)

from fluxbridge.data.canonical import DRIVER_NAMES

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[3]
TINY = REPO / "configs" / "twin" / "tiny.yaml"
CONFIG = REPO / "configs" / "prepare" / "twin_raw.yaml"
SETTINGS = PipelineSettings(folds=1, epochs=1, bridge_runs=2)
DATASETS = ("twin", "prepared")
#: Without the tower noise the prepared dataset differs from the twin only by the CSV's
#: 6 decimals of the towers' Tair (≤ 1e-6 °C) and the mask's region shares (≤ 0.002, which
#: moved EC-ATM by 0.0004 PgC/yr in bench_twin_raw.py --isolate): measured 0 (6 digits of
#: metrics.json). 0.01 PgC/yr, 10× below the goal, still catches a broken writer that the
#: goal lets through (gridded Tair × 1.1: EC 0.050, EC-ATM 0.028 PgC/yr off).
NOISE_FREE_TOLERANCE_PGC_YR = 0.01


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("twin_raw_pipeline")
    scenario = scenario_with_driver_noise(TINY, 0.0, base / "tiny_no_tower_noise.yaml")
    build_round_trip(scenario, base, CONFIG)
    return base


@pytest.fixture(scope="module")
def scores(work: Path) -> dict[str, dict[str, float]]:
    return {name: pipeline_scores(work / name, work / f"run_{name}", SETTINGS) for name in DATASETS}


def _open(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        return ds.load()


def test_tower_drivers_come_back_without_driver_noise(work: Path) -> None:
    """The precondition: with the noise off, every tower driver of the prepared dataset is
    the twin's (Tair through the CSV's 6 decimals, the rest exactly: the cell's)."""
    twin, prep = _open(work / "twin" / "sites.nc"), _open(work / "prepared" / "sites.nc")
    for name in DRIVER_NAMES:
        a, b = prep[name].values.astype(np.float64), twin[name].values.astype(np.float64)
        assert (np.isnan(a) == np.isnan(b)).all(), name
        diff = float(np.nanmax(np.abs(a - b)))
        assert diff <= (1e-6 if name == "Tair" else 0.0), (
            f"{name}: max |prepared − twin| {diff:.3g}"
        )


def _truth_global_pgc_yr(data: Path) -> float:
    """Mean annual Σ-regions NEE of truth.nc by hand: gC m-2 d-1 (per m² of land) × cell
    area × land fraction × Σ region shares × days of the month, summed, / years, 1e-15."""
    truth, grid = _open(data / "truth.nc"), _open(data / "grid.nc")
    weights = grid["cell_area"] * grid["land_fraction"] * grid["region_fraction"].sum("region")
    months = pd.DatetimeIndex(truth["time"].values)
    nee = np.nan_to_num(truth["nee"].values.astype(np.float64))
    monthly = np.einsum("tyx,yx->t", nee, weights.values) * months.days_in_month.to_numpy()
    return float(monthly.sum() * 1e-15 / len(set(months.year)))


def test_truth_is_the_same_on_both(work: Path, scores: dict[str, dict[str, float]]) -> None:
    assert scores["prepared"]["truth"] == scores["twin"]["truth"]
    for name in DATASETS:
        # metrics.json keeps 6 significant digits
        assert scores[name]["truth"] == pytest.approx(_truth_global_pgc_yr(work / name), rel=1e-5)


@pytest.mark.parametrize("model", ["EC", "EC-ATM"])
def test_global_nee_within_tolerance(scores: dict[str, dict[str, float]], model: str) -> None:
    """Issue 12's goal, 0.1 PgC/yr, for EC-ATM and for EC, and the tighter bound that the
    noise-free round trip keeps."""
    twin, prepared = scores["twin"][model], scores["prepared"][model]
    assert np.isfinite(twin) and np.isfinite(prepared)
    assert abs(prepared - twin) <= TOLERANCE_PGC_YR, (model, twin, prepared)
    assert abs(prepared - twin) <= NOISE_FREE_TOLERANCE_PGC_YR, (model, twin, prepared)
