"""Unit conversions to gC m-2 d-1 against hand-computed factors."""

from __future__ import annotations

import math

import cftime
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.data.units import apply_sign, parse_flux_units, to_canonical
from fluxbridge.errors import ConfigError

# Hand-computed: M_C = 12.011, M_CO2 = 12.011 + 2 x 15.999 = 44.009 g/mol, 1 d = 86400 s.
RATE_FACTORS = [
    ("gC m-2 d-1", 1.0),
    ("gC/m2/day", 1.0),
    ("g C m^-2 day^-1", 1.0),
    ("gC m-2 s-1", 86400.0),
    ("kgC m-2 s-1", 1000.0 * 86400.0),
    ("mol m-2 s-1", 12.011 * 86400.0),
    ("mol/m^2/s", 12.011 * 86400.0),
    ("umol m-2 s-1", 1.0377504),
    ("µmol m-2 s-1", 1.0377504),
    ("umol CO2 m-2 s-1", 1.0377504),
    ("umolCO2 m-2 s-1", 1.0377504),
    ("μmol CO2 m-2 s-1", 1.0377504),
    ("kgCO2 m-2 s-1", 1000.0 * 86400.0 * 12.011 / 44.009),
    ("MgC ha-1 yr-1", None),  # per-year: checked separately
]


@pytest.mark.parametrize(("units", "factor"), [r for r in RATE_FACTORS if r[1] is not None])
def test_rate_units_factor(units: str, factor: float) -> None:
    parsed = parse_flux_units(units)
    assert parsed.area == "m2"
    assert parsed.per == "day"
    assert parsed.factor == pytest.approx(factor, rel=1e-12)


def test_umol_factor_is_the_stated_value() -> None:
    assert parse_flux_units("umol CO2 m-2 s-1").factor == pytest.approx(12.011e-6 * 86400)
    assert 12.011e-6 * 86400 == pytest.approx(1.0377504, abs=1e-12)


def _monthly(values: np.ndarray, times: object, units: str) -> xr.DataArray:
    return xr.DataArray(values, dims="time", coords={"time": times}, attrs={"units": units})


def test_per_month_uses_days_of_each_month_standard_calendar() -> None:
    times = pd.date_range("2000-01-01", periods=3, freq="MS")  # Jan 31, Feb 29 (leap), Mar 31
    out = to_canonical(_monthly(np.array([31.0, 29.0, 62.0]), times, "gC m-2 month-1"))
    np.testing.assert_allclose(out.values, [1.0, 1.0, 2.0])
    assert out.attrs["units"] == "g m-2 d-1"


def test_per_month_noleap_and_360_day_calendars() -> None:
    noleap = [cftime.datetime(2000, m, 1, calendar="noleap") for m in (1, 2)]
    out = to_canonical(_monthly(np.array([31.0, 28.0]), noleap, "gC m-2 month-1"))
    np.testing.assert_allclose(out.values, [1.0, 1.0])  # Feb 2000 has 28 days in noleap
    d360 = [cftime.datetime(2001, m, 1, calendar="360_day") for m in (1, 2)]
    out = to_canonical(_monthly(np.array([30.0, 60.0]), d360, "gC m-2 month-1"))
    np.testing.assert_allclose(out.values, [1.0, 2.0])


def test_per_year_uses_days_in_year() -> None:
    times = pd.to_datetime(["2000-06-01", "2001-06-01"])
    out = to_canonical(_monthly(np.array([366.0, 365.0]), times, "gC m-2 yr-1"))
    np.testing.assert_allclose(out.values, [1.0, 1.0])
    d360 = [cftime.datetime(2001, 6, 1, calendar="360_day")]
    out = to_canonical(_monthly(np.array([360.0]), d360, "gC m-2 yr-1"))
    np.testing.assert_allclose(out.values, [1.0])
    # 1 MgC ha-1 yr-1 = 1e6 g / 1e4 m2 = 100 gC m-2 yr-1 -> 100/365 per day in 2001
    out = to_canonical(_monthly(np.array([1.0]), pd.to_datetime(["2001-03-01"]), "MgC ha-1 yr-1"))
    np.testing.assert_allclose(out.values, [100.0 / 365.0])


