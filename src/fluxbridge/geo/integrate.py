"""Regional integrals of gridded NEE: gC m-2 d-1 (monthly means) → PgC month-1 / PgC yr-1.

Integral over region r in month m:

    I[r, m] = Σ_cells nee[m] · cell_area · land_fraction · region_fraction[r] · days(m) · 1e-15

(positive = net flux to the atmosphere, a source). NaN rule: with
``skipna=False`` (default) a NaN in any cell that has weight > 0 for region r
makes I[r, m] NaN; ocean cells (weight 0) may hold NaN freely. With
``skipna=True`` NaN cells are left out of the sum (their flux counts as zero).
GLOBAL, when asked for, is all land: weight cell_area · land_fraction, so it
also counts land outside every region.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

from fluxbridge.errors import FluxbridgeError, SchemaError
from fluxbridge.geo.grid import Grid, normalise_lon
from fluxbridge.io import open_netcdf, write_netcdf
from fluxbridge.schema import (
    ANNUAL_INTEGRAL_UNITS,
    GRAMS_PER_PETAGRAM,
    MONTHLY_INTEGRAL_UNITS,
    NEE_UNITS,
    carbon_long_name,
    units_match,
)

GLOBAL = "GLOBAL"
TIME_CHUNK = 12  # months read and summed at once: bounds memory for long, large files


def _weights(
    cell_area: xr.DataArray,
    land_fraction: xr.DataArray,
    region_fraction: xr.DataArray,
    include_global: bool,
) -> xr.DataArray:
    """(region, lat, lon) integration weights in m² of land."""
    land_area = (cell_area * land_fraction.fillna(0.0)).transpose("lat", "lon")
    weights = (land_area * region_fraction.fillna(0.0)).transpose("region", "lat", "lon")
    if include_global:
        total = land_area.expand_dims(region=[GLOBAL])
        weights = xr.concat([weights, total], dim="region", coords="minimal", join="exact")
    return weights


def region_land_area_m2(
    cell_area: xr.DataArray, land_fraction: xr.DataArray, region_fraction: xr.DataArray
) -> xr.DataArray:
    """Land area of each region (m²): Σ cell_area · land_fraction · region_fraction.

    The ``land area_r`` of the EC-ATM loss weighting (Upton et al. Eq. 11).
    """
    area = _weights(cell_area, land_fraction, region_fraction, False).sum(("lat", "lon"))
    return area.assign_attrs(units="m2", long_name="land area of region")


def regional_integral_pgc(
    nee: xr.DataArray,
    cell_area: xr.DataArray,
    land_fraction: xr.DataArray,
    region_fraction: xr.DataArray,
    *,
    per: Literal["month", "year"] = "month",
    skipna: bool = False,
    include_global: bool = False,
) -> xr.DataArray:
    """Regional integrals of monthly-mean NEE.

    Parameters
    ----------
    nee : (..., time, lat, lon) monthly-mean NEE in gC m-2 d-1, positive =
        source; ``time`` decodes to datetimes (any day within the month).
    cell_area : (lat, lon) m².
    land_fraction : (lat, lon) fraction of each cell that is land.
    region_fraction : (region, lat, lon) fraction of each cell's land in each region.
    per : "month" → PgC month-1 on ``time``; "year" → PgC yr-1 on ``year``
        (sum of the months; a year with fewer than 12 months is NaN).
    skipna : see the module NaN rule.
    include_global : append a ``GLOBAL`` region (all land).

    Returns
    -------
    (..., region, time) or (..., region, year) DataArray with CF attributes.
    Reads ``nee`` :data:`TIME_CHUNK` months at a time, so a lazily opened file
    never needs to fit in memory.
    """
    if per not in ("month", "year"):
        raise ValueError(f"per must be 'month' or 'year', got {per!r}")
    for name, da, dims in (
        ("cell_area", cell_area, {"lat", "lon"}),
        ("land_fraction", land_fraction, {"lat", "lon"}),
        ("region_fraction", region_fraction, {"region", "lat", "lon"}),
    ):
        if set(da.dims) != dims:
            raise ValueError(f"{name} dims {da.dims}, expected {sorted(dims)}")
    if not {"time", "lat", "lon"} <= set(nee.dims):
        raise ValueError(f"nee dims {nee.dims} must include time, lat, lon")
    if include_global and "region" not in region_fraction.coords:
        raise ValueError("include_global needs region labels (a 'region' coordinate)")
    weights = _weights(cell_area, land_fraction, region_fraction, include_global)
    for axis in ("lat", "lon"):
        if weights.sizes[axis] != nee.sizes[axis] or (
            axis in nee.coords
            and axis in weights.coords
            and not np.allclose(nee[axis].values, weights[axis].values, atol=1e-6)
        ):
            raise ValueError(f"nee and the weights (cell_area, fractions) differ in '{axis}'")
    lead = [d for d in nee.dims if d not in ("time", "lat", "lon")]
    nee = nee.transpose(*lead, "time", "lat", "lon")

    w = weights.values.reshape(weights.sizes["region"], -1)
    cells = np.flatnonzero((w > 0).any(axis=0))  # only cells that carry weight are read
    w = w[:, cells].T  # (cell, region)
    touched = (w > 0).astype(np.float64)
    days = nee["time"].dt.days_in_month.values.astype(np.float64)

    out = np.empty((*nee.shape[:-2], w.shape[1]))
    for start in range(0, nee.sizes["time"], TIME_CHUNK):
        block = slice(start, start + TIME_CHUNK)
        values = np.asarray(nee.isel(time=block).values, dtype=np.float64)
        values = values.reshape(*values.shape[:-2], -1)[..., cells]
        missing = np.isnan(values)
        total = np.where(missing, 0.0, values) @ w
        if not skipna:
            total[(missing @ touched) > 0] = np.nan
        out[..., block, :] = total * days[block, None] / GRAMS_PER_PETAGRAM

    coords = {k: v for k, v in nee.coords.items() if not {"lat", "lon"} & set(v.dims)}
    result = xr.DataArray(
        np.moveaxis(out, -1, -2),
        dims=(*lead, "region", "time"),
        coords={**coords, **({"region": weights["region"]} if "region" in weights.coords else {})},
        name=nee.name,
    )
    if per == "year":
        months = result["time"].dt.year.to_series().value_counts()
        result = result.groupby("time.year").sum(skipna=False)
        incomplete = months[months < 12].index.to_numpy()
        result = result.where(~result["year"].isin(incomplete))
        units, time_method = ANNUAL_INTEGRAL_UNITS, "time: sum (12 months)"
    else:
        units, time_method = MONTHLY_INTEGRAL_UNITS, "time: sum (days of month)"
    return result.assign_attrs(
        units=units,
        long_name=carbon_long_name(f"regional integral of {nee.name or 'NEE'}"),
        cell_methods=f"area: sum where land {time_method}",
        comment="positive = net flux to the atmosphere (source)",
    )


def _grid_of(ds: xr.Dataset, path: Path) -> tuple[xr.Dataset, Grid]:
    """Normalise 0..360 longitudes, then the dataset's grid."""
    if "lon" in ds.coords:
        ds = ds.assign_coords(lon=normalise_lon(ds["lon"].values)).sortby("lon")
    return ds, Grid.from_dataset(ds, path)


