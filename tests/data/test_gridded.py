"""Gridded product reader: calendars, grid orientation, units, sign, fire, bad input."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.data.gridded import ProductMapping, read_gridded, subtract_fire
from fluxbridge.errors import ConfigError, SchemaError
from fluxbridge.geo.grid import Grid

LAT = np.array([-45.0, 45.0])  # 2 x 4 global grid of 90-degree cells
LON = np.array([45.0, 135.0, 225.0, 315.0])  # 0..360 convention


def write_product(
    path: Path,
    values: np.ndarray,
    time: np.ndarray,
    *,
    time_units: str = "days since 2001-01-01",
    calendar: str | None = "standard",
    units: str | None = "kgC m-2 s-1",
    lat: np.ndarray = LAT,
    lon: np.ndarray = LON,
    names: tuple[str, str, str] = ("time", "lat", "lon"),
    extra: dict[str, xr.DataArray] | None = None,
    time_bounds: np.ndarray | None = None,
) -> Path:
    """Write a CF file with a raw numeric time axis, as products are distributed."""
    t, y, x = names
    time_attrs = {"units": time_units, **({"calendar": calendar} if calendar else {})}
    extra = dict(extra or {})
    if time_bounds is not None:
        extra["time_bnds"] = ((t, "nv"), time_bounds)
        time_attrs["bounds"] = "time_bnds"
    ds = xr.Dataset(
        {"flux": ((t, y, x), values, {"units": units} if units else {}), **extra},
        coords={
            t: (t, np.asarray(time, dtype=np.float64), time_attrs),
            y: (y, lat, {"units": "degrees_north"}),
            x: (x, lon, {"units": "degrees_east"}),
        },
    )
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def field(nt: int) -> np.ndarray:
    """(time, lat, lon) values that identify their cell: t*100 + ilat*10 + ilon."""
    t, y, x = np.meshgrid(np.arange(nt), np.arange(2), np.arange(4), indexing="ij")
    return (t * 100 + y * 10 + x).astype(np.float64)


def test_360_day_months_map_to_month_starts_and_lon_is_rolled(tmp_path: Path) -> None:
    # mid-month stamps of a 360-day calendar: day 15, 45, ... since 2001-01-01
    path = write_product(
        tmp_path / "a.nc", field(3), 15.0 + 30.0 * np.arange(3), calendar="360_day"
    )
    out = read_gridded(path, ProductMapping("flux", units="gC m-2 d-1"))
    assert list(pd.DatetimeIndex(out["time"].values)) == list(
        pd.date_range("2001-01-01", periods=3, freq="MS")
    )
    np.testing.assert_allclose(out["lon"].values, [-135.0, -45.0, 45.0, 135.0])
    # lon 225 (ilon 2) is now first, 315 (ilon 3) second, then 45 and 135
    np.testing.assert_allclose(out.isel(time=1, lat=1).values, [112.0, 113.0, 110.0, 111.0])
    assert out.attrs["units"] == "g m-2 d-1"
    assert out.chunks is not None  # opened lazily


def test_noleap_per_month_totals_use_file_calendar_lengths(tmp_path: Path) -> None:
    # noleap: Jan 31, Feb 28 days even in 2000; stamps at the 1st of each month
    ones = np.ones((2, 2, 4))
    ones[1] *= 2.0
    path = write_product(
        tmp_path / "b.nc",
        ones * np.array([31.0, 28.0])[:, None, None],
        np.array([0.0, 31.0]),
        time_units="days since 2000-01-01",
        calendar="noleap",
        units="gC m-2 month-1",
    )
    out = read_gridded(path, ProductMapping("flux"))
    np.testing.assert_allclose(out.isel(time=0).values, 1.0)
    np.testing.assert_allclose(out.isel(time=1).values, 2.0)


def test_months_since_encoding(tmp_path: Path) -> None:
    path = write_product(
        tmp_path / "c.nc",
        field(3),
        np.array([0.5, 1.5, 2.5]),
        time_units="months since 1999-11-01",
        units="gC m-2 d-1",
    )
    out = read_gridded(path, ProductMapping("flux"))
    assert [str(t)[:10] for t in out["time"].values] == ["1999-11-01", "1999-12-01", "2000-01-01"]


def test_descending_lat_is_flipped_and_sink_positive_kgc_converted(tmp_path: Path) -> None:
    path = write_product(
        tmp_path / "d.nc", field(1), np.array([14.0]), lat=LAT[::-1], lon=LON - 180.0
    )
    out = read_gridded(path, ProductMapping("flux", sign="sink_positive"))
    np.testing.assert_allclose(out["lat"].values, [-45.0, 45.0])
    # file row 0 was lat +45 with values 0..3; after the flip it is row 1; kgC s-1 -> gC d-1
    np.testing.assert_allclose(out.isel(time=0, lat=1).values, -np.arange(4) * 8.64e7)


def test_per_cell_total_with_land_fraction_cell_basis(tmp_path: Path) -> None:
    grid = Grid.from_centres(LAT, LON - 180.0)
    area = grid.cell_area().values
    land = np.array([[0.0, 0.5, 1.0, 0.25], [1.0, 1.0, 0.5, 0.0]])
    total = np.full((1, 2, 4), 2e-3)  # PgC per cell per month, January: 31 days
    extra = {"landfrac": (("lat", "lon"), land)}
    path = write_product(
        tmp_path / "e.nc",
        total,
        np.array([0.0]),
        units="PgC cell-1 month-1",
        lon=LON - 180.0,
        extra=extra,
    )
    mapping = ProductMapping("flux", land_fraction_variable="landfrac", area_basis="cell")
    out = read_gridded(path, mapping).isel(time=0).values
    with np.errstate(divide="ignore"):
        expected = np.where(land > 0, 2e-3 * 1e15 / area / 31.0 / land, np.nan)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_julian_calendar_with_time_bounds(tmp_path: Path) -> None:
    # stamps at the period ends (Feb 1, Mar 1): only the bounds [0, 31], [31, 59] place them right
    path = write_product(
        tmp_path / "j.nc",
        field(2),
        np.array([31.0, 59.0]),
        calendar="julian",
        units="gC m-2 d-1",
        time_bounds=np.array([[0.0, 31.0], [31.0, 59.0]]),
    )
    out = read_gridded(path, ProductMapping("flux"))
    assert [str(t)[:10] for t in out["time"].values] == ["2001-01-01", "2001-02-01"]


def test_allow_missing_months_fills_nan(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_product(
        tmp_path / "f.nc",
        field(2),
        np.array([0.0, 2.0]),
        time_units="months since 2001-01-01",
        units="gC m-2 d-1",
    )
    with caplog.at_level(logging.WARNING, logger="fluxbridge.data.gridded"):
        out = read_gridded(path, ProductMapping("flux", allow_missing_months=True))
    assert "1 missing month(s) (2001-02" in caplog.text
    assert out.sizes["time"] == 3
    assert np.isnan(out.isel(time=1).values).all()
    np.testing.assert_allclose(out.isel(time=2).values, field(2)[1][:, [2, 3, 0, 1]])


def test_fill_value_masked(tmp_path: Path) -> None:
    values = field(1)
    values[0, 0, 0] = -999.0
    path = write_product(tmp_path / "g.nc", values, np.array([0.0]), units="gC m-2 d-1")
    out = read_gridded(path, ProductMapping("flux", fill_value=-999.0))
    assert np.isnan(out.sel(lat=-45.0, lon=45.0).values).all()
    assert np.isfinite(out.values).sum() == 7


def test_netcdf3_classic_is_read(tmp_path: Path) -> None:
    ds = xr.Dataset(
        {"flux": (("time", "lat", "lon"), field(1), {"units": "gC m-2 d-1"})},
        coords={
            "time": ("time", [0.0], {"units": "days since 2001-01-01"}),
            "lat": LAT,
            "lon": LON,
        },
    )
    path = tmp_path / "classic.nc"
    ds.to_netcdf(path, engine="scipy")
    assert read_gridded(path, ProductMapping("flux")).sizes == {"time": 1, "lat": 2, "lon": 4}


def _canonical(values: np.ndarray, lat: np.ndarray = LAT) -> xr.DataArray:
    return xr.DataArray(
        values,
        dims=("time", "lat", "lon"),
        coords={
            "time": pd.date_range("2001-01-01", periods=values.shape[0], freq="MS"),
            "lat": lat,
            "lon": LON - 180.0,
        },
        attrs={"units": "gC m-2 d-1"},
    )


def test_subtract_fire() -> None:
    nee, fire = _canonical(field(2)), _canonical(np.full((2, 2, 4), 0.5))
    np.testing.assert_allclose(subtract_fire(nee, fire).values, field(2) - 0.5)


def test_subtract_fire_mismatches() -> None:
    nee = _canonical(field(2))
    with pytest.raises(SchemaError, match="grid"):
        subtract_fire(nee, _canonical(field(2), lat=np.array([-40.0, 40.0])))
    with pytest.raises(SchemaError, match="time axis"):
        subtract_fire(nee, _canonical(field(3)))
    fire = _canonical(field(2))
    fire.attrs["units"] = "kgC m-2 s-1"
    with pytest.raises(SchemaError, match="units"):
        subtract_fire(nee, fire)


def test_mapping_rejects_bad_options() -> None:
    with pytest.raises(ConfigError, match="sign"):
        ProductMapping("flux", sign="downward")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="land_fraction_variable"):
        ProductMapping("flux", area_basis="cell")


# ---- bad input: each names the file and the variable/value, nothing written ----


def _ok(tmp_path: Path, **kwargs: object) -> Path:
    args = {"values": field(3), "time": np.array([0.0, 31.0, 59.0]), **kwargs}
    return write_product(tmp_path / "p.nc", **args)  # type: ignore[arg-type]


BAD_CASES = {
    "missing variable": (lambda p: _ok(p), ProductMapping("nbp"), "nbp", "missing variable"),
    "unknown units": (
        lambda p: _ok(p, units="bananas m-2"),
        ProductMapping("flux"),
        "flux",
        "bananas",
    ),
    "wrong units": (lambda p: _ok(p, units="K"), ProductMapping("flux"), "flux", "'K'"),
    "no units": (lambda p: _ok(p, units=None), ProductMapping("flux"), "flux", "no units"),
    "duplicate times": (
        lambda p: _ok(p, time=np.array([0.0, 10.0, 31.0])),
        ProductMapping("flux"),
        "time",
        "duplicate month 2001-01",
    ),
    "non-monotonic times": (
        lambda p: _ok(p, time=np.array([0.0, 59.0, 31.0])),
        ProductMapping("flux"),
        "time",
        "2001-02 follows 2001-03",
    ),
    "missing month": (
        lambda p: _ok(p, time=np.array([0.0, 31.0, 90.0])),
        ProductMapping("flux"),
        "time",
        "missing month(s) between 2001-02 and 2001-04",
    ),
    "wrong dim names": (
        lambda p: _ok(p, names=("t", "y", "x")),
        ProductMapping("flux"),
        "flux",
        "lack",
    ),
    "undecodable time units": (
        lambda p: _ok(p, time_units="fortnights after lunch"),
        ProductMapping("flux"),
        "time",
        "cannot decode",
    ),
    "land fraction in percent": (
        lambda p: _ok(p, extra={"lf": (("lat", "lon"), np.full((2, 4), 100.0))}),
        ProductMapping("flux", land_fraction_variable="lf"),
        "lf",
        "[0, 1]",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_product_raises_clear_error(tmp_path: Path, case: str) -> None:
    make, mapping, variable, needle = BAD_CASES[case]
    path = make(tmp_path)
    before = sorted(tmp_path.iterdir())
    with pytest.raises(SchemaError) as err:
        read_gridded(path, mapping).load()
    assert str(path) in str(err.value)
    assert err.value.variable == variable
    assert needle in str(err.value)
    assert sorted(tmp_path.iterdir()) == before


def test_corrupt_and_truncated_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.nc"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(SchemaError, match="not a readable NetCDF4/HDF5 file") as err:
        read_gridded(garbage, ProductMapping("flux"))
    assert str(garbage) in str(err.value)
    good = _ok(tmp_path)
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(SchemaError, match="not a readable") as err:
        read_gridded(truncated, ProductMapping("flux")).load()
    assert str(truncated) in str(err.value)
    with pytest.raises(SchemaError, match="file not found"):
        read_gridded(tmp_path / "absent.nc", ProductMapping("flux"))
