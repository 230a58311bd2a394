"""`invoke evaluate`: regional series, metrics.json and the report of a run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from fluxbridge.data.canonical import DRIVER_NAMES, CanonicalDataset
from fluxbridge.errors import FluxbridgeError, SchemaError
from fluxbridge.evaluation import metrics as mt
from fluxbridge.evaluation import scores
from fluxbridge.evaluation.regional import GLOBAL, annual_totals, regional_monthly
from fluxbridge.evaluation.report import build_report
from fluxbridge.geo.grid import Grid
from fluxbridge.inference.members import load_members, run_dataset, trained_models
from fluxbridge.io import ENGINE, atomic_path


def site_predictions(data: CanonicalDataset, run: Path, model: str) -> np.ndarray:
    """Daily NEE (site, time) at the towers, each site predicted by the member that held it out."""
    sites = data.open("sites")
    members = load_members(run, model)
    folds = sites["fold"].values
    x = np.stack([sites[name].values for name in DRIVER_NAMES], axis=-1).astype(np.float32)
    out = np.full((*folds.shape, sites.sizes["time"]), np.nan, dtype=np.float32)
    with torch.inference_mode():
        for fold, net in members.items():
            rows = folds == fold
            if rows.any():
                out[rows] = net(torch.from_numpy(x[rows])).numpy()
    return out


def majority_pft(data: CanonicalDataset) -> np.ndarray:
    """Majority PFT of the grid cell under each tower (the paper's Fig. 8/C2 grouping)."""
    sites = data.open("sites")
    grid = data.grid_ds
    frac = grid["pft_fraction"].sel(
        lat=xr.DataArray(sites["site_lat"].values, dims="site"),
        lon=xr.DataArray(sites["site_lon"].values, dims="site"),
        method="nearest",
    )
    return np.asarray(grid["pft"].values)[frac.argmax("pft").values].astype(str)


def evaluate_run(run: Path) -> dict[str, object]:
    """Compute every number of the run, write evaluation/ and report/, return metrics."""
    data = CanonicalDataset(run_dataset(run))
    # one-against-many subset models have their own section (evaluation/sensitivity.py)
    models = [m for m in trained_models(run) if "-inv-" not in m]
    forward = {m: run / "forward" / f"{m}.nc" for m in models}
    missing = [str(p) for p in forward.values() if not p.exists()]
    if missing:
        raise FluxbridgeError(
            f"{run}: forward output missing ({', '.join(missing)}); "
            "run `invoke forward --run RUN` first"
        )
    for path in forward.values():
        with xr.open_dataset(path, engine=ENGINE) as ds:
            if not Grid.from_dataset(ds, path).same_as(data.grid):
                raise SchemaError(
                    path,
                    "lat/lon",
                    f"grid differs from {data.path('grid')}; rerun `invoke forward` on it",
                )
    eval_dir = run / "evaluation"
    eval_dir.mkdir(parents=True, exist_ok=True)
    monthly = regional_monthly(data, forward, eval_dir / "regional_monthly.nc")
    sink = data.open("residual_sink")
    metrics: dict[str, object] = {
        "models": models,
        "global": scores.global_scores(monthly, models, sink),
        "regions": scores.regional_scores(monthly, models),
    }
    sites = data.open("sites")
    observed = sites["nee_obs"].values
    pft = majority_pft(data)
    predicted = {m: site_predictions(data, run, m) for m in models}
    metrics["sites"] = {m: scores.site_scores(predicted[m], observed, pft) for m in models}

    grid = data.grid_ds
    land_area = grid["cell_area"] * grid["land_fraction"]
    inv_mean = data.open("inversions")["nee"].mean("member")
    reference = data.open("reference")["nee"]
    truth = data.open("truth") if data.has("truth") else None
    pixel_maps = {}
    metrics["pixels"] = {}
    for m in models:
        with xr.open_dataset(forward[m], engine=ENGINE) as ds:
            mean = ds["nee_mean"].load()
        r_inv = scores.pixel_correlation(mean, inv_mean)
        r_ref = scores.pixel_correlation(mean, reference)
        pixel_maps[f"{m} vs inversion mean"] = r_inv
        pixel_maps[f"{m} vs reference"] = r_ref
        metrics["pixels"][m] = {
            "median_r_vs_inversion_mean": scores.json_float(
                scores.area_weighted_median(r_inv, land_area)
            ),
            "median_r_vs_reference": scores.json_float(
                scores.area_weighted_median(r_ref, land_area)
            ),
        }
    if truth is not None:
        metrics["truth"] = truth_scores(monthly, models, forward, truth, predicted, land_area)
    with atomic_path(eval_dir / "metrics.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1))
    build_report(run, data, monthly, metrics, forward, predicted, observed, pft, pixel_maps, sink)
    return metrics


def truth_scores(
    monthly: xr.DataArray,
    models: list[str],
    forward: dict[str, Path],
    truth: xr.Dataset,
    predicted: dict[str, np.ndarray],
    land_area: xr.DataArray,
) -> dict[str, object]:
    """Twin world only: every model's error against the known truth."""
    annual = annual_totals(monthly.sel(region=GLOBAL))
    out: dict[str, object] = {}
    site_true = truth["site_nee"].values
    for m in models:
        with xr.open_dataset(forward[m], engine=ENGINE) as ds:
            err = ds["nee_mean"] - truth["nee"]
            weights = land_area.broadcast_like(err).where(np.isfinite(err))
            pixel_rmse = float(np.sqrt((err**2 * weights).sum() / weights.sum()))
        out[m] = {
            "global_annual_bias_pgc_yr": scores.json_float(
                mt.bias(annual.sel(source=m).values, annual.sel(source="truth").values)
            ),
            "global_annual_rmse_pgc_yr": scores.json_float(
                mt.rmse(annual.sel(source=m).values, annual.sel(source="truth").values)
            ),
            "regional_monthly_rmse_pgc_month": {
                str(r): scores.json_float(
                    mt.rmse(
                        monthly.sel(source=m, region=r).values,
                        monthly.sel(source="truth", region=r).values,
                    )
                )
                for r in monthly["region"].values
            },
            "pixel_monthly_rmse_gc_m2_d": scores.json_float(pixel_rmse),
            "site_rmse_vs_true_gc_m2_d": scores.json_float(mt.rmse(predicted[m], site_true)),
        }
    return out


def run_evaluate(run: Path) -> int:
    """Entry point of `invoke evaluate`."""
    evaluate_run(run)
    print(f"wrote {run / 'evaluation' / 'metrics.json'} and {run / 'report' / 'index.html'}")
    return 0
