"""Writing CF-1.8 NetCDF4 files safely (temporary name, then rename)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
from collections.abc import Iterator
from pathlib import Path

import xarray as xr

from fluxbridge import __version__

ENGINE = "h5netcdf"


def history_line(action: str) -> str:
    """One CF ``history`` entry: UTC timestamp, program and what was done."""
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"{now} fluxbridge {__version__}: {action}"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling path; on success rename it to ``path``.

    Nothing is left at ``path`` when the body fails, and an existing file is
    never replaced unless ``overwrite`` is true.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; refusing to overwrite it (pass overwrite=True)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


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
    written with light zlib compression unless ``compress`` is false.
    """
    ds = ds.copy(deep=False)
    ds.attrs["Conventions"] = "CF-1.8"
    previous = ds.attrs.get("history")
    ds.attrs["history"] = history_line(action) + (f"\n{previous}" if previous else "")
    encoding: dict[str, dict[str, object]] = {}
    for name, var in ds.variables.items():
        enc: dict[str, object] = {}
        if compress and var.dtype.kind == "f" and var.ndim >= 2:
            enc.update(zlib=True, complevel=1)
        if var.dtype.kind == "f" and name not in ds.coords:
            enc["_FillValue"] = float("nan")
        elif var.dtype.kind in "fiu" or var.dtype.kind == "M":
            enc["_FillValue"] = None
        if enc:
            encoding[str(name)] = enc
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
