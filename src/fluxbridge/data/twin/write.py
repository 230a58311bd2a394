"""Writing the twin world's files in the canonical layout (CF-1.8, h5netcdf).

Small files go through :func:`fluxbridge.io.write_netcdf`; the large ones (drivers,
inversion ensemble) are created with their coordinates by xarray and then filled
slice by slice with h5netcdf, so memory stays bounded by one block.
"""

from __future__ import annotations

from pathlib import Path

import h5netcdf
import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.data.canonical import DRIVERS, NEE_UNITS, RECCAP2_REGIONS, carbon_long_name
from fluxbridge.io import write_netcdf

from .geography import Geography
from .landcover import MAIN_CLASSES, PFTS
from .towers import Towers

ACTION = "twin world (fluxbridge.data.twin)"
NEE_LONG_NAME = "net ecosystem exchange (positive = flux to the atmosphere)"
LATITUDE = {"standard_name": "latitude", "long_name": "latitude"}
LONGITUDE = {"standard_name": "longitude", "long_name": "longitude"}


def nee_attrs(what: str = NEE_LONG_NAME, cell_methods: str = "time: mean") -> dict[str, str]:
    return {"units": NEE_UNITS, "long_name": carbon_long_name(what), "cell_methods": cell_methods}


def gridded(values: np.ndarray, geo: Geography) -> np.ndarray:
    """(time, cell) → (time, lat, lon) float32, NaN where the cell has no land."""
    out = np.full((values.shape[0], *geo.grid.shape), np.nan, dtype=np.float32)
    out[:, geo.cell_ilat, geo.cell_ilon] = values
    return out


def _coords(geo: Geography, months: pd.DatetimeIndex | None = None) -> xr.Dataset:
    ds = geo.grid.bounds_dataset()
    if months is not None:
        ds = ds.assign_coords(time=("time", months, {"long_name": "month start"}))
    return ds


def write_grid(geo: Geography, path: Path) -> None:
    ds = _coords(geo)
    dims = ("lat", "lon")
    ds["cell_area"] = geo.grid.cell_area()
    ds["land_fraction"] = (dims, geo.land_fraction, {"units": "1", "long_name": "land fraction"})
    ds = ds.assign_coords(pft=("pft", np.array(PFTS, dtype=object), {"long_name": "IGBP PFT"}))
    ds["pft_fraction"] = (
        ("pft", *dims),
        geo.pft_fraction,
        {"units": "1", "long_name": "share of the cell's land per plant functional type"},
    )
    ids, abbrs, names = zip(*RECCAP2_REGIONS, strict=True)
    ds = ds.assign_coords(
        region=("region", np.array(ids, dtype=np.int32), {"long_name": "RECCAP2 region id"})
    )
    ds["region_fraction"] = (
        ("region", *dims),
        geo.region_fraction,
        {"units": "1", "long_name": "share of the cell's land in each RECCAP2 region"},
    )
    ds["region_id"] = (
        dims,
        geo.region_id,
        {"long_name": "majority RECCAP2 region id", "missing_value_meaning": "-1: no region"},
    )
    ds["region_abbr"] = ("region", np.array(abbrs, dtype=object), {"long_name": "abbreviation"})
    ds["region_name"] = ("region", np.array(names, dtype=object), {"long_name": "region name"})
    ds["climate_zone"] = (
        dims,
        geo.climate_zone,
        {
            "long_name": "Köppen–Geiger main climate class (majority of the cell's land)",
            "flag_values": np.arange(len(MAIN_CLASSES) + 1, dtype=np.int32),
            "flag_meanings": " ".join(("no_land", *MAIN_CLASSES)),
        },
    )
    write_netcdf(ds, path, action=ACTION)


