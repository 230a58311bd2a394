"""The 10 Table A2 drivers (Upton et al.) from daily ERA5, MODIS, Rpot and WAI at land cells.

Three steps, each on one year or one variable at a time so that memory stays
bounded at 0.5° (the caller writes each result to a part file):

1. :func:`base_year` — the daily quantities whose seasonal cycles Table A2 uses,
   (time, cell) float32: ``EVI_Rg`` = EVI × Rg, ``FPAR_LST_Day`` = fAPAR ×
   LST_day, ``NDWI``, ``LST_Night``, ``NDVI_Rpot`` = NDVI × Rpot, ``NDVI``,
   ``WAI``, ``Band4``, plus the daily ERA5 ``Tair``, ``Rg`` and ``Precip``;
2. :func:`mean_seasonal_cycle` — per variable, the mean over the MSC years
   (Table A2: 2001–2012) of each day-of-year slot (365 slots; 29 February
   shares 28 February's slot, as the twin world), optionally smoothed by a
   circular running mean; slots without any valid value are filled by circular
   linear interpolation between the cell's valid slots, and cells with no
   valid slot at all take the mean cycle of the land cells that have one (logged);
3. :func:`compose_year` — the drivers of one year in canonical order and units.

Definitions (canonical.py's descriptions; the twin world uses the same):

| driver | here |
|---|---|
| WAI2 | daily WAI (mm) |
| MSC_EVIRpot | MSC(EVI × Rg) — Table A2's formula; the name says Rpot |
| MSC_FparLST | MSC(fAPAR × LST_day) (K) |
| MIN_MSC_NDWI | min over slots of MSC(NDWI), every day |
| AMP_Band4 | max − min of the monthly means of Band4 within the calendar year; the
  amplitude of MSC(Band4) when fewer than 6 months of the year have data |
| MSC_LST_Night | MSC(LST_night) (K) |
| Rg_VIMSC | MSC(NDVI × Rpot) |
| AMP_MSC_NDVI | max − min of MSC(NDVI), every day |
| Tair | daily mean air temperature (°C) |
| AMP_MSC_WAI | max − min of MSC(WAI), every day |

The MODIS fields come as cell means over all land cover, or, with MCD12C1 land
cover, per (PFT, cell) pair; then :mod:`.modis_pft` runs these steps per pair and
recombines the drivers with the PFT fractions (docs/modis.md "Per-PFT drivers").
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import xarray as xr
from numpy.typing import ArrayLike

from fluxbridge.data.canonical import DRIVERS

log = logging.getLogger(__name__)

N_SLOTS = 365
#: The daily quantities whose mean seasonal cycle the drivers use.
MSC_INPUTS: tuple[str, ...] = (
    "EVI_Rg",
    "FPAR_LST_Day",
    "NDWI",
    "LST_Night",
    "NDVI_Rpot",
    "NDVI",
    "WAI",
    "Band4",
)
#: Months of data a year needs for its own AMP_Band4.
MIN_MONTHS_FOR_AMPLITUDE = 6
MODIS_VARIABLES = ("EVI", "NDVI", "NDWI", "Band4", "LST_Day", "LST_Night", "FPAR")


def day_slots(days: pd.DatetimeIndex) -> np.ndarray:
    """Day-of-year slot 0..364 of each day; 29 February shares 28 February's slot (58)."""
    doy = days.day_of_year.to_numpy() - 1
    late_leap = days.is_leap_year & (doy >= 59)
    return np.where(late_leap, doy - 1, doy).astype(np.int64)


