"""invoke prepare end to end on fixture files in each product's format, with hand values."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.data.canonical import open_canonical
from fluxbridge.data.prepare import drivers as drivers_module
from fluxbridge.data.prepare import inversions, run_prepare
from fluxbridge.data.prepare.config import FireConfig, load_prepare_config
from fluxbridge.data.prepare.inputs import MissingInputsError, resolve_inputs
from fluxbridge.data.prepare.run import _mappings
from fluxbridge.errors import ConfigError, FluxbridgeError, SchemaError
from fluxbridge.geo.grid import Grid
from fluxbridge.plausibility import FILLED_ATTR, ImplausibleError

from . import world

C_PER_CO2 = 12.011 / 44.009
S_PER_DAY = 86_400.0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("real")
    world.write_world(root / "raw")
    world.write_manifest(root / "manifest.yaml")
    world.write_config(root / "prepare.yaml", root / "manifest.yaml")
    return root


@pytest.fixture(scope="module")
def prepared(inputs: Path) -> Path:
    out = inputs / "canonical"
    assert run_prepare(inputs / "prepare.yaml", out, inputs / "raw") == 0
    return out


def test_fixtures_become_a_valid_canonical_dataset(prepared: Path) -> None:
    data = open_canonical(prepared)
    assert data.meta["source"] == "real"
    assert set(data.meta["inputs"]) >= {"gcb2022-inversions", "cams-gfas-fire", "fluxnet2015"}
    assert not (prepared.parent / ".canonical.prepare").exists()
    grid = data.open("grid")
    assert "gcb2022-inversions" in grid.attrs["inputs"]


def test_inversion_units_sign_fire_and_land_fraction_by_hand(prepared: Path) -> None:
    data = open_canonical(prepared)
    land = data.grid_ds["land_fraction"].values
    nee = data.open("inversions")["nee"]
    assert list(nee["member"].values) == ["CAMS", "CTE"]
    for member, flux in world.INVERSION_KGC_M2_S.items():
        # kgC m-2(cell) s-1 minus kgCO2 m-2(cell) s-1 of fire, per m2 of land.
        expected = (flux * 1e3 - world.FIRE_KGCO2_M2_S * 1e3 * C_PER_CO2) * S_PER_DAY
        values = nee.sel(member=member).values
        for lf in (1.0, 0.5):
            np.testing.assert_allclose(values[:, land == lf], expected / lf, rtol=1e-5)
        assert np.isnan(values[:, land == 0]).all()


def test_reference_and_residual_sink_by_hand(prepared: Path) -> None:
    data = open_canonical(prepared)
    ref = data.open("reference")["nee"]
    land = data.grid_ds["land_fraction"].values > 0
    np.testing.assert_allclose(ref.values[:, land], world.FLUXCOM_NEE, rtol=1e-6)
    sink = data.open("residual_sink")
    b = world.BUDGET
    residual = (
        b["fossil emissions excluding carbonation"]
        + b["land-use change emissions"]
        - b["atmospheric growth"]
        - b["ocean sink"]
        - b["cement carbonation sink"]
    )
    sigma = np.sqrt((0.05 * 9.0) ** 2 + 0.7**2 + 0.02**2 + 0.4**2 + 0.1**2)
    np.testing.assert_allclose(sink["nee_global"].values, -residual)
    np.testing.assert_allclose(sink["nee_global_sigma"].values, sigma)
    assert list(sink["year"].values) == list(range(world.YEARS[0], world.YEARS[1] + 1))


def test_drivers_per_pft_reconstruction_and_cells(prepared: Path) -> None:
    data = open_canonical(prepared)
    drv = data.open("drivers")
    assert drv.sizes["time"] == 366 + 365
    assert drv.sizes["cell"] == int((data.grid_ds["land_fraction"] > 0).sum())
    day = np.concatenate([np.arange(365), np.arange(366)])  # 2003, then leap year 2004
    a, b = world.PFT
    tair = a * (world.TAIR_K[0] + day / 100) + b * (world.TAIR_K[1] + day / 100) - 273.15
    np.testing.assert_allclose(
        drv["Tair"].values, np.repeat(tair[:, None], drv.sizes["cell"], 1), atol=1e-4
    )
    for name, value in world.DRIVER_VALUES.items():
        np.testing.assert_allclose(drv[name].values, value, rtol=1e-6, err_msg=name)


def test_sites_folds_tower_tair_and_cells(prepared: Path) -> None:
    data = open_canonical(prepared)
    sites = data.open("sites")
    assert sorted(sites["site"].values) == sorted(world.SITES)
    assert sites.sizes["time"] == 365 + 366
    assert set(sites["fold"].values) == {0, 1}
    k = sorted(world.SITES).index("DE-Tha")
    order = list(world.SITES).index("DE-Tha")
    tair = sites["Tair"].isel(site=k).to_series()[:"2004-06-30"]  # the tower's last day
    # The tower's TA_F where present; the gridded Tair on the 15th, where TA_F is missing.
    assert (tair[tair.index.day != 15] == 10.0 + order).all()
    assert (tair[tair.index.day == 15] != 10.0 + order).all()
    np.testing.assert_allclose(sites["nee_obs"].isel(site=k).sel(time="2004-06-30"), -1.0 - order)
    assert np.isnan(sites["nee_obs"].isel(site=k).sel(time="2004-07-01"))
    # Each tower sits in the land cell that contains it (all fixture towers are on land).
    drv = data.open("drivers")
    grid = Grid.global_regular(world.RES)
    for i, (lat, lon) in enumerate(
        zip(sites["site_lat"].values, sites["site_lon"].values, strict=True)
    ):
        cell = int(sites["site_cell"].values[i])
        assert grid.lat_bounds[drv["cell_ilat"].values[cell]] <= lat
        assert lon < grid.lon_bounds[drv["cell_ilon"].values[cell] + 1]


def test_regions_from_the_official_mask(prepared: Path) -> None:
    data = open_canonical(prepared)
    frac = data.grid_ds["region_fraction"]
    assert data.region_abbrs[0] == "USA"
    land = data.grid_ds["land_fraction"].values > 0
    np.testing.assert_allclose(frac.sum("region").values[land], 1.0)
    # Fixture id = column % 18 + 1 (mapping: 1 = USA, ..., 7 = EU).
    ilat = int(np.argmax(land[:, 6]))
    assert frac.sel(region="EU").values[ilat, 6] == 1.0  # column 6: id 7 = EU
    assert frac.sel(region="USA").values[ilat, 18] == 1.0  # column 18: id 1 = USA
    assert frac.sel(region="EU").values[ilat, 18] == 0.0


def test_refuses_to_overwrite(prepared: Path, inputs: Path) -> None:
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        run_prepare(inputs / "prepare.yaml", prepared, inputs / "raw")


def test_missing_inputs_listed_in_one_error(tmp_path: Path, inputs: Path) -> None:
    world.write_manifest(tmp_path / "manifest.yaml")
    config = world.write_config(tmp_path / "prepare.yaml", tmp_path / "manifest.yaml")
    (tmp_path / "raw").mkdir()
    with pytest.raises(MissingInputsError) as info:
        run_prepare(config, tmp_path / "out", tmp_path / "raw")
    text = str(info.value)
    for name in (
        "fluxnet2015",
        "fluxcom-rs-meteo-drivers",
        "gcb2022-inversions",
        "cams-gfas-fire",
        "gcb2022-budget",
        "fluxcom-rs-meteo-era5-nee",
    ):
        assert name in text
    assert "invoke fetch" in text and "--only" in text
    assert "reccap2-regions" not in text  # optional: built from countries when absent
    assert not (tmp_path / "out").exists()


def test_missing_driver_set_explains_where_it_comes_from(tmp_path: Path, inputs: Path) -> None:
    config = copy_inputs(inputs, tmp_path)
    shutil.rmtree(tmp_path / "raw" / "fluxcom" / "drivers")
    with pytest.raises(
        MissingInputsError, match=r"fluxcom-rs-meteo-drivers.*not publicly distributed"
    ):
        run_prepare(config, tmp_path / "out", tmp_path / "raw")
    assert not (tmp_path / "out").exists()


def copy_inputs(inputs: Path, tmp_path: Path) -> Path:
    shutil.copytree(inputs / "raw", tmp_path / "raw")
    world.write_manifest(tmp_path / "manifest.yaml")
    return world.write_config(tmp_path / "prepare.yaml", tmp_path / "manifest.yaml")


REAL_YEAR_PART = drivers_module.year_part


def _counting_year_parts(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the years whose driver part is built from now on."""
    calls: list[int] = []

    def counting(path, mapping, year, *args):
        calls.append(year)
        return REAL_YEAR_PART(path, mapping, year, *args)

    monkeypatch.setattr(drivers_module, "year_part", counting)
    return calls


