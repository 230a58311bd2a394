"""by_day_blocks: a year built block by block of days equals the year built at once, bitwise."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.data.public.day_blocks import by_day_blocks
from fluxbridge.data.public.drivers import MODIS_VARIABLES, base_year
from fluxbridge.geo.grid import Grid
from fluxbridge.io import write_netcdf

GRID = Grid(np.linspace(40.0, 46.0, 7), np.linspace(0.0, 12.0, 13))  # 6 × 12 cells of 1°
DAYS = pd.date_range("2004-02-20", "2004-03-31", freq="D")  # 41 days, 29 February among them


def _random_year(seed: int) -> tuple[xr.Dataset, xr.Dataset, np.ndarray, np.ndarray]:
    """ERA5 at cells, MODIS on the grid (dask, one day per chunk, 10 % NaN), Rpot, WAI."""
    rng = np.random.default_rng(seed)
    n_cells = 9
    era5 = xr.Dataset(
        {
            "tair": (("time", "cell"), rng.normal(10, 8, (DAYS.size, n_cells)).astype(np.float32)),
            "rg": (("time", "cell"), rng.uniform(0, 30, (DAYS.size, n_cells)).astype(np.float32)),
            "precip": (("time", "cell"), rng.gamma(1, 2, (DAYS.size, n_cells)).astype(np.float32)),
        },
        coords={"time": DAYS},
    )
    fields = {}
    for name in MODIS_VARIABLES:
        values = rng.uniform(0.0, 1.0, (DAYS.size, *GRID.shape)).astype(np.float32)
        values[rng.uniform(size=values.shape) < 0.1] = np.nan
        fields[name] = (("time", "lat", "lon"), values)
    modis = xr.Dataset(fields, coords={"time": DAYS, **GRID.coords()}).chunk({"time": 1})
    rpot = rng.uniform(0, 45, (DAYS.size, n_cells))  # float64, as potential_radiation gives
    wai = rng.uniform(0, 150, (DAYS.size, n_cells))
    return era5, modis, rpot, wai


CELLS = (np.array([0, 0, 1, 2, 3, 4, 5, 5, 5]), np.array([0, 11, 3, 6, 2, 9, 0, 5, 11]))


@pytest.mark.parametrize("block_bytes", [1, 5_000, 10**9])  # one day, a few days, one block
def test_base_year_in_day_blocks_is_bitwise_the_whole_year(block_bytes: int) -> None:
    era5, modis, rpot, wai = _random_year(seed=1)
    whole = base_year(era5, modis, rpot, wai, CELLS)
    blocked = by_day_blocks(
        lambda t: base_year(era5.isel(time=t), modis.isel(time=t), rpot[t], wai[t], CELLS),
        DAYS,
        block_bytes=block_bytes,
    )
    assert list(blocked.data_vars) == list(whole.data_vars)
    expected_chunks = {1: DAYS.size, 10**9: 2}.get(block_bytes)
    for name in whole.data_vars:
        assert blocked[name].chunks is not None
        if expected_chunks is not None:
            assert len(blocked[name].chunks[0]) == expected_chunks
        assert blocked[name].dtype == whole[name].dtype == np.float32
        assert blocked[name].dims == whole[name].dims
        np.testing.assert_array_equal(blocked[name].values, whole[name].values, err_msg=name)
    assert np.isnan(whole["NDVI"].values).any()  # the NaN of MODIS went through both
    pd.testing.assert_index_equal(blocked.indexes["time"], whole.indexes["time"], check_freq=False)


def test_written_part_is_bitwise_the_eager_one(tmp_path: Path) -> None:
    era5, modis, rpot, wai = _random_year(seed=2)
    whole = base_year(era5, modis, rpot, wai, CELLS)
    blocked = by_day_blocks(
        lambda t: base_year(era5.isel(time=t), modis.isel(time=t), rpot[t], wai[t], CELLS),
        DAYS,
        block_bytes=3_000,
    )
    end = np.arange(9.0)
    for ds in (whole, blocked):  # as _base_part adds the bucket state
        ds["wai_end_water"] = ("cell", end, {"units": "mm"})
    assert_written_bitwise_equal(whole, blocked, tmp_path)


def assert_written_bitwise_equal(eager: xr.Dataset, blocked: xr.Dataset, folder: Path) -> None:
    """Both datasets written with write_netcdf (as prepare writes parts) and read back hold
    the same variables, dtypes and values, bitwise."""
    write_netcdf(eager, folder / "eager.nc", action="test")
    write_netcdf(blocked, folder / "blocked.nc", action="test")
    with (
        xr.open_dataset(folder / "eager.nc", engine="h5netcdf") as a,
        xr.open_dataset(folder / "blocked.nc", engine="h5netcdf") as b,
    ):
        assert set(a.variables) == set(b.variables)
        for name in a.variables:
            assert a[name].dtype == b[name].dtype, name
            np.testing.assert_array_equal(a[name].values, b[name].values, err_msg=name)


def test_values_by_hand_across_block_edges(caplog: pytest.LogCaptureFixture) -> None:
    # build(t) = day index × 10 + cell; 8 bytes a day (2 float32 cells), so 16 bytes: 2 days
    days = pd.date_range("2003-01-01", periods=5, freq="D")
    calls: list[tuple[int, int]] = []

    def build(t: slice) -> xr.Dataset:
        calls.append((t.start, t.stop))
        idx = np.arange(t.start, t.stop)
        values = (idx[:, None] * 10 + np.arange(2)[None, :]).astype(np.float32)
        return xr.Dataset(
            {"x": (("time", "cell"), values, {"units": "1"})}, coords={"time": days[t]}
        )

    with caplog.at_level(logging.INFO, logger="fluxbridge.data.public.day_blocks"):
        ds = by_day_blocks(build, days, block_bytes=16, label="x part")
    assert calls == [(0, 1)]  # only the first day before the dataset is written
    assert caplog.messages == ["x part: 5 day(s) in 3 block(s) of at most 2 day(s) (0.0 MiB a day)"]
    np.testing.assert_array_equal(ds["x"].values, [[0, 1], [10, 11], [20, 21], [30, 31], [40, 41]])
    assert sorted(calls) == [(0, 1), (1, 3), (3, 5)]  # the first day once, then 2-day blocks
    assert ds["x"].attrs == {"units": "1"}


def test_variable_without_time_first_is_refused() -> None:
    days = pd.date_range("2003-01-01", periods=3, freq="D")

    def build(t: slice) -> xr.Dataset:
        return xr.Dataset({"x": (("cell", "time"), np.zeros((2, t.stop - t.start)))})

    with pytest.raises(ValueError, match="'x' has dims"):
        by_day_blocks(build, days)
