"""The run's numbers: what metrics.json holds (key names documented in docs/run_layout.md).

Everything here combines the pure functions of :mod:`fluxbridge.evaluation.metrics`
over regional series, tower days and pixels; nothing computes a metric itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from fluxbridge.evaluation import metrics as m
from fluxbridge.evaluation.regional import GLOBAL, annual_totals


def json_float(x: float) -> float | None:
    """JSON-safe float (NaN → null), rounded to 6 significant digits for readability."""
    return None if not np.isfinite(x) else float(f"{x:.6g}")


def global_scores(
    monthly: xr.DataArray, models: Sequence[str], sink: xr.Dataset | None
) -> dict[str, object]:
    """Global annual NEE per model: mean ± member spread, vs residual sink, anomalies, IAV."""
    annual = annual_totals(monthly.sel(region=GLOBAL))
    years = annual["year"].values
    out: dict[str, object] = {"years": [int(y) for y in years]}
    sink_values = None
    if sink is not None:
        sink_values = sink["nee_global"].reindex(year=years).values
        out["residual_sink"] = {
            "annual_mean_pgc_yr": json_float(float(np.nanmean(sink_values))),
            "sigma_pgc_yr": json_float(float(np.nanmean(sink["nee_global_sigma"].values))),
            "iav_magnitude_pgc_yr": json_float(m.iav_magnitude(sink_values, years)),
        }
    for name in [*models, "inversion_mean", "reference", "truth"]:
        if name not in annual["source"].values:
            continue
        series = annual.sel(source=name).values
        entry: dict[str, object] = {
            "annual_pgc_yr": [json_float(v) for v in series],
            "annual_mean_pgc_yr": json_float(float(np.mean(series))),
            "detrended_anomalies_pgc_yr": [
                json_float(v) for v in m.detrended_anomalies(series, years)
            ],
            "iav_magnitude_pgc_yr": json_float(m.iav_magnitude(series, years)),
        }
        members = [s for s in annual["source"].values if str(s).startswith(f"{name}:")]
        if members:
            member_annual = annual.sel(source=members).values  # (member, year)
            entry["annual_mean_member_std_pgc_yr"] = json_float(
                float(np.std(member_annual.mean(axis=1)))
            )
            entry["iav_member_std_pgc_yr"] = json_float(
                float(np.std([m.iav_magnitude(row, years) for row in member_annual]))
            )
        if sink_values is not None:
            entry["rmse_vs_residual_sink_pgc_yr"] = json_float(m.rmse(series, sink_values))
            entry["r_vs_residual_sink"] = json_float(m.pearson_r(series, sink_values))
        out[name] = entry
    return out


def series_scores(sim: np.ndarray, obs: np.ndarray, months: np.ndarray) -> dict[str, float | None]:
    """Monthly, annual, MSC and ILAMB-style scores of one regional monthly series vs a reference."""
    complete = sim.size // 12 * 12
    sim_annual = sim[:complete].reshape(-1, 12).sum(axis=1)
    obs_annual = obs[:complete].reshape(-1, 12).sum(axis=1)
    sim_msc, obs_msc = m.mean_seasonal_cycle(sim, months), m.mean_seasonal_cycle(obs, months)
    return {
        "annual_r": json_float(m.pearson_r(sim_annual, obs_annual)),
        "annual_rmse_pgc_yr": json_float(m.rmse(sim_annual, obs_annual)),
        "monthly_r": json_float(m.pearson_r(sim, obs)),
        "monthly_rmse_pgc_month": json_float(m.rmse(sim, obs)),
        "msc_r": json_float(m.pearson_r(sim_msc, obs_msc)),
        "msc_rmse_pgc_month": json_float(m.rmse(sim_msc, obs_msc)),
        "nnse": json_float(m.nnse(sim, obs)),
        "ilamb_bias_score": json_float(m.ilamb_bias_score(sim, obs)),
        # uptake peak = NEE minimum, hence the sign flip (see ilamb_phase_score)
        "ilamb_phase_score": json_float(m.ilamb_phase_score(-sim_msc, -obs_msc)),
        "ilamb_iav_score": json_float(m.ilamb_iav_score(sim, obs, months)),
    }


def regional_scores(
    monthly: xr.DataArray, models: Sequence[str], reference: str = "inversion_mean"
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per region (GLOBAL included) and model: Tables 2–3 numbers and nNSE vs ``reference``."""
    months = monthly["time"].dt.month.values
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for region in monthly["region"].values:
        obs = monthly.sel(source=reference, region=region).values
        out[str(region)] = {
            name: series_scores(monthly.sel(source=name, region=region).values, obs, months)
            for name in [*models, "reference"]
            if name in monthly["source"].values
        }
    return out


def site_scores(predicted: np.ndarray, observed: np.ndarray, pft: np.ndarray) -> dict[str, object]:
    """RMSE (gC m-2 d-1) and R of daily tower NEE, overall and by majority PFT.

    ``predicted``/``observed`` are (site, time); ``pft`` is (site,). Gaps (NaN) are skipped.
    """

    def one(p: np.ndarray, o: np.ndarray) -> dict[str, float | int | None]:
        keep = np.isfinite(p) & np.isfinite(o)
        return {
            "rmse": json_float(m.rmse(p, o)),
            "r": json_float(m.pearson_r(p, o)),
            "n": int(keep.sum()),
        }

    result: dict[str, object] = one(predicted.ravel(), observed.ravel())
    result["by_pft"] = {
        str(k): one(predicted[pft == k].ravel(), observed[pft == k].ravel())
        for k in sorted(set(pft.tolist()))
    }
    return result


def pixel_correlation(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """Per-pixel Pearson R over time of two (time, lat, lon) fields (NaN where undefined)."""
    da, db = a - a.mean("time"), b - b.mean("time")
    num = (da * db).sum("time")
    den = np.sqrt((da**2).sum("time") * (db**2).sum("time"))
    return (num / den.where(den > 0)).assign_attrs(units="1", long_name="temporal Pearson R")


def area_weighted_median(values: xr.DataArray, weights: xr.DataArray) -> float:
    """Median of a map where each cell counts by its (land) area; NaNs skipped."""
    v = values.values.ravel()
    w = weights.values.ravel()
    keep = np.isfinite(v) & (w > 0)
    if not keep.any():
        return float("nan")
    order = np.argsort(v[keep])
    cum = np.cumsum(w[keep][order])
    return float(v[keep][order][np.searchsorted(cum, 0.5 * cum[-1])])
