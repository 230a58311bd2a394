"""Reading a monthly gridded carbon-flux product (inversion, FLUXCOM, TRENDY-like, GFAS).

Any CF NetCDF file is described by a :class:`ProductMapping` (variable, units
override, sign, coordinate names, fill value, calendar overrides, optional land
fraction). :func:`read_gridded` returns a lazily loaded (dask) DataArray
``(time, lat, lon)`` in gC m-2 d-1, positive = source, with ascending latitude,
longitude in [-180, 180) and ``time`` the month starts (YYYY-MM-01) of the
standard calendar.

Calendar handling: every time stamp (the midpoint of its ``bounds`` when the
file has them) is decoded in the file's own calendar (``360_day``, ``noleap``,
``julian``, ...) or, for ``months since REF`` units, counted in whole months from
REF; stamp *i* then maps to the month start of its (year, month). Flux rates are
kept as they are; per-month or per-year totals are turned into rates with the
length of that month or year in the *file's* calendar (30 days in a 360_day
file) before the mapping, because the product's total was accumulated over its
own month.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cftime
import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.data.canonical import NEE_UNITS, carbon_long_name, units_match
from fluxbridge.data.units import check_sign, to_canonical
from fluxbridge.errors import ConfigError, SchemaError
from fluxbridge.geo.grid import Grid, normalise_lon
from fluxbridge.io import open_netcdf

log = logging.getLogger(__name__)

_MONTHS_SINCE = re.compile(r"^\s*months?\s+since\s+(?P<year>-?\d{1,4})-(?P<month>\d{1,2})")


@dataclass(frozen=True)
class ProductMapping:
    """How to read one flux variable of a gridded product.

    Attributes
    ----------
    variable : name of the flux variable in the file.
    units : units string overriding the file's (wrong or missing) ``units`` attribute.
    sign : ``source_positive`` (NEE-like) or ``sink_positive`` (NBP-like, flipped on read).
    time_name, lat_name, lon_name : coordinate names in the file.
    time_units, calendar : overrides of the time coordinate's ``units``/``calendar``.
    fill_value : a missing-data marker not declared as ``_FillValue`` (masked to NaN).
    land_fraction_variable : optional (lat, lon) land fraction (0..1) in the same
        file; cells without land become NaN.
    area_basis : ``land`` when the flux is per m² of land (the canonical basis),
        ``cell`` when a land flux is spread over the whole cell (per m² of cell,
        or a per-cell total); ``cell`` divides by the land fraction and needs
        ``land_fraction_variable``.
    allow_missing_months : insert NaN months for gaps (logged) instead of failing.
    """

    variable: str
    units: str | None = None
    sign: Literal["source_positive", "sink_positive"] = "source_positive"
    time_name: str = "time"
    lat_name: str = "lat"
    lon_name: str = "lon"
    time_units: str | None = None
    calendar: str | None = None
    fill_value: float | None = None
    land_fraction_variable: str | None = None
    area_basis: Literal["land", "cell"] = "land"
    allow_missing_months: bool = False

    def __post_init__(self) -> None:
        check_sign(self.sign)
        if self.area_basis not in ("land", "cell"):
            raise ConfigError(f"area_basis {self.area_basis!r}: expected 'land' or 'cell'")
        if self.area_basis == "cell" and self.land_fraction_variable is None:
            raise ConfigError("area_basis 'cell' needs land_fraction_variable")


def open_product(path: str | Path, chunks: dict[str, int] | None = None) -> xr.Dataset:
    """Open a NetCDF4/HDF5 file (h5netcdf) or, failing that, a NetCDF3 classic file (scipy).

    Times are left undecoded (decoded per product by :func:`read_gridded`).
    Unreadable files raise :class:`SchemaError` naming the file.
    """
    path = Path(path)
    kwargs = {"decode_times": False, "chunks": chunks if chunks is not None else {}}
    try:
        return open_netcdf(path, **kwargs)
    except SchemaError as first:
        if not path.exists():
            raise
        try:
            return xr.open_dataset(path, engine="scipy", **kwargs)
        except Exception:  # not NetCDF3 either: report the NetCDF4 failure
            raise first from None


def _time_chunks(path: Path, mapping: ProductMapping) -> dict[str, int]:
    """About 12 time steps per chunk, in whole stored chunks: splitting a stored chunk
    would read it once per piece (and xarray warns about it)."""
    with open_product(path) as ds:
        var = ds.variables.get(mapping.variable)
        stored = var.encoding.get("chunksizes") if var is not None else None
        dims = var.dims if var is not None else ()
    if stored and mapping.time_name in dims:
        step = int(stored[dims.index(mapping.time_name)])
        return {mapping.time_name: step * max(1, -(-12 // step))}
    return {mapping.time_name: 12}


def read_gridded(
    path: str | Path, mapping: ProductMapping, *, chunks: dict[str, int] | None = None
) -> xr.DataArray:
    """Read ``mapping.variable`` from ``path`` as canonical monthly NEE (time, lat, lon).

    Returns a DataArray in gC m-2 d-1, positive = source, ascending lat, lon in
    [-180, 180), ``time`` = month starts (datetime64). Stays lazy (dask) with
    ``chunks`` (default about 12 time steps per chunk, in whole stored chunks).
    """
    path = Path(path)
    ds = open_product(path, chunks if chunks is not None else _time_chunks(path, mapping))
    if mapping.variable not in ds.variables:
        raise SchemaError(
            path, mapping.variable, f"missing variable; the file has {sorted(map(str, ds))}"
        )
    da = _standard_dims(ds, ds[mapping.variable], mapping, path)
    units = mapping.units if mapping.units is not None else da.attrs.get("units")
    if units is None:
        raise SchemaError(path, mapping.variable, "no units attribute; set units in the mapping")
    if mapping.fill_value is not None:
        da = da.where(da != mapping.fill_value)
    source_months, months = _decode_months(ds, mapping, path)
    da = da.assign_coords(time=source_months)
    da, grid = _normalise_grid(da, path, mapping.variable)
    try:
        out = to_canonical(
            da,
            units,
            sign=mapping.sign,
            cell_area=grid.cell_area().assign_coords(lat=da["lat"], lon=da["lon"]),
        )
    except ConfigError as exc:
        raise SchemaError(path, mapping.variable, str(exc)) from exc
    if mapping.land_fraction_variable is not None:
        out = _apply_land_fraction(ds, out, mapping, path)
    out = out.assign_coords(time=months)
    out = _fill_missing_months(out, mapping, path)
    out.name = "nee"
    out.attrs.update(
        units=NEE_UNITS,
        long_name=carbon_long_name("net ecosystem exchange (positive = source)"),
        cell_methods="time: mean",
        source=f"{path.name}:{mapping.variable}",
    )
    out["time"].attrs = {"standard_name": "time", "long_name": "month start"}
    return out


def _standard_dims(
    ds: xr.Dataset, da: xr.DataArray, mapping: ProductMapping, path: Path
) -> xr.DataArray:
    names = {mapping.time_name: "time", mapping.lat_name: "lat", mapping.lon_name: "lon"}
    missing = [old for old in names if old not in da.dims]
    if missing:
        raise SchemaError(
            path, mapping.variable, f"dims {tuple(da.dims)} lack {missing} (time, lat, lon)"
        )
    extra = [d for d in da.dims if d not in names]
    if any(da.sizes[d] != 1 for d in extra):
        raise SchemaError(
            path, mapping.variable, f"extra non-singleton dims {extra}; select one level first"
        )
    da = da.squeeze(extra, drop=True).rename(names).transpose("time", "lat", "lon")
    return da.drop_vars([c for c in da.coords if c not in ("time", "lat", "lon")])


def _decode_months(
    ds: xr.Dataset, mapping: ProductMapping, path: Path
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """Month of every time step: (month starts in the file's calendar, standard month starts)."""
    tvar = ds[mapping.time_name]
    units = mapping.time_units or tvar.attrs.get("units")
    calendar = (mapping.calendar or tvar.attrs.get("calendar") or "standard").lower()
    if units is None:
        raise SchemaError(path, mapping.time_name, "no units attribute; set time_units")
    values = np.asarray(tvar.values, dtype=np.float64)
    bounds = tvar.attrs.get("bounds")
    if bounds in ds.variables and ds[bounds].ndim == 2:
        values = np.asarray(ds[bounds].values, dtype=np.float64).mean(axis=1)
    since = _MONTHS_SINCE.match(units)
    try:
        if since:
            start = int(since["year"]) * 12 + int(since["month"]) - 1
            index = start + np.floor(values + 1e-6).astype(np.int64)
        else:
            dates = cftime.num2date(values, units, calendar, only_use_cftime_datetimes=True)
            index = np.array([d.year * 12 + d.month - 1 for d in np.ravel(dates)], np.int64)
    except (ValueError, TypeError) as exc:
        raise SchemaError(
            path, mapping.time_name, f"cannot decode units {units!r} calendar {calendar!r}: {exc}"
        ) from exc
    _check_months(index, mapping, path)
    source = np.array(
        [cftime.datetime(i // 12, i % 12 + 1, 1, calendar=calendar) for i in index], dtype=object
    )
    months = pd.DatetimeIndex([pd.Timestamp(year=i // 12, month=i % 12 + 1, day=1) for i in index])
    return source, months


def _label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def _check_months(index: np.ndarray, mapping: ProductMapping, path: Path) -> None:
    values, counts = np.unique(index, return_counts=True)
    if (counts > 1).any():
        dup = values[counts > 1][0]
        raise SchemaError(
            path,
            mapping.time_name,
            f"duplicate month {_label(dup)} ({counts[counts > 1][0]} time steps); "
            "expected one value per month (aggregate daily/8-day products first)",
        )
    step = np.diff(index)
    if (step < 0).any():
        i = int(np.argmax(step < 0))
        raise SchemaError(
            path,
            mapping.time_name,
            f"time not increasing: {_label(index[i + 1])} follows {_label(index[i])} "
            f"at step {i + 1}",
        )
    if (step > 1).any() and not mapping.allow_missing_months:
        i = int(np.argmax(step > 1))
        raise SchemaError(
            path,
            mapping.time_name,
            f"missing month(s) between {_label(index[i])} and {_label(index[i + 1])}; "
            "set allow_missing_months to fill them with NaN",
        )


def _normalise_grid(da: xr.DataArray, path: Path, variable: str) -> tuple[xr.DataArray, Grid]:
    """Ascending lat; lon in [-180, 180) ascending (a 0..360 grid is rolled once)."""
    lat = np.asarray(da["lat"].values, dtype=np.float64)
    if lat.size > 1 and lat[0] > lat[-1]:
        da = da.isel(lat=slice(None, None, -1))
    lon = np.asarray(da["lon"].values, dtype=np.float64)
    if lon.max() >= 180.0:
        new = normalise_lon(lon)
        if np.unique(new).size != new.size:
            raise SchemaError(path, "lon", "longitudes repeat after mapping to [-180, 180)")
        da = da.assign_coords(lon=new).sortby("lon")
    try:
        grid = Grid.from_dataset(da, path)
    except ValueError as exc:
        raise SchemaError(path, variable, f"not a regular lat/lon grid: {exc}") from exc
    return da, grid


def _apply_land_fraction(
    ds: xr.Dataset, out: xr.DataArray, mapping: ProductMapping, path: Path
) -> xr.DataArray:
    name = mapping.land_fraction_variable
    if name not in ds.variables:
        raise SchemaError(path, name, "land fraction variable missing")
    lf = ds[name].rename({mapping.lat_name: "lat", mapping.lon_name: "lon"})
    lf, _ = _normalise_grid(lf.squeeze(drop=True), path, str(name))
    values = np.asarray(lf.values, dtype=np.float64)
    if np.nanmin(values) < 0 or np.nanmax(values) > 1 + 1e-6:
        raise SchemaError(
            path,
            name,
            f"land fraction must lie in [0, 1], got {np.nanmin(values)}..{np.nanmax(values)} "
            "(percent? convert to a fraction)",
        )
    lf = lf.where(lf > 0)
    return out / lf if mapping.area_basis == "cell" else out.where(lf.notnull())


def _fill_missing_months(out: xr.DataArray, mapping: ProductMapping, path: Path) -> xr.DataArray:
    full = pd.date_range(out["time"].values[0], out["time"].values[-1], freq="MS")
    if full.size == out.sizes["time"]:
        return out
    missing = full.difference(pd.DatetimeIndex(out["time"].values))
    log.warning(
        "%s: %s has %d missing month(s) (%s ...), filled with NaN",
        path,
        mapping.variable,
        missing.size,
        missing[0].strftime("%Y-%m"),
    )
    return out.reindex(time=full)


def subtract_fire(nee: xr.DataArray, fire: xr.DataArray) -> xr.DataArray:
    """NEE without fire emissions: ``nee - fire`` (both gC m-2 d-1, positive = source).

    Inversions see the net land flux including fire; eddy-covariance NEE does
    not. Both fields must share the grid and the months exactly; a mismatch is
    a :class:`SchemaError`. NaN in either gives NaN (no silent zero fill).
    """
    for name, da in (("nee", nee), ("fire", fire)):
        if not units_match(da.attrs.get("units"), NEE_UNITS):
            raise SchemaError(
                "<memory>", name, f"units {da.attrs.get('units')!r}, expected {NEE_UNITS!r}"
            )
        if set(da.dims) != {"time", "lat", "lon"}:
            raise SchemaError("<memory>", name, f"dims {da.dims}, expected (time, lat, lon)")
    if not Grid.from_dataset(nee).same_as(Grid.from_dataset(fire)):
        raise SchemaError(
            "<memory>",
            "fire",
            f"grid {fire.sizes['lat']}x{fire.sizes['lon']} differs from the NEE grid "
            f"{nee.sizes['lat']}x{nee.sizes['lon']}; regrid first",
        )
    if not np.array_equal(nee["time"].values, fire["time"].values):
        raise SchemaError("<memory>", "fire", "time axis differs from the NEE time axis")
    out = nee - fire.transpose(*nee.dims).assign_coords(lat=nee["lat"], lon=nee["lon"])
    out.attrs = {**nee.attrs, "comment": "fire emissions subtracted (nee - fire)"}
    out.name = nee.name
    return out
