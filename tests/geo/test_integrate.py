"""Regional integrals against hand computations; `invoke integrate` file handling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.data.canonical import NEE_UNITS
from fluxbridge.errors import FluxbridgeError, SchemaError
from fluxbridge.geo.grid import EARTH_RADIUS_M, Grid
from fluxbridge.geo.integrate import region_land_area_m2, regional_integral_pgc, run_integrate
from fluxbridge.geo.regions import country_mask, reccap2
from fluxbridge.io import open_netcdf, write_netcdf

# two cells: lat 0..30 (Δsin = 0.5) and 30..90 (Δsin = 1 - sin 60°), one 180° lon band each
GRID = Grid(np.array([0.0, 30.0, 90.0]), np.array([-180.0, 0.0]))
DSIN = np.array([0.5, 1 - np.sin(np.pi / 3)])
AREA = EARTH_RADIUS_M**2 * np.pi * DSIN  # m², by hand


def _inputs() -> tuple[xr.DataArray, xr.DataArray, xr.DataArray, xr.DataArray]:
    coords = GRID.coords()
    time = pd.date_range("2001-01-01", periods=2, freq="MS")  # 31 and 28 days
    nee = xr.DataArray(
        np.array([[[1.0], [2.0]], [[-3.0], [4.0]]]),
        dims=("time", "lat", "lon"),
        coords={"time": time, **coords},
        name="nee",
    )
    area = xr.DataArray(AREA[:, None], dims=("lat", "lon"), coords=coords)
    land = xr.DataArray([[0.5], [1.0]], dims=("lat", "lon"), coords=coords)
    fraction = xr.DataArray(
        [[[1.0], [0.25]], [[0.0], [0.75]]],
        dims=("region", "lat", "lon"),
        coords={"region": ["A", "B"], **coords},
    )
    return nee, area, land, fraction


def test_monthly_integral_by_hand() -> None:
    nee, area, land, fraction = _inputs()
    got = regional_integral_pgc(nee, area, land, fraction, include_global=True)
    assert got.dims == ("region", "time")
    assert got.attrs["units"] == "Pg month-1"
    assert "area: sum" in got.attrs["cell_methods"]
    a0, a1 = AREA
    expected = {
        "A": [(1 * a0 * 0.5 + 2 * a1 * 0.25) * 31, (-3 * a0 * 0.5 + 4 * a1 * 0.25) * 28],
        "B": [2 * a1 * 0.75 * 31, 4 * a1 * 0.75 * 28],
        "GLOBAL": [(1 * a0 * 0.5 + 2 * a1) * 31, (-3 * a0 * 0.5 + 4 * a1) * 28],
    }
    for region, values in expected.items():
        np.testing.assert_allclose(got.sel(region=region).values, np.array(values) * 1e-15)


def test_nan_rule() -> None:
    nee, area, land, fraction = _inputs()
    nee[0, 0, 0] = np.nan  # a land cell in region A only
    strict = regional_integral_pgc(nee, area, land, fraction)
    assert np.isnan(strict.sel(region="A").values[0])
    assert not np.isnan(strict.sel(region="B").values).any()
    assert not np.isnan(strict.sel(region="A").values[1])
    skipped = regional_integral_pgc(nee, area, land, fraction, skipna=True)
    assert skipped.sel(region="A").values[0] == pytest.approx(2 * AREA[1] * 0.25 * 31 * 1e-15)
    # NaN over a cell without weight (no land) changes nothing
    land[0, 0] = 0.0
    no_land = regional_integral_pgc(nee, area, land, fraction)
    assert no_land.sel(region="A").values[0] == pytest.approx(2 * AREA[1] * 0.25 * 31 * 1e-15)


def test_leading_dims_and_yearly_sums() -> None:
    _, area, land, fraction = _inputs()
    time = pd.date_range("2001-01-01", periods=13, freq="MS")
    rng = np.random.default_rng(3)
    values = rng.normal(size=(2, 13, 2, 1))
    nee = xr.DataArray(
        values, dims=("member", "time", "lat", "lon"), coords={"time": time, **GRID.coords()}
    )
    monthly = regional_integral_pgc(nee, area, land, fraction)
    assert monthly.dims == ("member", "region", "time")
    yearly = regional_integral_pgc(nee, area, land, fraction, per="year")
    assert yearly.attrs["units"] == "Pg yr-1"
    days = time.days_in_month.to_numpy()
    weight_b = AREA[1] * 1.0 * 0.75
    expected_2001 = (values[1, :12, 1, 0] * days[:12]).sum() * weight_b * 1e-15
    assert float(yearly.sel(member=1, region="B", year=2001)) == pytest.approx(expected_2001)
    assert np.isnan(yearly.sel(year=2002)).all()  # one month only


def test_land_area_per_region() -> None:
    _, area, land, fraction = _inputs()
    got = region_land_area_m2(area, land, fraction)
    assert got.attrs["units"] == "m2"
    np.testing.assert_allclose(
        got.values, [AREA[0] * 0.5 + AREA[1] * 0.25, AREA[1] * 0.75], rtol=1e-12
    )


def test_mismatched_grid_refused() -> None:
    nee, area, land, fraction = _inputs()
    with pytest.raises(ValueError, match="'lat'"):
        regional_integral_pgc(nee.assign_coords(lat=[1.0, 2.0]), area, land, fraction)


# -- invoke integrate ---------------------------------------------------------------------

COARSE = Grid.global_regular(10.0)


def _write_input(path: Path, units: str = "gC m-2 d-1", grid: Grid = COARSE) -> xr.DataArray:
    rng = np.random.default_rng(4)
    time = pd.date_range("2010-01-01", periods=3, freq="MS")
    nee = xr.DataArray(
        rng.normal(size=(3, *grid.shape)),
        dims=("time", "lat", "lon"),
        coords={"time": time, **grid.coords()},
        name="nee",
        attrs={"units": units},
    )
    land = xr.DataArray(
        rng.uniform(size=grid.shape), dims=("lat", "lon"), coords=grid.coords(), name="land"
    )
    ds = xr.Dataset({"nee": nee, "land_fraction": land.assign_attrs(units="1")})
    write_netcdf(ds, path, action="test input")
    return ds


def test_run_integrate_reccap2(tmp_path: Path) -> None:
    ds = _write_input(tmp_path / "in.nc")
    out = tmp_path / "out.nc"
    assert run_integrate(tmp_path / "in.nc", "nee", "reccap2", out) == 0
    result = open_netcdf(out)
    assert list(result["region"].values)[-1] == "GLOBAL"
    assert result["nee"].attrs["units"] == "Pg month-1"
    # independent sum over cells with the same fractions
    fraction = reccap2(COARSE, ds["land_fraction"]).fraction.sel(region="BRA").values
    area = COARSE.cell_area().values
    days = np.array([31, 28, 31])
    expected = (
        np.einsum("tij,ij->t", ds["nee"].values, area * ds["land_fraction"].values * fraction)
        * days
        / 1e15
    )
    np.testing.assert_allclose(result["nee"].sel(region="BRA").values, expected, rtol=1e-10)
    total = np.einsum("tij,ij->t", ds["nee"].values, area * ds["land_fraction"].values) * days
    np.testing.assert_allclose(result["nee"].sel(region="GLOBAL").values, total / 1e15)

    with pytest.raises(FluxbridgeError, match="exists"):
        run_integrate(tmp_path / "in.nc", "nee", "reccap2", out)


def test_run_integrate_refusals_leave_no_output(tmp_path: Path) -> None:
    _write_input(tmp_path / "in.nc")
    other = Grid.global_regular(20.0)
    mask = xr.Dataset(
        {"region_id": (("lat", "lon"), np.zeros(other.shape, dtype=np.int32))},
        coords=other.coords(),
    )
    write_netcdf(mask, tmp_path / "mask.nc", action="test mask")
    out = tmp_path / "out.nc"
    with pytest.raises(SchemaError, match=r"mask\.nc, variable 'lat/lon': mask grid .*differs"):
        run_integrate(tmp_path / "in.nc", "nee", str(tmp_path / "mask.nc"), out)
    with pytest.raises(SchemaError, match="variable 'gpp': not in file"):
        run_integrate(tmp_path / "in.nc", "gpp", "reccap2", out)
    _write_input(tmp_path / "bad_units.nc", units="kgC m-2 s-1")
    with pytest.raises(SchemaError, match="units 'kgC m-2 s-1', expected 'g m-2 d-1'"):
        run_integrate(tmp_path / "bad_units.nc", "nee", "reccap2", out)
    assert not out.exists()
    assert not list(tmp_path.glob(".out.nc*"))


def test_run_integrate_with_mask_file(tmp_path: Path) -> None:
    ds = _write_input(tmp_path / "in.nc")
    ids = np.where(COARSE.lat[:, None] > 0, 1, 2) * np.ones(COARSE.shape, dtype=np.int32)
    mask = xr.Dataset({"region_id": (("lat", "lon"), ids.astype(np.int32))}, coords=COARSE.coords())
    write_netcdf(mask, tmp_path / "mask.nc", action="test mask")
    run_integrate(tmp_path / "in.nc", "nee", str(tmp_path / "mask.nc"), tmp_path / "out.nc")
    result = open_netcdf(tmp_path / "out.nc")
    assert list(result["region"].values) == ["region_1", "region_2", "GLOBAL"]
    north = result["nee"].sel(region="region_1") + result["nee"].sel(region="region_2")
    np.testing.assert_allclose(north.values, result["nee"].sel(region="GLOBAL").values)
    area = COARSE.cell_area().values * ds["land_fraction"].values
    jan_north = (ds["nee"].values[0] * area)[COARSE.lat > 0].sum() * 31 / 1e15
    assert float(result["nee"].sel(region="region_1")[0]) == pytest.approx(jan_north)


def test_run_integrate_without_land_fraction_counts_no_ocean(tmp_path: Path) -> None:
    """A uniform 1 gC m-2 d-1 field with no land fraction: regions get their land, not the sea.

    Published areas: Brazil 8.516 million km²; OCE = Australia 7.692 + New Zealand 0.268;
    all land 148.9 (Antarctica included). Natural Earth's coarse polygons stay within 2-3 %.
    """
    grid = Grid.global_regular(4.0)
    time = pd.date_range("2010-01-01", periods=2, freq="MS")
    nee = xr.DataArray(
        np.ones((2, *grid.shape)),
        dims=("time", "lat", "lon"),
        coords={"time": time, **grid.coords()},
        attrs={"units": NEE_UNITS},
    )
    write_netcdf(xr.Dataset({"nee": nee}), tmp_path / "in.nc", action="test input")
    run_integrate(tmp_path / "in.nc", "nee", "reccap2", tmp_path / "out.nc")
    result = open_netcdf(tmp_path / "out.nc")
    area_mkm2 = result["region_land_area"].to_series() / 1e12
    assert area_mkm2["BRA"] == pytest.approx(8.516, rel=0.02)
    assert area_mkm2["OCE"] == pytest.approx(7.692 + 0.268, rel=0.02)
    # the polygon shares behind it, Australia alone: 7.692 million km²
    australia = float((grid.cell_area() * country_mask(grid, "AUS")).sum()) / 1e12
    assert australia == pytest.approx(7.692, rel=0.02)
    assert area_mkm2["GLOBAL"] == pytest.approx(148.9, rel=0.03)
    # 1 g m-2 d-1 over the region's land for January's 31 days, in Pg
    january = float(result["nee"].sel(region="BRA")[0])
    assert january == pytest.approx(area_mkm2["BRA"] * 1e12 * 31 / 1e15, rel=1e-9)
    assert "country polygons" in result.attrs["land_fraction_source"]
