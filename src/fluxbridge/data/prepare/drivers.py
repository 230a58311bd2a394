"""drivers.nc: the 10 Table A2 drivers, daily, at land cells.

From the FLUXCOM driver files (below) or, with ``drivers.source: public``, from
ERA5 and MODIS (:mod:`fluxbridge.data.prepare.public`); :func:`static_fields`
and :func:`year_parts` choose by the driver mapping.

One year at a time is read, in blocks of at most 256 MiB, so memory stays bounded at
0.5°; every year becomes a part file (resumable), and drivers.nc is streamed
from the parts at the end. Per-PFT drivers (an extra PFT dimension) are
reconstructed as Σ_pft pft_fraction × driver_pft, the PFT-weighted pixel value
of Jung et al. (2019) / Tramontana et al. (2016).
"""

from __future__ import annotations

from pathlib import Path

import cftime
import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.data.canonical import DRIVERS
from fluxbridge.data.gridded import open_product
from fluxbridge.data.prepare import public
from fluxbridge.data.prepare.config import DriversConfig, LoadedConfig, PrepareConfig
from fluxbridge.data.prepare.gridfile import grid_index, read_static
from fluxbridge.data.prepare.inputs import Input
from fluxbridge.data.prepare.mappings import DriverSet, Era5Mapping, load_mapping
from fluxbridge.data.public import modis_pft
from fluxbridge.errors import SchemaError
from fluxbridge.geo.grid import Grid

BLOCK_BYTES = 256 * 2**20  # per block read from a driver file


