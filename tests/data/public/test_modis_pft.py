"""``invoke prepare`` with public drivers and MCD12C1 land cover: per-PFT drivers.

The tiny real-data world of tests/data/prepare (10°, 2003–2004) with ERA5 as in
tests/data/prepare/test_public.py, an MCD12C1-layout file at 1° (the documented SDS,
type, fill and 17 class layers; coarser than the product's 0.05° so that the test
stays small) and a stand-in of ``modis_daily`` that returns one constant per PFT on
the (PFT, cell) pairs it is given. Every land pixel is 25 % ENF and 75 % grassland;
in the world's half-land edge cells the western half of the pixels is water. The
expected drivers are worked out by hand: per-PFT products first, then Σ f × driver.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

pytest.importorskip("pyhdf.SD")

from tests.data.prepare import world
from tests.data.prepare.test_public import _write_era5
from tests.data.public.test_modis import _struct_geo, _write_hdf4

from fluxbridge.data.prepare.run import run_prepare
from fluxbridge.data.public import modis
from fluxbridge.data.public.modis_landcover import PFTS
from fluxbridge.errors import SchemaError
from fluxbridge.geo.grid import Grid

F_ENF, F_GRA = 0.25, 0.75
#: per-PFT constants of the stand-in (ENF, GRA)
PER_PFT = {
    "EVI": (0.3, 0.7),
    "NDVI": (0.6, 0.8),
    "NDWI": (0.1, 0.3),
    "Band4": (0.1, 0.1),
    "LST_Day": (290.0, 310.0),
    "LST_Night": (270.0, 290.0),
    "FPAR": (0.4, 0.6),
}
SEEN: dict[str, object] = {}


def _write_mcd12c1(path: Path) -> Path:
    """A 1° global file in the MCD12C1 layout following the world's land fraction."""
    land = world.land_fraction()[::-1]  # north → south, as the CMG
    percent = np.zeros((180, 360, 17), np.uint8)
    percent[..., 0] = 100
    for i in range(180):
        for j in range(360):
            cell = land[i // 10, j // 10]
            if cell == 1.0 or (cell == 0.5 and j % 10 >= 5):  # eastern half of edge cells
                percent[i, j] = 0
                percent[i, j, 1] = 25  # ENF
                percent[i, j, 10] = 75  # grassland
    layers = {"Land_Cover_Type_1_Percent": (percent, {"fill": 255, "valid_range": (0, 100)})}
    return _write_hdf4(path, _struct_geo(-180.0, 90.0, 180.0, -90.0, 180, 360), layers)


def _stand_in(files, grid: Grid, year: int, quality=None, per_pft=None) -> xr.Dataset:
    assert per_pft is not None, "prepare must ask for per-PFT fields"
    SEEN["landcover"] = per_pft.landcover
    pairs = per_pft.pairs
    days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    enf = pairs.pft == PFTS.index("ENF")
    assert set(np.asarray(PFTS)[pairs.pft]) == {"ENF", "GRA"}
    return xr.Dataset(
        {
            k: (
                ("time", "pair"),
                np.broadcast_to(np.where(enf, a, b), (days.size, pairs.size)).astype(np.float32),
            )
            for k, (a, b) in PER_PFT.items()
        },
        coords={"time": days},
    )


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("public_pft")
    world.write_world(root / "raw")
    _write_era5(root / "raw/era5/single_levels")
    for target in ("mcd43c4", "mod11c2", "mcd15a2h"):
        (root / "raw/modis" / target).mkdir(parents=True)
        (root / "raw/modis" / target / "granule.hdf").write_bytes(b"stand-in")
    (root / "raw/modis/mcd12c1").mkdir(parents=True)
    _write_mcd12c1(root / "raw/modis/mcd12c1/MCD12C1.A2004001.061.1.hdf")
    # another year's file is not the one taken (the default year is the last MSC year)
    (root / "raw/modis/mcd12c1/MCD12C1.A2003001.061.1.hdf").write_bytes(b"not read")
    world.write_manifest(root / "manifest.yaml")
    drivers = {
        "source": "public",
        "era5": {"entry": "era5-single-levels", "mapping": "era5_daily_statistics"},
        "modis": {
            "nbar": "modis-mcd43c4",
            "lst": "modis-mod11c2",
            "fpar": "modis-mcd15a2h",
            "landcover": "modis-mcd12c1",
        },
        "msc_years": list(world.YEARS),
        "wai": {"capacity_mm": 100.0, "spinup_years": 2},
    }
    config = world.write_config(root / "prepare.yaml", root / "manifest.yaml", drivers=drivers)
    mp = pytest.MonkeyPatch()
    mp.setattr(modis, "modis_daily", _stand_in)
    try:
        assert run_prepare(config, root / "canonical", root / "raw") == 0
    finally:
        mp.undo()
    return root / "canonical"


def test_grid_takes_mcd12c1_land_and_pft_fractions(prepared: Path) -> None:
    grid = xr.open_dataset(prepared / "grid.nc", engine="h5netcdf")
    assert list(grid["pft"].values) == list(PFTS)
    np.testing.assert_allclose(grid["land_fraction"].values, world.land_fraction(), atol=1e-9)
    land = grid["land_fraction"].values > 0
    pft = grid["pft_fraction"]
    np.testing.assert_allclose(pft.sel(pft="ENF").values[land], F_ENF, rtol=1e-9)
    np.testing.assert_allclose(pft.sel(pft="GRA").values[land], F_GRA, rtol=1e-9)
    assert pft.values[:, ~land].sum() == 0.0
    assert SEEN["landcover"].name == "MCD12C1.A2004001.061.1.hdf"  # type: ignore[union-attr]


def test_drivers_are_per_pft_then_recombined(prepared: Path) -> None:
    drivers = xr.open_dataset(prepared / "drivers.nc", engine="h5netcdf")

    def mix(enf: float, gra: float) -> float:
        return F_ENF * enf + F_GRA * gra

    # MSC(EVI × Rg), Rg = 12 MJ m-2 d-1 (ERA5 daily statistics of test_public)
    np.testing.assert_allclose(drivers["MSC_EVIRpot"].values, mix(0.3, 0.7) * 12.0, rtol=1e-5)
    # fAPAR × LST per PFT, then weighted: 0.25·0.4·290 + 0.75·0.6·310 = 168.5 K
    # (the product of the cell means, 0.55 × 305 = 167.75 K, would differ)
    np.testing.assert_allclose(drivers["MSC_FparLST"].values, 168.5, rtol=1e-6)
    np.testing.assert_allclose(drivers["MIN_MSC_NDWI"].values, mix(0.1, 0.3), rtol=1e-6)
    np.testing.assert_allclose(drivers["MSC_LST_Night"].values, mix(270.0, 290.0), rtol=1e-6)
    np.testing.assert_allclose(drivers["AMP_MSC_NDVI"].values, 0.0, atol=1e-6)
    # drivers that do not depend on the PFT come through unchanged
    np.testing.assert_allclose(drivers["Tair"].values, 15.0, atol=1e-4)


def test_sites_take_the_recombined_cell_drivers(prepared: Path) -> None:
    sites = xr.open_dataset(prepared / "sites.nc", engine="h5netcdf")
    np.testing.assert_allclose(sites["MSC_LST_Night"].values, 285.0, rtol=1e-6)


def test_missing_landcover_year_is_one_line(tmp_path: Path) -> None:
    from fluxbridge.data.public.modis_pft import landcover_file

    (tmp_path / "MCD12C1.A2003001.061.1.hdf").write_bytes(b"x")
    with pytest.raises(SchemaError) as err:
        landcover_file(tmp_path, 2012)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path) in msg and "2012" in msg
