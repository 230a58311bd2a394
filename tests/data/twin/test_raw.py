"""The twin world as raw products → `prepare` → the twin's own canonical dataset again.

One module fixture builds the tiny scenario twice (canonical and raw) and prepares the
raw one with the shipped configs/prepare/twin_raw.yaml (about a minute). Tolerances are
those of docs/twin_world.md "Raw format"; expected values come from the twin's own
canonical files, never from the raw writers.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from fluxbridge.data.canonical import DRIVER_NAMES
from fluxbridge.data.prepare import run_prepare
from fluxbridge.data.prepare.inputs import MissingInputsError
from fluxbridge.data.prepare.mappings import BudgetTable
from fluxbridge.data.twin import run_twin
from fluxbridge.data.twin.raw import raw_site_id
from fluxbridge.data.twin.raw_products import budget_terms, shipped_mapping
from fluxbridge.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
TINY = REPO / "configs" / "twin" / "tiny.yaml"
CONFIG = REPO / "configs" / "prepare" / "twin_raw.yaml"
SECONDS_PER_DAY = 86_400.0
#: CSV numbers have 6 decimals (≤ 5e-7 off) and the twin stores float32 (≤ 6e-8 relative):
#: 1e-6 gC m-2 d-1 (or °C) bounds both for |values| < 8.
CSV_ABS_TOL = 1e-6


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("twin_raw")
    run_twin(TINY, base / "canonical")
    run_twin(TINY, base / "raw", format="raw")
    run_prepare(CONFIG, base / "prepared", base / "raw")
    return {
        "base": base,
        "twin": base / "canonical",
        "raw": base / "raw",
        "prep": base / "prepared",
    }


def _open(root: Path, name: str) -> xr.Dataset:
    with xr.open_dataset(root / name, engine="h5netcdf") as ds:
        return ds.load()


def _max_rel(found: np.ndarray, expected: np.ndarray) -> float:
    """max |found − expected| / max |expected| (NaN where either is NaN must agree)."""
    found, expected = np.asarray(found, np.float64), np.asarray(expected, np.float64)
    assert found.shape == expected.shape
    assert (np.isnan(found) == np.isnan(expected)).all()
    return float(np.nanmax(np.abs(found - expected)) / np.nanmax(np.abs(expected)))


def test_grid_is_the_twins(worlds: dict[str, Path]) -> None:
    twin, prep = _open(worlds["twin"], "grid.nc"), _open(worlds["prep"], "grid.nc")
    for name in ("cell_area", "land_fraction", "pft_fraction"):
        assert _max_rel(prep[name].values, twin[name].values) < 1e-12, name
    assert [str(p) for p in prep["pft"].values] == [str(p) for p in twin["pft"].values]
    # The mask deals each cell's 16 x 16 sub-cells to its regions by area quantile: a
    # share comes back within one sub-cell's area share (< 1/256 · 1.2 at 10°) per
    # region boundary of the cell; shares still sum to 1 on land.
    diff = np.abs(prep["region_fraction"].values - twin["region_fraction"].values)
    assert diff.max() < 0.01
    land = twin["land_fraction"].values > 0
    assert np.allclose(prep["region_fraction"].values.sum(axis=0)[land], 1.0)


def test_drivers_lossless(worlds: dict[str, Path]) -> None:
    twin, prep = _open(worlds["twin"], "drivers.nc"), _open(worlds["prep"], "drivers.nc")
    np.testing.assert_array_equal(prep["cell_ilat"].values, twin["cell_ilat"].values)
    np.testing.assert_array_equal(prep["cell_ilon"].values, twin["cell_ilon"].values)
    assert (prep["time"].values == twin["time"].values).all()
    for name in DRIVER_NAMES:
        assert _max_rel(prep[name].values, twin[name].values) <= 1e-6, name


def test_sites_within_csv_precision(worlds: dict[str, Path]) -> None:
    twin, prep = _open(worlds["twin"], "sites.nc"), _open(worlds["prep"], "sites.nc")
    assert [str(s) for s in prep["site"].values] == [
        raw_site_id(str(s)) for s in twin["site"].values
    ]
    for name in ("nee_obs", "Tair", "site_lat", "site_lon"):
        a, b = prep[name].values.astype(np.float64), twin[name].values.astype(np.float64)
        assert (np.isnan(a) == np.isnan(b)).all(), name
        assert np.nanmax(np.abs(a - b)) <= CSV_ABS_TOL, name
    np.testing.assert_array_equal(prep["fold"].values, twin["fold"].values)
    np.testing.assert_array_equal(prep["site_cell"].values, twin["site_cell"].values)
    assert [str(v) for v in prep["site_igbp"].values] == [str(v) for v in twin["site_igbp"].values]


def test_site_drivers_are_the_cells_not_the_twins_tower_noise(worlds: dict[str, Path]) -> None:
    """prepare takes the cell's drivers at a tower (Tair from TA_F): the twin's per-tower
    driver noise has no raw counterpart, so prepared site drivers = twin cell drivers."""
    drivers, prep = _open(worlds["twin"], "drivers.nc"), _open(worlds["prep"], "sites.nc")
    cells = prep["site_cell"].values
    for name in DRIVER_NAMES:
        if name == "Tair":
            continue
        expected = drivers[name].values[:, cells].T
        np.testing.assert_array_equal(prep[name].values, expected, err_msg=name)


def test_fluxnet_meteorology_is_the_towers_own(worlds: dict[str, Path]) -> None:
    """TA_F holds the tower's own Tair (the twin's tower noise on its cell's), SW_IN_F and P_F
    the weather of the tower's cell: read back by the FLUXNET reader, they equal the twin's
    tower Tair (CSV precision) and the ERA5 files at the tower's cell read by the public
    reader (float32: ≤ 6e-8 relative; CSV: 5e-7 W m-2 = 4e-8 MJ m-2 d-1, 5e-7 mm d-1)."""
    from fluxbridge.data.fluxnet import read_site_file
    from fluxbridge.data.prepare.mappings import Era5Mapping
    from fluxbridge.data.public.era5 import era5_daily
    from fluxbridge.geo.grid import Grid

    sites, drivers = _open(worlds["twin"], "sites.nc"), _open(worlds["twin"], "drivers.nc")
    days = pd.DatetimeIndex(sites["time"].values)
    cells = sites["site_cell"].values
    layout = shipped_mapping(Era5Mapping, "era5_daily_statistics")
    paths = sorted((worlds["raw"] / "era5").glob("era5_daily_mean_*"))
    at = (drivers["cell_ilat"].values[cells], drivers["cell_ilon"].values[cells])
    era5 = era5_daily(paths, layout.read, days, Grid.global_regular(10.0), at)
    noise = []
    for k, twin_id in enumerate(sites["site"].values):
        site = raw_site_id(str(twin_id))
        (path,) = (worlds["raw"] / "fluxnet").glob(f"FLX_{site}_FLUXNET2015_FULLSET_DD_*.csv")
        table = read_site_file(path).reindex(days)
        tower_tair = sites["Tair"].values[k].astype(np.float64)
        assert np.abs(table["tair"].to_numpy() - tower_tair).max() <= CSV_ABS_TOL, site
        np.testing.assert_allclose(
            table["sw_in"].to_numpy(), era5["rg"].values[:, k], rtol=1e-6, atol=1e-5
        )
        np.testing.assert_allclose(
            table["precip"].to_numpy(), era5["precip"].values[:, k], rtol=1e-6, atol=1e-5
        )
        noise.append(np.abs(tower_tair - drivers["Tair"].values[:, cells[k]]).max())
    # The twin's tower Tair is not its cell's (tiny: driver_noise 0.05 of Tair's spread).
    assert min(noise) > 0.1


def _regional(nee: np.ndarray, grid: xr.Dataset, months: pd.DatetimeIndex) -> np.ndarray:
    """(…, region, month) PgC month-1 with the twin's own region shares."""
    area = grid["cell_area"].values * grid["land_fraction"].values
    weights = grid["region_fraction"].values * area  # (region, lat, lon)
    per_day = np.einsum("...tyx,ryx->...rt", np.nan_to_num(nee.astype(np.float64)), weights)
    return per_day * months.days_in_month.to_numpy() * 1e-15


