"""ERA5 single levels as the Climate Data Store distributes them → daily Tair, Rg, precipitation.

Layouts read (detected from the file, not configured):

* **CDS NetCDF4** (CDS since 2024): dims ``valid_time, latitude, longitude``;
  ``number`` and ``expver`` as coordinates (dropped);
* **legacy CDS NetCDF**: dims ``time, latitude, longitude``, values packed as
  int16 with ``scale_factor``/``add_offset``, and an ``expver`` dimension when
  the request mixed ERA5 and ERA5T (the first non-missing expver is kept);
* **GRIB** (cfgrib + ecCodes): instantaneous fields as ``time`` (+ scalar
  ``step``), accumulated fields as ``time × step`` forecasts; both are put on
  their validity time. No index file is written beside the data.

Two products (``Era5Product.layout``):

* ``hourly`` — *ERA5 hourly data on single levels*. ``t2m`` is instantaneous:
  Tair(day D) = mean of the 24 values stamped D 00:00 … D 23:00 UTC.
  ``ssrd`` and ``tp`` are accumulations over the **hour ending at the stamp**
  (the CDS convention for ERA5, including its GRIB, where a message's
  ``startStep`` = ``endStep`` − 1 h). The total of day D is the sum of the 24
  values stamped D 01:00 … D+1 00:00: the value stamped 00 UTC holds 23–24 UTC
  of the *previous* day. GRIB fields accumulated from the forecast start
  (``startStep`` = 0, as in ERA-Interim and MARS forecasts) are differenced
  along ``step`` first.
* ``daily_mean`` — *ERA5 post-processed daily statistics on single levels*
  with statistic ``daily_mean`` at 1-hourly frequency, UTC: Tair = the day's
  value; Rg and precipitation = 24 × the daily mean of the hourly accumulations.
  That product averages the values *stamped* 00–23 UTC, so its accumulated
  days run 23 UTC → 23 UTC (one hour earlier than ``hourly``); we take it as is.

Units: t2m K → Tair °C; ssrd J m-2 → Rg MJ m-2 d-1; tp m (of water) →
precipitation mm d-1. Regridding to the canonical grid is first-order
conservative (:func:`fluxbridge.geo.regrid.regrid_conservative`), one block of
days at a time, so memory stays bounded for global 0.25° hourly files.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.errors import SchemaError
from fluxbridge.geo.grid import Grid
from fluxbridge.geo.regrid import regrid_conservative

log = logging.getLogger(__name__)

KELVIN = 273.15
HOUR = pd.Timedelta(hours=1)
BLOCK_BYTES = 256 * 2**20  # raw hourly values (float64) held at once per variable

Role = Literal["tair", "rg", "precip"]
#: Canonical quantity → (units, long_name) of the daily output.
OUTPUT: dict[str, tuple[str, str]] = {
    "tair": ("degC", "daily mean 2 m air temperature"),
    "rg": ("MJ m-2 d-1", "daily surface solar radiation downwards (global radiation)"),
    "precip": ("mm d-1", "daily total precipitation"),
}


@dataclass(frozen=True)
class Era5Variable:
    """One ERA5 variable: its short name in the files and the unit spellings accepted."""

    variable: str
    units: list[str]


@dataclass(frozen=True)
class Era5Product:
    """How an ERA5 download is read: the product (``layout``) and its three variables."""

    layout: Literal["hourly", "daily_mean"] = "hourly"
    tair: Era5Variable = field(default_factory=lambda: Era5Variable("t2m", ["K"]))
    rg: Era5Variable = field(default_factory=lambda: Era5Variable("ssrd", ["J m**-2", "J m-2"]))
    precip: Era5Variable = field(default_factory=lambda: Era5Variable("tp", ["m"]))


# ---------------------------------------------------------------- opening


def _is_grib(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"GRIB"


def _open_netcdf_variable(path: Path, spec: Era5Variable) -> xr.DataArray | None:
    """The variable, or None when the file does not hold it (the CDS splits by step type)."""
    try:
        ds = xr.open_dataset(path, chunks={}, decode_timedelta=False)
    except Exception as exc:  # any backend failure: name the file
        raise SchemaError(path, None, f"not a readable NetCDF file ({exc})") from exc
    if spec.variable not in ds.variables:
        return None
    da = ds[spec.variable]
    if "valid_time" in da.dims:
        da = da.rename(valid_time="time")
    if "expver" in da.dims:  # legacy ERA5 + ERA5T download: one of the two holds each hour
        da = da.isel(expver=0).combine_first(da.isel(expver=1))
    return da


def _grib_messages(path: Path, short_name: str) -> pd.DataFrame:
    """Header of every message of ``short_name``: validity time, step range, step type."""
    import eccodes  # only needed for GRIB input

    rows = []
    with open(path, "rb") as fh:
        while (gid := eccodes.codes_grib_new_from_file(fh)) is not None:
            try:
                if eccodes.codes_get(gid, "cfVarName") != short_name:
                    continue
                date = eccodes.codes_get(gid, "validityDate")
                hhmm = eccodes.codes_get(gid, "validityTime")
                rows.append(
                    {
                        "valid_time": pd.Timestamp(
                            f"{date:08d}{hhmm // 100:02d}{hhmm % 100:02d}", tz=None
                        ),
                        "start": int(eccodes.codes_get(gid, "startStep")),
                        "end": int(eccodes.codes_get(gid, "endStep")),
                        "step_type": eccodes.codes_get(gid, "stepType"),
                    }
                )
            finally:
                eccodes.codes_release(gid)
    return pd.DataFrame(rows)


def _open_grib_variable(path: Path, spec: Era5Variable) -> xr.DataArray | None:
    """The variable on validity time, or None when no message holds it."""
    messages = _grib_messages(path, spec.variable)
    if messages.empty:
        return None
    try:
        ds = xr.open_dataset(
            path,
            engine="cfgrib",
            chunks={},
            decode_timedelta=True,
            backend_kwargs={"filter_by_keys": {"cfVarName": spec.variable}, "indexpath": ""},
        )
    except Exception as exc:
        raise SchemaError(path, spec.variable, f"cfgrib cannot read it ({exc})") from exc
    da = ds[spec.variable]
    accumulated = (messages["step_type"] == "accum").all()
    if accumulated and "step" in da.dims:
        if (messages["start"] == 0).all() and (messages["end"] > 1).any():
            # Accumulated from the forecast start: hourly amounts are step differences
            # (steps must then run 1, 2, 3, … h so that each difference is one hour).
            steps = np.sort(messages["end"].unique())
            if not np.array_equal(steps, np.arange(1, steps.size + 1)):
                raise SchemaError(
                    path, spec.variable, f"forecast steps {steps.tolist()} are not 1, 2, 3, … h"
                )
            first = da.isel(step=slice(0, 1))
            da = xr.concat([first, da.diff("step", label="upper")], dim="step")
        elif not (messages["end"] - messages["start"] == 1).all():
            ranges = sorted(set(zip(messages["start"], messages["end"], strict=True)))
            raise SchemaError(
                path,
                spec.variable,
                "accumulation periods are neither one hour nor from the forecast start "
                f"(step ranges {ranges[:4]}…)",
            )
    elif accumulated and (messages["end"] - messages["start"] != 1).any():
        raise SchemaError(path, spec.variable, "accumulations over more than one hour")
    valid = da["valid_time"]
    if "step" in da.dims:
        stacked = [d for d in ("time", "step") if d in da.dims]
        da = da.stack(stamp=stacked)
        stamps = pd.DatetimeIndex(valid.stack(stamp=stacked).values)
        da = da.drop_vars(["stamp", "time", "step", "valid_time"], errors="ignore")
        da = da.assign_coords(stamp=stamps).rename(stamp="time")
        # cfgrib fills (time, step) pairs without a message with NaN: keep those it has.
        present = pd.DatetimeIndex(messages["valid_time"]).unique()
        da = da.isel(time=np.flatnonzero(stamps.isin(present)))
    else:
        if "time" not in da.dims:
            da = da.expand_dims("time")
        times = np.atleast_1d(valid.values)
        da = da.drop_vars(["time", "step", "valid_time"], errors="ignore")
        da = da.assign_coords(time=pd.DatetimeIndex(times))
    return da


def open_era5_variable(paths: Sequence[Path], spec: Era5Variable) -> xr.DataArray:
    """One ERA5 variable from ``paths`` as a lazy (time, lat, lon) array on validity time.

    Files without the variable are skipped (a download may be split by variable or,
    as the CDS does for NetCDF, by step type); files with it are concatenated in
    time order, and a stamp present in two files is read from the first.
    ``lat``/``lon`` are as distributed (lat descending, lon 0..360 for the CDS).
    Units must be one of ``spec.units``.
    """
    if not paths:
        raise SchemaError("(no files)", spec.variable, "no ERA5 file given")
    pieces = []
    for path in map(Path, paths):
        da = (
            _open_grib_variable(path, spec) if _is_grib(path) else _open_netcdf_variable(path, spec)
        )
        if da is None:
            continue
        units = da.attrs.get("units", da.attrs.get("GRIB_units"))
        if units not in spec.units:
            raise SchemaError(path, spec.variable, f"units {units!r}, expected one of {spec.units}")
        da = da.rename(
            {k: v for k, v in {"latitude": "lat", "longitude": "lon"}.items() if k in da.dims}
        )
        for dim in ("time", "lat", "lon"):
            if dim not in da.dims:
                raise SchemaError(path, spec.variable, f"no {dim} dimension (dims {da.dims})")
        keep = [c for c in da.coords if c in ("time", "lat", "lon")]
        da = da.reset_coords([c for c in da.coords if c not in keep], drop=True)
        pieces.append(
            da.transpose("time", "lat", "lon").assign_attrs(units=units, source=str(path))
        )
    if not pieces:
        names = ", ".join(Path(p).name for p in paths)
        raise SchemaError(Path(paths[0]).parent, spec.variable, f"in none of the files ({names})")
    da = xr.concat(pieces, dim="time", join="exact", combine_attrs="drop_conflicts")
    index = pd.DatetimeIndex(da["time"].values)
    first = ~index.duplicated(keep="first")
    order = np.argsort(index[first], kind="stable")
    return da.isel(time=np.flatnonzero(first)[order])


# ---------------------------------------------------------------- daily aggregation


def _hourly_block(
    da: xr.DataArray, stamps: pd.DatetimeIndex, what: str, allow_short_end: bool
) -> np.ndarray:
    """Values at the hourly ``stamps`` (24 per day) as (day, 24, lat, lon) float64.

    Every stamp must be present, except (``allow_short_end``) the last stamp of
    the block, which is then filled with the day's mean of the other 23 (logged).
    """
    index = pd.DatetimeIndex(da["time"].values)
    missing = stamps.difference(index)
    if missing.size and not (allow_short_end and missing.size == 1 and missing[0] == stamps[-1]):
        raise SchemaError(
            da.attrs.get("source", "ERA5 files"),
            da.name,
            f"{what}: {missing.size} hourly value(s) missing, first {missing[0]:%Y-%m-%d %H:%M} "
            "UTC (request every hour of the year, and 00 UTC of 1 January of the next year)",
        )
    have = stamps.isin(index)
    values = np.full((stamps.size, da.sizes["lat"], da.sizes["lon"]), np.nan)
    values[have] = da.sel(time=stamps[have]).values
    values = values.reshape(-1, 24, *values.shape[1:])
    if missing.size:
        log.warning(
            "%s: %s stamped %s missing; that day's total is 24 × the mean of its other 23 hours",
            da.attrs.get("source", "ERA5"),
            da.name,
            f"{missing[0]:%Y-%m-%d %H:%M}",
        )
        values[-1, -1] = np.nanmean(values[-1, :-1], axis=0)
    return values


def daily_values(
    da: xr.DataArray, days: pd.DatetimeIndex, role: Role, layout: str, last_day_short: bool
) -> np.ndarray:
    """(day, lat, lon) daily values of ``role`` in output units (:data:`OUTPUT`).

    ``last_day_short``: the last of ``days`` may lack its final hourly accumulation
    (the end of the record: no 00 UTC of the next day).
    """
    if layout == "daily_mean":
        index = pd.DatetimeIndex(da["time"].values).normalize()
        missing = days.difference(index)
        if missing.size:
            raise SchemaError(
                da.attrs.get("source", "ERA5 files"),
                da.name,
                f"daily statistics: {missing.size} day(s) missing, first {missing[0]:%Y-%m-%d}",
            )
        values = da.isel(time=index.get_indexer(days)).values.astype(np.float64)
        hourly_to_day = 24.0
    elif role == "tair":
        stamps = pd.DatetimeIndex(
            (days.values[:, None] + np.arange(24) * HOUR.to_timedelta64()).ravel()
        )
        values = _hourly_block(da, stamps, "instantaneous", False).mean(axis=1)
        hourly_to_day = 1.0
    else:
        # Accumulations end at the stamp: day D is D 01:00 … D+1 00:00.
        stamps = pd.DatetimeIndex(
            (days.values[:, None] + np.arange(1, 25) * HOUR.to_timedelta64()).ravel()
        )
        values = _hourly_block(da, stamps, "accumulated", last_day_short).sum(axis=1)
        hourly_to_day = 1.0
    if role == "tair":
        return values - KELVIN
    if role == "rg":
        return values * hourly_to_day / 1e6  # J m-2 → MJ m-2
    return values * hourly_to_day * 1e3  # m → mm


def _block_days(da: xr.DataArray, layout: str) -> int:
    """Days per block so that the raw values of one block stay under :data:`BLOCK_BYTES`."""
    per_day = (25 if layout == "hourly" else 1) * 8 * da.sizes["lat"] * da.sizes["lon"]
    return max(1, BLOCK_BYTES // per_day)


def era5_daily(
    paths: Sequence[Path],
    product: Era5Product,
    days: pd.DatetimeIndex,
    grid: Grid,
    cells: tuple[np.ndarray, np.ndarray] | None = None,
    *,
    last_day_short: bool = False,
) -> xr.Dataset:
    """Daily ``tair`` (°C), ``rg`` (MJ m-2 d-1, ≥ 0) and ``precip`` (mm d-1, ≥ 0) on ``grid``.

    ``paths`` must hold every hour the days need (for ``hourly``: 00 UTC of the
    first day to 00 UTC of the day after the last); ``last_day_short`` lets the
    last day lack that final stamp. With ``cells`` = (ilat, ilon) the result is
    (time, cell) at those canonical cells, else (time, lat, lon). float32.
    """
    data = {}
    for role in ("tair", "rg", "precip"):
        spec: Era5Variable = getattr(product, role)
        da = open_era5_variable(paths, spec)
        step = _block_days(da, product.layout)
        blocks = []
        for start in range(0, days.size, step):
            block_days = days[start : start + step]
            values = daily_values(
                da,
                block_days,
                role,  # type: ignore[arg-type]
                product.layout,
                last_day_short and start + step >= days.size,
            )
            if role != "tair":
                values = np.maximum(values, 0.0)  # packing and GRIB rounding give -1e-9
            src = xr.DataArray(
                values,
                dims=("time", "lat", "lon"),
                coords={"lat": da["lat"].values, "lon": da["lon"].values},
            )
            out = regrid_conservative(src, grid).values
            if cells is not None:
                out = out[:, cells[0], cells[1]]
            blocks.append(out.astype(np.float32))
        units, long_name = OUTPUT[role]
        dims = ("time", "cell") if cells is not None else ("time", "lat", "lon")
        data[role] = (dims, np.concatenate(blocks), {"units": units, "long_name": long_name})
    coords: dict[str, object] = {"time": days}
    if cells is None:
        coords.update(grid.coords())
    return xr.Dataset(data, coords=coords)
