"""The twin world written as raw products: the layouts ``invoke prepare`` reads.

``write_raw(scn, geo, canonical, root)`` turns a twin canonical dataset (``canonical``)
into the provider layouts of ``configs/prepare/mappings`` under ``root``:

* ``fluxnet/``: FLUXNET2015 FULLSET DD CSVs and ``site_info.csv`` (towers: NEE, the
  tower's own Tair with its driver noise, radiation and rain of its cell's weather);
* ``fluxcom/drivers/``: the FLUXCOM RS+METEO driver layout (``static.nc``,
  ``drivers_<year>.nc``), the 10 drivers as they are (Tair in K as float64: lossless);
* ``fluxcom/nee/``: the FLUXCOM NEE reference, one file per year;
* ``inversions/``, ``gfas/``, ``gcb/``, ``reccap2/``: :mod:`.raw_products`;
* ``era5/``: the twin's daily weather as ERA5 daily statistics (:mod:`.raw_era5`);
* ``data_manifest.yaml`` (sha256 of every single-file entry; ``SHA256SUMS`` lists
  every file), ``twin_folds.csv`` (the twin's folds as a published fold list) and
  ``prepare.yaml`` (a prepare config for this scenario).

Variable names, units and file patterns come from the shipped mapping files, so a
layout is defined once (docs/twin_world.md, "Raw format").
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from fluxbridge.data.canonical import DRIVERS
from fluxbridge.data.fluxnet import MISSING, W_TO_MJ_PER_DAY
from fluxbridge.data.prepare.mappings import DriverSet
from fluxbridge.errors import ConfigError
from fluxbridge.io import atomic_path, write_netcdf

from . import raw_products
from .geography import Geography
from .raw_era5 import ERA5_DIR, twin_weather, write_era5
from .raw_products import MAPPINGS, shipped_mapping
from .scenario import Scenario

ACTION = "twin world as raw products (fluxbridge.data.twin.raw)"
#: Decimals of the FLUXNET CSV numbers (NEE, TA_F): the CSV round trip is within 5e-7.
CSV_DECIMALS = 6
FLUXNET_DIR = "fluxnet"
DRIVERS_DIR = "fluxcom/drivers"
REFERENCE_DIR = "fluxcom/nee"


def raw_site_id(twin_id: str) -> str:
    """FLUXNET-shaped id (``CC-XXX``) of twin tower ``TW-0001``: ``TA-001`` (1000: ``TB-000``)."""
    n = int(twin_id.split("-")[1])
    if n >= 26_000:
        raise ConfigError(f"tower {twin_id}: FLUXNET-shaped ids reach 25999 towers")
    return f"T{chr(ord('A') + n // 1000)}-{n % 1000:03d}"


def write_raw(scn: Scenario, geo: Geography, canonical: Path, root: Path) -> None:
    """Write every raw product of the twin dataset ``canonical`` into ``root``."""
    grid_ds = xr.open_dataset(canonical / "grid.nc", engine="h5netcdf").load()
    weather = twin_weather(scn, geo)
    write_drivers(canonical / "drivers.nc", grid_ds, root / DRIVERS_DIR)
    write_sites(canonical / "sites.nc", weather, root / FLUXNET_DIR, root / "twin_folds.csv")
    raw_products.write_reference(canonical / "reference.nc", root / REFERENCE_DIR)
    fire = raw_products.synthetic_fire(grid_ds, scn.seed, canonical / "inversions.nc")
    members = raw_products.write_inversions(
        canonical / "inversions.nc", fire, grid_ds, root / raw_products.INVERSIONS_FILE
    )
    raw_products.write_fire(fire, grid_ds, root / "gfas")
    raw_products.write_budget(canonical / "residual_sink.nc", root / raw_products.BUDGET_FILE)
    raw_products.write_region_mask(geo, root / raw_products.MASK_FILE)
    write_era5(scn, geo, root / ERA5_DIR, weather)
    write_manifest(root)
    write_prepare_config(scn, members, root / "prepare.yaml")
    write_checksums(root)


# ---------------------------------------------------------------- drivers


def write_drivers(drivers_nc: Path, grid_ds: xr.Dataset, folder: Path) -> None:
    """FLUXCOM RS+METEO layout: static.nc and one drivers_<year>.nc a year, gridded."""
    layout: DriverSet = shipped_mapping(DriverSet, "fluxcom_rs_meteo_drivers")
    folder.mkdir(parents=True)
    lat, lon = grid_ds["lat"].values, grid_ds["lon"].values
    dims2 = (layout.lat_name, layout.lon_name)
    static = xr.Dataset(
        {
            layout.land_fraction_variable: (
                dims2,
                grid_ds["land_fraction"].values / layout.land_fraction_scale,
                {"units": "1", "long_name": "land fraction of the cell"},
            ),
            layout.pft_fraction_variable: (
                (layout.pft_dim, *dims2),
                grid_ds["pft_fraction"].values,
                {"units": "1", "long_name": "share of the cell's land per PFT"},
            ),
        },
        coords={
            layout.lat_name: lat,
            layout.lon_name: lon,
            layout.pft_dim: np.array([str(p) for p in grid_ds["pft"].values], dtype=object),
        },
    )
    write_netcdf(static, folder / layout.static_file, action=ACTION)
    with xr.open_dataset(drivers_nc, engine="h5netcdf") as ds:
        ilat, ilon = ds["cell_ilat"].values, ds["cell_ilon"].values
        days = pd.DatetimeIndex(ds["time"].values)
        for year in np.unique(days.year):
            sel = np.flatnonzero(days.year == year)
            out = xr.Dataset(coords={layout.lat_name: lat, layout.lon_name: lon})
            out[layout.time_name] = (
                layout.time_name,
                np.arange(sel.size, dtype=np.float64),
                {"units": f"days since {year}-01-01", "calendar": "standard"},
            )
            for driver in DRIVERS:
                spec = layout.variables[driver.name]
                cells = ds[driver.name].isel(time=sel).values
                shifted = spec.offset != 0.0 or spec.scale != 1.0
                # An offset (Tair degC -> K) in float32 would lose ~1e-5 K: keep float64 there.
                dtype = np.float64 if shifted else np.float32
                field = np.full((sel.size, lat.size, lon.size), np.nan, dtype=dtype)
                field[:, ilat, ilon] = (cells.astype(dtype) - spec.offset) / spec.scale
                out[spec.variable] = (
                    (layout.time_name, *dims2),
                    field,
                    {"units": spec.units, "long_name": driver.long_name},
                )
            write_netcdf(out, folder / layout.files.format(year=int(year)), action=ACTION)


# ---------------------------------------------------------------- towers


def write_sites(
    sites_nc: Path, weather: dict[str, np.ndarray], folder: Path, folds_csv: Path
) -> None:
    """FLUXNET2015 FULLSET DD CSV per tower over the scenario's years, site_info.csv, folds.

    NEE_VUT_REF is the twin's observed NEE (gC m-2 d-1, + = source), NEE_VUT_REF_QC 1
    where observed, TA_F the tower's own Tair of sites.nc (degC, the cell's plus the
    tower's driver noise) on every day. SW_IN_F (W m-2, daily mean) and P_F (mm d-1) are
    the twin's daily weather (``weather``: (day, cell) ``rg`` MJ m-2 d-1, ``rain`` mm d-1)
    at the tower's cell: the twin adds no tower noise to them. VPD_F is -9999 (the twin
    has no humidity).
    """
    folder.mkdir(parents=True)
    with xr.open_dataset(sites_nc, engine="h5netcdf") as ds:
        ds = ds.load()
    days = pd.DatetimeIndex(ds["time"].values)
    if weather["rg"].shape[0] != days.size:
        raise ConfigError(
            f"{sites_nc}: {days.size} days, the twin's weather {weather['rg'].shape[0]}"
        )
    cells = ds["site_cell"].values
    sw_in = weather["rg"][:, cells].T.astype(np.float64) / W_TO_MJ_PER_DAY  # (site, day)
    rain = weather["rain"][:, cells].T.astype(np.float64)
    span = f"{days[0].year}-{days[-1].year}"
    ids = [raw_site_id(str(s)) for s in ds["site"].values]
    stamp = days.strftime("%Y%m%d")
    for k, site in enumerate(ids):
        nee = ds["nee_obs"].values[k].astype(np.float64)
        table = pd.DataFrame(
            {
                "TIMESTAMP": stamp,
                "NEE_VUT_REF": nee,
                "NEE_VUT_REF_QC": np.where(np.isnan(nee), np.nan, 1.0),
                "TA_F": ds["Tair"].values[k].astype(np.float64),
                "SW_IN_F": sw_in[k],
                "VPD_F": np.nan,
                "P_F": rain[k],
            }
        )
        name = f"FLX_{site}_FLUXNET2015_FULLSET_DD_{span}_1-4.csv"
        _write_csv(table, folder / name)
    info = pd.DataFrame(
        {
            "SITE_ID": ids,
            "LOCATION_LAT": ds["site_lat"].values,
            "LOCATION_LONG": ds["site_lon"].values,
            "IGBP": [str(v) for v in ds["site_igbp"].values],
        }
    )
    _write_csv(info, folder / "site_info.csv")
    _write_csv(pd.DataFrame({"SITE_ID": ids, "fold": ds["fold"].values}), folds_csv)


def _write_csv(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False, na_rep=str(MISSING), float_format=f"%.{CSV_DECIMALS}f")


# ---------------------------------------------------------------- manifest and config

#: Manifest entry → (target under the data directory, what it is, DOI of the layout's product).
ENTRIES: dict[str, tuple[str, str, str]] = {
    "twin-fluxnet": (FLUXNET_DIR, "FLUXNET2015 FULLSET DD layout", "10.1038/s41597-020-0534-3"),
    "twin-drivers": (DRIVERS_DIR, "FLUXCOM RS+METEO driver layout", "10.5194/bg-17-1343-2020"),
    "twin-reference": (REFERENCE_DIR, "FLUXCOM RS+METEO NEE layout", "10.5194/bg-17-1343-2020"),
    "twin-inversions": (raw_products.INVERSIONS_FILE, "GCB2022 inversion layout",
                        "10.18160/7AH8-K1X4"),
    "twin-fire": ("gfas", "CAMS GFAS co2fire layout", "10.5194/gmd-15-5171-2022"),
    "twin-budget": (raw_products.BUDGET_FILE, "GCB2022 budget sheet as CSV",
                    "10.5194/essd-14-4811-2022"),
    "twin-era5": (ERA5_DIR, "ERA5 daily statistics layout (Tair, Rg, rain)", "10.1002/qj.3803"),
    "twin-regions": (raw_products.MASK_FILE, "RECCAP2 land region mask layout",
                     "10.5194/gmd-15-1289-2022"),
}  # fmt: skip


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(root: Path) -> None:
    """data_manifest.yaml for the raw twin: single files carry their sha256 (verified by
    ``prepare`` like a download); folders are multi-file products (no single checksum,
    as FLUXNET in the real manifest): their files are in SHA256SUMS."""
    entries = []
    for name, (target, what, doi) in ENTRIES.items():
        path = root / target
        entries.append(
            {
                "name": name,
                "description": f"twin world in the {what} (`fluxbridge twin --format raw`)",
                "url": "https://example.org/fluxbridge-twin-world",
                "access": "open",
                "licence": "generated locally (synthetic twin world)",
                "citation": doi,
                "sha256": sha256_of(path) if path.is_file() else None,
                "target": target,
                "version": "twin world",
            }
        )
    with atomic_path(root / "data_manifest.yaml") as tmp:
        tmp.write_text(yaml.safe_dump({"entries": entries}, sort_keys=False))


def write_checksums(root: Path) -> None:
    """SHA256SUMS (``sha256sum -c`` format) of every file under ``root``."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != "SHA256SUMS")
    lines = [f"{sha256_of(p)}  {p.relative_to(root).as_posix()}" for p in files]
    with atomic_path(root / "SHA256SUMS") as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def prepare_config(scn: Scenario, members: list[str]) -> dict[str, object]:
    """The prepare config of this scenario's raw twin (configs/prepare/twin_raw.yaml's form)."""
    return {
        "name": "twin_raw",
        "description": "the twin world written as raw products, prepared back",
        "years": list(scn.years),
        "resolution_deg": scn.resolution_deg,
        "manifest": "{data_dir}/data_manifest.yaml",
        "mappings_dir": str(MAPPINGS),
        "sites": {
            "entry": "twin-fluxnet",
            "site_info": "site_info.csv",
            "folds_csv": "{data_dir}/twin_folds.csv",
            "tower_tair": True,
        },
        "drivers": {"entry": "twin-drivers", "mapping": "fluxcom_rs_meteo_drivers"},
        "reference": {"entry": "twin-reference", "mapping": "fluxcom_rs_meteo_era5_nee"},
        "inversions": {
            "entry": "twin-inversions",
            "mapping": "gcb2022_inversions",
            "members": {m: m for m in members},
        },
        "fire": {"entry": "twin-fire", "mapping": "cams_gfas", "fill": "error"},
        "residual_sink": {"entry": "twin-budget", "mapping": "gcb2022_budget"},
        "regions": {"entry": "twin-regions", "mapping": "reccap2_mask"},
        "lateral_fluxes": None,
    }


def write_prepare_config(scn: Scenario, members: list[str], path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(
            "# prepare config of this raw twin: fluxbridge prepare --config <this file> "
            "--data-dir <this folder> --out <dataset>\n"
            + yaml.safe_dump(prepare_config(scn, members), sort_keys=False)
        )