def test_inversions_fire_removed_and_regional_integrals_kept(worlds: dict[str, Path]) -> None:
    twin, prep = _open(worlds["twin"], "inversions.nc"), _open(worlds["prep"], "inversions.nc")
    assert [str(m) for m in prep["member"].values] == [str(m) for m in twin["member"].values]
    # float32 parts and the fire (≤ 0.15 gC m-2 d-1) added then subtracted: 1e-6 of the range.
    assert _max_rel(prep["nee"].values, twin["nee"].values) <= 1e-6
    grid = _open(worlds["twin"], "grid.nc")
    months = pd.DatetimeIndex(twin["time"].values)
    found = _regional(prep["nee"].values, grid, months)
    expected = _regional(twin["nee"].values, grid, months)
    assert np.abs(found - expected).max() <= 1e-6 * np.abs(expected).max()


def test_fire_file_is_kg_co2_per_cell(worlds: dict[str, Path]) -> None:
    """Inversion − GFAS (both per m² of cell, converted by hand) / land fraction = twin NEE."""
    raw = worlds["raw"]
    inv = xr.open_dataset(raw / "inversions/GCB2022_inversions_twin.nc", engine="h5netcdf")
    fire = xr.open_dataset(raw / "gfas/cams_gfas_co2fire_2004.nc", engine="h5netcdf")
    twin = _open(worlds["twin"], "inversions.nc")
    land = _open(worlds["twin"], "grid.nc")["land_fraction"]
    g_c_per_kg_co2 = 1000.0 * 12.011 / 44.009
    lat, lon, member, month = 2.5, -55.0, 0, 6  # a tropical cell in July 2004 (lon 305°E)
    day = 31 + 29 + 31 + 30 + 31 + 30 + 10  # 10 July 2004, day 192 (0-based 191)
    gfas = float(fire["co2fire"].sel(latitude=lat, longitude=305.0, method="nearest")[day - 1])
    month_index = 12 + month  # 2004-07 in 2003..2005
    flux = inv["land_flux_only_fossil_cement_adjusted"][member, month_index]
    total = float(flux.sel(latitude=lat, longitude=lon, method="nearest"))
    lf = float(land.sel(lat=lat, lon=lon, method="nearest"))
    assert lf > 0
    nee = (total * 1000.0 - gfas * g_c_per_kg_co2) * SECONDS_PER_DAY / lf
    expected = float(twin["nee"][member, month_index].sel(lat=lat, lon=lon, method="nearest"))
    assert gfas > 0
    assert nee == pytest.approx(expected, abs=1e-5)
    assert inv["latitude"].values[0] < inv["latitude"].values[-1]
    assert fire["latitude"].values[0] > fire["latitude"].values[-1]  # GFAS: north first
    assert fire["longitude"].values.min() >= 0.0


