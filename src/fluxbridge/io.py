"""Writing CF-1.8 NetCDF4 files safely (temporary name, then rename)."""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import numpy as np
import xarray as xr

from fluxbridge import __version__
from fluxbridge.outputs import atomic_path, require_space

ENGINE = "h5netcdf"


def history_line(action: str) -> str:
    """One CF ``history`` entry: UTC timestamp, program and what was done."""
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{now} fluxbridge {__version__}: {action}"


#: Standard name and axis of the coordinate variables the project writes (CF §4).
_AXES = {"time": ("time", "T"), "lat": ("latitude", "Y"), "lon": ("longitude", "X")}
#: Long names of the calendar coordinates that xarray's groupby makes without attributes.
_CALENDAR_LONG_NAMES = {"year": "calendar year", "month": "calendar month (1 = January)"}


def add_coordinate_attrs(ds: xr.Dataset) -> None:
    """Give the coordinates their CF attributes, in place; existing attributes win.

    time/lat/lon: ``standard_name`` and ``axis``; every time-valued variable:
    ``standard_name: time``; year/month (from groupby): a ``long_name``.
    """
    for name, var in ds.variables.items():
        if var.dtype.kind == "M":
            var.attrs.setdefault("standard_name", "time")
            var.attrs.setdefault("long_name", "time")
        if name in ds.dims and name in _AXES:
            standard_name, axis = _AXES[str(name)]
            var.attrs.setdefault("standard_name", standard_name)
            var.attrs.setdefault("axis", axis)
        if name in ds.dims and name in _CALENDAR_LONG_NAMES:
            var.attrs.setdefault("long_name", _CALENDAR_LONG_NAMES[str(name)])


def cf_encoding(ds: xr.Dataset, *, compress: bool = True) -> dict[str, dict[str, object]]:
    """Per-variable encoding for a CF-1.8 file.

    * data floats get ``_FillValue`` NaN; coordinates and cell bounds get none
      (CF §7.1: bounds share their coordinate's validity, a fill value is an error);
    * times are int32 counts ("<unit> since <first time>", the unit chosen by xarray)
      instead of xarray's int64;
    * int64 and unsigned integers become int32, refused with a clear error when a
      value does not fit.
    """
    bounds = {str(v.attrs["bounds"]) for v in ds.variables.values() if "bounds" in v.attrs}
    encoding: dict[str, dict[str, object]] = {}
    for name, var in ds.variables.items():
        enc: dict[str, object] = {}
        kind = var.dtype.kind
        if compress and kind == "f" and var.ndim >= 2:
            enc.update(zlib=True, complevel=1)
        if kind == "f" and name not in ds.coords and name not in bounds:
            enc["_FillValue"] = float("nan")
        elif kind in "fiuM":
            enc["_FillValue"] = None
        if kind == "M":
            enc["dtype"] = "int32"
        elif kind == "u" or (kind == "i" and var.dtype.itemsize > 4):
            # CF-1.8 §2.2 has no 64-bit or unsigned integers (CF-1.9 added them).
            info = np.iinfo(np.int32)
            values = np.asarray(var.values)
            if values.size and (values.min() < info.min or values.max() > info.max):
                raise ValueError(
                    f"variable {name!r}: values {values.min()}..{values.max()} do not fit the "
                    f"int32 that CF-1.8 allows for integers; store them as float64"
                )
            enc["dtype"] = "int32"
        if enc:
            encoding[str(name)] = enc
    return encoding


def write_netcdf(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    action: str,
    overwrite: bool = False,
    compress: bool = True,
) -> Path:
    """Write ``ds`` as CF-1.8 NetCDF4 via h5netcdf, atomically.

    ``action`` is appended to the ``history`` attribute. Float variables are
    written with light zlib compression unless ``compress`` is false. The CF
    details every file needs are added here, once (see :func:`cf_encoding`).
    """
    ds = ds.copy(deep=False)  # shallow: attrs are copied, the caller's stay untouched
    ds.attrs["Conventions"] = "CF-1.8"
    previous = ds.attrs.get("history")
    ds.attrs["history"] = history_line(action) + (f"\n{previous}" if previous else "")
    add_coordinate_attrs(ds)
    encoding = cf_encoding(ds, compress=compress)
    require_space(Path(path).parent, ds.nbytes, Path(path).name)
    with atomic_path(path, overwrite=overwrite) as tmp:
        ds.to_netcdf(tmp, engine=ENGINE, encoding=encoding, invalid_netcdf=False)
    return Path(path)


def open_netcdf(path: str | os.PathLike[str], **kwargs: object) -> xr.Dataset:
    """Open a NetCDF file with h5netcdf, turning low-level failures into a clear error."""
    from fluxbridge.errors import SchemaError

    path = Path(path)
    if not path.exists():
        raise SchemaError(path, None, "file not found")
    try:
        return xr.open_dataset(path, engine=ENGINE, **kwargs)
    except Exception as exc:  # h5py/h5netcdf raise many types for corrupt files
        raise SchemaError(path, None, f"not a readable NetCDF4/HDF5 file ({exc})") from exc
