"""Monthly anomalies, interannual variability and event (drought) maps.

* Monthly anomaly: the value of a month minus the multi-year mean of the same
  calendar month over the analysis period (the paper's "normal values minus the
  multi-year mean values").
* IAV: sample standard deviation (ddof = 1) of the annual totals across years.
* Event anomaly of a field: mean over the event months of the event year minus
  the mean over the same months of every year of the period.
* Event z-score of an ancillary variable: the event-months mean of each year,
  then (x_event_year − mean over years) / std over years (ddof = 1).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from fluxbridge.errors import ConfigError


def monthly_anomalies(monthly: xr.DataArray) -> xr.DataArray:
    """``monthly`` (..., time) minus its mean seasonal cycle, same units."""
    clim = monthly.groupby("time.month").mean("time")
    return (monthly.groupby("time.month") - clim).drop_vars("month")


def interannual_variability(annual: xr.DataArray) -> xr.DataArray:
    """Std across ``year`` (ddof = 1) of annual totals; NaN with fewer than two years."""
    if annual.sizes["year"] < 2:
        return xr.full_like(annual.isel(year=0, drop=True), np.nan)
    return annual.std("year", ddof=1)


def _event_season(field: xr.DataArray, months: list[int]) -> xr.DataArray:
    """Mean over ``months`` of each year: (..., time) → (..., year)."""
    sel = field.where(field["time.month"].isin(months), drop=True)
    if sel.sizes["time"] == 0:
        raise ConfigError(f"anomalies.event_months {months}: no such month in the data")
    return sel.groupby("time.year").mean("time")


def _require_year(season: xr.DataArray, year: int) -> None:
    years = [int(y) for y in season["year"].values]
    if year not in years:
        raise ConfigError(f"anomalies.event_year: {year} is outside the analysed years {years}")


def event_anomaly(field: xr.DataArray, year: int, months: list[int]) -> xr.DataArray:
    """Event-months mean of ``year`` minus the multi-year event-months mean (same units)."""
    season = _event_season(field, months)
    _require_year(season, year)
    return season.sel(year=year, drop=True) - season.mean("year")


def event_zscore(field: xr.DataArray, year: int, months: list[int]) -> xr.DataArray:
    """z-score of the event-months mean of ``year`` among all years' event-months means."""
    season = _event_season(field, months)
    _require_year(season, year)
    std = season.std("year", ddof=1)
    z = (season.sel(year=year, drop=True) - season.mean("year")) / std.where(std > 0)
    z.attrs = {"units": "1", "long_name": f"z-score of the {months} mean of {year}"}
    return z
