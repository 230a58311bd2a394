"""Gridded flux products → monthly NEE on the canonical grid (gC m-2 d-1, + = source).

Monthly products go through :func:`fluxbridge.data.gridded.read_gridded` (units,
sign, calendar, grid orientation), one file at a time; daily products (GFAS)
are averaged to calendar months here, a month at a time, so that a 0.1° daily
year never has to fit in memory. Everything is then regridded conservatively
(:func:`fluxbridge.geo.regrid.regrid_conservative`) twelve months at a time.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cftime
import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.data.canonical import NEE_UNITS, carbon_long_name
from fluxbridge.data.gridded import open_product, read_gridded
from fluxbridge.data.prepare.inputs import Input
from fluxbridge.data.prepare.mappings import GriddedProduct
from fluxbridge.data.units import to_canonical
from fluxbridge.errors import ConfigError, SchemaError
from fluxbridge.geo.grid import Grid
from fluxbridge.geo.regrid import regrid_conservative
from fluxbridge.plausibility import FILLED_ATTR, check_gap_share

log = logging.getLogger(__name__)

MONTHS_PER_BLOCK = 12
BLOCK_BYTES = 256 * 2**20  # per dask chunk of a daily product


def product_files(item: Input, mapping: GriddedProduct, member: str | None = None) -> list[Path]:
    """The files of ``item`` matching the mapping's glob (``{member}`` filled in)."""
    if item.path.is_file():
        return [item.path]
    pattern = mapping.files.replace("{member}", member or "*") or "*"
    files = sorted(item.path.glob(pattern))
    if not files:
        raise SchemaError(item.path, None, f"no file matches {pattern!r} ({mapping.product})")
    return files


def extract_member(path: Path, mapping: GriddedProduct, member: str, scratch: Path) -> Path:
    """Write one member of a multi-member file to ``scratch`` (raw values, time undecoded)."""
    if scratch.exists():
        return scratch
    ds = open_product(path)
    dim = mapping.member_dim
    var = mapping.read.variable
    if var not in ds.variables or dim not in ds[var].dims:
        raise SchemaError(path, var, f"expected a variable with member dimension {dim!r}")
    if mapping.member_names_variable is not None:
        names = [_text(v) for v in ds[mapping.member_names_variable].values]
    else:
        names = [str(v) for v in ds[dim].values]
    if member not in names:
        raise SchemaError(
            path,
            mapping.member_names_variable or dim,
            f"no member {member!r}; the file has {names}",
        )
    keep = [v for v in ds.variables if dim not in ds[v].dims or v == var]
    one = ds[keep].isel({dim: names.index(member)}, drop=True)
    scratch.parent.mkdir(parents=True, exist_ok=True)
    tmp = scratch.with_suffix(".tmp")
    one.to_netcdf(tmp, engine="h5netcdf")
    tmp.replace(scratch)
    return scratch


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode().strip()
    if isinstance(value, np.ndarray):  # char arrays
        return b"".join(value.astype("S1")).decode().strip()
    return str(value).strip()


def read_monthly(
    files: list[Path], mapping: GriddedProduct, grid: Grid | None = None
) -> xr.DataArray:
    """Monthly canonical NEE from one or more files (concatenated in time).

    Monthly products stay on their own grid. Daily products are averaged a month
    at a time and, with ``grid``, each monthly mean is regridded at once, so
    that years of a 0.1° product never sit in memory together.
    """
    if mapping.time_step == "daily":
        parts = [_daily_to_monthly(f, mapping, grid) for f in files]
    else:
        parts = [read_gridded(f, mapping.read) for f in files]
    da = xr.concat(parts, dim="time") if len(parts) > 1 else parts[0]
    times = pd.DatetimeIndex(da["time"].values)
    if not times.is_unique:
        raise SchemaError(
            files[0].parent,
            "time",
            f"month {times[times.duplicated()][0]:%Y-%m} appears in two files",
        )
    return da.sortby("time")


