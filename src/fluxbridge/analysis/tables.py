"""Every number of the report, as labelled tables (one Dataset per output file).

Inputs are an :class:`~fluxbridge.analysis.ensemble.Ensemble` (NEE, positive =
source); every table states NBP = −NEE (positive = sink), as He et al. do.
Units: maps in gC m-2 yr-1 (annual) or gC m-2 month-1 (peak season, mean
month); regional numbers in PgC yr-1, PgC month-1.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from fluxbridge.analysis.anomalies import (
    event_anomaly,
    event_zscore,
    interannual_variability,
    monthly_anomalies,
)
from fluxbridge.analysis.consistency import msc_consistency, msc_correlation
from fluxbridge.analysis.ensemble import Ensemble, monthly_to_annual_nbp_map
from fluxbridge.analysis.seasonal import monthly_climatology, msc_metrics
from fluxbridge.analysis.stats import PRODUCT_DIM, group_stats
from fluxbridge.data.canonical import (
    ANNUAL_FLUX_UNITS,
    ANNUAL_INTEGRAL_UNITS,
    MONTHLY_FLUX_UNITS,
    MONTHLY_INTEGRAL_UNITS,
    NEE_UNITS,
    carbon_long_name,
)
from fluxbridge.errors import ConfigError

NBP_ATTRS = {"positive": "sink (NBP = -NEE)"}


def _with_group_stats(per_product: xr.DataArray, name: str) -> xr.Dataset:
    """``name`` per product plus ``<name>_median``/``_std``/``_n`` per group."""
    stats = group_stats(per_product)
    ds = xr.Dataset({name: per_product})
    for key in ("median", "std", "n"):
        ds[f"{name}_{key}"] = stats[key]
    for var in ds.data_vars:
        if not var.endswith("_n"):
            ds[var].attrs.update(NBP_ATTRS)
    return ds


def _mask_outside(ens: Ensemble, da: xr.DataArray) -> xr.DataArray:
    return da.where(ens.domain_mask)


def annual_maps(ens: Ensemble) -> xr.Dataset:
    """Mean annual NBP map per product and group (median, std), gC m-2 yr-1 (Fig. 3)."""
    mean = monthly_to_annual_nbp_map(ens.nee).mean("year")
    mean.attrs = {"units": ANNUAL_FLUX_UNITS, "long_name": carbon_long_name("mean annual NBP")}
    return _with_group_stats(_mask_outside(ens, mean), "nbp")


def peak_maps(ens: Ensemble, months: list[int]) -> xr.Dataset:
    """Mean peak-season NBP map, gC m-2 month-1 (mean over the peak months and years, Fig. 5)."""
    days = ens.nee["time"].dt.days_in_month.astype(np.float64)
    peak = (-(ens.nee * days)).where(ens.nee["time.month"].isin(months), drop=True)
    mean = peak.mean("time", skipna=False)
    mean.attrs = {
        "units": MONTHLY_FLUX_UNITS,
        "long_name": carbon_long_name(f"mean NBP of months {months}"),
    }
    return _with_group_stats(_mask_outside(ens, mean), "nbp")


def regional_monthly_nbp(ens: Ensemble) -> xr.DataArray:
    """(product, region, time) NBP, PgC month-1, positive = sink."""
    nbp = -ens.regional_nee()
    nbp.attrs = {
        "units": MONTHLY_INTEGRAL_UNITS,
        "long_name": carbon_long_name("regional NBP"),
        **NBP_ATTRS,
    }
    return nbp


def annual_totals(monthly: xr.DataArray) -> xr.Dataset:
    """Annual NBP per product, region and year; means over years; IAV (Fig. 9).

    ``nbp`` (product, region, year) PgC yr-1 with group median/std per year;
    ``nbp_mean`` (product, region) multi-year mean with group median/std; ``iav``
    (product, region) std across years (ddof = 1).
    """
    annual = monthly.groupby("time.year").sum("time", skipna=False)
    annual.attrs = {"units": ANNUAL_INTEGRAL_UNITS, "long_name": carbon_long_name("annual NBP")}
    ds = _with_group_stats(annual, "nbp")
    mean = annual.mean("year")
    mean.attrs = {"units": ANNUAL_INTEGRAL_UNITS, "long_name": carbon_long_name("mean annual NBP")}
    ds = ds.merge(_with_group_stats(mean, "nbp_mean"), compat="override")
    iav = interannual_variability(annual)
    iav.attrs = {
        "units": ANNUAL_INTEGRAL_UNITS,
        "long_name": carbon_long_name("std of annual NBP across years (ddof=1)"),
    }
    return ds.merge(_with_group_stats(iav, "iav"), compat="override")


def contributions(monthly: xr.DataArray, months: list[int] | None = None) -> xr.Dataset:
    """Regional NBP and its share of the domain total (Figs. 4 and 6).

    Without ``months``: mean annual NBP, PgC yr-1. With ``months``: mean NBP of
    those months, PgC month-1. ``share`` = region / domain × 100 (%), where the
    domain is the first region.
    """
    if months is None:
        value = monthly.groupby("time.year").sum("time", skipna=False).mean("year")
        value.attrs = {
            "units": ANNUAL_INTEGRAL_UNITS,
            "long_name": carbon_long_name("mean annual NBP"),
        }
    else:
        value = monthly.where(monthly["time.month"].isin(months), drop=True).mean("time")
        value.attrs = {
            "units": MONTHLY_INTEGRAL_UNITS,
            "long_name": carbon_long_name(f"mean NBP of months {months}"),
        }
    share = 100.0 * value / value.isel(region=0)
    share.attrs = {"units": "%", "long_name": "share of the domain NBP"}
    return _with_group_stats(value, "nbp").merge(
        _with_group_stats(share, "share"), compat="override"
    )


def seasonal_cycles(monthly: xr.DataArray) -> xr.Dataset:
    """MSC per product and group and their derived numbers (Figs. 7–8).

    ``msc`` (product, region, month) PgC month-1; ``msc_median``/``msc_std`` per
    group; ``<metric>`` (product, region) and ``group_<metric>`` (group, region)
    computed from the group-median MSC.
    """
    msc = monthly_climatology(monthly)
    msc.attrs = {
        "units": MONTHLY_INTEGRAL_UNITS,
        "long_name": carbon_long_name("mean seasonal cycle of NBP"),
    }
    ds = _with_group_stats(msc, "msc")
    ds = ds.merge(msc_metrics(msc), compat="override")
    group_metrics = msc_metrics(ds["msc_median"])
    renamed = group_metrics.rename({k: f"group_{k}" for k in group_metrics.data_vars})
    return ds.merge(renamed, compat="override")


def anomaly_table(monthly: xr.DataArray) -> xr.Dataset:
    """Monthly NBP anomalies per product, group median and std (Fig. 10), PgC month-1."""
    anom = monthly_anomalies(monthly)
    anom.attrs = {
        "units": MONTHLY_INTEGRAL_UNITS,
        "long_name": carbon_long_name("NBP minus its mean for the calendar month over the period"),
    }
    return _with_group_stats(anom, "anomaly")


def event_maps(
    ens: Ensemble,
    group: str,
    year: int,
    months: list[int],
    ancillary: dict[str, xr.DataArray],
) -> xr.Dataset:
    """ΔNBP of the group-median NBP map and z-scores of ancillary fields (Fig. 11).

    ΔNBP: event-months mean of the median (across ``group``'s products) NBP in
    ``year`` minus its multi-year mean over the same months, gC m-2 d-1.
    """
    members = ens.nee.isel({PRODUCT_DIM: np.flatnonzero(ens.nee["product_group"].values == group)})
    if members.sizes[PRODUCT_DIM] == 0:
        raise ConfigError(
            f"anomalies.event_group: no product in group {group!r}; groups present: {ens.groups}"
        )
    median_nbp = -members.median(PRODUCT_DIM, skipna=False)
    out = xr.Dataset()
    out["delta_nbp"] = _mask_outside(ens, event_anomaly(median_nbp, year, months))
    out["delta_nbp"].attrs = {
        "units": NEE_UNITS,
        "long_name": carbon_long_name(
            f"NBP anomaly of the {group} median, months {months} of {year}"
        ),
        **NBP_ATTRS,
    }
    for name, field in ancillary.items():
        out[f"z_{name}"] = _mask_outside(ens, event_zscore(field, year, months))
        out[f"delta_{name}"] = _mask_outside(ens, event_anomaly(field, year, months))
        out[f"delta_{name}"].attrs = {
            "units": field.attrs.get("units", ""),
            "long_name": f"{name} anomaly, months {months} of {year}",
        }
    out.attrs.update(event_year=year, event_months=months, event_group=group)
    return out


def regional_mean_msc(ens: Ensemble, field: xr.DataArray) -> xr.DataArray:
    """MSC (region, month) of the land-area-weighted regional mean of an ancillary field."""
    w = ens.cell_area * ens.land_fraction * ens.region_fraction.drop_vars("partition")
    valid = field.notnull()
    num = (field.fillna(0.0) * w).sum(("lat", "lon"))
    den = (valid * w).sum(("lat", "lon"))
    return monthly_climatology(num / den.where(den > 0))


def consistency_table(
    ens: Ensemble, msc: xr.DataArray, ancillary: dict[str, xr.DataArray]
) -> xr.Dataset:
    """MSC spread and pairwise r per group and region; r of each MSC with SIF/LAI MSCs."""
    ds = msc_consistency(msc)
    for name in ("sif", "lai"):
        if name in ancillary:
            r = msc_correlation(msc, regional_mean_msc(ens, ancillary[name]))
            r.attrs["long_name"] = f"Pearson r of the NBP MSC with the regional {name} MSC"
            ds[f"r_{name}"] = r.assign_coords(
                product_group=(PRODUCT_DIM, msc["product_group"].values)
            )
    return ds
