"""The canonical dataset: the one contract between data preparation and the pipeline.

Both the real-data preparation and the twin world write it; nothing downstream
knows which one it reads. The schema is documented in docs/canonical_dataset.md;
this module is its executable form. :func:`open_canonical` validates on open and
raises :class:`~fluxbridge.errors.SchemaError` naming file, variable and the
expectation that failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.errors import SchemaError
from fluxbridge.geo.grid import Grid
from fluxbridge.io import open_netcdf
from fluxbridge.schema import (  # noqa: F401  (re-exported: the schema's public names)
    ANNUAL_FLUX_UNITS,
    ANNUAL_INTEGRAL_UNITS,
    CARBON_UNITS,
    DAILY_INTEGRAL_UNITS,
    DRIVER_NAMES,
    DRIVERS,
    LEGACY_UNITS,
    MONTHLY_FLUX_UNITS,
    MONTHLY_INTEGRAL_UNITS,
    NEE_UNITS,
    RECCAP2_REGIONS,
    TROPICAL_REGIONS,
    Driver,
    carbon_long_name,
    units_match,
)

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class VarSpec:
    """Expected dims and units of one variable (units None = not checked)."""

    dims: tuple[str, ...]
    units: str | None
    dtype_kind: str = "f"


@dataclass(frozen=True)
class FileSpec:
    """One file of the canonical dataset."""

    name: str
    variables: dict[str, VarSpec]
    time: str | None = None  # "daily" | "monthly" | None
    gridded: bool = False
    optional: bool = False
    optional_variables: dict[str, VarSpec] = field(default_factory=dict)


_DRIVER_CELL = {d.name: VarSpec(("time", "cell"), d.units) for d in DRIVERS}
_DRIVER_SITE = {d.name: VarSpec(("site", "time"), d.units) for d in DRIVERS}

SPECS: dict[str, FileSpec] = {
    "grid": FileSpec(
        "grid.nc",
        {
            "cell_area": VarSpec(("lat", "lon"), "m2"),
            "land_fraction": VarSpec(("lat", "lon"), "1"),
            "pft_fraction": VarSpec(("pft", "lat", "lon"), "1"),
            "region_fraction": VarSpec(("region", "lat", "lon"), "1"),
            "region_id": VarSpec(("lat", "lon"), None, "i"),
            "region_abbr": VarSpec(("region",), None, "OSU"),
            "region_name": VarSpec(("region",), None, "OSU"),
        },
        gridded=True,
    ),
    "drivers": FileSpec(
        "drivers.nc",
        {
            **_DRIVER_CELL,
            "cell_ilat": VarSpec(("cell",), None, "i"),
            "cell_ilon": VarSpec(("cell",), None, "i"),
        },
        time="daily",
    ),
    "sites": FileSpec(
        "sites.nc",
        {
            "nee_obs": VarSpec(("site", "time"), NEE_UNITS),
            "site_lat": VarSpec(("site",), "degrees_north"),
            "site_lon": VarSpec(("site",), "degrees_east"),
            "site_igbp": VarSpec(("site",), None, "OSU"),
            "fold": VarSpec(("site",), None, "i"),
            **_DRIVER_SITE,
        },
        time="daily",
        optional_variables={"nee_qc_fraction": VarSpec(("site", "time"), "1")},
    ),
    "inversions": FileSpec(
        "inversions.nc",
        {"nee": VarSpec(("member", "time", "lat", "lon"), NEE_UNITS)},
        time="monthly",
        gridded=True,
    ),
    "reference": FileSpec(
        "reference.nc",
        {"nee": VarSpec(("time", "lat", "lon"), NEE_UNITS)},
        time="monthly",
        gridded=True,
    ),
    "residual_sink": FileSpec(
        "residual_sink.nc",
        {
            "nee_global": VarSpec(("year",), ANNUAL_INTEGRAL_UNITS),
            "nee_global_sigma": VarSpec(("year",), ANNUAL_INTEGRAL_UNITS),
        },
    ),
    "ancillary": FileSpec(
        "ancillary.nc",
        {},
        time="monthly",
        gridded=True,
        optional=True,
        optional_variables={
            "soil_moisture": VarSpec(("time", "lat", "lon"), "m3 m-3"),
            "sif": VarSpec(("time", "lat", "lon"), "mW m-2 nm-1 sr-1"),
            "lai": VarSpec(("time", "lat", "lon"), "m2 m-2"),
            "fire": VarSpec(("time", "lat", "lon"), NEE_UNITS),
        },
    ),
    "truth": FileSpec(
        "truth.nc",
        {
            "nee": VarSpec(("time", "lat", "lon"), NEE_UNITS),
            "site_nee": VarSpec(("site", "time_daily"), NEE_UNITS),
        },
        time="monthly",
        gridded=True,
        optional=True,
    ),
}


def _check_time(ds: xr.Dataset, path: Path, kind: str, name: str = "time") -> pd.DatetimeIndex:
    if name not in ds.coords:
        raise SchemaError(path, name, "missing time coordinate")
    values = ds[name].values
    if not np.issubdtype(values.dtype, np.datetime64):
        cal = ds[name].attrs.get("calendar") or ds[name].encoding.get("calendar")
        raise SchemaError(
            path,
            name,
            f"time must decode to the standard (proleptic Gregorian) calendar, got "
            f"calendar={cal!r}; convert on ingest",
        )
    times = pd.DatetimeIndex(values)
    if times.hasnans:
        raise SchemaError(path, name, "time contains NaT")
    if not times.is_unique:
        dup = times[times.duplicated()][0]
        raise SchemaError(path, name, f"duplicate time {dup.date()}")
    if not times.is_monotonic_increasing:
        raise SchemaError(path, name, "time must be increasing")
    if kind == "daily":
        expected = pd.date_range(times[0], periods=len(times), freq="D")
        if not (times == expected).all() or (times.normalize() != times).any():
            raise SchemaError(path, name, "daily time must be contiguous days at 00:00")
    elif kind == "monthly":
        expected = pd.date_range(times[0], periods=len(times), freq="MS")
        if not (times == expected).all():
            raise SchemaError(
                path, name, "monthly time must be contiguous month starts (YYYY-MM-01 00:00)"
            )
    return times


def validate_file(ds: xr.Dataset, spec: FileSpec, path: Path) -> None:
    """Check one opened file against its :class:`FileSpec`."""
    present = {**spec.variables}
    present.update({k: v for k, v in spec.optional_variables.items() if k in ds.variables})
    for name, var in present.items():
        if name not in ds.variables:
            raise SchemaError(path, name, f"missing variable (expected dims {var.dims})")
        da = ds[name]
        if tuple(da.dims) != var.dims:
            raise SchemaError(path, name, f"dims {tuple(da.dims)}, expected {var.dims}")
        if var.units is not None and not units_match(da.attrs.get("units"), var.units):
            raise SchemaError(
                path, name, f"units {da.attrs.get('units')!r}, expected {var.units!r}"
            )
        if da.dtype.kind not in var.dtype_kind and not (
            var.dtype_kind == "OSU" and da.dtype.kind in "OSU"
        ):
            raise SchemaError(path, name, f"dtype {da.dtype}, expected kind {var.dtype_kind!r}")
    if spec.gridded:
        Grid.from_dataset(ds, path)  # checks lat/lon ascending and NaN-free
        lon = ds["lon"].values
        if lon.min() < -180 or lon.max() > 180:
            raise SchemaError(
                path, "lon", "longitudes must be in [-180, 180] (normalise on ingest)"
            )
    if spec.time is not None and "time" in ds.dims:
        _check_time(ds, path, spec.time)


class CanonicalDataset:
    """A validated canonical dataset directory; files open lazily and are checked on open."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise SchemaError(self.root, None, "canonical dataset directory not found")
        meta = self.root / "canonical.json"
        if not meta.exists():
            raise SchemaError(meta, None, "missing; every canonical dataset carries canonical.json")
        try:
            self.meta = json.loads(meta.read_text())
        except json.JSONDecodeError as exc:
            raise SchemaError(meta, None, f"not valid JSON ({exc})") from exc
        if self.meta.get("schema_version") != SCHEMA_VERSION:
            raise SchemaError(
                meta,
                "schema_version",
                f"got {self.meta.get('schema_version')!r}, expected {SCHEMA_VERSION}",
            )

    def path(self, key: str) -> Path:
        return self.root / SPECS[key].name

    def has(self, key: str) -> bool:
        return self.path(key).exists()

    def open(self, key: str) -> xr.Dataset:
        """Open and validate one file (``grid``, ``drivers``, ``sites``, ...)."""
        spec = SPECS[key]
        path = self.path(key)
        if not path.exists() and spec.optional:
            raise SchemaError(path, None, f"optional file '{spec.name}' is not in this dataset")
        ds = open_netcdf(path)
        validate_file(ds, spec, path)
        if spec.gridded and key != "grid" and not Grid.from_dataset(ds, path).same_as(self.grid):
            raise SchemaError(path, "lat/lon", f"grid differs from {self.path('grid')}")
        return ds

    def inversion_members(self) -> list[str]:
        """Member names of inversions.nc: its ``member`` coordinate, else "0", "1", ..."""
        with self.open("inversions") as inv:
            if "member" in inv.coords:
                return [str(m) for m in inv["member"].values]
            return [str(i) for i in range(inv.sizes["member"])]

    @cached_property
    def grid_ds(self) -> xr.Dataset:
        return self.open("grid")

    @cached_property
    def grid(self) -> Grid:
        return Grid.from_dataset(self.grid_ds, self.path("grid"))

    @property
    def region_abbrs(self) -> list[str]:
        return [str(a) for a in self.grid_ds["region_abbr"].values]

    def validate(self) -> list[str]:
        """Open every file present and cross-check them; return the keys validated."""
        checked = []
        for key, spec in SPECS.items():
            if spec.optional and not self.has(key):
                continue
            ds = self.open(key)
            if key == "drivers":
                self._check_cells(ds)
            checked.append(key)
        return checked

    def _check_cells(self, drivers: xr.Dataset) -> None:
        path = self.path("drivers")
        land = self.grid_ds["land_fraction"].values > 0
        ilat, ilon = np.nonzero(land)
        if drivers.sizes["cell"] != ilat.size:
            raise SchemaError(
                path,
                "cell",
                f"{drivers.sizes['cell']} cells, expected {ilat.size} "
                "(every grid cell with land_fraction > 0, row-major)",
            )
        if not (
            np.array_equal(drivers["cell_ilat"].values, ilat)
            and np.array_equal(drivers["cell_ilon"].values, ilon)
        ):
            raise SchemaError(
                path, "cell_ilat/cell_ilon", "cells are not the land cells in row-major order"
            )


def open_canonical(root: str | Path, *, validate: bool = True) -> CanonicalDataset:
    """Open a canonical dataset directory; with ``validate`` check every file now."""
    ds = CanonicalDataset(root)
    if validate:
        ds.validate()
    return ds