def _daily_to_monthly(path: Path, mapping: GriddedProduct, grid: Grid | None) -> xr.DataArray:
    """Monthly means of a daily product, one month in memory at a time."""
    m = mapping.read
    probe = open_product(path)
    if m.variable in probe.variables:
        per_day = probe[m.variable].dtype.itemsize * probe[m.variable][{m.time_name: 0}].size
        days = max(1, BLOCK_BYTES // per_day)
    else:
        days = 1
    ds = open_product(path, {m.time_name: days})
    if m.variable not in ds.variables:
        raise SchemaError(
            path, m.variable, f"missing variable; the file has {sorted(map(str, ds))}"
        )
    da = ds[m.variable].rename({m.time_name: "time", m.lat_name: "lat", m.lon_name: "lon"})
    extra = [d for d in da.dims if d not in ("time", "lat", "lon")]
    da = da.squeeze(extra, drop=True).transpose("time", "lat", "lon")
    if m.fill_value is not None:
        da = da.where(da != m.fill_value)
    tvar = ds[m.time_name]
    units = m.time_units or tvar.attrs.get("units")
    calendar = m.calendar or tvar.attrs.get("calendar", "standard")
    try:
        dates = cftime.num2date(
            np.asarray(tvar.values, np.float64), units, calendar, only_use_cftime_datetimes=True
        )
    except (ValueError, TypeError) as exc:
        raise SchemaError(path, m.time_name, f"cannot decode units {units!r}: {exc}") from exc
    month = np.array([d.year * 12 + d.month - 1 for d in dates])
    means = []
    for index in np.unique(month):
        days = da.isel(time=np.flatnonzero(month == index))
        mean = days.mean("time").compute()
        if grid is not None:
            mean = regrid_conservative(mean, grid)
        means.append(
            mean.expand_dims(time=[pd.Timestamp(int(index) // 12, int(index) % 12 + 1, 1)])
        )
    monthly = xr.concat(means, dim="time")
    monthly.attrs = dict(da.attrs)
    try:
        out = to_canonical(monthly, m.units, sign=m.sign)
    except ConfigError as exc:
        raise SchemaError(path, m.variable, str(exc)) from exc
    return out


def select_months(
    da: xr.DataArray, months: pd.DatetimeIndex, what: str, *, allow_gaps: bool = False
) -> xr.DataArray:
    """``da`` on exactly ``months``; a month it lacks is an error unless ``allow_gaps`` (NaN)."""
    have = pd.DatetimeIndex(da["time"].values)
    lacking = months.difference(have)
    if lacking.size and not allow_gaps:
        span = f"{have[0]:%Y-%m}..{have[-1]:%Y-%m}" if have.size else "nothing"
        raise SchemaError(
            what,
            "time",
            f"covers {span} but the config needs {months[0]:%Y-%m}..{months[-1]:%Y-%m}; "
            f"{lacking.size} month(s) missing, first {lacking[0]:%Y-%m}",
        )
    return da.reindex(time=months)


def to_grid(
    da: xr.DataArray,
    grid: Grid,
    land_fraction: xr.DataArray,
    spread_over: str,
    what: str,
    allow_implausible: bool = False,
) -> xr.DataArray:
    """Regrid monthly NEE to ``grid`` in blocks; per-cell-area fluxes become per land area.

    Land cells the product leaves without a value (coastline mismatch, NaN
    pixels) are set to 0 and logged with their share of the land area; a share
    above :data:`fluxbridge.plausibility.MAX_GAP_SHARE` (an empty or misread
    product, which 0 would turn into a flux) is refused unless ``allow_implausible``.
    """
    blocks = []
    for start in range(0, da.sizes["time"], MONTHS_PER_BLOCK):
        block = da.isel(time=slice(start, start + MONTHS_PER_BLOCK)).load()
        blocks.append(regrid_conservative(block, grid))
    out = xr.concat(blocks, dim="time")
    land = land_fraction.values > 0
    if spread_over == "cell":
        out = (out / land_fraction.where(land)).where(land)
    gaps = np.isnan(out.values) & land
    share = 0.0
    if gaps.any():
        area = (grid.cell_area() * land_fraction).values
        share = float((gaps * area).sum() / (area.sum() * out.sizes["time"]))
        check_gap_share(what, share, allow_implausible)
        log.warning("%s: %.3g%% of land cell-months have no value; set to 0", what, 100 * share)
        out = out.where(~gaps, 0.0)
    out = out.where(land).astype(np.float32)
    out.attrs = {
        "units": NEE_UNITS,
        "long_name": carbon_long_name("net ecosystem exchange (positive = source)"),
        "cell_methods": "time: mean area: mean where land",
        FILLED_ATTR: share,
    }
    return out