def land_cells(land: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    """(ilat, ilon) of every cell with land_fraction > 0, row-major: the canonical cell order."""
    return np.nonzero(land.values > 0)


def year_days(path: Path, mapping: DriverSet, year: int) -> pd.DatetimeIndex:
    """The days of the file; they must be every day of ``year`` (standard calendar) in order."""
    ds = open_product(path)
    if mapping.time_name not in ds.variables:
        raise SchemaError(path, mapping.time_name, "missing time coordinate")
    tvar = ds[mapping.time_name]
    calendar = tvar.attrs.get("calendar", "standard").lower()
    if calendar not in ("standard", "gregorian", "proleptic_gregorian"):
        raise SchemaError(
            path,
            mapping.time_name,
            f"calendar {calendar!r}: daily drivers must use the standard calendar",
        )
    try:
        dates = cftime.num2date(
            np.asarray(tvar.values, np.float64),
            tvar.attrs["units"],
            calendar,
            only_use_cftime_datetimes=True,
        )
    except (KeyError, ValueError, TypeError) as exc:
        raise SchemaError(path, mapping.time_name, f"cannot decode time: {exc}") from exc
    days = pd.DatetimeIndex([pd.Timestamp(d.year, d.month, d.day) for d in dates])
    expected = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    if len(days) != len(expected) or not (days == expected).all():
        lacking = expected.difference(days)
        first = f"first missing {lacking[0]:%Y-%m-%d}" if lacking.size else "days out of order"
        raise SchemaError(
            path,
            mapping.time_name,
            f"has {len(days)} days, expected the {len(expected)} days of {year} "
            f"({first}; a truncated file?)",
        )
    return expected


def year_part(
    path: Path,
    mapping: DriverSet,
    year: int,
    grid: Grid,
    pft: xr.DataArray,
    cells: tuple[np.ndarray, np.ndarray],
) -> xr.Dataset:
    """One year of the 10 drivers as (time, cell) float32 in canonical units."""
    days = year_days(path, mapping, year)
    ds = open_product(path)
    lat, lon = (ds[n].values for n in (mapping.lat_name, mapping.lon_name))
    ilat, ilon = cells
    # File rows/columns of the canonical land cells (the file may run N→S or over 0..360).
    row, col = grid_index(lat, lon, grid, path)
    row, col = row[ilat], col[ilon]
    weight = pft.values[:, ilat, ilon]  # (pft, cell)
    data = {}
    for driver in DRIVERS:
        spec = mapping.variables[driver.name]
        if spec.variable not in ds.variables:
            have = sorted(map(str, ds))
            raise SchemaError(path, spec.variable, f"driver {driver.name} missing; has {have}")
        raw = ds[spec.variable]
        if raw.attrs.get("units") != spec.units:
            raise SchemaError(
                path,
                spec.variable,
                f"units {raw.attrs.get('units')!r}, the mapping expects {spec.units!r}",
            )
        per_pft = mapping.pft_dim in raw.dims
        order = [
            mapping.time_name,
            *([mapping.pft_dim] if per_pft else []),
            mapping.lat_name,
            mapping.lon_name,
        ]
        raw = raw.transpose(*order)
        step = _block_days(raw)
        out = np.empty((days.size, ilat.size), dtype=np.float32)
        for start in range(0, days.size, step):
            block = np.asarray(raw.isel({mapping.time_name: slice(start, start + step)}).values)
            values = block[..., row, col]
            if per_pft:
                # A PFT absent from the cell may hold NaN; a present one may not.
                values = np.where(weight > 0, values, 0.0) * weight
                values = values.sum(axis=1)
            out[start : start + values.shape[0]] = values * spec.scale + spec.offset
        data[driver.name] = (
            ("time", "cell"),
            out,
            {"units": driver.units, "long_name": driver.long_name},
        )
    return xr.Dataset(
        {
            **data,
            "cell_ilat": ("cell", ilat.astype(np.int32), {"long_name": "lat index"}),
            "cell_ilon": ("cell", ilon.astype(np.int32), {"long_name": "lon index"}),
        },
        coords={"time": ("time", days, {"standard_name": "time"})},
    )


def _block_days(da: xr.DataArray) -> int:
    """Days per block so that one block of ``da`` stays under :data:`BLOCK_BYTES`."""
    per_day = da.dtype.itemsize * int(np.prod(da.shape[1:]))
    return max(1, BLOCK_BYTES // per_day)


def assemble(parts: list[Path]) -> xr.Dataset:
    """drivers.nc from the yearly parts, lazily (dask), so writing streams block by block."""
    years = [xr.open_dataset(p, engine="h5netcdf", chunks={}) for p in parts]
    cells = years[0][["cell_ilat", "cell_ilon"]].load()
    ds = xr.concat([y.drop_vars(["cell_ilat", "cell_ilon"]) for y in years], dim="time")
    ds = ds.assign(cell_ilat=cells["cell_ilat"], cell_ilon=cells["cell_ilon"])
    ds.attrs = {"title": "Upton et al. Table A2 drivers at land cells (daily)"}
    return ds


# ---------------------------------------------------------------- source dispatch


def driver_mapping(loaded: LoadedConfig) -> DriverSet | Era5Mapping:
    """The mapping of the driver source: a FLUXCOM :class:`DriverSet` or an :class:`Era5Mapping`."""
    drivers = loaded.config.drivers
    if drivers.source == "public":
        assert drivers.era5 is not None
        return load_mapping(Era5Mapping, loaded.mapping_path(drivers.era5.mapping))
    assert drivers.mapping is not None
    return load_mapping(DriverSet, loaded.mapping_path(drivers.mapping))


def static_fields(
    inputs: dict[str, Input],
    mapping: DriverSet | Era5Mapping,
    grid: Grid,
    config: DriversConfig | None = None,
) -> tuple[xr.DataArray, xr.DataArray]:
    """Land fraction (lat, lon) and PFT fractions (pft, lat, lon) for grid.nc.

    Public drivers with ``config.modis.landcover``: both from MCD12C1 (per-PFT drivers).
    """
    if isinstance(mapping, Era5Mapping):
        if config is not None and config.modis is not None and config.modis.landcover:
            path = modis_pft.landcover_file(
                inputs["modis_landcover"].path, public.landcover_year(config)
            )
            return modis_pft.landcover_static(path, grid, mapping.land_sea_mask.min_land_fraction)
        return public.land_sea_mask(inputs["era5"], mapping, grid)
    path = inputs["drivers"].path / mapping.static_file
    return read_static(path, mapping, grid)


def year_parts(
    cfg: PrepareConfig,
    inputs: dict[str, Input],
    mapping: DriverSet | Era5Mapping,
    grid: Grid,
    pft: xr.DataArray,
    cells: tuple[np.ndarray, np.ndarray],
    part: public.PartWriter,
) -> list[Path]:
    """One ``drivers_<year>.nc`` part per year of ``cfg`` (resumable through ``part``)."""
    if isinstance(mapping, Era5Mapping):
        return public.year_parts(
            cfg.drivers, cfg.year_range, inputs, mapping, grid, cells, part, pft=pft
        )
    driver_dir = inputs["drivers"].path
    parts = []
    for year in cfg.year_range:
        path = driver_dir / mapping.files.format(year=year)
        if not path.is_file():
            raise SchemaError(
                path,
                None,
                f"driver file for {year} not found (pattern {mapping.files!r} in {driver_dir})",
            )
        parts.append(
            part(
                f"drivers_{year}.nc",
                lambda p=path, y=year: year_part(p, mapping, y, grid, pft, cells),
            )
        )
    return parts


def tower_drivers(
    cfg: PrepareConfig,
    sites: xr.Dataset,
    towers: xr.Dataset,
    parts: list[Path],
    inputs: dict[str, Input] | None = None,
) -> xr.Dataset:
    """sites.nc's drivers with the tower's own meteorology where the source allows it.

    Public drivers with ``sites.tower_wai``: WAI from the tower's P_F, SW_IN_F and TA_F
    (:func:`fluxbridge.data.prepare.public.tower_wai`); with ``sites.modis_subsets``
    (the ``modis_subsets`` input): MODIS drivers from the towers' ORNL DAAC site subsets
    (:func:`fluxbridge.data.prepare.public.tower_modis`); otherwise ``sites`` unchanged.
    """
    if cfg.drivers.source == "public" and cfg.sites.tower_wai:
        sites = public.tower_wai(sites, towers, parts, cfg.drivers)
    if cfg.drivers.source == "public" and inputs and "modis_subsets" in inputs:
        sites = public.tower_modis(sites, parts, cfg.drivers, inputs["modis_subsets"].path)
    return sites
