"""``invoke prepare`` with public drivers and MCD12C1 land cover: per-PFT drivers.

The tiny real-data world of tests/data/prepare (10°, 2003–2004) with ERA5 as in
tests/data/prepare/test_public.py, an MCD12C1-layout file at 1° (the documented SDS,
type, fill and 17 class layers; coarser than the product's 0.05° so that the test
stays small) and a stand-in of ``modis_daily`` that returns one constant per PFT on
the (PFT, cell) pairs it is given. Every land pixel is 25 % ENF and 75 % grassland;
in the world's half-land edge cells the western half of the pixels is water. The
expected drivers are worked out by hand: per-PFT products first, then Σ f × driver.
The prepare builds its base parts in blocks of days much smaller than a year.

The per-PFT base part built in blocks of days (:func:`by_day_blocks`) is checked
bitwise against the whole year on random (PFT, cell) pairs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

pytest.importorskip("pyhdf.SD")

from tests.data.prepare import world
from tests.data.public.test_day_blocks import assert_written_bitwise_equal
from tests.data.public.test_modis import _struct_geo, _write_hdf4

from fluxbridge.data.public import day_blocks
from fluxbridge.data.public.day_blocks import by_day_blocks
from fluxbridge.data.public.drivers import MODIS_VARIABLES
from fluxbridge.data.public.modis_landcover import PFTS, PftPairs
from fluxbridge.data.public.modis_pft import CELL_INPUTS, base_year_per_pft
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


#: Bytes per block of days in the prepare below: small, so that a year takes several blocks.
BLOCK_BYTES = 2**20
MESSAGES: list[str] = []


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("public_pft")
    (root / "raw/modis/mcd12c1").mkdir(parents=True)
    _write_mcd12c1(root / "raw/modis/mcd12c1/MCD12C1.A2004001.061.1.hdf")
    # another year's file is not the one taken (the default year is the last MSC year)
    (root / "raw/modis/mcd12c1/MCD12C1.A2003001.061.1.hdf").write_bytes(b"not read")
    return world.run_public_prepare(
        root,
        _stand_in,
        modis={"landcover": "modis-mcd12c1"},
        patches=[(day_blocks, "BLOCK_BYTES", BLOCK_BYTES)],
        messages=MESSAGES,
    )


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


def test_base_parts_are_built_in_blocks_of_days(prepared: Path) -> None:
    # Per day: 7 MODIS-based (time, pair) and 4 (time, cell) float32 fields. Every land
    # cell of the world has both PFTs (ENF, GRA), so 2 pairs a cell.
    n_cells = int((world.land_fraction() > 0).sum())
    per_day = 4 * (7 * 2 * n_cells + 4 * n_cells)
    step = BLOCK_BYTES // per_day
    for year in range(world.YEARS[0], world.YEARS[1] + 1):
        n_days = pd.Timestamp(year, 12, 31).day_of_year
        expected = 1 + int(np.ceil((n_days - 1) / step))  # the first day, then full blocks
        assert expected >= 3
        found = [m for m in MESSAGES if m.startswith(f"public_base_{year}: ")]
        assert found == [
            f"public_base_{year}: {n_days} day(s) in {expected} block(s) of at most "
            f"{step} day(s) ({per_day / 2**20:.1f} MiB a day)"
        ]


# ------------------------------------------------------------------ blocks of days


DAYS = pd.date_range("2004-02-20", "2004-03-31", freq="D")  # 41 days, 29 February among them


def _random_pairs_year(
    seed: int, n_cells: int, days: pd.DatetimeIndex = DAYS
) -> tuple[xr.Dataset, xr.Dataset, np.ndarray, np.ndarray, PftPairs]:
    """ERA5 at cells, MODIS on (PFT, cell) pairs (dask, a day per chunk, 10 % NaN), Rpot and
    WAI (float32, as _base_part holds them) and the pairs: 1–4 PFTs of random fractions."""
    rng = np.random.default_rng(seed)
    fraction = rng.uniform(size=(len(PFTS), 1, n_cells))
    fraction[rng.uniform(size=fraction.shape) < 0.7] = 0.0
    fraction[rng.integers(len(PFTS), size=n_cells), 0, np.arange(n_cells)] = 0.5  # ≥ 1 PFT
    fraction /= fraction.sum(axis=0)
    pairs = PftPairs.from_fractions(fraction, (np.zeros(n_cells, int), np.arange(n_cells)))
    shape = (days.size, n_cells)
    era5 = xr.Dataset(
        {
            "tair": (("time", "cell"), rng.normal(10, 8, shape).astype(np.float32)),
            "rg": (("time", "cell"), rng.uniform(0, 30, shape).astype(np.float32)),
            "precip": (("time", "cell"), rng.gamma(1, 2, shape).astype(np.float32)),
        },
        coords={"time": days},
    )
    fields = {}
    for name in MODIS_VARIABLES:
        values = rng.uniform(0.0, 1.0, (days.size, pairs.size)).astype(np.float32)
        values[rng.uniform(size=values.shape) < 0.1] = np.nan
        fields[name] = (("time", "pair"), values)
    modis = xr.Dataset(fields, coords={"time": days}).chunk({"time": 1})
    rpot = rng.uniform(0, 45, shape).astype(np.float32)
    wai = rng.uniform(0, 150, shape).astype(np.float32)
    return era5, modis, rpot, wai, pairs


def _blocked(
    era5: xr.Dataset,
    modis: xr.Dataset,
    rpot: np.ndarray,
    wai: np.ndarray,
    pairs: PftPairs,
    block_bytes: int,
) -> xr.Dataset:
    return by_day_blocks(
        lambda t: base_year_per_pft(era5.isel(time=t), modis.isel(time=t), rpot[t], wai[t], pairs),
        pd.DatetimeIndex(era5["time"].values),
        block_bytes=block_bytes,
    )


def test_per_pft_base_in_day_blocks_is_bitwise_the_whole_year(tmp_path: Path) -> None:
    era5, modis, rpot, wai, pairs = _random_pairs_year(seed=3, n_cells=13)
    assert pairs.size > 13 and np.unique(pairs.pft).size >= 2  # several PFTs, in one cell too
    whole = base_year_per_pft(era5, modis, rpot, wai, pairs)
    per_day = 4 * (7 * pairs.size + 4 * 13)
    blocked = _blocked(era5, modis, rpot, wai, pairs, block_bytes=5 * per_day)  # 5-day blocks
    assert list(blocked.data_vars) == list(whole.data_vars)
    for name in whole.data_vars:
        chunks = blocked[name].chunks
        assert chunks is not None and chunks[0] == (1, 5, 5, 5, 5, 5, 5, 5, 5), name
        assert blocked[name].dims == whole[name].dims
        assert blocked[name].dims[1] == ("cell" if name in CELL_INPUTS else "pair")
        assert blocked[name].dtype == whole[name].dtype == np.float32
        np.testing.assert_array_equal(blocked[name].values, whole[name].values, err_msg=name)
    assert np.isnan(whole["EVI_Rg"].values).any()  # the NaN of MODIS went through both
    for coord in ("pair_pft", "pair_cell", "pair_fraction"):
        np.testing.assert_array_equal(blocked[coord].values, whole[coord].values)
    assert_written_bitwise_equal(whole, blocked, tmp_path)  # and after writing, as prepare does
