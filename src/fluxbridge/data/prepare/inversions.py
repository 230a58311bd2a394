"""inversions.nc and reference.nc: gridded fluxes on the canonical grid as NEE.

Inversion member NEE = regridded land flux − fire (GFAS) + lateral-flux
adjustment, all in gC m-2 d-1, positive = source. The lateral adjustment of
region r, A_r in PgC yr-1, is spread evenly over the region's land:

    adj[cell, month] = Σ_r region_fraction[r, cell] · A_r · 1e15 / (L_r · days_in_year)

with L_r = Σ cell_area · land_fraction · region_fraction[r] (m²), so the year's
regional integral of the adjustment is exactly A_r (``GLOBAL`` uses all land).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.data.canonical import NEE_UNITS, carbon_long_name
from fluxbridge.data.prepare.config import GLOBAL_KEY, FireConfig, LateralFluxes
from fluxbridge.data.prepare.inputs import Input
from fluxbridge.data.prepare.mappings import GriddedProduct
from fluxbridge.data.prepare.products import (
    extract_member,
    product_files,
    read_monthly,
    select_months,
    to_grid,
)
from fluxbridge.errors import SchemaError
from fluxbridge.geo.grid import Grid
from fluxbridge.plausibility import FILLED_ATTR
from fluxbridge.schema import GRAMS_PER_PETAGRAM

log = logging.getLogger(__name__)
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d{2}(?!\d)")


def member_nee(
    item: Input,
    mapping: GriddedProduct,
    product_name: str,
    months: pd.DatetimeIndex,
    grid: Grid,
    land: xr.DataArray,
    scratch: Path,
    allow_implausible: bool = False,
) -> xr.Dataset:
    """One inversion member's monthly NEE (before fire and lateral terms) on ``grid``."""
    if mapping.member_dim is not None:
        files = [
            extract_member(f, mapping, product_name, scratch / f"{product_name}_{f.stem}.nc")
            for f in product_files(item, mapping)
        ]
    else:
        files = product_files(item, mapping, product_name)
    da = read_monthly(files, mapping)
    da = select_months(da, months, f"{item.path} ({mapping.product}: {product_name})")
    out = to_grid(da, grid, land, mapping.spread_over, product_name, allow_implausible)
    return out.to_dataset(name="nee")


def fire_field(
    item: Input,
    mapping: GriddedProduct,
    cfg: FireConfig,
    months: pd.DatetimeIndex,
    grid: Grid,
    land: xr.DataArray,
    allow_implausible: bool = False,
) -> xr.Dataset:
    """Monthly fire CO2 emissions (gC m-2 d-1, + = source) on ``grid`` for ``months``."""
    files = _files_for_years(product_files(item, mapping), {m.year for m in months})
    da = read_monthly(files, mapping, grid)
    da = da.sel(time=da["time"].isin(months))
    da = to_grid(da, grid, land, mapping.spread_over, mapping.product, allow_implausible)
    have = pd.DatetimeIndex(da["time"].values)
    lacking = months.difference(have)
    if lacking.size and cfg.fill == "climatology":
        if have.size == 0:
            raise SchemaError(item.path, "time", "fire product covers none of the months")
        clim = da.groupby("time.month").mean("time")
        log.warning(
            "%s: %d month(s) without fire data (%s..%s) filled with the %d-%d monthly climatology",
            mapping.product,
            lacking.size,
            f"{lacking[0]:%Y-%m}",
            f"{lacking[-1]:%Y-%m}",
            have[0].year,
            have[-1].year,
        )
        filled = clim.sel(month=xr.DataArray(lacking.month, dims="time")).drop_vars("month")
        da = xr.concat([da, filled.assign_coords(time=lacking)], dim="time").sortby("time")
    da = select_months(da, months, f"{item.path} ({mapping.product})")
    return da.assign_attrs(long_name="fire CO2 emissions (positive = source)").to_dataset(
        name="fire"
    )