def _interrupted_in_the_second_year(
    inputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, list[int]]:
    """A prepare of the copied world that fails while building the second year's drivers."""
    config = copy_inputs(inputs, tmp_path)
    calls: list[int] = []

    def failing(path, mapping, year, *args):
        calls.append(year)
        if year == world.YEARS[1]:
            raise RuntimeError("killed")
        return REAL_YEAR_PART(path, mapping, year, *args)

    monkeypatch.setattr(drivers_module, "year_part", failing)
    with pytest.raises(RuntimeError, match="killed"):
        run_prepare(config, tmp_path / "out", tmp_path / "raw")
    return config, calls


def test_resume_after_interruption_gives_the_same_result(
    tmp_path: Path, inputs: Path, prepared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, calls = _interrupted_in_the_second_year(inputs, tmp_path, monkeypatch)
    assert calls == list(world.YEARS)
    assert not (tmp_path / "out").exists()
    assert (tmp_path / ".out.prepare/parts" / f"drivers_{world.YEARS[0]}.nc").exists()
    # what a kill -9 during a write leaves: a temporary file of a process that is gone
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    leftover = tmp_path / f".out.prepare/dataset/.sites.nc.tmp-{dead}"
    leftover.write_bytes(b"half a file")
    calls = _counting_year_parts(monkeypatch)
    run_prepare(config, tmp_path / "out", tmp_path / "raw")
    assert calls == [world.YEARS[1]]  # the first block was reused
    assert not list((tmp_path / "out").glob(".*.tmp-*"))  # the killed writer's file is gone
    for name in ("drivers", "sites", "inversions", "grid"):
        a = xr.open_dataset(tmp_path / "out" / f"{name}.nc", engine="h5netcdf")
        b = xr.open_dataset(prepared / f"{name}.nc", engine="h5netcdf")
        xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


def step_inputs(inputs: Path, tmp_path: Path):
    """Config, inputs and mappings of the copied fixture world, for running one step alone."""
    loaded = load_prepare_config(tmp_path / "prepare.yaml")
    found = resolve_inputs(loaded, tmp_path / "raw")
    grid = Grid.global_regular(world.RES)
    land = xr.DataArray(world.land_fraction(), dims=("lat", "lon"), coords=grid.coords())
    months = pd.date_range(f"{world.YEARS[0]}-01-01", f"{world.YEARS[1]}-12-01", freq="MS")
    return loaded, found, _mappings(loaded), grid, land, months


def member(tmp_path: Path, inputs: Path, name: str = "CAMS") -> xr.Dataset:
    _, found, maps, grid, land, months = step_inputs(inputs, tmp_path)
    return inversions.member_nee(
        found["inversions"], maps["inversions"], name, months, grid, land, tmp_path / "scratch"
    )


def rewrite_inversions(tmp_path: Path, **kwargs: object) -> None:
    path = tmp_path / "raw/inversions/gcb2022_inversions_1x1.nc"
    path.unlink()
    world.write_gcb_inversions(path, **kwargs)


def test_missing_month_in_inversions_is_a_clear_error(tmp_path: Path, inputs: Path) -> None:
    copy_inputs(inputs, tmp_path)
    rewrite_inversions(tmp_path, time=np.delete(world.month_mids(), 5))
    with pytest.raises(SchemaError, match=r"missing month\(s\) between 2003-05 and 2003-07"):
        member(tmp_path, inputs)


def test_inversions_not_covering_the_years_name_the_gap(tmp_path: Path, inputs: Path) -> None:
    copy_inputs(inputs, tmp_path)
    rewrite_inversions(tmp_path, time=world.month_mids()[:20])
    with pytest.raises(SchemaError, match=r"covers 2003-01\.\.2004-08 .* first 2004-09"):
        member(tmp_path, inputs)


def test_360_day_inversions_are_mapped_to_calendar_months(tmp_path: Path, inputs: Path) -> None:
    copy_inputs(inputs, tmp_path)
    # 360-day calendar: month i of year y is centred on day 360*(y-2000) + 30*i + 15.
    mids = 360.0 * (world.YEARS[0] - 2000) + 30.0 * np.arange(24) + 15.0
    rewrite_inversions(tmp_path, time=mids, calendar="360_day")
    nee = member(tmp_path, inputs)["nee"]
    assert str(nee["time"].values[0])[:10] == "2003-01-01" and nee.sizes["time"] == 24
    expected = world.INVERSION_KGC_M2_S["CAMS"] * 1e3 * S_PER_DAY  # a rate: no calendar factor
    np.testing.assert_allclose(nee.values[:, world.land_fraction() == 1.0], expected, rtol=1e-5)


def test_inversions_on_a_shifted_grid_are_regridded(tmp_path: Path, inputs: Path) -> None:
    copy_inputs(inputs, tmp_path)
    rewrite_inversions(tmp_path, step=7.5)  # 7.5° cells straddle the 10° edges
    nee = member(tmp_path, inputs)["nee"]
    expected = world.INVERSION_KGC_M2_S["CAMS"] * 1e3 * S_PER_DAY
    np.testing.assert_allclose(nee.values[:, world.land_fraction() == 1.0], expected, rtol=1e-5)


def test_truncated_netcdf_is_a_clear_error(tmp_path: Path, inputs: Path) -> None:
    copy_inputs(inputs, tmp_path)
    path = tmp_path / "raw/inversions/gcb2022_inversions_1x1.nc"
    path.write_bytes(path.read_bytes()[:4096])
    with pytest.raises(SchemaError, match=r"gcb2022_inversions_1x1\.nc.*not a readable"):
        member(tmp_path, inputs)


def driver_year(tmp_path: Path, inputs: Path, path: Path, year: int) -> xr.Dataset:
    _, _, maps, grid, land, _ = step_inputs(inputs, tmp_path)
    pft = xr.DataArray(
        np.stack([np.where(land > 0, f, 0.0) for f in world.PFT]), dims=("pft", "lat", "lon")
    )
    return drivers_module.year_part(
        path, maps["drivers"], year, grid, pft, drivers_module.land_cells(land)
    )


def test_driver_file_on_a_shifted_grid_is_refused(tmp_path: Path, inputs: Path) -> None:
    copy_inputs(inputs, tmp_path)
    path = tmp_path / "raw/fluxcom/drivers/drivers_2004.nc"
    ds = xr.open_dataset(path, engine="h5netcdf").load()
    path.unlink()
    ds.assign_coords(lon=ds["lon"] + 2.5).to_netcdf(path, engine="h5netcdf")
    with pytest.raises(SchemaError, match="not the canonical 18x36 grid"):
        driver_year(tmp_path, inputs, path, 2004)


def test_truncated_driver_year_is_a_clear_error(tmp_path: Path, inputs: Path) -> None:
    copy_inputs(inputs, tmp_path)
    world.write_drivers(tmp_path / "short", years=(2004,), drop_last=40)
    with pytest.raises(SchemaError, match="has 326 days, expected the 366 days of 2004"):
        driver_year(tmp_path, inputs, tmp_path / "short/drivers_2004.nc", 2004)


def test_360_day_drivers_are_refused(tmp_path: Path, inputs: Path) -> None:
    copy_inputs(inputs, tmp_path)
    world.write_drivers(tmp_path / "cal", years=(2004,), calendar="360_day")
    with pytest.raises(SchemaError, match="must use the standard calendar"):
        driver_year(tmp_path, inputs, tmp_path / "cal/drivers_2004.nc", 2004)


def test_fire_gap_error_or_climatology_fill_is_logged(
    tmp_path: Path, inputs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    copy_inputs(inputs, tmp_path)
    _, found, maps, grid, land, months = step_inputs(inputs, tmp_path)
    (tmp_path / "raw/fire/cams_gfas/cams_gfas_co2fire_2003.nc").unlink()
    strict = FireConfig(entry="cams-gfas-fire", mapping="cams_gfas", fill="error")
    with pytest.raises(SchemaError, match="first 2003-01"):
        inversions.fire_field(found["fire"], maps["fire"], strict, months, grid, land)
    lenient = FireConfig(entry="cams-gfas-fire", mapping="cams_gfas", fill="climatology")
    with caplog.at_level(logging.WARNING):
        fire = inversions.fire_field(found["fire"], maps["fire"], lenient, months, grid, land)
    assert "filled with the 2004-2004 monthly climatology" in caplog.text
    expected = world.FIRE_KGCO2_M2_S * 1e3 * C_PER_CO2 * S_PER_DAY  # per m2 of land, lf = 1
    np.testing.assert_allclose(
        fire["fire"].values[:, world.land_fraction() == 1.0], expected, rtol=1e-5
    )


def test_a_damaged_part_is_rebuilt_not_failed_on_every_rerun(
    tmp_path: Path, inputs: Path, prepared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config, _ = _interrupted_in_the_second_year(inputs, tmp_path, monkeypatch)
    part = tmp_path / ".out.prepare/parts" / f"drivers_{world.YEARS[0]}.nc"
    part.write_bytes(part.read_bytes()[:100])  # damaged on disk
    calls = _counting_year_parts(monkeypatch)
    run_prepare(config, tmp_path / "out", tmp_path / "raw")
    assert calls == list(world.YEARS)
    a = xr.open_dataset(tmp_path / "out" / "drivers.nc", engine="h5netcdf")
    b = xr.open_dataset(prepared / "drivers.nc", engine="h5netcdf")
    xr.testing.assert_identical(a.drop_attrs(), b.drop_attrs())


def test_an_all_nan_member_is_refused_not_set_to_zero(tmp_path: Path, inputs: Path) -> None:
    """Setting its gaps to 0 would turn an empty member into −fire over all land."""
    copy_inputs(inputs, tmp_path)
    path = tmp_path / "raw/inversions/gcb2022_inversions_1x1.nc"
    ds = xr.load_dataset(path, engine="h5netcdf")
    ds["land_flux_only_fossil_cement_adjusted"][0] = np.nan  # the first member: CAMS
    path.unlink()
    ds.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(FluxbridgeError, match=r"CAMS: 100 % of land cell-months have no value"):
        member(tmp_path, inputs)
    _, found, maps, grid, land, months = step_inputs(inputs, tmp_path)
    allowed = inversions.member_nee(
        found["inversions"],
        maps["inversions"],
        "CAMS",
        months,
        grid,
        land,
        tmp_path / "scratch",
        allow_implausible=True,
    )
    assert float(np.abs(allowed["nee"]).max()) == 0.0  # the documented fill, when allowed


def test_cell_months_set_to_zero_are_recorded_for_the_report(tmp_path: Path, inputs: Path) -> None:
    """One empty month of CAMS: 1 of 24 months, the same share of every land cell."""
    copy_inputs(inputs, tmp_path)
    path = tmp_path / "raw/inversions/gcb2022_inversions_1x1.nc"
    ds = xr.load_dataset(path, engine="h5netcdf")
    ds["land_flux_only_fossil_cement_adjusted"][0, 0] = np.nan  # CAMS, first month
    path.unlink()
    ds.to_netcdf(path, engine="h5netcdf")
    parts = {}
    for name in ("CAMS", "CTE"):
        parts[name] = tmp_path / f"{name}.nc"
        member(tmp_path, inputs, name).to_netcdf(parts[name], engine="h5netcdf")
    land = xr.DataArray(
        world.land_fraction(), dims=("lat", "lon"), coords=Grid.global_regular(world.RES).coords()
    )
    out = inversions.ensemble(parts, None, None, land)
    recorded = json.loads(out.attrs[FILLED_ATTR])
    assert recorded == {"CAMS": pytest.approx(1 / 24, rel=1e-9), "CTE": 0.0}


def test_allow_implausible_reaches_the_reference_and_its_gap_is_recorded(
    tmp_path: Path, inputs: Path
) -> None:
    """Two empty months of the reference: 2 of 24, above the 5 % that may be set to 0."""
    config = copy_inputs(inputs, tmp_path)
    (path,) = (tmp_path / "raw").rglob(f"NEE.RS_METEO*.{world.YEARS[0]}.nc")
    ds = xr.load_dataset(path, engine="h5netcdf", decode_times=False)
    ds["NEE"][:2] = np.nan
    path.unlink()
    ds.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(ImplausibleError, match=r"8\.33 % of land cell-months have no value"):
        run_prepare(config, tmp_path / "refused", tmp_path / "raw")
    run_prepare(config, tmp_path / "out", tmp_path / "raw", allow_implausible=True)
    with xr.open_dataset(tmp_path / "out" / "reference.nc", engine="h5netcdf") as ref:
        assert ref["nee"].attrs[FILLED_ATTR] == pytest.approx(2 / 24, rel=1e-9)


def test_dask_cluster_gives_the_in_process_dataset(
    prepared: Path, inputs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """prepare --dask on a 2-process LocalCluster on loopback: every variable of every file
    bitwise that of the in-process run (the `prepared` fixture)."""
    distributed = pytest.importorskip("distributed")
    out = inputs / "canonical_dask"
    caplog.set_level(logging.INFO)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        assert (
            run_prepare(
                inputs / "prepare.yaml", out, inputs / "raw", dask=cluster.scheduler_address
            )
            == 0
        )
    # the parts really went to the cluster: years, and members + fire
    on_dask = [r.getMessage() for r in caplog.records if "on Dask" in r.getMessage()]
    assert any(m.startswith(f"driver years: {len(world.YEARS)} parts") for m in on_dask), on_dask
    assert any(m.startswith("inversion members: 3 parts") for m in on_dask), on_dask
    files = sorted(p.name for p in prepared.iterdir())
    assert sorted(p.name for p in out.iterdir()) == files
    netcdf = [f for f in files if f.endswith(".nc")]
    # the parts built as tasks end up in drivers.nc (years) and inversions.nc (members, fire)
    assert {"drivers.nc", "inversions.nc", "sites.nc", "grid.nc"} <= set(netcdf)
    stamp = {"history"}  # the time of writing
    for name in netcdf:
        here = xr.open_dataset(prepared / name, engine="h5netcdf").load()
        there = xr.open_dataset(out / name, engine="h5netcdf").load()
        assert set(here.variables) == set(there.variables), name
        for var in here.variables:
            a, b = here[var].values, there[var].values
            assert a.dtype == b.dtype and a.shape == b.shape, f"{name}:{var}"
            if a.dtype.kind in "fiucmMb":
                assert a.tobytes() == b.tobytes(), f"{name}:{var}"  # bitwise, NaN included
            else:
                np.testing.assert_array_equal(a, b, err_msg=f"{name}:{var}")
            assert here[var].attrs == there[var].attrs, f"{name}:{var}"
        assert {k: v for k, v in here.attrs.items() if k not in stamp} == {
            k: v for k, v in there.attrs.items() if k not in stamp
        }, name
    assert (prepared / "canonical.json").read_bytes() == (out / "canonical.json").read_bytes()