def at_cells(da: xr.DataArray, cells: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(time, cell) float32 values of a (time, lat, lon) array (dask or not) at ``cells``."""
    ilat = xr.DataArray(cells[0], dims="cell")
    ilon = xr.DataArray(cells[1], dims="cell")
    return np.asarray(da.isel(lat=ilat, lon=ilon).transpose("time", "cell").values, np.float32)


def _modis_at(da: xr.DataArray, cells: tuple[np.ndarray, np.ndarray] | None) -> np.ndarray:
    """(time, cell) float32: a (time, lat, lon) field at ``cells``, or a field already on
    one non-time dimension (the per-PFT pairs of modis_daily) as it is."""
    if "lat" in da.dims:
        assert cells is not None
        return at_cells(da, cells)
    return np.asarray(da.values, np.float32)


def base_year(
    era5: xr.Dataset,
    modis: xr.Dataset,
    rpot: np.ndarray,
    wai: np.ndarray,
    cells: tuple[np.ndarray, np.ndarray] | None,
) -> xr.Dataset:
    """One year of the daily base quantities (time, cell) float32.

    ``era5``: (time, cell) ``tair`` °C, ``rg`` MJ m-2 d-1, ``precip`` mm d-1
    (:func:`.era5.era5_daily`);
    ``modis``: (time, lat, lon) on the canonical grid with :data:`MODIS_VARIABLES`
    (:func:`.modis.modis_daily`), NaN where no valid data, or (time, pair) per-PFT fields
    with everything else given at the pairs (``cells`` None; :mod:`.modis_pft`);
    ``rpot`` (time, cell) MJ m-2 d-1; ``wai`` (time, cell) mm. All must have the same days.
    """
    days = pd.DatetimeIndex(era5["time"].values)
    missing = [v for v in MODIS_VARIABLES if v not in modis]
    if missing:
        raise ValueError(f"MODIS dataset lacks {missing}; expected {list(MODIS_VARIABLES)}")
    if not pd.DatetimeIndex(modis["time"].values).equals(days):
        raise ValueError("MODIS and ERA5 days differ; both must hold every day of the year")
    m = {v: _modis_at(modis[v], cells) for v in MODIS_VARIABLES}
    rg = era5["rg"].values.astype(np.float32)
    values = {
        "EVI_Rg": m["EVI"] * rg,
        "FPAR_LST_Day": m["FPAR"] * m["LST_Day"],
        "NDWI": m["NDWI"],
        "LST_Night": m["LST_Night"],
        "NDVI_Rpot": m["NDVI"] * rpot.astype(np.float32),
        "NDVI": m["NDVI"],
        "WAI": wai.astype(np.float32),
        "Band4": m["Band4"],
        "Tair": era5["tair"].values.astype(np.float32),
        # ERA5 at the cell: the gap filler of the towers' own meteorology (WAI at towers).
        "Rg": rg,
        "Precip": era5["precip"].values.astype(np.float32),
    }
    return xr.Dataset(
        {k: (("time", "cell"), v.astype(np.float32)) for k, v in values.items()},
        coords={"time": days},
    )


def mean_seasonal_cycle(
    years: Iterable[xr.DataArray], window: int = 1, name: str = "variable"
) -> np.ndarray:
    """MSC (365, cell) float32 of daily (time, cell) arrays, one per MSC year (NaN skipped)."""
    sums: np.ndarray | None = None
    counts: np.ndarray | None = None
    for da in years:
        slots = day_slots(pd.DatetimeIndex(da["time"].values))
        values = np.asarray(da.values, np.float64)
        if sums is None:
            sums = np.zeros((N_SLOTS, values.shape[1]))
            counts = np.zeros((N_SLOTS, values.shape[1]), np.int32)
        valid = np.isfinite(values)
        np.add.at(sums, slots, np.where(valid, values, 0.0))
        np.add.at(counts, slots, valid)
    if sums is None or counts is None:
        raise ValueError(f"{name}: no MSC year given")
    with np.errstate(invalid="ignore", divide="ignore"):
        cycle = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    cycle = fill_cycle_gaps(cycle, name)
    if window > 1:
        cycle = circular_running_mean(cycle, window)
    return cycle.astype(np.float32)


def fill_cycle_gaps(cycle: np.ndarray, name: str = "variable") -> np.ndarray:
    """Slots without data: circular linear interpolation within each cell; empty cells:
    the mean cycle of the cells with data (logged)."""
    out = cycle.copy()
    valid = np.isfinite(cycle)
    n_valid = valid.sum(axis=0)
    slots = np.arange(N_SLOTS, dtype=np.float64)
    for c in np.flatnonzero((n_valid > 0) & (n_valid < N_SLOTS)):
        have = np.flatnonzero(valid[:, c])
        out[:, c] = np.interp(slots, have.astype(np.float64), cycle[have, c], period=N_SLOTS)
    empty = n_valid == 0
    if empty.any():
        if empty.all():
            raise ValueError(f"{name}: no valid value in any cell and slot of the MSC years")
        out[:, empty] = np.nanmean(out[:, ~empty], axis=1)[:, None]
        log.warning(
            "%s: %d of %d land cells have no valid value in the MSC years; they take the "
            "mean cycle of the other land cells",
            name,
            int(empty.sum()),
            empty.size,
        )
    return out


def circular_running_mean(cycle: np.ndarray, window: int) -> np.ndarray:
    """Centred running mean of ``window`` slots over the circular year (first axis)."""
    half = window // 2
    padded = np.concatenate([cycle[-half:], cycle, cycle[: window - 1 - half]], axis=0)
    csum = np.cumsum(np.concatenate([np.zeros((1, *cycle.shape[1:])), padded]), axis=0)
    return (csum[window:] - csum[:-window]) / window


def annual_band4_amplitude(band4: xr.DataArray, band4_cycle: np.ndarray) -> np.ndarray:
    """AMP_Band4 (cell,) of one year: max − min of its monthly means (see module table)."""
    days = pd.DatetimeIndex(band4["time"].values)
    values = np.asarray(band4.values, np.float64)
    monthly = np.full((12, values.shape[1]), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN months and cells
        for month in range(1, 13):
            sel = values[days.month == month]
            if sel.size:
                monthly[month - 1] = np.nanmean(sel, axis=0)
        amp = np.nanmax(monthly, axis=0) - np.nanmin(monthly, axis=0)
    n_months = np.isfinite(monthly).sum(axis=0)
    fallback = band4_cycle.max(axis=0) - band4_cycle.min(axis=0)
    return np.where(n_months >= MIN_MONTHS_FOR_AMPLITUDE, amp, fallback)


def compose_year(base: xr.Dataset, cycles: Mapping[str, ArrayLike]) -> xr.Dataset:
    """The 10 drivers (time, cell) float32 of one year, in canonical order and units.

    ``base``: :func:`base_year` of the year; ``cycles``: :func:`mean_seasonal_cycle`
    of every name in :data:`MSC_INPUTS` — arrays, or lazily read ones (each is read
    when its driver is made, so not all cycles are held at once).
    """
    days = pd.DatetimeIndex(base["time"].values)
    slots = day_slots(days)
    n_days = days.size

    def cycle(name: str) -> np.ndarray:
        return np.asarray(cycles[name])

    def daily(name: str) -> np.ndarray:
        return cycle(name)[slots]

    def constant(values: np.ndarray) -> np.ndarray:
        return np.broadcast_to(values, (n_days, values.shape[-1]))

    def amp(name: str) -> np.ndarray:
        values = cycle(name)
        return constant(values.max(axis=0) - values.min(axis=0))

    values = {
        "WAI2": base["WAI"].values,
        "MSC_EVIRpot": daily("EVI_Rg"),
        "MSC_FparLST": daily("FPAR_LST_Day"),
        "MIN_MSC_NDWI": constant(cycle("NDWI").min(axis=0)),
        "AMP_Band4": constant(annual_band4_amplitude(base["Band4"], cycle("Band4"))),
        "MSC_LST_Night": daily("LST_Night"),
        "Rg_VIMSC": daily("NDVI_Rpot"),
        "AMP_MSC_NDVI": amp("NDVI"),
        "Tair": base["Tair"].values,
        "AMP_MSC_WAI": amp("WAI"),
    }
    return xr.Dataset(
        {
            d.name: (
                ("time", "cell"),
                np.ascontiguousarray(values[d.name], dtype=np.float32),
                {"units": d.units, "long_name": d.long_name},
            )
            for d in DRIVERS
        },
        coords={"time": days},
    )