def _files_for_years(files: list[Path], years: set[int]) -> list[Path]:
    """Skip files whose name carries only years outside ``years`` (GFAS: one 0.1° file a year)."""
    keep = []
    for f in files:
        named = {int(y) for y in _YEAR.findall(f.name)}
        if not named or named & years:
            keep.append(f)
    return keep


def lateral_field(
    lateral: LateralFluxes,
    months: pd.DatetimeIndex,
    grid: Grid,
    land: xr.DataArray,
    region_fraction: xr.DataArray,
) -> xr.DataArray:
    """The lateral-flux NEE adjustment (time, lat, lon) in gC m-2 d-1 (see the module docstring)."""
    land_area = (grid.cell_area() * land).values
    per_day_year = np.zeros(grid.shape)  # gC m-2 per year, summed over regions
    abbrs = [str(a) for a in region_fraction["region"].values]
    for abbr, pgc in lateral.pgc_per_year.items():
        share = (
            (land.values > 0).astype(float)
            if abbr == GLOBAL_KEY
            else (region_fraction.values[abbrs.index(abbr)])
        )
        area = float((land_area * share).sum())
        if area <= 0:
            raise SchemaError("lateral_fluxes", abbr, "region has no land on this grid")
        per_day_year += share * pgc * GRAMS_PER_PETAGRAM / area
    days = np.where(months.is_leap_year, 366.0, 365.0)
    values = per_day_year[None] / days[:, None, None]
    return xr.DataArray(
        values, dims=("time", "lat", "lon"), coords={"time": months, **grid.coords()}
    )


def ensemble(
    members: dict[str, Path],
    fire: Path | None,
    lateral: xr.DataArray | None,
    land: xr.DataArray,
) -> xr.Dataset:
    """inversions.nc: members stacked, fire subtracted, lateral adjustment added."""
    fields = [xr.open_dataset(p, engine="h5netcdf")["nee"].load() for p in members.values()]
    filled = {
        name: float(f.attrs.get(FILLED_ATTR, 0.0)) for name, f in zip(members, fields, strict=True)
    }
    stack = xr.concat(fields, dim=xr.DataArray(list(members), dims="member", name="member"))
    comments = ["regridded conservatively"]
    if fire is not None:
        fire_field = xr.open_dataset(fire, engine="h5netcdf")["fire"].load()
        filled["fire"] = float(fire_field.attrs.get(FILLED_ATTR, 0.0))
        stack = stack - fire_field
        comments.append("fire (GFAS) subtracted per cell")
    if lateral is not None:
        stack = stack + lateral
        comments.append("lateral-flux adjustment added per region")
    nee = stack.where(land > 0).transpose("member", "time", "lat", "lon").astype(np.float32)
    nee.attrs = {
        "units": NEE_UNITS,
        "cell_methods": "time: mean",
        "long_name": carbon_long_name("inversion net ecosystem exchange (positive = source)"),
        "comment": "; ".join(comments),
    }
    ds = nee.to_dataset(name="nee")
    ds["member"] = ds["member"].astype(object)
    ds.attrs[FILLED_ATTR] = json.dumps(filled)
    return ds


def reference(
    item: Input,
    mapping: GriddedProduct,
    months: pd.DatetimeIndex,
    grid: Grid,
    land: xr.DataArray,
    allow_implausible: bool = False,
) -> xr.Dataset:
    """reference.nc: FLUXCOM RS+METEO monthly NEE on ``grid``."""
    da = read_monthly(product_files(item, mapping), mapping)
    da = select_months(da, months, f"{item.path} ({mapping.product})")
    out = to_grid(da, grid, land, mapping.spread_over, mapping.product, allow_implausible)
    long_name = carbon_long_name(f"reference NEE, {mapping.product}")
    return out.assign_attrs(long_name=long_name).to_dataset(name="nee")
