"""ERA5 reader: CDS NetCDF4, legacy NetCDF and GRIB layouts; de-accumulation by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.data.public.era5 import (
    Era5Product,
    Era5Variable,
    daily_values,
    era5_daily,
    open_era5_variable,
)
from fluxbridge.errors import SchemaError
from fluxbridge.geo.grid import Grid

GRID = Grid.global_regular(30.0)  # 6 x 12 cells: the files below are on the same cells
LAT_DESC = np.arange(75.0, -90.0, -30.0)  # as distributed: north to south
LON_360 = np.arange(15.0, 360.0, 30.0)  # as distributed: 0..360
DAYS = pd.date_range("2018-01-01", periods=2, freq="D")
STAMPS = pd.date_range("2018-01-01 00:00", "2018-01-03 00:00", freq="h")  # 49 hours


def _field(stamps: pd.DatetimeIndex, per_stamp: np.ndarray) -> np.ndarray:
    """(time, lat, lon): ``per_stamp`` + a spatial pattern (lat index · 0.1 + lon index · 0.01)."""
    pattern = np.arange(6)[:, None] * 0.1 + np.arange(12)[None, :] * 0.01
    return per_stamp[:, None, None] + pattern[None]


def _hour_values(stamps: pd.DatetimeIndex, origin: pd.Timestamp | None = None) -> np.ndarray:
    """100 × (days since ``origin``, default the first stamp's day) + hour: easy to sum by hand."""
    origin = stamps[0] if origin is None else origin
    day = (stamps.normalize() - origin.normalize()).days
    return 100.0 * np.asarray(day) + np.asarray(stamps.hour)


def _write_cds_netcdf4(path: Path, stamps: pd.DatetimeIndex) -> None:
    """The 2024+ CDS layout: valid_time, latitude, longitude; number and expver coordinates."""
    h = _hour_values(stamps)
    ds = xr.Dataset(
        {
            "t2m": (
                ("valid_time", "latitude", "longitude"),
                273.15 + _field(stamps, h),
                {"units": "K"},
            ),
            "ssrd": (
                ("valid_time", "latitude", "longitude"),
                1e6 * _field(stamps, h),
                {"units": "J m**-2"},
            ),
            "tp": (
                ("valid_time", "latitude", "longitude"),
                1e-3 * _field(stamps, h),
                {"units": "m"},
            ),
        },
        coords={
            "valid_time": stamps,
            "latitude": LAT_DESC,
            "longitude": LON_360,
            "number": 0,
            "expver": ("valid_time", np.array(["0001"] * stamps.size)),
        },
    )
    ds.to_netcdf(path, engine="h5netcdf")


def _write_legacy_netcdf(path: Path, stamps: pd.DatetimeIndex) -> None:
    """The legacy layout: time, packed int16 with scale_factor/add_offset."""
    h = _hour_values(stamps)
    ds = xr.Dataset(
        {
            "t2m": (("time", "latitude", "longitude"), 273.15 + _field(stamps, h), {"units": "K"}),
            "ssrd": (
                ("time", "latitude", "longitude"),
                1e6 * _field(stamps, h),
                {"units": "J m**-2"},
            ),
            "tp": (("time", "latitude", "longitude"), 1e-3 * _field(stamps, h), {"units": "m"}),
        },
        coords={"time": stamps, "latitude": LAT_DESC, "longitude": LON_360},
    )
    encoding = {
        "t2m": {"dtype": "int16", "scale_factor": 0.01, "add_offset": 300.0, "_FillValue": -32767},
        "ssrd": {"dtype": "int16", "scale_factor": 1e4, "add_offset": 1.5e8, "_FillValue": -32767},
        "tp": {"dtype": "int16", "scale_factor": 1e-5, "add_offset": 0.15, "_FillValue": -32767},
    }
    ds.to_netcdf(path, engine="netcdf4", format="NETCDF3_64BIT", encoding=encoding)


def _expected_day_totals() -> np.ndarray:
    # Accumulations end at the stamp, so 1 January = stamps 01..23 of 1 January plus
    # 00 of 2 January: Σ_{h=1..23} h + 100 = 276 + 100 = 376; 2 January =
    # Σ_{h=1..23} (100 + h) + 200 = 2300 + 276 + 200 = 2776 (before the spatial pattern,
    # which adds 24 × pattern). Summing the stamps 00..23 instead would give 276 and 2676.
    return np.array([376.0, 2776.0])


def _expected_day_means() -> np.ndarray:
    # Instantaneous: mean over stamps 00..23: (0+…+23)/24 = 11.5 and 111.5 (°C here).
    return np.array([11.5, 111.5])


def _pattern_at(lat: float, lon_180: float) -> float:
    ilat = list(LAT_DESC).index(lat)
    ilon = list(LON_360).index(lon_180 % 360.0)
    return ilat * 0.1 + ilon * 0.01


@pytest.mark.parametrize("writer", [_write_cds_netcdf4, _write_legacy_netcdf])
def test_hourly_netcdf_layouts(tmp_path: Path, writer) -> None:
    path = tmp_path / "era5.nc"
    writer(path, STAMPS)
    out = era5_daily([path], Era5Product(), DAYS, GRID)
    assert out["tair"].dims == ("time", "lat", "lon")
    # Canonical cell (45°N, −165°E) is file row 1 (45°N), column 6 (195°E).
    p = _pattern_at(45.0, -165.0)
    cell = {"lat": 45.0, "lon": -165.0}
    tol = 0.01 if writer is _write_legacy_netcdf else 1e-4  # int16 packing
    np.testing.assert_allclose(out["tair"].sel(cell).values, _expected_day_means() + p, atol=tol)
    np.testing.assert_allclose(
        out["rg"].sel(cell).values, _expected_day_totals() + 24 * p, rtol=1e-4, atol=24 * tol
    )
    np.testing.assert_allclose(
        out["precip"].sel(cell).values, _expected_day_totals() + 24 * p, rtol=1e-4, atol=24 * tol
    )
    assert out["rg"].attrs["units"] == "MJ m-2 d-1"
    assert out["precip"].dtype == np.float32


def test_files_split_by_year_are_joined(tmp_path: Path) -> None:
    # A year's file ends at 31 Dec 23:00; the total of 31 December needs 1 Jan 00:00.
    stamps = pd.date_range("2017-12-30 00:00", "2018-01-01 23:00", freq="h")
    _write_cds_netcdf4(tmp_path / "a.nc", stamps[stamps.year == 2017])
    _write_cds_netcdf4(tmp_path / "b.nc", stamps[stamps.year == 2018])
    days = pd.date_range("2017-12-30", periods=2, freq="D")
    joined = era5_daily([tmp_path / "b.nc", tmp_path / "a.nc"], Era5Product(), days, GRID)
    # Hour values restart at 0 in each file (day index counted from its own start),
    # so 31 December = Σ_{h=1..23} (100 + h) + 0 (1 Jan 00:00 of file b) = 2576.
    p = _pattern_at(75.0, 15.0)
    np.testing.assert_allclose(
        joined["rg"].sel(lat=75.0, lon=15.0).values[1], 2576.0 + 24 * p, rtol=1e-5
    )
    with pytest.raises(SchemaError, match="2018-01-01 00:00"):
        era5_daily([tmp_path / "a.nc"], Era5Product(), days, GRID)
    short = era5_daily([tmp_path / "a.nc"], Era5Product(), days, GRID, last_day_short=True)
    # Without 1 Jan 00:00 the last day is 24 × the mean of its 23 hours:
    # 24 · (2300 + 276)/23 = 2688 (+ 24 p).
    np.testing.assert_allclose(
        short["rg"].sel(lat=75.0, lon=15.0).values[1], 2688.0 + 24 * p, rtol=1e-5
    )


def test_missing_hour_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "gap.nc"
    _write_cds_netcdf4(path, STAMPS.delete(30))  # 2 January 06:00
    with pytest.raises(SchemaError, match="2018-01-02 06:00"):
        era5_daily([path], Era5Product(), DAYS, GRID)


def test_wrong_units_and_missing_variable(tmp_path: Path) -> None:
    path = tmp_path / "era5.nc"
    _write_cds_netcdf4(path, STAMPS)
    with xr.open_dataset(path) as ds:
        bad = ds.load()
    bad["t2m"].attrs["units"] = "degC"
    bad.drop_vars("tp").to_netcdf(tmp_path / "bad.nc", engine="h5netcdf")
    with pytest.raises(SchemaError, match=r"bad.nc, variable 't2m': units 'degC'"):
        era5_daily([tmp_path / "bad.nc"], Era5Product(), DAYS, GRID)
    with pytest.raises(SchemaError, match=r"variable 'tp': in none of the files \(bad.nc\)"):
        open_era5_variable([tmp_path / "bad.nc"], Era5Variable("tp", ["m"]))


def test_download_split_by_step_type(tmp_path: Path) -> None:
    # The CDS returns instantaneous and accumulated variables of one NetCDF request as
    # two files (…stepType-instant.nc, …stepType-accum.nc): each variable is in one.
    _write_cds_netcdf4(tmp_path / "whole.nc", STAMPS)
    with xr.open_dataset(tmp_path / "whole.nc") as ds:
        whole = ds.load()
    whole[["t2m"]].to_netcdf(tmp_path / "era5_2018_stepType-instant.nc", engine="h5netcdf")
    whole[["ssrd", "tp"]].to_netcdf(tmp_path / "era5_2018_stepType-accum.nc", engine="h5netcdf")
    split = era5_daily(sorted(tmp_path.glob("era5_2018_*.nc")), Era5Product(), DAYS, GRID)
    joined = era5_daily([tmp_path / "whole.nc"], Era5Product(), DAYS, GRID)
    for name in ("tair", "rg", "precip"):
        np.testing.assert_array_equal(split[name].values, joined[name].values)


def test_daily_statistics_product(tmp_path: Path) -> None:
    # Daily means of hourly accumulations: the total is 24 × the mean.
    days = DAYS
    ds = xr.Dataset(
        {
            "t2m": (
                ("valid_time", "latitude", "longitude"),
                283.15 + _field(days, np.zeros(2)),
                {"units": "K"},
            ),
            "ssrd": (
                ("valid_time", "latitude", "longitude"),
                5e5 + _field(days, np.zeros(2)),
                {"units": "J m**-2"},
            ),
            "tp": (
                ("valid_time", "latitude", "longitude"),
                1e-4 + 0 * _field(days, np.zeros(2)),
                {"units": "m"},
            ),
        },
        coords={"valid_time": days, "latitude": LAT_DESC, "longitude": LON_360},
    )
    ds.to_netcdf(tmp_path / "daily.nc", engine="h5netcdf")
    out = era5_daily([tmp_path / "daily.nc"], Era5Product(layout="daily_mean"), days, GRID)
    cell = {"lat": -75.0, "lon": 165.0}
    p = _pattern_at(-75.0, 165.0)
    np.testing.assert_allclose(out["tair"].sel(cell).values, 10.0 + p, atol=1e-4)
    np.testing.assert_allclose(out["rg"].sel(cell).values, 24 * (5e5 + p) / 1e6, rtol=1e-6)
    np.testing.assert_allclose(out["precip"].sel(cell).values, 2.4, rtol=1e-6)  # 24 × 0.1 mm


def test_regrid_is_conservative_from_quarter_degree(tmp_path: Path) -> None:
    # A 0.25°-like source (here 10°, cell centres on the poles as ERA5 has them) onto 30°:
    # the area-weighted global mean of precipitation is kept.
    lat = np.arange(90.0, -90.1, -10.0)
    lon = np.arange(0.0, 360.0, 10.0)
    stamps = STAMPS
    rng = np.random.default_rng(3)
    tp = rng.uniform(0, 1e-3, (stamps.size, lat.size, lon.size))
    ds = xr.Dataset(
        {
            "t2m": (("valid_time", "latitude", "longitude"), 280 + 0 * tp, {"units": "K"}),
            "ssrd": (("valid_time", "latitude", "longitude"), 0 * tp, {"units": "J m**-2"}),
            "tp": (("valid_time", "latitude", "longitude"), tp, {"units": "m"}),
        },
        coords={"valid_time": stamps, "latitude": lat, "longitude": lon},
    )
    ds.to_netcdf(tmp_path / "fine.nc", engine="h5netcdf")
    out = era5_daily([tmp_path / "fine.nc"], Era5Product(), DAYS, GRID)
    # Source cell areas by hand: edges half-way between centres, clipped at the poles.
    edges = np.clip(np.concatenate([[95.0], lat[:-1] - 5.0, [-95.0]]), -90, 90)
    w_src = np.abs(np.diff(np.sin(np.deg2rad(edges))))
    day0 = tp[1:25].sum(axis=0) * 1e3  # stamps 01..24 → 1 January, mm
    src_mean = (day0 * w_src[:, None]).sum() / (w_src.sum() * lon.size)
    w_dst = np.abs(np.diff(np.sin(np.deg2rad(GRID.lat_bounds))))
    dst = out["precip"].values[0].astype(np.float64)
    dst_mean = (dst * w_dst[:, None]).sum() / (w_dst.sum() * dst.shape[1])
    assert dst_mean == pytest.approx(src_mean, rel=1e-5)


def test_land_cells_subset(tmp_path: Path) -> None:
    path = tmp_path / "era5.nc"
    _write_cds_netcdf4(path, STAMPS)
    cells = (np.array([1, 4]), np.array([0, 11]))
    out = era5_daily([path], Era5Product(), DAYS, GRID, cells)
    full = era5_daily([path], Era5Product(), DAYS, GRID)
    assert out["tair"].dims == ("time", "cell")
    np.testing.assert_array_equal(out["tair"].values, full["tair"].values[:, cells[0], cells[1]])


def _write_grib(path: Path, messages: list[tuple[str, pd.Timestamp, int, int, np.ndarray]]) -> None:
    """ERA5-like GRIB 1 on the 30° cells: (shortName, reference time, startStep, endStep, values);
    startStep == endStep means an instantaneous field."""
    eccodes = pytest.importorskip("eccodes")
    with open(path, "wb") as fh:
        for short, ref, start, end, values in messages:
            gid = eccodes.codes_grib_new_from_samples("regular_ll_sfc_grib1")
            for key, value in (
                ("Ni", 12),
                ("Nj", 6),
                ("latitudeOfFirstGridPointInDegrees", 75.0),
                ("latitudeOfLastGridPointInDegrees", -75.0),
                ("longitudeOfFirstGridPointInDegrees", 15.0),
                ("longitudeOfLastGridPointInDegrees", 345.0),
                ("iDirectionIncrementInDegrees", 30.0),
                ("jDirectionIncrementInDegrees", 30.0),
                ("shortName", short),
                ("dataDate", int(ref.strftime("%Y%m%d"))),
                ("dataTime", int(ref.strftime("%H%M"))),
            ):
                eccodes.codes_set(gid, key, value)
            if start == end:
                eccodes.codes_set(gid, "stepType", "instant")
                eccodes.codes_set(gid, "step", end)
            else:
                eccodes.codes_set(gid, "stepType", "accum")
                eccodes.codes_set(gid, "startStep", start)
                eccodes.codes_set(gid, "endStep", end)
            eccodes.codes_set(gid, "bitsPerValue", 24)
            eccodes.codes_set_values(gid, np.asarray(values, dtype=np.float64).ravel())
            eccodes.codes_write(gid, fh)
            eccodes.codes_release(gid)


def _era5_grib_messages() -> list:
    """t2m hourly analyses; ssrd and tp from the 06 and 18 UTC forecasts, steps 1..12, each
    accumulated over the hour ending at its validity time (startStep = endStep − 1): the
    first forecast is 31 Dec 18 UTC, whose steps 7..12 end at 01..06 of 1 January."""

    def value(stamp: pd.Timestamp) -> np.ndarray:
        one = pd.DatetimeIndex([stamp])
        return _field(one, _hour_values(one, STAMPS[0]))[0]

    messages = [("2t", stamp, 0, 0, 273.15 + value(stamp)) for stamp in STAMPS]
    for ref in pd.date_range("2017-12-31 18:00", "2018-01-02 18:00", freq="12h"):
        for step in range(1, 13):
            stamp = ref + pd.Timedelta(hours=step)
            if STAMPS[0] < stamp <= STAMPS[-1]:  # the download holds the hours asked for
                messages.append(("ssrd", ref, step - 1, step, 1e6 * value(stamp)))
                messages.append(("tp", ref, step - 1, step, 1e-3 * value(stamp)))
    return messages


def test_grib_hourly(tmp_path: Path) -> None:
    path = tmp_path / "era5.grib"
    _write_grib(path, _era5_grib_messages())
    out = era5_daily([path], Era5Product(), DAYS, GRID)
    assert not list(tmp_path.glob("*.idx"))  # no index file beside the data
    p = _pattern_at(45.0, -165.0)
    cell = {"lat": 45.0, "lon": -165.0}
    np.testing.assert_allclose(out["tair"].sel(cell).values, _expected_day_means() + p, atol=1e-3)
    np.testing.assert_allclose(
        out["rg"].sel(cell).values, _expected_day_totals() + 24 * p, rtol=1e-5
    )
    np.testing.assert_allclose(
        out["precip"].sel(cell).values, _expected_day_totals() + 24 * p, rtol=1e-4
    )


def test_grib_accumulated_from_forecast_start(tmp_path: Path) -> None:
    # Forecasts from 00 UTC, steps 1..24, accumulated from the start (startStep 0):
    # the hourly amounts are the step differences.
    stamps = pd.date_range("2018-01-01 01:00", "2018-01-02 00:00", freq="h")
    hourly = _field(stamps, _hour_values(stamps - pd.Timedelta(hours=1)) + 1)
    cumulative = np.cumsum(hourly, axis=0)
    ref = pd.Timestamp("2018-01-01 00:00")
    messages = [("tp", ref, 0, k + 1, 1e-3 * cumulative[k]) for k in range(24)]
    messages += [("2t", s, 0, 0, 280.0 + 0 * hourly[0]) for s in stamps - pd.Timedelta(hours=1)]
    messages += [("ssrd", ref, 0, k + 1, 0 * cumulative[k]) for k in range(24)]
    _write_grib(tmp_path / "fc.grib", messages)
    out = era5_daily([tmp_path / "fc.grib"], Era5Product(), DAYS[:1], GRID)
    # 1 January: Σ_{h=0..23} (h + 1) = 300 mm (+ 24 p).
    p = _pattern_at(-15.0, 75.0)
    assert float(out["precip"].sel(lat=-15.0, lon=75.0)[0]) == pytest.approx(300 + 24 * p, rel=1e-4)


# ---------------------------------------------------------------- files their providers wrote


def test_real_era5_grib_t2m_as_ecCodes_decodes_it(real_file) -> None:
    """ERA5 2 m temperature (class ea) from the cfgrib sample data: the reader's field is
    the one ecCodes decodes, in the file's own row order (north to south), on its time."""
    eccodes = pytest.importorskip("eccodes")
    path = real_file("cfgrib_era5_single_level_scalar_time")
    with open(path, "rb") as fh:
        gid = eccodes.codes_grib_new_from_file(fh)
        raw = eccodes.codes_get_values(gid).reshape(
            eccodes.codes_get(gid, "Nj"), eccodes.codes_get(gid, "Ni")
        )
        first_lat = eccodes.codes_get(gid, "latitudeOfFirstGridPointInDegrees")
        eccodes.codes_release(gid)
    da = open_era5_variable([path], Era5Variable("t2m", ["K"]))
    assert da.dims == ("time", "lat", "lon")
    assert pd.Timestamp(da["time"].values[0]) == pd.Timestamp("2017-01-01 12:00")
    assert float(da["lat"][0]) == pytest.approx(first_lat)
    np.testing.assert_allclose(da.values[0], raw, rtol=0, atol=1e-4)


def test_real_grib_missing_points_become_nan(real_file) -> None:
    """An operational 2t field with a bitmap: exactly ecCodes' missing points are NaN."""
    eccodes = pytest.importorskip("eccodes")
    path = real_file("cfgrib_fields_with_missing_values")
    missing = 0
    with open(path, "rb") as fh:
        while (gid := eccodes.codes_grib_new_from_file(fh)) is not None:
            missing += int(eccodes.codes_get(gid, "numberOfMissing"))
            eccodes.codes_release(gid)
    da = open_era5_variable([path], Era5Variable("t2m", ["K"]))
    assert missing > 0
    assert int(np.isnan(da.values).sum()) == missing


def test_real_grib_with_two_grids_is_refused(real_file) -> None:
    path = real_file("cfgrib_tp_on_different_grid_resolutions")
    with pytest.raises(SchemaError, match=r"tp_on_different_grid_resolutions.grib, variable 'tp'"):
        open_era5_variable([path], Era5Variable("tp", ["m"]))


def test_real_wfde5_daily_mean_tair(real_file) -> None:
    """WFDE5 (ERA5 bias-adjusted, hourly, 0.5°, UK, June–July 2018): the reader's daily
    Tair equals a plain numpy mean of the 24 hourly values of each UTC day."""
    netCDF4 = pytest.importorskip("netCDF4")
    path = real_file("wfde5_uk_2018")
    with netCDF4.Dataset(path) as nc:
        tair = np.ma.filled(nc["Tair"][:].astype(np.float64), np.nan)  # (1464, 22, 28) K
        units = nc["time"].units
        first = netCDF4.num2date(nc["time"][0], units)
    assert (first.year, first.month, first.day, first.hour) == (2018, 6, 1, 0)
    expected = tair.reshape(61, 24, *tair.shape[1:]).mean(axis=1) - 273.15
    da = open_era5_variable([path], Era5Variable("Tair", ["K"]))
    days = pd.date_range("2018-06-01", "2018-07-31", freq="D")
    got = daily_values(da, days, "tair", "hourly", last_day_short=False)
    assert np.isfinite(expected).sum() > 0
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4, equal_nan=True)
