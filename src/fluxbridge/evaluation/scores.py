"""The run's numbers: what metrics.json holds (key names documented in docs/run_layout.md).

Everything here combines the pure functions of :mod:`fluxbridge.evaluation.metrics`
over regional series, tower days and pixels; nothing computes a metric itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import xarray as xr

from fluxbridge.data.canonical import TROPICAL_REGIONS
from fluxbridge.evaluation import metrics as m
from fluxbridge.evaluation.regional import AGGREGATES, GLOBAL, NO_REGION, annual_totals


def json_float(x: float) -> float | None:
    """JSON-safe float (NaN → null), rounded to 6 significant digits for readability."""
    return None if not np.isfinite(x) else float(f"{x:.6g}")


def global_scores(
    monthly: xr.DataArray, models: Sequence[str], sink: xr.Dataset | None
) -> dict[str, object]:
    """Global (Σ regions) annual NEE per source: mean ± member spread, vs residual sink,
    anomalies, their R² with the inversion mean and the truth, IAV; and the NO_REGION mean."""
    annual = annual_totals(monthly.sel(region=GLOBAL))
    no_region = annual_totals(monthly.sel(region=NO_REGION)).mean("year")
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
    present = set(annual["source"].values.tolist())
    sources = [n for n in [*models, "inversion_mean", "reference", "truth"] if n in present]
    for name in sources:
        series = annual.sel(source=name).values
        entry: dict[str, object] = {
            "annual_pgc_yr": [json_float(v) for v in series],
            "annual_mean_pgc_yr": json_float(float(np.mean(series))),
            "detrended_anomalies_pgc_yr": [
                json_float(v) for v in m.detrended_anomalies(series, years)
            ],
            "iav_magnitude_pgc_yr": json_float(m.iav_magnitude(series, years)),
            "no_region_annual_mean_pgc_yr": json_float(float(no_region.sel(source=name))),
        }
        for other in ("inversion_mean", "truth"):
            if other in sources and other != name:
                entry[f"anomaly_r2_vs_{other}"] = json_float(
                    m.anomaly_r2(series, annual.sel(source=other).values, years)
                )
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
    monthly: xr.DataArray, names: Sequence[str], reference: str = "inversion_mean"
) -> dict[str, dict[str, dict[str, float | None]]]:
    """Per region (GLOBAL, NO_REGION included) and source in ``names`` present in ``monthly``:
    Tables 2–3 numbers and nNSE vs ``reference``."""
    months = monthly["time"].dt.month.values
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for region in monthly["region"].values:
        obs = monthly.sel(source=reference, region=region).values
        out[str(region)] = {
            name: series_scores(monthly.sel(source=name, region=region).values, obs, months)
            for name in names
            if name in monthly["source"].values
        }
    return out


def held_out_regional_scores(
    monthly: xr.DataArray, years: dict[str, list[int]], reference: str = "inversion_mean"
) -> dict[str, dict[str, dict[str, float | None]]]:
    """:func:`regional_scores` of each model on its own held-out years alone (complete years)."""
    full = set(int(y) for y in annual_totals(monthly)["year"].values)
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for model, held_out in years.items():
        keep = monthly["time"].dt.year.isin(sorted(full & set(held_out)))
        scored = regional_scores(monthly.sel(time=keep), [model], reference)
        for region, entry in scored.items():
            out.setdefault(region, {}).update(entry)
    return out


def region_groups(regions: Sequence[str]) -> dict[str, list[str]]:
    """The dataset's regions split into ``tropical`` (TROPICAL_REGIONS) and ``extratropical``."""
    single = [r for r in regions if r not in AGGREGATES]
    return {
        "tropical": [r for r in single if r in TROPICAL_REGIONS],
        "extratropical": [r for r in single if r not in TROPICAL_REGIONS],
    }


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def truth_series_scores(
    monthly: xr.DataArray,
    name: str,
    mean_map: xr.DataArray,
    truth_map: xr.DataArray,
    weights: xr.DataArray,
) -> dict[str, object]:
    """Twin world: the regional-series and map scores of source ``name`` against ``truth``.

    ``monthly`` is nee(source, region, time) in PgC month-1 holding ``name`` and
    ``truth``; ``mean_map``/``truth_map`` are mean annual NEE (lat, lon) in
    gC m-2 yr-1; ``weights`` is (region, lat, lon) land area in m² (see
    :func:`fluxbridge.evaluation.regional.land_area_weights`). Key names are
    documented in docs/run_layout.md.
    """
    annual = annual_totals(monthly)
    years = annual["year"].values
    regions = [str(r) for r in monthly["region"].values]
    single = [r for r in regions if r not in AGGREGATES]

    def series(frame: xr.DataArray, source: str, region: str) -> np.ndarray:
        return frame.sel(source=source, region=region).values

    annual_rmse = {r: m.rmse(series(annual, name, r), series(annual, "truth", r)) for r in regions}
    monthly_rmse = {
        r: m.rmse(series(monthly, name, r), series(monthly, "truth", r)) for r in regions
    }
    spatial_r = {
        r: m.within_region_spatial_r(
            mean_map.values, truth_map.values, weights.sel(region=r).values
        )
        for r in single
    }
    iav = {
        r: m.iav_ratio(series(annual, name, r), series(annual, "truth", r), years) for r in single
    }

    def contributions(source: str) -> np.ndarray:
        anomalies = [m.detrended_anomalies(series(annual, source, r), years) for r in single]
        return m.variance_contributions(np.array(anomalies))

    excess = contributions(name) - contributions("truth")
    glob_sim, glob_truth = series(annual, name, GLOBAL), series(annual, "truth", GLOBAL)
    out: dict[str, object] = {
        "global_annual_bias_pgc_yr": m.bias(glob_sim, glob_truth),
        "global_annual_rmse_pgc_yr": m.rmse(glob_sim, glob_truth),
        "regional_annual_rmse_pgc_yr": annual_rmse,
        "regional_monthly_rmse_pgc_month": monthly_rmse,
    }
    for group, members in region_groups(regions).items():
        out[f"{group}_annual_rmse_pgc_yr"] = _mean([annual_rmse[r] for r in members])
        out[f"{group}_monthly_rmse_pgc_month"] = _mean([monthly_rmse[r] for r in members])
    finite_r = [v for v in spatial_r.values() if np.isfinite(v)]
    out |= {
        "within_region_spatial_r": spatial_r,
        "within_region_spatial_r_median": float(np.median(finite_r)) if finite_r else float("nan"),
        "iav_ratio_global": m.iav_ratio(glob_sim, glob_truth, years),
        "iav_ratio": iav,
        "iav_excess_variance_by_region_pgc2_yr2": dict(zip(single, excess, strict=True)),
        "no_region_annual_pgc_yr": float(np.mean(series(annual, name, NO_REGION))),
    }
    return _json(out)


def _json(value: object) -> object:
    """Nested dicts of floats → the same with :func:`json_float` applied to every float."""
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return json_float(float(value))


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
