"""Opening MODIS land products as distributed: HDF4 (HDF-EOS2) and NetCDF4 subsets.

A :class:`Granule` is one opened file: its science data sets (SDS) by name,
read raw (the stored integers) in blocks of rows, its georeference and its
composite dates. :func:`decode` turns raw integers into physical values with
the SDS's own attributes.

* **HDF4** files from the LP DAAC / LAADS archives are read with ``pyhdf`` (the
  GDAL in the rasterio/netCDF4 wheels has no HDF4 driver). The georeference
  comes from the HDF-EOS ``StructMetadata.0`` attribute: ``GCTP_GEO`` grids
  (the 0.05° CMG) give their corners in packed degrees DDDMMMSSS.SS,
  ``GCTP_SNSOID`` tiles (MCD15A2H) in metres of the MODIS sinusoidal
  projection. The composite date is the ``AYYYYDDD`` field of the file name.
* **NetCDF4** files as NASA's subsetting services return them (AppEEARS with
  the geographic output projection, OPeNDAP fileout) are read with h5netcdf,
  unmasked and unscaled, from 1-D ``lat``/``lon`` centres (regular spacing) and
  a ``time`` coordinate, or the file name's ``AYYYYDDD`` when there is none.

Decoding follows CF: value = stored × ``scale_factor`` + ``add_offset``, with
``_FillValue`` and values outside ``valid_range`` (or ``valid_min``/``valid_max``)
masked. The MODIS land SDS read here all have ``add_offset`` 0, so the HDF4
calibration convention (value = scale × (stored − offset)) gives the same numbers.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from fluxbridge.errors import SchemaError

#: Radius of the sphere of the MODIS sinusoidal grid (m), from the products' ProjParams.
SINUSOIDAL_RADIUS_M = 6_371_007.181

_DATE_IN_NAME = re.compile(r"\.A(\d{4})(\d{3})\.")


@dataclass(frozen=True)
class LatLonGeoref:
    """A regular lat/lon grid in file order: row 0 starts at ``lat0``, column 0 at ``lon0``.

    ``dlat`` is negative for north-up files (the CMG); degrees, cell edges.
    """

    lat0: float
    dlat: float
    lon0: float
    dlon: float
    ny: int
    nx: int

    def lat_edges(self) -> np.ndarray:
        """Row edges in file order (ny + 1), degrees north."""
        return self.lat0 + self.dlat * np.arange(self.ny + 1)

    def lon_edges(self) -> np.ndarray:
        """Column edges (nx + 1), degrees east, ascending."""
        return self.lon0 + self.dlon * np.arange(self.nx + 1)


@dataclass(frozen=True)
class SinusoidalGeoref:
    """A tile of the MODIS sinusoidal grid: upper-left corner (m) and pixel size (m)."""

    x0: float
    y0: float
    dx: float
    dy: float
    ny: int
    nx: int


Georef = LatLonGeoref | SinusoidalGeoref


class Granule(Protocol):
    """One opened MODIS file."""

    path: Path
    georef: Georef
    dates: tuple[dt.date, ...]

    def names(self) -> set[str]: ...

    def attrs(self, name: str) -> dict[str, object]: ...

    def shape(self, name: str) -> tuple[int, ...]: ...

    def read(self, name: str, rows: slice, time_index: int = 0) -> np.ndarray: ...

    def close(self) -> None: ...


def date_from_name(path: Path) -> dt.date | None:
    """The ``AYYYYDDD`` date of a MODIS file name (``MOD11C2.A2010009.061.….hdf``)."""
    m = _DATE_IN_NAME.search(path.name)
    if m is None:
        return None
    year, doy = int(m.group(1)), int(m.group(2))
    if not 1 <= doy <= (366 if _leap(year) else 365):
        raise SchemaError(path, None, f"day of year {doy} in the file name is not in {year}")
    return dt.date(year, 1, 1) + dt.timedelta(days=doy - 1)


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def decode(raw: np.ndarray, attrs: dict[str, object]) -> np.ndarray:
    """Physical values (float64, NaN where fill or outside the valid range) of stored ``raw``."""
    values = np.asarray(raw)
    bad = np.zeros(values.shape, dtype=bool)
    fill = attrs.get("_FillValue")
    if fill is not None:
        bad |= values == np.asarray(fill).ravel()[0]
    lo, hi = valid_limits(attrs)
    if lo is not None:
        bad |= values < lo
    if hi is not None:
        bad |= values > hi
    scale = float(np.asarray(attrs.get("scale_factor", 1.0)).ravel()[0])
    offset = float(np.asarray(attrs.get("add_offset", 0.0)).ravel()[0])
    out = values.astype(np.float64) * scale + offset
    out[bad] = np.nan
    return out


def valid_limits(attrs: dict[str, object]) -> tuple[float | None, float | None]:
    """(low, high) stored-value limits from ``valid_range`` or ``valid_min``/``valid_max``."""
    if "valid_range" in attrs:
        lo, hi = (float(v) for v in np.asarray(attrs["valid_range"]).ravel()[:2])
        return lo, hi
    lo = attrs.get("valid_min")
    hi = attrs.get("valid_max")
    return (
        None if lo is None else float(np.asarray(lo).ravel()[0]),
        None if hi is None else float(np.asarray(hi).ravel()[0]),
    )


def bits(qc: np.ndarray, first: int, count: int) -> np.ndarray:
    """Unsigned value of bits ``first`` .. ``first + count − 1`` (bit 0 = least significant)."""
    return (np.asarray(qc).astype(np.uint64) >> np.uint64(first)) & np.uint64((1 << count) - 1)


def row_blocks(ny: int, rows_per_block: int) -> Iterator[slice]:
    """Consecutive row slices covering 0..ny."""
    for start in range(0, ny, rows_per_block):
        yield slice(start, min(start + rows_per_block, ny))


# --------------------------------------------------------------------------- HDF4


_STRUCT_FIELD = re.compile(r"^\s*(\w+)\s*=\s*(.+?)\s*$", re.MULTILINE)


def _packed_dms_to_degrees(value: float) -> float:
    """HDF-EOS packed degrees DDDMMMSSS.SS → decimal degrees."""
    sign = -1.0 if value < 0 else 1.0
    v = abs(value)
    deg = int(v // 1_000_000)
    minutes = int((v - deg * 1_000_000) // 1_000)
    seconds = v - deg * 1_000_000 - minutes * 1_000
    return sign * (deg + minutes / 60.0 + seconds / 3600.0)


def georef_from_struct_metadata(text: str, path: Path) -> Georef:
    """The grid of the first GRID object of an HDF-EOS ``StructMetadata.0`` text."""
    fields: dict[str, str] = {}
    for key, value in _STRUCT_FIELD.findall(text):
        fields.setdefault(key, value)  # first grid wins (these products hold one)
    try:
        nx, ny = int(fields["XDim"]), int(fields["YDim"])
        ul = [float(v) for v in fields["UpperLeftPointMtrs"].strip("()").split(",")]
        lr = [float(v) for v in fields["LowerRightMtrs"].strip("()").split(",")]
        projection = fields["Projection"]
    except (KeyError, ValueError) as exc:
        raise SchemaError(
            path, "StructMetadata.0", f"no readable grid definition ({exc!r}); expected HDF-EOS2"
        ) from exc
    if projection == "GCTP_GEO":
        x0, y0 = (_packed_dms_to_degrees(v) for v in ul)
        x1, y1 = (_packed_dms_to_degrees(v) for v in lr)
        return LatLonGeoref(y0, (y1 - y0) / ny, x0, (x1 - x0) / nx, ny, nx)
    if projection == "GCTP_SNSOID":
        return SinusoidalGeoref(ul[0], ul[1], (lr[0] - ul[0]) / nx, (ul[1] - lr[1]) / ny, ny, nx)
    raise SchemaError(
        path, "StructMetadata.0", f"projection {projection}; expected GCTP_GEO or GCTP_SNSOID"
    )


class Hdf4Granule:
    """An HDF4 (HDF-EOS2) MODIS file read with pyhdf."""

    def __init__(self, path: Path) -> None:
        from pyhdf.error import HDF4Error
        from pyhdf.SD import SD, SDC

        self.path = Path(path)
        if not self.path.exists():
            raise SchemaError(self.path, None, "file not found")
        try:
            self._sd = SD(str(self.path), SDC.READ)
        except HDF4Error as exc:
            raise SchemaError(self.path, None, f"not a readable HDF4 file ({exc})") from exc
        self._names = set(self._sd.datasets())
        struct = self._sd.attributes().get("StructMetadata.0")
        if struct is None:
            raise SchemaError(self.path, "StructMetadata.0", "missing; expected an HDF-EOS2 file")
        self.georef = georef_from_struct_metadata(str(struct), self.path)
        date = date_from_name(self.path)
        if date is None:
            raise SchemaError(self.path, None, "no AYYYYDDD date in the file name")
        self.dates = (date,)

    def names(self) -> set[str]:
        return self._names

    def attrs(self, name: str) -> dict[str, object]:
        self._check(name)
        return dict(self._sd.select(name).attributes())

    def shape(self, name: str) -> tuple[int, ...]:
        self._check(name)
        dims = self._sd.select(name).info()[2]
        return tuple(dims) if isinstance(dims, list) else (dims,)

    def read(self, name: str, rows: slice, time_index: int = 0) -> np.ndarray:
        """Rows of an SDS; trailing dimensions (MCD12C1's 17 class layers) come whole."""
        shape = self.shape(name)
        if shape[:2] != (self.georef.ny, self.georef.nx):
            raise SchemaError(
                self.path,
                name,
                f"shape {shape} differs from the grid's {(self.georef.ny, self.georef.nx)}",
            )
        return np.asarray(self._sd.select(name)[rows.start : rows.stop])

    def _check(self, name: str) -> None:
        if name not in self._names:
            raise SchemaError(self.path, name, f"SDS missing (the file has {sorted(self._names)})")

    def close(self) -> None:
        self._sd.end()


# --------------------------------------------------------------------------- NetCDF4

_LAT_NAMES = ("lat", "latitude", "Latitude")
_LON_NAMES = ("lon", "longitude", "Longitude")


def _regular_edges(centres: np.ndarray, path: Path, name: str) -> tuple[float, float]:
    """(first edge, signed step) of regularly spaced centres."""
    if centres.ndim != 1 or centres.size < 2:
        raise SchemaError(path, name, "needs a 1-D coordinate of at least 2 centres")
    step = np.diff(centres.astype(np.float64))
    if not np.allclose(step, step[0], rtol=1e-4, atol=0):
        raise SchemaError(
            path, name, "centres are not regularly spaced; expected a geographic grid"
        )
    d = float(step.mean())
    return float(centres[0]) - d / 2, d


def _dates(values: np.ndarray) -> tuple[dt.date, ...] | None:
    """Calendar dates of decoded times: datetime64, or cftime objects.

    AppEEARS writes ``calendar = "julian"``, which xarray decodes to cftime
    dates; their (year, month, day) fields are taken as they are, which for
    2000–2099 (leap years alike in both calendars) are the Gregorian dates.
    """
    values = np.atleast_1d(values)
    if values.dtype.kind == "M":
        return tuple(t.astype("datetime64[D]").astype(dt.date) for t in values)
    if values.dtype.kind == "O" and all(hasattr(t, "year") for t in values):
        return tuple(dt.date(t.year, t.month, t.day) for t in values)
    return None


class NetcdfGranule:
    """A NetCDF4 subset (AppEEARS geographic output, OPeNDAP fileout) read raw."""

    def __init__(self, path: Path) -> None:
        from fluxbridge.io import open_netcdf

        self.path = Path(path)
        self._ds = open_netcdf(self.path, mask_and_scale=False, decode_times=True)
        lat = next((n for n in _LAT_NAMES if n in self._ds.variables), None)
        lon = next((n for n in _LON_NAMES if n in self._ds.variables), None)
        if lat is None or lon is None:
            raise SchemaError(
                self.path,
                "lat/lon",
                "no 1-D latitude/longitude coordinates: request the geographic projection",
            )
        self._lat, self._lon = lat, lon
        lat0, dlat = _regular_edges(np.asarray(self._ds[lat].values), self.path, lat)
        lon0, dlon = _regular_edges(np.asarray(self._ds[lon].values), self.path, lon)
        if dlon <= 0:
            raise SchemaError(self.path, lon, "longitudes must increase")
        self.georef = LatLonGeoref(
            lat0, dlat, lon0, dlon, self._ds.sizes[self._ds[lat].dims[0]], self._ds[lon].size
        )
        times = _dates(self._ds["time"].values) if "time" in self._ds.variables else None
        if times is not None:
            self.dates = times
        else:
            date = date_from_name(self.path)
            if date is None:
                raise SchemaError(
                    self.path, "time", "no decodable time coordinate and no AYYYYDDD in the name"
                )
            self.dates = (date,)

    def names(self) -> set[str]:
        return {str(n) for n in self._ds.data_vars}

    def attrs(self, name: str) -> dict[str, object]:
        self._check(name)
        attrs = dict(self._ds[name].attrs)
        attrs.update({k: v for k, v in self._ds[name].encoding.items() if k == "_FillValue"})
        return attrs

    def shape(self, name: str) -> tuple[int, ...]:
        self._check(name)
        return tuple(self._ds[name].shape)

    def read(self, name: str, rows: slice, time_index: int = 0) -> np.ndarray:
        self._check(name)
        var = self._ds[name]
        spatial = (self._ds[self._lat].dims[0], self._ds[self._lon].dims[0])
        extra = [d for d in var.dims if d not in spatial]
        if extra not in ([], ["time"]):
            raise SchemaError(self.path, name, f"dims {var.dims}; expected (time,) lat, lon")
        index: dict[str, object] = {spatial[0]: rows}
        if extra:
            index["time"] = time_index
        return np.asarray(var.isel(index).transpose(*spatial).values)

    def _check(self, name: str) -> None:
        if name not in self._ds.data_vars:
            raise SchemaError(
                self.path, name, f"variable missing (the file has {sorted(self.names())})"
            )

    def close(self) -> None:
        self._ds.close()


def open_granule(path: str | Path) -> Granule:
    """Open a MODIS file by its extension: ``.hdf`` (HDF4) or ``.nc``/``.nc4`` (NetCDF4)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in (".hdf", ".hdf4", ".h4"):
        return Hdf4Granule(p)
    if suffix in (".nc", ".nc4", ".netcdf"):
        return NetcdfGranule(p)
    raise SchemaError(p, None, f"unknown extension '{p.suffix}'; expected .hdf or .nc/.nc4")