def test_reference_and_residual_sink(worlds: dict[str, Path]) -> None:
    twin, prep = _open(worlds["twin"], "reference.nc"), _open(worlds["prep"], "reference.nc")
    assert _max_rel(prep["nee"].values, twin["nee"].values) <= 1e-6
    twin, prep = (
        _open(worlds["twin"], "residual_sink.nc"),
        _open(worlds["prep"], "residual_sink.nc"),
    )
    np.testing.assert_array_equal(prep["year"].values, twin["year"].values)
    for name in ("nee_global", "nee_global_sigma"):
        assert _max_rel(prep[name].values, twin[name].values) <= 1e-9, name


def test_budget_terms_close_the_sink_by_hand() -> None:
    layout = shipped_mapping(BudgetTable, "gcb2022_budget")
    table = budget_terms(np.array([-2.0, -3.5]), np.array([0.9, 0.9]), layout)
    col = {name: table[t.column].to_numpy() for name, t in layout.terms.items()}
    sink = (
        col["fossil"] + col["land_use_change"] - col["atmospheric_growth"]
        - col["ocean_sink"] - col["cement_carbonation"]
    )  # fmt: skip
    np.testing.assert_allclose(sink, [2.0, 3.5], rtol=1e-12)
    # GCB2022 1σ: 5 % of fossil, 0.7, 0.02, 0.4, 0.1 PgC/yr, in quadrature = 0.9.
    sigma = np.sqrt((0.05 * col["fossil"]) ** 2 + 0.7**2 + 0.02**2 + 0.4**2 + 0.1**2)
    np.testing.assert_allclose(sigma, 0.9, rtol=1e-12)