def test_per_cell_total_divided_by_cell_area() -> None:
    # One 1x1 degree cell at the equator: A = R^2 * dlon * (sin 1deg - sin 0)
    area = 6_371_000.0**2 * math.radians(1.0) * math.sin(math.radians(1.0))
    cell_area = xr.DataArray([[area]], dims=("lat", "lon"), coords={"lat": [0.5], "lon": [0.5]})
    da = xr.DataArray(
        [[[1e-6]]],
        dims=("time", "lat", "lon"),
        coords={"time": pd.to_datetime(["2001-02-01"]), "lat": [0.5], "lon": [0.5]},
    )
    out = to_canonical(da, "PgC cell-1 month-1", cell_area=cell_area)
    np.testing.assert_allclose(out.values, [[[1e-6 * 1e15 / area / 28.0]]], rtol=1e-12)
    out = to_canonical(da, "gC cell-1 yr-1", cell_area=cell_area)
    np.testing.assert_allclose(out.values, [[[1e-6 / area / 365.0]]], rtol=1e-12)


def test_sink_positive_is_flipped() -> None:
    da = xr.DataArray([1.0, -2.0], dims="x", attrs={"units": "gC m-2 d-1"})
    np.testing.assert_array_equal(apply_sign(da, "sink_positive").values, [-1.0, 2.0])
    np.testing.assert_array_equal(apply_sign(da, "source_positive").values, [1.0, -2.0])
    out = to_canonical(da, "kgC m-2 s-1", sign="sink_positive")
    np.testing.assert_allclose(out.values, [-86_400_000.0, 172_800_000.0])


def test_dask_input_stays_lazy() -> None:
    da = xr.DataArray(np.ones((4, 3)), dims=("x", "y"), attrs={"units": "gC m-2 s-1"}).chunk(2)
    out = to_canonical(da)
    assert out.chunks is not None
    np.testing.assert_allclose(out.compute().values, 86400.0)


@pytest.mark.parametrize(
    ("units", "per", "factor"),
    [
        ("g m-2 d-1", "day", 1.0),
        ("g m-2 yr-1", "year", 1.0),
        ("g m-2 month-1", "month", 1.0),
    ],
)
def test_own_on_disk_spellings_are_carbon(units: str, per: str, factor: float) -> None:
    # The project's UDUNITS spellings carry no species; the canonical schema says carbon.
    # (Regional totals, Pg month-1, are not per area: no field is read in them.)
    parsed = parse_flux_units(units)
    assert (parsed.species, parsed.per) == ("C", per)
    assert parsed.factor == pytest.approx(factor, rel=1e-12)


def test_canonical_spelling_reads_back_unchanged() -> None:
    da = xr.DataArray([1.5, -2.0], dims="x", attrs={"units": "g m-2 d-1"})
    np.testing.assert_array_equal(to_canonical(da).values, [1.5, -2.0])


@pytest.mark.parametrize(
    ("units", "needle"),
    [
        ("gC m-2 fortnights-1 wibble", "cannot parse"),
        ("K", "not a carbon flux"),
        ("gC m-2", "not a carbon flux"),
        ("kg m-2 s-1", "ambiguous"),
        ("gC kgCO2 m-2 s-1", "mixes species"),
        ("", "empty"),
    ],
)
def test_bad_units_name_the_string(units: str, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_flux_units(units)
    assert repr(units) in str(err.value)
    assert needle in str(err.value)


def test_per_cell_without_area_and_per_month_without_time() -> None:
    da = xr.DataArray([1.0], dims="x")
    with pytest.raises(ConfigError, match="cell_area"):
        to_canonical(da, "gC cell-1 d-1")
    with pytest.raises(ConfigError, match="'time' coordinate"):
        to_canonical(da, "gC m-2 month-1")
    with pytest.raises(ConfigError, match="no units"):
        to_canonical(da)
    with pytest.raises(ConfigError, match="sign"):
        apply_sign(da, "up")
