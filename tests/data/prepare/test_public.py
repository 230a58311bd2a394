"""``invoke prepare`` with ``drivers.source: public`` on the tiny real-data world.

ERA5 comes as the CDS daily-statistics NetCDF (the hourly reader is tested in
tests/data/public/test_era5.py), the land fraction as the ERA5 land-sea mask, and
MODIS through a stand-in of :func:`fluxbridge.data.public.modis.modis_daily` (same
signature and output shape), so every driver has a hand value.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.data.canonical import open_canonical
from fluxbridge.data.public import modis
from fluxbridge.geo.grid import Grid

from . import world

MODIS = {"EVI": 0.5, "NDVI": 0.8, "NDWI": 0.2, "Band4": 0.1, "LST_Day": 300.0}
MODIS |= {"LST_Night": 280.0, "FPAR": 0.5}
# test_modis_sites imports the ERA5 writer from here
_write_era5 = world.write_era5_daily_statistics


def _stand_in_modis_daily(
    files: modis.ModisFiles, grid: Grid, year: int, per_pft: modis.PerPft | None = None
) -> xr.Dataset:
    assert files.nbar and files.lst and files.fpar
    assert per_pft is None, "no land cover configured: all-cover cell means"
    days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    shape = (days.size, *grid.shape)
    return xr.Dataset(
        {k: (("time", "lat", "lon"), np.full(shape, v, np.float32)) for k, v in MODIS.items()},
        coords={"time": days, **grid.coords()},
    )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return world.run_public_prepare(tmp_path_factory.mktemp("public"), _stand_in_modis_daily)


def test_public_drivers_by_hand(prepared: Path) -> None:
    ds = open_canonical(prepared)
    drivers = xr.open_dataset(prepared / "drivers.nc", engine="h5netcdf")
    np.testing.assert_allclose(drivers["Tair"].values, 15.0, atol=1e-4)
    np.testing.assert_allclose(drivers["MSC_EVIRpot"].values, 0.5 * 12.0, rtol=1e-5)
    np.testing.assert_allclose(drivers["MSC_FparLST"].values, 0.5 * 300.0, rtol=1e-6)
    np.testing.assert_allclose(drivers["MIN_MSC_NDWI"].values, 0.2, rtol=1e-6)
    np.testing.assert_allclose(drivers["MSC_LST_Night"].values, 280.0, rtol=1e-6)
    np.testing.assert_allclose(drivers["AMP_MSC_NDVI"].values, 0.0, atol=1e-6)
    np.testing.assert_allclose(drivers["AMP_Band4"].values, 0.0, atol=1e-6)
    # WAI at equilibrium under constant forcing. Uncapped, W = (W + P)(1 − k) with
    # k = PET/C would give W = P(1 − k)/k > C here, so the bucket stays full after the
    # rain (S = C) and W = C(1 − k). PET by hand (Priestley–Taylor; FAO-56 Eqs. 13, 8):
    es = 0.6108 * np.exp(17.27 * 15 / (15 + 237.3))
    slope = 4098 * es / (15 + 237.3) ** 2
    pet = 1.26 * slope / (slope + 0.000665 * 101.3) * (0.6 * 12.0) / 2.45
    k = pet / 100.0
    assert 2.4 * (1 - k) / k > 100.0
    w_eq = 100.0 * (1 - k)
    np.testing.assert_allclose(drivers["WAI2"].values[-1], w_eq, rtol=1e-4)
    np.testing.assert_allclose(drivers["AMP_MSC_WAI"].values[-1], 0.0, atol=1e-2)
    # Rg_VIMSC = MSC(NDVI × Rpot): at the equator-nearest land row on 21 March (slot 79)
    # Rpot = 24·60/π · 0.082 · dr · cos φ cos δ sin ωs (FAO-56 Eq. 21).
    assert ds is not None
    grid = xr.open_dataset(prepared / "grid.nc", engine="h5netcdf")
    lat = grid["lat"].values[drivers["cell_ilat"].values]
    j = 80  # 21 March 2003
    phi, dr = np.deg2rad(lat), 1 + 0.033 * np.cos(2 * np.pi * j / 365)
    delta = 0.409 * np.sin(2 * np.pi * j / 365 - 1.39)
    ws = np.arccos(-np.tan(phi) * np.tan(delta))
    ra = (
        1440
        / np.pi
        * 0.082
        * dr
        * (ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws))
    )
    # The MSC averages 2003 (J = 80) and 2004 (J = 81 on 21 March, same slot 79).
    j2 = 81
    dr2 = 1 + 0.033 * np.cos(2 * np.pi * j2 / 365)
    delta2 = 0.409 * np.sin(2 * np.pi * j2 / 365 - 1.39)
    ws2 = np.arccos(-np.tan(phi) * np.tan(delta2))
    ra2 = (
        1440
        / np.pi
        * 0.082
        * dr2
        * (ws2 * np.sin(phi) * np.sin(delta2) + np.cos(phi) * np.cos(delta2) * np.sin(ws2))
    )
    day = pd.DatetimeIndex(drivers["time"].values).get_loc(pd.Timestamp("2003-03-21"))
    np.testing.assert_allclose(drivers["Rg_VIMSC"].values[day], 0.8 * (ra + ra2) / 2, rtol=1e-5)


def test_land_fraction_from_the_land_sea_mask(prepared: Path) -> None:
    grid = xr.open_dataset(prepared / "grid.nc", engine="h5netcdf")
    np.testing.assert_allclose(grid["land_fraction"].values, world.land_fraction(), atol=1e-9)
    assert list(grid["pft"].values) == ["all"]
    np.testing.assert_allclose(grid["pft_fraction"].values[0], world.land_fraction() > 0)


def test_sites_take_the_public_drivers(prepared: Path) -> None:
    sites = xr.open_dataset(prepared / "sites.nc", engine="h5netcdf")
    np.testing.assert_allclose(sites["MSC_LST_Night"].values, 280.0, rtol=1e-6)


def _bucket_by_hand(precip, rg, tair, capacity=100.0, spin_days=365, passes=2):
    """The WAI bucket of docs/real_data.md written out for one site, scalar by scalar."""

    def pet(rg_mj: float, t: float) -> float:
        es = 0.6108 * np.exp(17.27 * t / (t + 237.3))
        slope = 4098 * es / (t + 237.3) ** 2
        return 1.26 * slope / (slope + 0.000665 * 101.3) * 0.6 * rg_mj / 2.45

    def day(w: float, snow: float, p: float, r: float, t: float) -> tuple[float, float]:
        if t < 0:
            snow, p = snow + p, 0.0
        melt = min(snow, 3.0 * max(t, 0.0))
        s = min(capacity, w + p + melt)
        return s - min(s, pet(r, t) * s / capacity), snow - melt

    w, snow = capacity, 0.0
    for _ in range(passes):
        for i in range(spin_days):
            w, snow = day(w, snow, precip[i], rg[i], tair[i])
    out = []
    for i in range(len(precip)):
        w, snow = day(w, snow, precip[i], rg[i], tair[i])
        out.append(w)
    return np.array(out)


def test_tower_wai_from_the_tower_meteorology(prepared: Path) -> None:
    # Tower k (sorted order) has P_F 1 mm d-1, SW_IN_F 150 W m-2 (12.96 MJ m-2 d-1) and
    # TA_F 10 + k °C from 2002-07-01 to 2004-06-30, TA_F missing on the 15th of each
    # month; ERA5 at every cell: 2.4 mm d-1, 12 MJ m-2 d-1, 15 °C fill the gaps.
    sites = xr.open_dataset(prepared / "sites.nc", engine="h5netcdf")
    days = pd.DatetimeIndex(sites["time"].values)
    tower_period = days <= pd.Timestamp("2004-06-30")
    site = "DE-Tha"
    k = list(world.SITES).index(site)
    precip = np.where(tower_period, 1.0, 2.4)
    rg = np.where(tower_period, 150.0 * 0.0864, 12.0)
    tair = np.where(tower_period & (days.day != 15), 10.0 + k, 15.0)
    expected = _bucket_by_hand(precip, rg, tair)
    got = sites["WAI2"].sel(site=site).values
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    # The gridded WAI (ERA5 only) is another series: the tower's own rain is less.
    grid_wai = xr.open_dataset(prepared / "drivers.nc", engine="h5netcdf")["WAI2"].values[-1, 0]
    assert got[300] < grid_wai
    # AMP_MSC_WAI: the amplitude of the tower WAI's MSC over msc_years (2003-2004).
    amp = float(sites["AMP_MSC_WAI"].sel(site=site).values[0])
    assert 0 < amp <= float(got.max() - got.min()) + 1e-3


def test_shipped_public_config_and_mappings_load() -> None:
    from fluxbridge.data.prepare.config import load_prepare_config
    from fluxbridge.data.prepare.drivers import driver_mapping
    from fluxbridge.data.prepare.mappings import Era5Mapping

    loaded = load_prepare_config(world.ROOT / "configs/prepare/public.yaml")
    cfg = loaded.config
    assert cfg.drivers.source == "public"
    assert cfg.drivers.msc_years == [2001, 2012]
    roles = set(cfg.entries().values())
    assert {"era5", "modis_nbar", "modis_lst", "modis_fpar"} <= roles
    assert "drivers" not in roles
    mapping = driver_mapping(loaded)
    assert isinstance(mapping, Era5Mapping)
    assert mapping.read.layout == "hourly"
    assert mapping.read.rg.variable == "ssrd"


@pytest.mark.parametrize(
    ("drivers", "message"),
    [
        ({"source": "public", "modis": {}}, "source public needs era5"),
        ({"source": "fluxcom"}, "source fluxcom needs entry and mapping"),
        (
            {
                "source": "public",
                "era5": {"entry": "era5-single-levels", "mapping": "era5_single_levels"},
                "modis": {},
                "msc_years": [1990, 2012],
            },
            r"msc_years \[1990, 2012\] must lie within years",
        ),
        (
            {
                "source": "public",
                "era5": {"entry": "e", "mapping": "m"},
                "modis": {},
                "wai": {"capacity_mm": -1},
            },
            "capacity_mm",
        ),
    ],
)
def test_bad_driver_configs_are_refused(tmp_path: Path, drivers: dict, message: str) -> None:
    from fluxbridge.data.prepare.config import load_prepare_config
    from fluxbridge.errors import ConfigError

    config = world.write_config(tmp_path / "p.yaml", tmp_path / "m.yaml", drivers=drivers)
    with pytest.raises((ConfigError, ValueError), match=message):
        load_prepare_config(config)
