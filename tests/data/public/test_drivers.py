"""Composition of the Table A2 drivers from daily base quantities, on hand-made inputs.

MODIS enters through a stand-in dataset of the shape :func:`modis.modis_daily` returns
(daily (time, lat, lon) float32 EVI, NDVI, NDWI, Band4, LST_Day, LST_Night, FPAR).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.data.canonical import DRIVER_NAMES, DRIVERS
from fluxbridge.data.public.drivers import (
    MSC_INPUTS,
    base_year,
    compose_year,
    day_slots,
    fill_cycle_gaps,
    mean_seasonal_cycle,
)
from fluxbridge.geo.grid import Grid

GRID = Grid.global_regular(30.0)


def _daily(days: pd.DatetimeIndex, values: np.ndarray) -> xr.DataArray:
    return xr.DataArray(values, dims=("time", "cell"), coords={"time": days})


def test_day_slots() -> None:
    days = pd.DatetimeIndex(["2004-02-28", "2004-02-29", "2004-03-01", "2005-03-01", "2004-12-31"])
    np.testing.assert_array_equal(day_slots(days), [58, 58, 59, 59, 364])


def test_mean_seasonal_cycle_by_hand() -> None:
    a = pd.date_range("2001-01-01", "2001-12-31", freq="D")
    b = pd.date_range("2002-01-01", "2002-12-31", freq="D")
    slot = np.arange(365.0)[:, None]
    year_b = slot + 2.0
    year_b[10] = np.nan  # a gap: slot 10 takes year A's value alone
    cycle = mean_seasonal_cycle([_daily(a, slot.copy()), _daily(b, year_b)])
    assert cycle.shape == (365, 1)
    assert cycle[0, 0] == pytest.approx(1.0)
    assert cycle[200, 0] == pytest.approx(201.0)
    assert cycle[10, 0] == pytest.approx(10.0)


def test_leap_day_shares_its_slot() -> None:
    days = pd.date_range("2004-02-28", "2004-03-01", freq="D")  # 28 Feb, 29 Feb, 1 Mar
    values = np.array([[1.0], [3.0], [7.0]])
    cycle = mean_seasonal_cycle([_daily(days, values)])
    assert cycle[58, 0] == pytest.approx(2.0)  # (1 + 3) / 2
    assert cycle[59, 0] == pytest.approx(7.0)


def test_gap_filling_by_hand() -> None:
    cycle = np.full((365, 3), np.nan)
    cycle[0, 0], cycle[100, 0] = 0.0, 100.0
    cycle[:, 1] = 5.0
    # cell 0: linear between slots 0 and 100 → slot 50 = 50; across the year end,
    # from slot 100 (100) to slot 365 ≡ 0 (0): slot 232 = 100 − 100·132/265.
    # cell 2 has no data: it takes the mean cycle of cells 0 and 1.
    out = fill_cycle_gaps(cycle)
    assert out[50, 0] == pytest.approx(50.0)
    assert out[232, 0] == pytest.approx(100.0 - 100.0 * 132.0 / 265.0)
    assert out[50, 2] == pytest.approx((50.0 + 5.0) / 2)


def test_smoothing_window() -> None:
    days = pd.date_range("2001-01-01", "2001-12-31", freq="D")
    values = np.zeros((365, 1))
    values[0] = 3.0
    cycle = mean_seasonal_cycle([_daily(days, values)], window=3)
    # Circular: slots 364, 0, 1 each see the 3 once in their window of 3.
    np.testing.assert_allclose(cycle[[364, 0, 1, 2], 0], [1.0, 1.0, 1.0, 0.0])


def _stand_in_modis(days: pd.DatetimeIndex) -> xr.Dataset:
    """MODIS-shaped stand-in: constants plus a per-cell offset of 0.001 × (ilat·12 + ilon)."""
    offset = (np.arange(6)[:, None] * 12 + np.arange(12)[None, :]) * 0.001
    const = {
        "EVI": 0.5,
        "NDVI": 0.8,
        "NDWI": 0.2,
        "Band4": 0.1,
        "LST_Day": 300.0,
        "LST_Night": 280.0,
        "FPAR": 0.5,
    }
    return xr.Dataset(
        {
            k: (
                ("time", "lat", "lon"),
                np.broadcast_to(v + offset, (days.size, 6, 12)).astype(np.float32),
            )
            for k, v in const.items()
        },
        coords={"time": days, **GRID.coords()},
    )


@pytest.mark.parametrize("lazy", [False, True])
def test_base_year_products_at_cells(lazy: bool) -> None:
    # lazy: dask arrays of one day per chunk, as modis_daily returns them.
    days = pd.date_range("2003-01-01", periods=3, freq="D")
    cells = (np.array([2, 5]), np.array([7, 0]))
    era5 = xr.Dataset(
        {
            "tair": (("time", "cell"), np.full((3, 2), 12.0)),
            "rg": (("time", "cell"), np.full((3, 2), 20.0)),
            "precip": (("time", "cell"), np.full((3, 2), 1.5)),
        },
        coords={"time": days},
    )
    rpot = np.full((3, 2), 30.0)
    wai = np.full((3, 2), 55.0)
    fields = _stand_in_modis(days)
    if lazy:
        fields = fields.chunk({"time": 1})
    base = base_year(era5, fields, rpot, wai, cells)
    o = np.array([2 * 12 + 7, 5 * 12 + 0]) * 0.001  # the stand-in's offsets at the cells
    np.testing.assert_allclose(base["EVI_Rg"].values[0], (0.5 + o) * 20.0, rtol=1e-6)
    np.testing.assert_allclose(base["FPAR_LST_Day"].values[1], (0.5 + o) * (300.0 + o), rtol=1e-6)
    np.testing.assert_allclose(base["NDVI_Rpot"].values[2], (0.8 + o) * 30.0, rtol=1e-6)
    np.testing.assert_allclose(base["LST_Night"].values[0], 280.0 + o, rtol=1e-7)
    np.testing.assert_allclose(base["Precip"].values, 1.5)
    assert set(MSC_INPUTS) <= set(base.data_vars)
    assert all(base[v].dtype == np.float32 for v in base.data_vars)


def test_base_year_refuses_other_days() -> None:
    days = pd.date_range("2003-01-01", periods=3, freq="D")
    era5 = xr.Dataset(
        {"tair": (("time", "cell"), np.zeros((3, 1))), "rg": (("time", "cell"), np.zeros((3, 1)))},
        coords={"time": days},
    )
    with pytest.raises(ValueError, match="days differ"):
        base_year(
            era5,
            _stand_in_modis(days + pd.Timedelta(days=1)),
            np.zeros((3, 1)),
            np.zeros((3, 1)),
            (np.array([0]), np.array([0])),
        )


def test_compose_year_by_hand() -> None:
    days = pd.date_range("2004-01-01", "2004-12-31", freq="D")  # leap year
    n = days.size
    slot = np.arange(365.0)
    cycles = {name: np.stack([slot, 2 * slot], axis=1).astype(np.float32) for name in MSC_INPUTS}
    cycles["NDVI"] = np.stack([0.2 + 0.5 * np.sin(np.pi * slot / 365)] * 2, axis=1)
    band4 = np.where(np.asarray(days.month)[:, None] <= 6, 0.1, 0.3) * np.ones((n, 2))
    band4[days.month > 3, 1] = np.nan  # cell 1: 3 months only → the MSC amplitude
    base = xr.Dataset(
        {
            "WAI": (("time", "cell"), np.full((n, 2), 42.0)),
            "Tair": (("time", "cell"), np.full((n, 2), -3.0)),
            "Band4": (("time", "cell"), band4),
        },
        coords={"time": days},
    )
    out = compose_year(base, cycles)
    assert list(out.data_vars) == list(DRIVER_NAMES)
    assert all(out[d.name].attrs["units"] == d.units for d in DRIVERS)
    assert all(out[v].dtype == np.float32 for v in out.data_vars)
    # 1 March 2004 is day 61 of the year, slot 59; 29 February is slot 58.
    march1 = days.get_loc(pd.Timestamp("2004-03-01"))
    feb29 = days.get_loc(pd.Timestamp("2004-02-29"))
    assert out["MSC_EVIRpot"].values[march1, 1] == pytest.approx(118.0)
    assert out["Rg_VIMSC"].values[feb29, 0] == pytest.approx(58.0)
    assert out["MIN_MSC_NDWI"].values[100, 1] == 0.0
    assert out["AMP_MSC_WAI"].values[0, 0] == pytest.approx(364.0)
    assert out["AMP_MSC_NDVI"].values[0, 0] == pytest.approx(
        0.5 * np.sin(np.pi * 182 / 365), rel=1e-6
    )
    assert out["AMP_Band4"].values[0, 0] == pytest.approx(0.2)
    assert out["AMP_Band4"].values[0, 1] == pytest.approx(2 * 364.0)  # cycles["Band4"] cell 1
    assert out["WAI2"].values[5, 0] == 42.0
    assert out["Tair"].values[5, 1] == -3.0
