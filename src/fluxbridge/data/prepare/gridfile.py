"""grid.nc: cell areas, land and PFT fractions (FLUXCOM static file) and RECCAP2 regions."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import xarray as xr

from fluxbridge.data.canonical import RECCAP2_REGIONS
from fluxbridge.data.gridded import open_product
from fluxbridge.data.prepare.mappings import DriverSet, RegionMask
from fluxbridge.errors import SchemaError
from fluxbridge.geo.grid import Grid, normalise_lon
from fluxbridge.geo.regions import RegionSet, reccap2, regions_from_file

log = logging.getLogger(__name__)


def on_grid(da: xr.DataArray, grid: Grid, path: Path, what: str) -> xr.DataArray:
    """``da`` with ascending lat and [-180, 180) lon, which must be ``grid`` exactly."""
    da = da.assign_coords(lon=normalise_lon(da["lon"].values)).sortby(["lat", "lon"])
    own = Grid.from_dataset(da, path)
    if not own.same_as(grid):
        raise SchemaError(
            path,
            what,
            f"grid {da.sizes['lat']}x{da.sizes['lon']} ({own.resolution[0]:g}°, from "
            f"{own.lat_bounds[0]:g}°N {own.lon_bounds[0]:g}°E) is not the canonical "
            f"{grid.shape[0]}x{grid.shape[1]} grid ({grid.resolution[0]:g}°); set "
            "resolution_deg to the driver grid (drivers are not regridded)",
        )
    return da.assign_coords(lat=grid.lat, lon=grid.lon)


def grid_index(
    lat: np.ndarray, lon: np.ndarray, grid: Grid, path: Path
) -> tuple[np.ndarray, np.ndarray]:
    """File row of each canonical latitude and file column of each canonical longitude."""
    probe = xr.DataArray(
        np.zeros((lat.size, lon.size)), dims=("lat", "lon"), coords={"lat": lat, "lon": lon}
    )
    on_grid(probe, grid, path, "lat/lon")
    lon = normalise_lon(lon)
    return np.argsort(lat), np.argsort(lon)


def read_static(path: Path, mapping: DriverSet, grid: Grid) -> tuple[xr.DataArray, xr.DataArray]:
    """Land fraction (lat, lon) and PFT fractions of the land (pft, lat, lon), both 0..1."""
    ds = open_product(path)
    names = {mapping.lat_name: "lat", mapping.lon_name: "lon"}
    for var in (mapping.land_fraction_variable, mapping.pft_fraction_variable):
        if var not in ds.variables:
            raise SchemaError(path, var, f"missing; the file has {sorted(map(str, ds))}")
    land = ds[mapping.land_fraction_variable].rename(names).squeeze(drop=True).load()
    land = on_grid(land, grid, path, mapping.land_fraction_variable) * mapping.land_fraction_scale
    _check_fraction(land, path, mapping.land_fraction_variable)
    pft = ds[mapping.pft_fraction_variable].rename({**names, mapping.pft_dim: "pft"}).load()
    pft = on_grid(pft.transpose("pft", "lat", "lon"), grid, path, mapping.pft_fraction_variable)
    _check_fraction(pft, path, mapping.pft_fraction_variable)
    pft_names = (
        [str(p) for p in ds[mapping.pft_dim].values]
        if mapping.pft_dim in ds.coords
        else [f"pft_{i}" for i in range(pft.sizes["pft"])]
    )
    pft = pft.fillna(0.0).assign_coords(pft=np.array(pft_names, dtype=object))
    total = pft.sum("pft")
    bad = (land > 0) & (np.abs(total - 1.0) > 0.01)
    if bool(bad.any()):
        raise SchemaError(
            path,
            mapping.pft_fraction_variable,
            f"PFT fractions of {int(bad.sum())} land cell(s) do not sum to 1 "
            f"(e.g. {float(total.where(bad).max()):.3f})",
        )
    return land.fillna(0.0).clip(0.0, 1.0), pft


def _check_fraction(da: xr.DataArray, path: Path, name: str) -> None:
    lo, hi = float(da.min()), float(da.max())
    if lo < 0 or hi > 1 + 1e-6:
        raise SchemaError(
            path,
            name,
            f"values {lo:g}..{hi:g}, expected fractions in [0, 1] "
            "(percent? set land_fraction_scale: 0.01)",
        )


def regions(
    grid: Grid, land: xr.DataArray, mask: Path | None, mapping: RegionMask | None
) -> RegionSet:
    """RECCAP2 regions as shares of each cell's land: the official mask, else country polygons."""
    if mask is None or mapping is None:
        log.info("no RECCAP2 mask file; building the regions from country polygons")
        return reccap2(grid, land)
    found = regions_from_file(mask, grid, variable=mapping.variable)
    fraction = found.fraction.values
    if mapping.ids is not None:
        row = {int(i): k for k, i in enumerate(found.ids)}
        ids, abbrs, names = (list(x) for x in zip(*RECCAP2_REGIONS, strict=True))
        ordered = np.zeros((len(abbrs), *grid.shape))
        for file_id, abbr in mapping.ids.items():
            if abbr not in abbrs:
                raise SchemaError(mask, "ids", f"{abbr!r} is not a RECCAP2 region ({abbrs})")
            if file_id in row:
                ordered[abbrs.index(abbr)] += fraction[row[file_id]]
        fraction = ordered
    else:
        ids, abbrs, names = list(found.ids), found.abbrs, found.names
    total = fraction.sum(axis=0)
    share = np.where(total > 0, fraction / np.where(total > 0, total, 1.0), 0.0)
    share = np.where(land.values > 0, share, 0.0)
    orphan = (land.values > 0) & (total == 0)
    if orphan.any():
        log.warning("%s: %d land cell(s) are in no region", mask, int(orphan.sum()))
    da = (
        found.fraction.copy(data=share)
        if mapping.ids is None
        else xr.DataArray(
            share,
            dims=("region", "lat", "lon"),
            coords={"region": np.array(abbrs, dtype=object), **grid.coords()},
            attrs={"units": "1", "long_name": "fraction of cell land area in region"},
        )
    )
    return RegionSet(np.asarray(ids), list(abbrs), list(names), da)


def grid_dataset(
    grid: Grid, land: xr.DataArray, pft: xr.DataArray, region_set: RegionSet
) -> xr.Dataset:
    """The canonical grid.nc."""
    ds = grid.bounds_dataset()
    ds["cell_area"] = grid.cell_area()
    ds["land_fraction"] = land.assign_attrs(units="1", long_name="land fraction of the cell")
    ds["pft_fraction"] = pft.assign_attrs(
        units="1", long_name="fraction of the cell's land per PFT"
    )
    regions_ds = region_set.to_dataset()
    regions_ds["region_fraction"].attrs.update(units="1")
    return xr.merge(
        # grid.coords(), not bare arrays: the merge keeps the CF attributes of lat/lon.
        [ds, regions_ds.assign_coords(grid.coords())],
        combine_attrs="drop_conflicts",
    )
