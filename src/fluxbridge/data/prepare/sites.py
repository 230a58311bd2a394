"""sites.nc: FLUXNET daily NEE, site metadata, grouped folds and the drivers at each tower.

Sites are read with :mod:`fluxbridge.data.fluxnet`. Each tower is placed in the
canonical grid cell that contains it, or, when that cell has no land, in the
land cell nearest to that cell's centre (great-circle distance between cell
centres), so towers of one grid cell always share a land cell. Folds are
grouped by that cell (:func:`fluxbridge.training.folds.grouped_folds`), so
towers sharing a pixel never end up on both sides of a split. Drivers at the
tower are those of its cell; ``Tair`` is replaced by the tower's own air
temperature (TA_F, gap-filled with ERA5 in FLUXNET2015) on the days the tower
has it (Upton et al. Sect. 2.1).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.spatial import cKDTree

from fluxbridge.data.canonical import DRIVERS, NEE_UNITS, carbon_long_name
from fluxbridge.data.fluxnet import (
    build_site_dataset,
    read_site_file,
    read_site_info,
    select_site_files,
)
from fluxbridge.data.prepare.config import SitesConfig
from fluxbridge.errors import SchemaError
from fluxbridge.geo.grid import Grid
from fluxbridge.training.folds import grid_cell, grouped_folds

# grouped_folds is re-exported: prepare deals folds through this module.
__all__ = [
    "grouped_folds", "keep_observed", "published_folds", "read_towers", "sites_dataset",
    "tower_cells",
]  # fmt: skip

log = logging.getLogger(__name__)


def read_towers(folder: Path, cfg: SitesConfig) -> xr.Dataset:
    """The FLUXNET folder as a daily (site, time) dataset with coordinates and IGBP class."""
    info_path = folder / cfg.site_info
    if not info_path.is_file():
        raise SchemaError(
            info_path,
            None,
            "site-info CSV not found (SITE_ID, LOCATION_LAT, "
            "LOCATION_LONG, IGBP); see the manifest entry's instructions",
        )
    files = select_site_files(folder, exclude=info_path)
    if not files:
        raise SchemaError(folder, None, "no FLUXNET flux tables found")
    info = read_site_info(info_path, sorted(files))
    daily = {s: read_site_file(f.path, nee_variable=cfg.nee_variable) for s, f in files.items()}
    return build_site_dataset(daily, files, info)


def tower_cells(lat: np.ndarray, lon: np.ndarray, grid: Grid, land: np.ndarray) -> np.ndarray:
    """Index (into the row-major land cells) of each tower's cell, or of the nearest land cell."""
    ilat_all, ilon_all = np.nonzero(land > 0)
    order = -np.ones(land.shape, dtype=np.int64)
    order[ilat_all, ilon_all] = np.arange(ilat_all.size)
    ilat, ilon = grid_cell(grid, lat, lon)
    cells = order[ilat, ilon]
    sea = cells < 0
    if sea.any():
        # From the cell centre, not the tower: every tower of a cell gets the same pixel.
        tree = cKDTree(_xyz(grid.lat[ilat_all], grid.lon[ilon_all]))
        _, nearest = tree.query(_xyz(grid.lat[ilat[sea]], grid.lon[ilon[sea]]))
        cells[sea] = nearest
    return cells


def _xyz(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], -1)


def published_folds(path: Path, sites: list[str]) -> np.ndarray:
    """Folds from a CSV with SITE_ID and fold (0..K-1) for every site."""
    try:
        table = pd.read_csv(path, dtype={"SITE_ID": str})
    except (FileNotFoundError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise SchemaError(path, None, f"cannot read the fold list ({exc})") from exc
    if not {"SITE_ID", "fold"} <= set(table.columns):
        raise SchemaError(path, None, "needs columns SITE_ID and fold")
    folds = table.set_index("SITE_ID")["fold"]
    absent = [s for s in sites if s not in folds.index]
    if absent:
        raise SchemaError(path, "SITE_ID", f"no fold for site(s) {absent}")
    values = folds.loc[sites].to_numpy()
    if not np.issubdtype(values.dtype, np.integer) or values.min() < 0:
        raise SchemaError(path, "fold", "folds must be integers >= 0")
    return values.astype(np.int32)


def sites_dataset(
    towers: xr.Dataset,
    days: pd.DatetimeIndex,
    cells: np.ndarray,
    folds: np.ndarray,
    driver_parts: list[Path],
    tower_tair: bool,
) -> xr.Dataset:
    """The canonical sites.nc on the config's days."""
    towers = towers.reindex(time=days)
    drivers = xr.concat(
        [xr.open_dataset(p, engine="h5netcdf").isel(cell=cells).load() for p in driver_parts],
        dim="time",
        data_vars="all",
    ).reindex(time=days)
    data = {}
    for driver in DRIVERS:
        values = drivers[driver.name].values.T.astype(np.float32)  # (site, time)
        if driver.name == "Tair" and tower_tair:
            tower = towers["tair"].values
            values = np.where(np.isnan(tower), values, tower).astype(np.float32)
        data[driver.name] = (
            ("site", "time"),
            values,
            {"units": driver.units, "long_name": driver.long_name},
        )
    ds = xr.Dataset(
        {
            "nee_obs": (
                ("site", "time"),
                towers["nee_obs"].values.astype(np.float32),
                {
                    "units": NEE_UNITS,
                    "cell_methods": "time: mean",
                    "long_name": carbon_long_name(
                        "net ecosystem exchange, daily (positive = source)"
                    ),
                },
            ),
            "nee_qc_fraction": towers["nee_qc_fraction"].assign_attrs(units="1"),
            "site_lat": towers["site_lat"],
            "site_lon": towers["site_lon"],
            "site_igbp": towers["site_igbp"].astype(str).astype(object),
            "fold": ("site", folds, {"long_name": "site fold id (grouped by grid cell)"}),
            "site_cell": (
                "site",
                cells.astype(np.int32),
                {"long_name": "index of the site's land cell in drivers.nc"},
            ),
            **data,
        },
        coords={"site": towers["site"], "time": ("time", days, {"standard_name": "time"})},
    )
    return ds


def keep_observed(towers: xr.Dataset, days: pd.DatetimeIndex) -> xr.Dataset:
    """Drop (and log) sites with no NEE on the config's days."""
    nee = towers["nee_obs"].reindex(time=days)
    has = nee.notnull().any("time").values
    if not has.all():
        log.warning(
            "dropping site(s) without NEE in %s..%s: %s",
            days[0].date(),
            days[-1].date(),
            [str(s) for s in towers["site"].values[~has]],
        )
    if not has.any():
        raise SchemaError("sites", "nee_obs", f"no site has NEE in {days[0].year}..{days[-1].year}")
    return towers.isel(site=np.flatnonzero(has))