def create_drivers(geo: Geography, days: pd.DatetimeIndex, path: Path) -> h5netcdf.File:
    """Create drivers.nc with its coordinates; return it open for slice writes."""
    ds = xr.Dataset(
        {
            "cell_ilat": ("cell", geo.cell_ilat.astype(np.int32), {"long_name": "lat index"}),
            "cell_ilon": ("cell", geo.cell_ilon.astype(np.int32), {"long_name": "lon index"}),
            "cell_lat": (
                "cell",
                geo.grid.lat[geo.cell_ilat],
                {
                    "units": "degrees_north",
                    "standard_name": "latitude",
                    "long_name": "cell-centre latitude",
                },
            ),
            "cell_lon": (
                "cell",
                geo.grid.lon[geo.cell_ilon],
                {
                    "units": "degrees_east",
                    "standard_name": "longitude",
                    "long_name": "cell-centre longitude",
                },
            ),
        },
        coords={"time": ("time", days, {"long_name": "day"})},
        attrs={"title": "twin-world drivers (Upton et al. Table A2) at land cells"},
    )
    write_netcdf(ds, path, action=ACTION)
    handle = h5netcdf.File(path, "a")
    chunk = (min(len(days), 366), min(geo.n_cells, 512))
    for d in DRIVERS:
        var = handle.create_variable(
            d.name,
            ("time", "cell"),
            dtype="f4",
            chunks=chunk,
            compression="gzip",
            compression_opts=1,
            fillvalue=np.float32(np.nan),
        )
        var.attrs.update({"units": d.units, "long_name": d.long_name})
    return handle


def write_sites(
    towers: Towers,
    days: pd.DatetimeIndex,
    nee_obs: np.ndarray,
    drivers: dict[str, np.ndarray],
    path: Path,
) -> None:
    abbr = np.array([RECCAP2_REGIONS[r][1] for r in towers.region], dtype=object)
    st = ("site", "time")
    ds = xr.Dataset(
        {
            "nee_obs": (st, nee_obs.astype(np.float32), nee_attrs(cell_methods="time: mean")),
            "site_lat": ("site", towers.lat, {"units": "degrees_north", **LATITUDE}),
            "site_lon": ("site", towers.lon, {"units": "degrees_east", **LONGITUDE}),
            "site_igbp": ("site", np.array(towers.igbp, dtype=object), {"long_name": "IGBP"}),
            "fold": ("site", towers.fold.astype(np.int32), {"long_name": "cross-validation fold"}),
            "site_region": ("site", abbr, {"long_name": "RECCAP2 region of the tower"}),
            "site_tropical": (
                "site",
                towers.tropical.astype(np.int8),
                {"long_name": "1 = tropical tower (carries the scenario's tower bias)"},
            ),
            "site_cell": ("site", towers.cell.astype(np.int32), {"long_name": "land-cell index"}),
        },
        coords={"site": ("site", np.array(towers.ids, dtype=object)), "time": ("time", days)},
    )
    for d in DRIVERS:
        ds[d.name] = (st, drivers[d.name], {"units": d.units, "long_name": d.long_name})
    write_netcdf(ds, path, action=ACTION)


def write_monthly(
    fields: dict[str, tuple[np.ndarray, dict[str, str]]],
    geo: Geography,
    months: pd.DatetimeIndex,
    path: Path,
    attrs: dict[str, str] | None = None,
    extra: xr.Dataset | None = None,
) -> None:
    """Monthly gridded fields {name: ((month, cell) values, attrs)} to ``path``."""
    ds = _coords(geo, months)
    for name, (values, var_attrs) in fields.items():
        ds[name] = (("time", "lat", "lon"), gridded(values, geo), var_attrs)
    if extra is not None:
        ds = ds.merge(extra)
    ds.attrs.update(attrs or {})
    write_netcdf(ds, path, action=ACTION)


def create_ensemble(
    geo: Geography,
    months: pd.DatetimeIndex,
    names: list[str],
    groups: list[str],
    path: Path,
) -> h5netcdf.File:
    """Create inversions.nc with coordinates; return it open to fill ``nee`` member by member."""
    ds = _coords(geo, months).assign_coords(
        member=("member", np.array(names, dtype=object)),
        group=("member", np.array(groups, dtype=object), {"long_name": "product family"}),
    )
    ds.attrs["title"] = "twin-world atmospheric-inversion ensemble"
    write_netcdf(ds, path, action=ACTION)
    handle = h5netcdf.File(path, "a")
    var = handle.create_variable(
        "nee",
        ("member", "time", "lat", "lon"),
        dtype="f4",
        chunks=(1, min(12, len(months)), *geo.grid.shape),
        compression="gzip",
        compression_opts=1,
        fillvalue=np.float32(np.nan),
    )
    var.attrs.update(nee_attrs())
    return handle