def test_manifest_checksums_verified_by_prepare(worlds: dict[str, Path]) -> None:
    raw = worlds["raw"]
    entries = yaml.safe_load((raw / "data_manifest.yaml").read_text())["entries"]
    single = [e for e in entries if (raw / e["target"]).is_file()]
    assert {e["name"] for e in single} == {"twin-inversions", "twin-budget", "twin-regions"}
    for e in single:
        assert e["sha256"] == hashlib.sha256((raw / e["target"]).read_bytes()).hexdigest()
    listed = dict(
        reversed(line.split("  ", 1)) for line in (raw / "SHA256SUMS").read_text().splitlines()
    )
    for path in (raw / "fluxnet").glob("*.csv"):
        key = path.relative_to(raw).as_posix()
        assert listed[key] == hashlib.sha256(path.read_bytes()).hexdigest()
    # A changed budget sheet is refused like a corrupt download, before anything is built.
    copy = worlds["base"] / "raw_corrupt"
    shutil.copytree(raw, copy)
    sheet = copy / "gcb/Global_Carbon_Budget_twin.csv"
    sheet.write_text(sheet.read_text().replace("2004,", "2004,1", 1))
    with pytest.raises(MissingInputsError, match=r"twin-budget.*corrupt"):
        run_prepare(CONFIG, worlds["base"] / "never", copy)
    assert not (worlds["base"] / "never").exists()


def test_written_prepare_config_matches_the_shipped_one(worlds: dict[str, Path]) -> None:
    written = yaml.safe_load((worlds["raw"] / "prepare.yaml").read_text())
    shipped = yaml.safe_load(CONFIG.read_text())
    for key in ("years", "resolution_deg", "manifest", "inversions", "sites", "fire"):
        assert written[key] == shipped[key], key


def test_unknown_format_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'zip'.*canonical, raw"):
        run_twin(TINY, tmp_path / "x", format="zip")
    assert not (tmp_path / "x").exists()


def test_era5_daily_statistics_read_back_by_the_public_reader(worlds: dict[str, Path]) -> None:
    """The public ERA5 reader on the twin's ERA5 files: Tair within float32 precision of
    K at 300 K (ulp 3.05e-5, half 1.53e-5 °C), Rg = 24 × the file's daily-mean ssrd / 1e6."""
    from fluxbridge.data.prepare.mappings import Era5Mapping
    from fluxbridge.data.public.era5 import era5_daily
    from fluxbridge.geo.grid import Grid

    layout = shipped_mapping(Era5Mapping, "era5_daily_statistics")
    drivers = _open(worlds["twin"], "drivers.nc")
    days = pd.DatetimeIndex(drivers["time"].values)
    cells = (drivers["cell_ilat"].values, drivers["cell_ilon"].values)
    paths = sorted((worlds["raw"] / "era5").glob("era5_daily_mean_*"))
    assert [p.name for p in paths] == [f"era5_daily_mean_{y}.nc" for y in (2003, 2004, 2005)]
    read = era5_daily(paths, layout.read, days, Grid.global_regular(10.0), cells)
    assert np.abs(read["tair"].values - drivers["Tair"].values).max() <= 2e-5
    raw = xr.open_dataset(paths[1], engine="h5netcdf")
    lat, lon = drivers["cell_lat"].values[7], drivers["cell_lon"].values[7]
    ssrd = raw["ssrd"].sel(latitude=lat, longitude=lon % 360.0).values[:5]  # J m-2 per hour
    day0 = int(np.flatnonzero(days == pd.Timestamp("2004-01-01"))[0])
    np.testing.assert_allclose(read["rg"].values[day0 : day0 + 5, 7], ssrd * 24 / 1e6, rtol=1e-6)
    assert raw["latitude"].values[0] > raw["latitude"].values[-1]
    lsm = xr.open_dataset(worlds["raw"] / "era5" / "era5_land_sea_mask.nc", engine="h5netcdf")
    grid = _open(worlds["twin"], "grid.nc")
    assert float(lsm["lsm"].sel(latitude=lat, longitude=lon % 360.0)) == pytest.approx(
        float(grid["land_fraction"].sel(lat=lat, lon=lon))
    )


def test_raw_site_ids_are_fluxnet_shaped_and_ordered() -> None:
    from fluxbridge.data.fluxnet import parse_file_name

    ids = [raw_site_id(f"TW-{n:04d}") for n in (1, 999, 1000, 25_999)]
    assert ids == ["TA-001", "TA-999", "TB-000", "TZ-999"]
    assert ids == sorted(ids)
    name = Path(f"FLX_{ids[2]}_FLUXNET2015_FULLSET_DD_2003-2005_1-4.csv")
    found = parse_file_name(name)
    assert (found.site, found.resolution) == ("TB-000", "DD")
    with pytest.raises(ConfigError, match="TW-26000"):
        raw_site_id("TW-26000")
