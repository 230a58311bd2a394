"""The twin's daily weather as ERA5 post-processed daily statistics (CDS NetCDF layout).

``era5/era5_daily_mean_<year>.nc`` holds ``t2m`` (K), ``ssrd`` (J m-2) and ``tp`` (m)
as the CDS dataset ``derived-era5-single-levels-daily-statistics`` (statistic
``daily_mean``) distributes them: the daily mean of the hourly values, so an
accumulation is the day's total / 24; coordinates ``valid_time``, ``latitude``
(descending) and ``longitude`` (0..360); float32. ``era5_land_sea_mask.nc`` holds
``lsm`` = the twin's land fraction. Names and units come from the shipped mapping
``era5_daily_statistics``.

This is not a lossless driver path: the twin's Table A2 drivers come from its own
weather and remote sensing, which the public-products path would rebuild from ERA5 +
MODIS (no MODIS-layout files are written). It lets the public ERA5 reader meet the twin:
what it reads back is the twin's Tair within float32 precision, and its Rg and rain.
Over the ocean (no twin weather) t2m is 273.15 K and ssrd, tp 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.data.prepare.mappings import Era5Mapping
from fluxbridge.io import write_netcdf

from .geography import Geography
from .raw_products import ACTION, shipped_mapping
from .scenario import Scenario
from .seasonal import Calendar
from .weather import daily_weather
from .world import BLOCK_CELLS, World

KELVIN = 273.15
ERA5_DIR = "era5"
HOURS_PER_DAY = 24.0


def twin_weather(scn: Scenario, geo: Geography) -> dict[str, np.ndarray]:
    """(day, cell) daily Tair (°C), Rg (MJ m-2 d-1) and rain (mm d-1) of the twin world.

    The same calls, streams and blocks as :meth:`World.block`, so the values are the
    twin's (Tair equals drivers.nc's Tair up to its float32 storage).
    """
    calendar = Calendar.for_years(scn.years[0], scn.years[1], scn.base_years)
    world = World(scn, geo, calendar)
    severity = scn.drought.severity if scn.drought else 0.0
    shape = (len(calendar.days), geo.n_cells)
    out = {name: np.empty(shape, np.float32) for name in ("tair", "rg", "rain")}
    for index in range(world.n_blocks):
        start = index * BLOCK_CELLS
        sel = slice(start, min(start + BLOCK_CELLS, geo.n_cells))
        wx = daily_weather(
            world.climate.take(sel), world.noise, calendar, world.drought_days, severity
        )
        for name in out:
            out[name][:, sel] = wx[name]
    return out


def write_era5(
    scn: Scenario, geo: Geography, folder: Path, weather: dict[str, np.ndarray] | None = None
) -> None:
    """ERA5 daily-statistics files, one a year, and the land-sea mask (see the module doc).

    ``weather``: :func:`twin_weather` of ``scn`` and ``geo`` when the caller has it already.
    """
    layout: Era5Mapping = shipped_mapping(Era5Mapping, "era5_daily_statistics")
    read = layout.read
    if weather is None:
        weather = twin_weather(scn, geo)
    days = pd.date_range(f"{scn.years[0]}-01-01", f"{scn.years[1]}-12-31", freq="D")
    grid = geo.grid
    lat_desc = grid.lat[::-1]
    lon360 = np.mod(grid.lon, 360.0)
    order = np.argsort(lon360)
    folder.mkdir(parents=True)
    fill = {"tair": KELVIN, "rg": 0.0, "rain": 0.0}
    # daily mean of the hourly values: K; J m-2 per hour; m per hour
    convert = {
        "tair": lambda v: v + KELVIN,
        "rg": lambda v: v * 1e6 / HOURS_PER_DAY,
        "rain": lambda v: v / 1e3 / HOURS_PER_DAY,
    }
    spec = {"tair": read.tair, "rg": read.rg, "rain": read.precip}

    def gridded(values: np.ndarray, name: str) -> np.ndarray:
        field = np.full((values.shape[0], *grid.shape), fill[name])
        # float64 before the offset: 273.15 in float32 alone is 6e-6 K off
        field[:, geo.cell_ilat, geo.cell_ilon] = convert[name](values.astype(np.float64))
        return field[:, ::-1, :][:, :, order].astype(np.float32)

    for year in np.unique(days.year):
        sel = np.flatnonzero(days.year == year)
        ds = xr.Dataset(
            {
                spec[name].variable: (
                    ("valid_time", "latitude", "longitude"),
                    gridded(weather[name][sel], name),
                    {"units": spec[name].units[0]},
                )
                for name in spec
            },
            coords={
                "valid_time": (
                    "valid_time",
                    ((days[sel] - pd.Timestamp("1970-01-01")) / pd.Timedelta(seconds=1)).to_numpy(),
                    {"units": "seconds since 1970-01-01", "calendar": "proleptic_gregorian"},
                ),
                "latitude": lat_desc,
                "longitude": lon360[order],
            },
        )
        name = layout.files.replace("{year}*", f"{year}.nc")
        write_netcdf(ds, folder / name, action=ACTION)
    lsm = geo.land_fraction[::-1, :][:, order]
    mask = xr.Dataset(
        {layout.land_sea_mask.variable: (("latitude", "longitude"), lsm, {"units": "(0 - 1)"})},
        coords={"latitude": lat_desc, "longitude": lon360[order]},
    )
    write_netcdf(mask, folder / layout.land_sea_mask.files.replace("*", ".nc"), action=ACTION)
