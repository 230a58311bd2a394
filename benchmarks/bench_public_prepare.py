"""Benchmark: wall time and peak RSS of ``prepare`` with public drivers on a synthetic year.

Builds, in a work folder outside the repository's tracked files (default
``build/bench_public_prepare``, git-ignored), one year of layout-true synthetic
inputs at the sizes of the real products, then runs the real ``prepare`` task
(the ``fluxbridge prepare`` command) on them in a child process and prints, per
part file of the prepare work directory and in total, the wall time and the peak
RSS of the child (and any process it starts), the load average and the disk used.

Inputs (``--year``; sizes for the defaults):

* ERA5 post-processed daily statistics (CDS NetCDF4 layout the reader takes:
  ``valid_time``, ``latitude`` 90 → −90, ``longitude`` 0..360; ``t2m`` K, ``ssrd``
  J m-2, ``tp`` m; float32, zlib) at 0.25° (721 × 1440), and the land-sea mask;
* MCD43C4 (every 8th day), MOD11C2 (8-day) as 0.05° CMG HDF4 (3600 × 7200) and
  MCD15A2H as sinusoidal HDF4 tiles (the land tiles of the 36 × 18 tile grid), SDS,
  attributes and HDF-EOS ``StructMetadata.0`` from the test writers in
  ``tests/data/public/test_modis.py``; deflate-compressed, as the archive's files are.
  Departure: the fAPAR tiles have ``--fpar-pixels`` (default 240, ≈ 4.6 km) pixels a
  side instead of 2400 (463 m): 46 × ~300 real tiles would be ~150 GB;
* land: ``global-land-mask`` at the canonical grid (the twin's ``real`` land); the
  RECCAP2 mask at 1° from :func:`fluxbridge.geo.regions.reccap2`; towers, inversions, fire,
  FLUXCOM reference and budget: the tiny real-data test world
  (``tests/data/prepare/world.py``, 10°/5°; regridded by prepare);
* the prepare config: ``configs/prepare/upton2024.yaml`` as the test world shrinks
  it, with ``drivers.source: public`` and ``msc_years: [year, year]`` (the MSC over
  one year: the period of Table A2 is 2001–2012).

With ``--landcover`` (the per-PFT drivers, ``drivers.modis.landcover: modis-mcd12c1``)
an MCD12C1-layout file (17 IGBP class percentages per CMG pixel, 2–3 classes a pixel by
latitude zone and a longitude wave) is written at the CMG resolution too, and the
default work folder ends in ``_pft``. ``--compare-src OLD`` runs prepare twice on the
same inputs, first with the ``fluxbridge`` package in OLD (e.g. an earlier commit's
``src``: ``git archive <rev> src | tar -x -C build/old``) and then with this checkout's,
and prints per part both peak RSS and their ratio (this / old).

Field values are smooth functions of latitude, longitude and day (seeded phases),
inside each product's valid range. Inputs already built are reused (each file is
written atomically; ``inputs.json`` marks a complete set), so a rerun skips to the
prepare; the prepare output of an earlier run is removed first (``--resume`` keeps
an interrupted prepare's work directory instead). ``--clean`` deletes the work
folder at the end. Usage::

    .venv/bin/python benchmarks/bench_public_prepare.py                 # 0.5°, ~15 min
    .venv/bin/python benchmarks/bench_public_prepare.py --quick         # 5°, coarse inputs
    .venv/bin/python benchmarks/bench_public_prepare.py --landcover --resolution 1 \
        --era5-deg 0.5 --cmg-deg 0.25 --fpar-pixels 24 --compare-src build/old/src \
        --stop-after drivers_2003.nc                                  # per PFT, before/after
    .venv/bin/python benchmarks/bench_public_prepare.py --base-stage pft --cells 25211
                                              # the per-PFT base part alone, whole vs blocks
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the tests' layout writers (tests/ is a package)

from tests.data.prepare import world  # noqa: E402
from tests.data.public.test_modis import (  # noqa: E402
    LST_META,
    NBAR_META,
    _struct_geo,
    _struct_sin,
)
from tests.data.public.test_modis import _write_hdf4 as write_test_hdf4  # noqa: E402

from fluxbridge.data.canonical import RECCAP2_REGIONS  # noqa: E402
from fluxbridge.data.prepare.mappings import RegionMask  # noqa: E402
from fluxbridge.data.twin import maps  # noqa: E402
from fluxbridge.data.twin.raw_products import shipped_mapping  # noqa: E402
from fluxbridge.geo.grid import Grid  # noqa: E402
from fluxbridge.geo.regions import reccap2  # noqa: E402
from fluxbridge.io import write_netcdf  # noqa: E402
from fluxbridge.outputs import atomic_path  # noqa: E402

ACTION = "synthetic public-driver inputs (benchmarks/bench_public_prepare.py)"
KELVIN = 273.15
#: MODIS sinusoidal grid: tile side (m) and the grid's upper-left corner (m).
TILE_M = 1_111_950.519_766_7
SIN_X0, SIN_Y0 = -20_015_109.354, 10_007_554.677
SIN_RADIUS_M = 6_371_007.181
COMPOSITE_STEP_DAYS = 8


# ---------------------------------------------------------------- synthetic fields


# ``lat`` and ``lon`` (degrees) broadcast against each other: (n, 1) and (1, m), or 2-D.


def _season(lat: np.ndarray, doy: int, phase: float) -> np.ndarray:
    """−1 (winter) … 1 (summer) of each latitude on day ``doy`` (summer peak late July)."""
    return np.sign(lat) * np.sin(2 * np.pi * (doy - 115 + phase) / 365.25)


def _tair_k(lat: np.ndarray, lon: np.ndarray, doy: int, phase: float) -> np.ndarray:
    """2 m air temperature (K): 300 K at the equator, 250 K at the poles, ±15 K seasons."""
    a = np.abs(lat) / 90.0
    zonal = 300.0 - 50.0 * a**1.5 + 15.0 * a * _season(lat, doy, phase)
    return zonal + 2.0 * np.cos(np.deg2rad(3 * lon + phase))


def _rg_mj(lat: np.ndarray, lon: np.ndarray, doy: int) -> np.ndarray:
    """Global radiation (MJ m-2 d-1): 18 × the cosine of the noon zenith angle (≥ 0)."""
    decl = 23.44 * np.sin(2 * np.pi * (doy - 81) / 365.0)
    noon = np.clip(np.cos(np.deg2rad(lat - decl)), 0.0, None)
    return 18.0 * noon * (0.9 + 0.1 * np.cos(np.deg2rad(2 * lon)))


def _rain_mm(lat: np.ndarray, lon: np.ndarray, doy: int, phase: float) -> np.ndarray:
    """Precipitation (mm d-1): wet tropics, rain bands moving with the days (≥ 0)."""
    wave = np.sin(np.deg2rad(4 * lon) + doy / 7.0 + phase) ** 2
    return (6.0 * np.exp(-((lat / 25.0) ** 2)) + 1.0) * wave


def _greenness(lat: np.ndarray, lon: np.ndarray, doy: int, phase: float) -> np.ndarray:
    """0 … 1 vegetation state: evergreen tropics, seasonal mid and high latitudes."""
    a = np.abs(lat) / 90.0
    g = 0.75 * np.exp(-((lat / 30.0) ** 2)) + 0.35 * a * (1 + _season(lat, doy, phase))
    return np.clip(g * (0.85 + 0.15 * np.cos(np.deg2rad(3 * lon + phase))), 0.02, 1.0)


# ---------------------------------------------------------------- layouts


def _write_hdf4(path: Path, struct: str, layers: dict[str, tuple[np.ndarray, dict]]) -> None:
    """The tests' HDF4 writer, deflate-compressed (else the 0.05° year is ~20 GB), atomic."""
    with atomic_path(path) as tmp:
        write_test_hdf4(tmp, struct, layers, compress=True)