def _land_fraction(ds: xr.Dataset, input: Path, grid: Grid) -> tuple[xr.DataArray, str]:
    """Land fraction and where it came from: the input, else the canonical grid.nc beside it,
    else the country polygons (so that a coastal region never counts the ocean around it).
    """
    if "land_fraction" in ds:
        return ds["land_fraction"], f"land_fraction of {input.name}"
    sibling = input.parent / "grid.nc"
    if sibling.exists() and sibling != input:
        grid_ds, sibling_grid = _grid_of(open_netcdf(sibling), sibling)
        if "land_fraction" in grid_ds and sibling_grid.same_as(grid):
            land = grid_ds["land_fraction"].assign_coords(ds[["lat", "lon"]].coords)
            return land, f"land_fraction of {sibling}"
    from fluxbridge.geo.regions import polygon_land_fraction

    land = polygon_land_fraction(grid).assign_coords(ds[["lat", "lon"]].coords)
    return land, "share of each cell inside the country polygons (no land fraction given)"


def run_integrate(input: Path, variable: str, regions: str, out: Path) -> int:
    """``invoke integrate``: (region, time) integrals in PgC month-1, GLOBAL included.

    ``regions`` is "reccap2" or a mask file (NetCDF on the input's grid, or a
    vector file). Refuses an existing ``out``; writes atomically.
    """
    input, out = Path(input), Path(out)
    if out.exists():
        raise FluxbridgeError(f"{out} exists; refusing to overwrite it (remove it or pick --out)")
    from fluxbridge.geo.regions import reccap2, regions_from_file

    ds, grid = _grid_of(open_netcdf(input), input)
    if variable not in ds:
        raise SchemaError(input, variable, f"not in file (variables: {sorted(map(str, ds))})")
    nee = ds[variable]
    if not units_match(nee.attrs.get("units"), NEE_UNITS):
        raise SchemaError(
            input, variable, f"units {nee.attrs.get('units')!r}, expected {NEE_UNITS!r}"
        )
    if not {"time", "lat", "lon"} <= set(nee.dims):
        raise SchemaError(input, variable, f"dims {nee.dims} must include time, lat, lon")
    if not np.issubdtype(nee["time"].dtype, np.datetime64):
        raise SchemaError(input, "time", "must decode to datetimes (standard calendar)")

    land, land_source = _land_fraction(ds, input, grid)
    if regions == "reccap2":
        region_set = reccap2(grid, land)
    else:
        mask_path = Path(regions)
        if mask_path.suffix.lower() in {".nc", ".nc4", ".cdf", ".netcdf"}:
            _, mask_grid = _grid_of(open_netcdf(mask_path), mask_path)
            if not mask_grid.same_as(grid):
                raise SchemaError(
                    mask_path,
                    "lat/lon",
                    f"mask grid {_describe(mask_grid)} differs from the grid of {input} "
                    f"{_describe(grid)}; regrid the mask to the input grid first",
                )
        region_set = regions_from_file(mask_path, grid)
    fraction = region_set.fraction.assign_coords(lat=ds["lat"], lon=ds["lon"])
    cell_area = grid.cell_area().assign_coords(lat=ds["lat"], lon=ds["lon"])

    integral = regional_integral_pgc(nee, cell_area, land, fraction, include_global=True)
    area = region_land_area_m2(cell_area, land, fraction)
    names = [*region_set.names, "global land"]
    result = xr.Dataset(
        {
            variable: integral,
            "region_name": ("region", np.array(names, dtype=object)),
            "region_land_area": (
                "region",
                np.append(area.values, float((cell_area * land).sum())),
                area.attrs,
            ),
        }
    )
    result["region"].attrs.update(long_name="region abbreviation")
    result.attrs["land_fraction_source"] = land_source
    write_netcdf(
        result,
        out,
        action=f"invoke integrate --input {input} --variable {variable} --regions {regions}",
    )
    return 0


def _describe(grid: Grid) -> str:
    dlat, dlon = grid.resolution
    return (
        f"({grid.shape[0]}×{grid.shape[1]}, {dlat:g}°×{dlon:g}°, "
        f"lat {grid.lat_bounds[0]:g}..{grid.lat_bounds[-1]:g}, "
        f"lon {grid.lon_bounds[0]:g}..{grid.lon_bounds[-1]:g})"
    )