def composite_days(year: int) -> list[int]:
    """Day of year of each 8-day composite: 1, 9, …, 361."""
    n = pd.Timestamp(year, 12, 31).day_of_year
    return list(range(1, n + 1, COMPOSITE_STEP_DAYS))


def _cmg_axes(cmg_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """CMG cell centres: lat (ny, 1) north → south, as the files; lon (1, nx)."""
    ny, nx = round(180 / cmg_deg), round(360 / cmg_deg)
    lat = 90.0 - (np.arange(ny) + 0.5) * cmg_deg
    lon = -180.0 + (np.arange(nx) + 0.5) * cmg_deg
    return lat[:, None], lon[None, :]


def _on_fine(land: np.ndarray, ny: int, nx: int) -> np.ndarray:
    """(ny, nx) north-up boolean: the canonical land mask (south → north) at a finer grid."""
    ry, rx = ny // land.shape[0], nx // land.shape[1]
    return np.repeat(np.repeat(land[::-1], ry, axis=0), rx, axis=1)


def _cmg_fields(
    lat: np.ndarray, lon: np.ndarray, on_land: np.ndarray, fill: int, dtype: type
) -> Callable[[np.ndarray, float, float], np.ndarray]:
    """Stored CMG values a + b · field (field (ny, 1) × (1, nx) float32), ``fill`` off land.

    float32 and one full-size temporary per call: a 0.05° field is 26 M values.
    """
    ocean = np.flatnonzero(~on_land)

    def stored(field: np.ndarray, a: float, b: float) -> np.ndarray:
        values = np.empty(on_land.shape, np.float32)
        np.multiply(field[0], field[1], out=values)
        values *= np.float32(b)
        values += np.float32(a)
        out = np.rint(values, out=values).astype(dtype)
        out.ravel()[ocean] = fill
        return out

    return stored


def write_nbar(folder: Path, year: int, land: np.ndarray, cmg_deg: float, phase: float) -> None:
    """MCD43C4 v061 files, one every 8th day (centre-dated), NBAR bands from greenness.

    Greenness here is separable, zonal(lat) × (0.85 + 0.15 cos 3λ), so that a 0.05° day
    costs one product per band.
    """
    lat, lon = _cmg_axes(cmg_deg)
    on_land = _on_fine(land > 0, lat.shape[0], lon.shape[1])
    struct = _struct_geo(-180.0, 90.0, 180.0, -90.0, lat.shape[0], lon.shape[1])
    stored = _cmg_fields(lat, lon, on_land, NBAR_META["fill"], np.int16)
    lon_factor = (0.85 + 0.15 * np.cos(np.deg2rad(3 * lon + phase))).astype(np.float32)
    quality = np.where(on_land, 0, 255).astype(np.uint8)
    inputs = np.full(on_land.shape, 100, np.uint8)
    for doy in composite_days(year):
        path = folder / f"MCD43C4.A{year}{doy:03d}.061.2021000000000.hdf"
        if path.exists():
            continue
        zonal = _greenness(lat, np.zeros((1, 1)), doy, phase).astype(np.float32)
        g = (np.clip(zonal, 0.02, 1.0), lon_factor)
        spectrum = {  # reflectance = a + b · greenness (a vegetated spectrum over soil)
            1: (0.12, -0.08),
            2: (0.22, 0.25),
            3: (0.07, -0.04),
            4: (0.11, -0.04),
            5: (0.30, 0.02),
            6: (0.30, -0.08),
            7: (0.22, -0.12),
        }
        layers = {
            f"Nadir_Reflectance_Band{band}": (stored(g, a * 1e4, b * 1e4), NBAR_META)
            for band, (a, b) in spectrum.items()
        }
        layers["BRDF_Quality"] = (quality, {"fill": 255, "valid_range": (0, 5)})
        layers["Percent_Snow"] = (
            quality,
            {"fill": 255, "valid_range": (0, 100), "units": "percent"},
        )
        layers["Percent_Inputs"] = (inputs, {"fill": 255, "valid_range": (0, 100)})
        _write_hdf4(path, struct, layers)


def write_lst(folder: Path, year: int, land: np.ndarray, cmg_deg: float, phase: float) -> None:
    """MOD11C2 v061 8-day composites: LST day = T + 5 K, night = T − 8 K (T: zonal Tair
    × a longitude wave), QC 0."""
    lat, lon = _cmg_axes(cmg_deg)
    on_land = _on_fine(land > 0, lat.shape[0], lon.shape[1])
    struct = _struct_geo(-180.0, 90.0, 180.0, -90.0, lat.shape[0], lon.shape[1])
    stored = _cmg_fields(lat, lon, on_land, 0, np.uint16)
    lon_factor = (1.0 + 0.005 * np.cos(np.deg2rad(3 * lon + phase))).astype(np.float32)
    qc = np.zeros(on_land.shape, np.uint8)
    for doy in composite_days(year):
        path = folder / f"MOD11C2.A{year}{doy:03d}.061.2021000000000.hdf"
        if path.exists():
            continue
        tair = (_tair_k(lat, np.full((1, 1), 30.0 - phase / 3), doy + 4, phase)).astype(np.float32)
        day = stored((tair + 5.0, lon_factor), 0.0, 1 / 0.02)
        night = stored((tair - 8.0, lon_factor), 0.0, 1 / 0.02)
        layers = {
            "LST_Day_CMG": (day, LST_META),
            "QC_Day": (qc, {"valid_range": (0, 255)}),
            "LST_Night_CMG": (night, LST_META),
            "QC_Night": (qc, {"valid_range": (0, 255)}),
        }
        _write_hdf4(path, struct, layers)


def _tile_lat_lon(h: int, v: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre lat, lon (degrees) of sinusoidal tile h, v with n × n pixels."""
    d = TILE_M / n
    y = SIN_Y0 - v * TILE_M - (np.arange(n) + 0.5) * d
    x = SIN_X0 + h * TILE_M + (np.arange(n) + 0.5) * d
    lat = np.rad2deg(y / SIN_RADIUS_M)
    with np.errstate(divide="ignore", invalid="ignore"):
        lon = np.rad2deg(x[None, :] / (SIN_RADIUS_M * np.cos(np.deg2rad(lat))[:, None]))
    return lat, lon


def write_fpar(
    folder: Path, year: int, land: np.ndarray, grid: Grid, pixels: int, phase: float
) -> None:
    """MCD15A2H v061 tiles (land tiles only), fAPAR = 0.05 + 0.85 × greenness, QC 0."""
    tiles = []
    for v in range(18):
        for h in range(36):
            lat, lon = _tile_lat_lon(h, v, pixels)
            ok = np.isfinite(lon) & (np.abs(lon) < 180.0)
            ilat = np.clip(np.searchsorted(grid.lat_bounds, lat, side="right") - 1, 0, None)
            ilon = np.searchsorted(grid.lon_bounds, np.where(ok, lon, 0.0), side="right") - 1
            ilat = np.broadcast_to(np.minimum(ilat, grid.shape[0] - 1)[:, None], lon.shape)
            ilon = np.clip(ilon, 0, grid.shape[1] - 1)
            on_land = ok & (land[ilat, ilon] > 0)
            if on_land.any():
                tiles.append((h, v, lat, lon, on_land))
    d = TILE_M / pixels
    for doy in composite_days(year):
        for h, v, lat, lon, on_land in tiles:
            path = folder / f"MCD15A2H.A{year}{doy:03d}.h{h:02d}v{v:02d}.061.2021000000000.hdf"
            if path.exists():
                continue
            g = _greenness(lat[:, None], np.where(on_land, lon, 0.0), doy + 4, phase)
            fpar = np.where(on_land, np.round(100 * (0.05 + 0.85 * g)), 255).astype(np.uint8)
            x0, y0 = SIN_X0 + h * TILE_M, SIN_Y0 - v * TILE_M
            struct = _struct_sin(x0, y0, x0 + pixels * d, y0 - pixels * d, pixels, pixels)
            layers = {
                "Fpar_500m": (fpar, {"fill": 255, "valid_range": (0, 100), "scale": 0.01}),
                "FparLai_QC": (
                    np.zeros(lon.shape, np.uint8),
                    {"fill": 255, "valid_range": (0, 254)},
                ),
                "Lai_500m": (
                    np.where(on_land, 20, 255).astype(np.uint8),
                    {"fill": 255, "valid_range": (0, 100), "scale": 0.1},
                ),
            }
            _write_hdf4(path, struct, layers)
    print(f"  MCD15A2H: {len(tiles)} land tiles x {len(composite_days(year))} composites")


#: IGBP classes (MCD12C1 layer index) of each latitude zone (|lat| upper bound, degrees):
#: the zone's first two classes, then cropland or grassland by a longitude wave.
_ZONES = ((15.0, (2, 9)), (35.0, (7, 16)), (55.0, (4, 5)), (90.0, (1, 7)))


def write_mcd12c1(folder: Path, year: int, land: np.ndarray, cmg_deg: float) -> None:
    """MCD12C1 v061 layout (``Land_Cover_Type_1_Percent``, uint8, rows × columns × 17):
    on land 3 classes a pixel, the zone's two (40 ± 20 % and 30 %) and cropland or
    grassland (the rest); off land 100 % water. Zone edges and the waves give a 1° cell
    2–5 PFTs."""
    path = folder / f"MCD12C1.A{year}001.061.2022000000000.hdf"
    if path.exists():
        return
    lat, lon = _cmg_axes(cmg_deg)
    on_land = _on_fine(land > 0, lat.shape[0], lon.shape[1])
    percent = np.zeros((*on_land.shape, 17), np.uint8)
    first = np.rint(40.0 + 20.0 * np.cos(np.deg2rad(5.0 * lon))).astype(np.uint8)  # (1, nx)
    third = np.where(np.cos(np.deg2rad(2.0 * lon)) > 0, 12, 10)  # (1, nx): CRO or GRA
    zone = np.searchsorted([z for z, _ in _ZONES], np.abs(lat[:, 0]))  # (ny,)
    rows, cols = np.nonzero(on_land)
    a = np.array([c[0] for _, c in _ZONES])[zone[rows]]
    b = np.array([c[1] for _, c in _ZONES])[zone[rows]]
    share_a = first[0, cols]
    percent[rows, cols, a] = share_a
    percent[rows, cols, b] = 30
    percent[rows, cols, third[0, cols]] = 100 - 30 - share_a
    percent[~on_land, 0] = 100
    struct = _struct_geo(-180.0, 90.0, 180.0, -90.0, lat.shape[0], lon.shape[1])
    layers = {"Land_Cover_Type_1_Percent": (percent, {"fill": 255, "valid_range": (0, 100)})}
    _write_hdf4(path, struct, layers)


def write_era5(folder: Path, year: int, land: np.ndarray, era5_deg: float, phase: float) -> None:
    """ERA5 daily statistics of ``year`` (one file, built day by day) and the land-sea mask."""
    lat = np.linspace(90.0, -90.0, round(180 / era5_deg) + 1)
    lon = np.arange(round(360 / era5_deg)) * era5_deg
    lon180 = np.where(lon >= 180.0, lon - 360.0, lon)
    mask = folder / "era5_land_sea_mask.nc"
    if not mask.exists():
        # the canonical land fraction at each ERA5 point (nearest canonical cell)
        res = 180.0 / land.shape[0]
        ilat = np.clip(((lat + 90.0) // res).astype(int), 0, land.shape[0] - 1)
        ilon = np.clip(((lon180 + 180.0) // res).astype(int), 0, land.shape[1] - 1)
        lsm = land[ilat[:, None], ilon[None, :]]
        ds = xr.Dataset(
            {"lsm": (("valid_time", "latitude", "longitude"), lsm[None], {"units": "(0 - 1)"})},
            coords={"valid_time": [np.datetime64("1940-01-01")], "latitude": lat, "longitude": lon},
        )
        write_netcdf(ds, mask, action=ACTION)
    path = folder / f"era5_daily_mean_{year}.nc"
    if path.exists():
        return
    import h5netcdf

    days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    seconds = ((days - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)).to_numpy()
    with atomic_path(path) as tmp, h5netcdf.File(tmp, "w") as f:
        # written day by day with h5netcdf (an in-memory year would be 4.5 GB)
        f.dimensions = {"valid_time": days.size, "latitude": lat.size, "longitude": lon.size}
        t = f.create_variable("valid_time", ("valid_time",), "i8", data=seconds.astype(np.int64))
        t.attrs.update(units="seconds since 1970-01-01", calendar="proleptic_gregorian")
        f.create_variable("latitude", ("latitude",), "f8", data=lat).attrs["units"] = (
            "degrees_north"
        )
        f.create_variable("longitude", ("longitude",), "f8", data=lon).attrs["units"] = (
            "degrees_east"
        )
        out = {}
        for name, units in (("t2m", "K"), ("ssrd", "J m**-2"), ("tp", "m")):
            out[name] = f.create_variable(
                name,
                ("valid_time", "latitude", "longitude"),
                "f4",
                chunks=(1, lat.size, lon.size),
                compression="gzip",
                compression_opts=1,
            )
            out[name].attrs["units"] = units
        for k, day in enumerate(days):
            doy = day.day_of_year
            la, lo = lat[:, None], lon180[None, :]
            out["t2m"][k] = _tair_k(la, lo, doy, phase).astype(np.float32)
            # daily mean of the hourly accumulations: the day's total / 24
            out["ssrd"][k] = (_rg_mj(la, lo, doy) * 1e6 / 24).astype(np.float32)
            out["tp"][k] = (_rain_mm(la, lo, doy, phase) / 1e3 / 24).astype(np.float32)


def write_region_mask(path: Path, mask_deg: float = 1.0) -> None:
    """RECCAP2 mask layout at ``mask_deg`` (the real mask is 1°): each cell takes the region
    with the largest share of its land (fluxbridge.geo.regions.reccap2), 0 = none.

    Not the twin's raw mask (sub-cells of 1/16° at 0.5°): prepare's region aggregation
    holds (region, lat, lon) float64 of the mask's grid, ~10 GB at 1/16° (docs/real_data.md).
    """
    grid = Grid.global_regular(mask_deg)
    land = maps.land_fraction(grid)
    land_da = xr.DataArray(land, dims=("lat", "lon"), coords=grid.coords())
    share = np.nan_to_num(reccap2(grid, land_da).fraction.values) * (land > 0)
    layout: RegionMask = shipped_mapping(RegionMask, "reccap2_mask")
    assert layout.ids is not None
    file_id = {abbr: int(i) for i, abbr in layout.ids.items()}
    ids_in_order = np.array([file_id[a] for _, a, _ in RECCAP2_REGIONS], dtype=np.int32)
    ids = np.where(share.sum(axis=0) > 0, ids_in_order[share.argmax(axis=0)], 0)
    out = xr.Dataset(
        {"region_id": (("lat", "lon"), ids.astype(np.int32), {"long_name": "RECCAP2 region"})},
        coords={"lat": grid.lat, "lon": grid.lon},
    )
    write_netcdf(out, path, action=ACTION)


def build_inputs(work: Path, year: int, args: argparse.Namespace) -> dict[str, object]:
    """Every input of the prepare config under ``work/raw`` (reused when complete)."""
    marker = work / "inputs.json"
    if marker.exists():
        print(f"inputs: reusing {work / 'raw'} (delete {marker.name} to rebuild)")
        return json.loads(marker.read_text())
    start = time.perf_counter()
    raw = work / "raw"
    rng = np.random.default_rng(args.seed)
    phase = float(rng.uniform(-10.0, 10.0))  # days: shifts the seasons of every product
    grid = Grid.global_regular(args.resolution)
    print("inputs: land and RECCAP2 regions (global-land-mask)")
    land = maps.land_fraction(grid)
    mask_path = raw / "regions/reccap2_land_regions.nc"
    if not mask_path.exists():
        write_region_mask(mask_path)
    print("inputs: towers, inversions, fire, reference, budget (tests/data/prepare/world.py)")
    years = (year, year)
    if not (raw / "fluxnet/fluxnet2015/site_info.csv").exists():
        world.write_fluxnet(raw / "fluxnet/fluxnet2015")
    world.write_fluxcom(raw / "fluxcom/rs_meteo_era5_nee", years)
    world.write_gcb_inversions(raw / "inversions/gcb2022_inversions_1x1.nc", time=None)
    world.write_gfas(raw / "fire/cams_gfas", years)
    world.write_budget(raw / "gcb/Global_Carbon_Budget_2022v1.0.csv")
    print(f"inputs: ERA5 daily statistics at {args.era5_deg} deg")
    era5 = raw / "era5/single_levels"
    era5.mkdir(parents=True, exist_ok=True)
    write_era5(era5, year, land, args.era5_deg, phase)
    for name, writer in (("mcd43c4", write_nbar), ("mod11c2", write_lst)):
        print(f"inputs: {name.upper()} at {args.cmg_deg} deg")
        (raw / "modis" / name).mkdir(parents=True, exist_ok=True)
        writer(raw / "modis" / name, year, land, args.cmg_deg, phase)
    print(f"inputs: MCD15A2H tiles of {args.fpar_pixels} pixels")
    (raw / "modis/mcd15a2h").mkdir(parents=True, exist_ok=True)
    write_fpar(raw / "modis/mcd15a2h", year, land, grid, args.fpar_pixels, phase)
    modis = {"nbar": "modis-mcd43c4", "lst": "modis-mod11c2", "fpar": "modis-mcd15a2h"}
    if args.landcover:
        print(f"inputs: MCD12C1 at {args.cmg_deg} deg")
        (raw / "modis/mcd12c1").mkdir(parents=True, exist_ok=True)
        write_mcd12c1(raw / "modis/mcd12c1", year, land, args.cmg_deg)
        modis["landcover"] = "modis-mcd12c1"
    world.write_manifest(work / "manifest.yaml")
    drivers = {
        "source": "public",
        "era5": {"entry": "era5-single-levels", "mapping": "era5_daily_statistics"},
        "modis": modis,
        "msc_years": [year, year],  # one synthetic year (Table A2: 2001-2012)
    }
    config = world.write_config(
        work / "prepare.yaml",
        work / "manifest.yaml",
        years=[year, year],
        resolution_deg=args.resolution,
        drivers=drivers,
    )
    info = {
        "year": year,
        "resolution_deg": args.resolution,
        "era5_deg": args.era5_deg,
        "cmg_deg": args.cmg_deg,
        "fpar_pixels": args.fpar_pixels,
        "landcover": bool(args.landcover),
        "seed": args.seed,
        "land_cells": int((land > 0).sum()),
        "config": str(config),
        "build_s": round(time.perf_counter() - start, 1),
    }
    marker.write_text(json.dumps(info, indent=1))
    return info


# ---------------------------------------------------------------- measuring prepare


def _tree_rss(proc: psutil.Process) -> int:
    """RSS (bytes) of ``proc`` and every process it started."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def run_prepare_measured(
    work: Path, config: Path, resume: bool, src: Path | None = None, stop_after: str = ""
) -> dict[str, object]:
    """Run ``fluxbridge prepare`` in a child; per part file: wall time and peak RSS.

    ``src``: a folder holding another ``fluxbridge`` package (e.g. an earlier commit's
    ``src``), put first on the child's PYTHONPATH, to measure that code on the same inputs.
    ``stop_after``: end the child (SIGTERM) once the part of that name is written.
    """
    out = work / "canonical"
    scratch = work / f".{out.name}.prepare"
    if out.exists():
        shutil.rmtree(out)
    if scratch.exists() and not resume:
        shutil.rmtree(scratch)
    cmd = [str(Path(sys.executable).parent / "fluxbridge"), "prepare", "--config", str(config)]
    # --allow-implausible: the test world's 10° FLUXCOM reference leaves the coasts of the
    # 0.5° land without values (a warning instead of the refusal; drivers are not affected)
    cmd += ["--out", str(out), "--data-dir", str(work / "raw"), "--allow-implausible"]
    load_before = os.getloadavg()
    start = time.perf_counter()
    log = (work / "prepare.log").open("w")
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    child = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, env=env)
    proc = psutil.Process(child.pid)
    seen: set[str] = set()
    if scratch.exists():
        seen = {p.name for d in ("parts", "dataset") for p in (scratch / d).glob("*.nc")}
    rows: list[dict[str, object]] = []
    last, peak, overall = start, 0, 0
    rusage = None
    while True:
        pid, status, rusage = os.wait4(child.pid, os.WNOHANG)
        rss = _tree_rss(proc) if pid == 0 else 0
        peak, overall = max(peak, rss), max(overall, rss)
        now = time.perf_counter()
        found = sorted(
            (p.stat().st_mtime, p.name)
            for d in ("parts", "dataset")
            for p in (scratch / d).glob("*.nc")
            if p.name not in seen
        )
        for _, name in found:
            seen.add(name)
            rows.append(
                {"part": name, "wall_s": round(now - last, 1), "peak_rss_mib": peak / 2**20}
            )
            last, peak = now, 0
            if name == stop_after:
                child.terminate()
        if pid != 0:
            break
        time.sleep(0.2)
    log.close()
    wall = time.perf_counter() - start
    rows.append({"part": "(after the last part)", "wall_s": round(wall - (last - start), 1),
                 "peak_rss_mib": peak / 2**20})  # fmt: skip
    code = os.waitstatus_to_exitcode(status)
    return {
        "exit_code": code,
        "wall_s": round(wall, 1),
        "peak_rss_sampled_mib": overall / 2**20,
        # ru_maxrss (KiB on Linux) of the child: the largest RSS it ever had
        "ru_maxrss_mib": rusage.ru_maxrss / 1024 if rusage else float("nan"),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "parts": rows,
        "output_mib": _du(out) / 2**20,
    }


def _random_era5_year(
    rng: np.random.Generator, n_cells: int
) -> tuple[pd.DatetimeIndex, tuple[int, int], xr.Dataset, np.ndarray]:
    """2003's days, (day, cell) shape, random float32 ERA5 (time, cell) and each day's
    16-day composite (0..45) for the base-stage benchmarks."""
    days = pd.date_range("2003-01-01", "2003-12-31", freq="D")
    shape = (days.size, n_cells)
    era5 = xr.Dataset(
        {k: (("time", "cell"), rng.uniform(0, 20, shape).astype(np.float32)) for k in
         ("tair", "rg", "precip")},
        coords={"time": days},
    )  # fmt: skip
    index = np.minimum(np.arange(days.size) // COMPOSITE_STEP_DAYS, 45)
    return days, shape, era5, index


def base_stage(mode: str, out: Path, n_cells: int, seed: int = 0) -> None:
    """The base part's build and write alone, on random inputs shaped as at 0.5°.

    ``whole``: as before the memory fix (``base_year`` on the year, WAI, Rpot and PET
    held as float64); ``blocks``: as now (:func:`~fluxbridge.data.public.day_blocks.by_day_blocks`,
    float32 WAI and Rpot, no PET). MODIS: dask days indexing 46 composites per variable
    on the grid, as ``modis_daily`` returns them. Prints one JSON line (RSS in MiB).
    """
    import resource

    from fluxbridge.data.public.day_blocks import by_day_blocks
    from fluxbridge.data.public.drivers import MODIS_VARIABLES, base_year
    from fluxbridge.data.public.modis import _daily

    rng = np.random.default_rng(seed)
    grid = Grid.global_regular(0.5)
    flat = np.sort(rng.choice(grid.shape[0] * grid.shape[1], n_cells, replace=False))
    cells = np.unravel_index(flat, grid.shape)
    days, shape, era5, index = _random_era5_year(rng, n_cells)
    modis = xr.Dataset(
        {
            v: (("time", "lat", "lon"), _daily(rng.uniform(0, 1, (46, *grid.shape)).astype(
                np.float32), index))
            for v in MODIS_VARIABLES
        },
        coords={"time": days, **grid.coords()},
    )  # fmt: skip
    wai = rng.uniform(0, 150, shape)  # float64, as run_bucket returns it
    rpot = rng.uniform(0, 45, shape)
    pet = rng.uniform(0, 5, shape)
    before = psutil.Process().memory_info().rss
    start = time.perf_counter()
    if mode == "whole":
        base = base_year(era5, modis, rpot, wai, cells)
    else:
        del pet
        wai, rpot = wai.astype(np.float32), rpot.astype(np.float32)
        base = by_day_blocks(
            lambda t: base_year(era5.isel(time=t), modis.isel(time=t), rpot[t], wai[t], cells),
            days,
        )
    write_netcdf(base, out, action=ACTION, overwrite=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall = round(time.perf_counter() - start, 1)
    row = {"mode": mode, "cells": n_cells, "rss_before_mib": before / 2**20}
    print(json.dumps(row | {"peak_rss_mib": peak, "wall_s": wall}))


def pft_base_stage(mode: str, out: Path, n_cells: int, per_cell: int, seed: int = 0) -> None:
    """The per-PFT base part's build and write alone, on random inputs (``--landcover``).

    ``pft-whole``: as before the per-PFT day blocks (``modis_pft.base_year_per_pft`` on
    the year); ``pft-blocks``: as now (the same build by
    :func:`~fluxbridge.data.public.day_blocks.by_day_blocks`). ``n_cells`` land cells with
    ``per_cell`` PFTs each; ERA5, WAI and Rpot (time, cell) float32 as ``_base_part``
    holds them; MODIS: dask days indexing 46 composites per variable on the pairs, as
    ``modis_daily(per_pft=...)`` returns them. Prints one JSON line (RSS in MiB).
    """
    import resource

    from fluxbridge.data.public.day_blocks import by_day_blocks
    from fluxbridge.data.public.drivers import MODIS_VARIABLES
    from fluxbridge.data.public.modis import _daily
    from fluxbridge.data.public.modis_landcover import PFTS, PftPairs
    from fluxbridge.data.public.modis_pft import base_year_per_pft

    rng = np.random.default_rng(seed)
    cell = np.repeat(np.arange(n_cells), per_cell)
    pft = np.sort(
        (rng.integers(len(PFTS), size=n_cells)[:, None] + np.arange(per_cell)) % len(PFTS)
    ).ravel()
    pairs = PftPairs(
        pft=pft,
        cell=cell,
        ilat=np.zeros_like(cell),
        ilon=cell,
        fraction=np.full(cell.size, 1.0 / per_cell),
        n_cells=n_cells,
    )
    days, shape, era5, index = _random_era5_year(rng, n_cells)
    stacks = {v: rng.uniform(0, 1, (46, pairs.size)).astype(np.float32) for v in MODIS_VARIABLES}
    modis = xr.Dataset(
        {v: (("time", "pair"), _daily(stacks[v], index)) for v in MODIS_VARIABLES},
        coords={"time": days},
    )
    wai = rng.uniform(0, 150, shape).astype(np.float32)
    rpot = rng.uniform(0, 45, shape).astype(np.float32)
    before = psutil.Process().memory_info().rss
    start = time.perf_counter()
    if mode == "pft-whole":
        base = base_year_per_pft(era5, modis, rpot, wai, pairs)
    else:
        base = by_day_blocks(
            lambda t: base_year_per_pft(
                era5.isel(time=t), modis.isel(time=t), rpot[t], wai[t], pairs
            ),
            days,
        )
    write_netcdf(base, out, action=ACTION, overwrite=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wall = round(time.perf_counter() - start, 1)
    part_mib = days.size * 4 * (7 * pairs.size + 4 * n_cells) / 2**20
    row = {"mode": mode, "cells": n_cells, "pairs": pairs.size, "part_mib": round(part_mib)}
    print(
        json.dumps(row | {"rss_before_mib": before / 2**20, "peak_rss_mib": peak, "wall_s": wall})
    )


def pft_base_compare(work: Path, n_cells: int, per_cell: int) -> None:
    """:func:`pft_base_stage` whole, then blocks, each in its own child; prints new/old."""
    rows = {}
    for mode in ("pft-whole", "pft-blocks"):
        cmd = [sys.executable, __file__, "--work", str(work), "--base-stage", mode]
        cmd += ["--cells", str(n_cells), "--pfts-per-cell", str(per_cell)]
        line = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        print(line.strip())
        rows[mode] = json.loads(line.strip().splitlines()[-1])
    old, new = rows["pft-whole"]["peak_rss_mib"], rows["pft-blocks"]["peak_rss_mib"]
    added = [rows[m]["peak_rss_mib"] - rows[m]["rss_before_mib"] for m in rows]
    print(
        f"per-PFT base part, peak RSS: whole year {old:.0f} MiB, blocks {new:.0f} MiB, "
        f"blocks/whole {new / old:.2f}; above the set-up: {added[0]:.0f} -> {added[1]:.0f} MiB"
    )


def _report(result: dict[str, object], inputs_mib: float) -> None:
    """Per part: wall time and peak RSS; then the totals."""
    print(f"{'part':<28} {'wall s':>8} {'peak RSS MiB':>13}")
    for row in result["parts"]:  # type: ignore[attr-defined]
        print(f"{row['part']:<28} {row['wall_s']:>8} {row['peak_rss_mib']:>13.0f}")
    print(
        f"total: exit {result['exit_code']}, {result['wall_s']} s, peak RSS "
        f"{result['ru_maxrss_mib']:.0f} MiB (ru_maxrss), {result['peak_rss_sampled_mib']:.0f} MiB "
        f"(sampled, incl. children); load average before {result['load_before']}, after "
        f"{result['load_after']}; disk: inputs {inputs_mib:.0f} MiB, output "
        f"{result['output_mib']:.0f} MiB"
    )


def _compare(old: dict[str, object], new: dict[str, object]) -> None:
    """Per part in both runs: peak RSS (sampled) old, new and new / old; then ru_maxrss."""
    before = {row["part"]: row for row in old["parts"]}  # type: ignore[attr-defined]
    print(f"{'part':<28} {'old MiB':>8} {'new MiB':>8} {'new/old':>8} {'old s':>7} {'new s':>7}")
    for row in new["parts"]:  # type: ignore[attr-defined]
        if row["part"] not in before:
            continue
        o = before[row["part"]]
        ratio = row["peak_rss_mib"] / o["peak_rss_mib"] if o["peak_rss_mib"] else float("nan")
        print(
            f"{row['part']:<28} {o['peak_rss_mib']:>8.0f} {row['peak_rss_mib']:>8.0f} "
            f"{ratio:>8.2f} {o['wall_s']:>7} {row['wall_s']:>7}"
        )
    o_max, n_max = float(old["ru_maxrss_mib"]), float(new["ru_maxrss_mib"])  # type: ignore[arg-type]
    ratio = n_max / o_max
    print(f"whole run, ru_maxrss: old {o_max:.0f} MiB, new {n_max:.0f} MiB, new/old {ratio:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "bench_public_prepare")
    parser.add_argument("--year", type=int, default=2003)
    parser.add_argument("--resolution", type=float, default=0.5, help="canonical grid (deg)")
    parser.add_argument("--era5-deg", type=float, default=0.25)
    parser.add_argument("--cmg-deg", type=float, default=0.05)
    parser.add_argument("--fpar-pixels", type=int, default=240)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="5 deg, 1 deg ERA5, 0.5 deg CMG")
    parser.add_argument("--inputs-only", action="store_true")
    parser.add_argument("--resume", action="store_true", help="keep an interrupted prepare")
    parser.add_argument("--clean", action="store_true", help="delete the work folder at the end")
    parser.add_argument("--src", type=Path, help="run prepare with the fluxbridge package in SRC")
    parser.add_argument("--stop-after", default="", help="end prepare once this part is written")
    parser.add_argument(
        "--landcover", action="store_true", help="per-PFT drivers from a synthetic MCD12C1"
    )
    parser.add_argument(
        "--compare-src", type=Path, help="run prepare with the package in this folder first"
    )
    parser.add_argument(
        "--base-stage",
        choices=["whole", "blocks", "pft-whole", "pft-blocks", "pft"],
        help="see base_stage, pft_base_stage (pft: both, and their ratio)",
    )
    parser.add_argument("--pfts-per-cell", type=int, default=3, help="pairs of --base-stage pft")
    parser.add_argument("--cells", type=int, default=94284, help="land cells of --base-stage")
    args = parser.parse_args()
    if args.base_stage == "pft":
        args.work.mkdir(parents=True, exist_ok=True)
        pft_base_compare(args.work, args.cells, args.pfts_per_cell)
        return
    if args.base_stage in ("pft-whole", "pft-blocks"):
        args.work.mkdir(parents=True, exist_ok=True)
        out = args.work / f"base_{args.base_stage}.nc"
        pft_base_stage(args.base_stage, out, args.cells, args.pfts_per_cell)
        return
    if args.base_stage:
        args.work.mkdir(parents=True, exist_ok=True)
        base_stage(args.base_stage, args.work / f"base_{args.base_stage}.nc", args.cells)
        return
    default_work = args.work == ROOT / "build" / "bench_public_prepare"
    if args.quick:
        args.resolution, args.era5_deg, args.cmg_deg, args.fpar_pixels = 5.0, 1.0, 0.5, 24
        if default_work:
            args.work = ROOT / "build" / "bench_public_prepare_quick"
    if args.landcover and default_work:
        args.work = args.work.with_name(args.work.name + "_pft")
    if args.year not in range(world.YEARS[0], world.YEARS[1] + 1):
        parser.error(f"--year {args.year}: the test world's towers cover {world.YEARS}")
    args.work.mkdir(parents=True, exist_ok=True)
    info = build_inputs(args.work, args.year, args)
    inputs_mib = _du(args.work / "raw") / 2**20
    print(json.dumps(info))
    print(f"inputs on disk: {inputs_mib:.0f} MiB")
    if args.inputs_only:
        return
    config = Path(str(info["config"]))
    old = None
    if args.compare_src is not None:
        print(f"prepare with the package in {args.compare_src} (old)")
        old = run_prepare_measured(args.work, config, False, args.compare_src, args.stop_after)
        _report(old, inputs_mib)
        (args.work / "result_old.json").write_text(json.dumps({"inputs": info, **old}, indent=1))
        shutil.copy(args.work / "prepare.log", args.work / "prepare_old.log")
        print("prepare with this checkout's package (new)")
    result = run_prepare_measured(args.work, config, args.resume, args.src, args.stop_after)
    _report(result, inputs_mib)
    name = "result.json" if args.src is None else "result_src.json"
    (args.work / name).write_text(json.dumps({"inputs": info, **result}, indent=1))
    if old is not None:
        _compare(old, result)
    if result["exit_code"] != 0:
        print(f"prepare failed: see {args.work / 'prepare.log'}")
    if args.clean:
        shutil.rmtree(args.work)


if __name__ == "__main__":
    main()
