"""`invoke evaluate`: regional series, metrics.json and the report of a run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
import xarray as xr

from fluxbridge import logs
from fluxbridge.bridge.fidelity import write_fidelity
from fluxbridge.data.canonical import DRIVER_NAMES, CanonicalDataset
from fluxbridge.errors import FluxbridgeError, SchemaError
from fluxbridge.evaluation import metrics as mt
from fluxbridge.evaluation import scores
from fluxbridge.evaluation.regional import annual_maps, land_area_weights, regional_monthly
from fluxbridge.evaluation.report import build_report
from fluxbridge.geo.grid import Grid
from fluxbridge.inference.forward import OUTSIDE_ATTR, current_forward
from fluxbridge.inference.members import load_members, model_dirs, run_dataset, trained_models
from fluxbridge.io import ENGINE
from fluxbridge.outputs import atomic_path, file_digest, stage_lock
from fluxbridge.parallel import run_tasks
from fluxbridge.plausibility import (
    MODEL_BOUNDS_PGC_YR,
    check_dataset,
    check_global_total,
    complete_years,
    filled_shares,
    opposite_signs,
)
from fluxbridge.schema import GRAMS_PER_PETAGRAM
from fluxbridge.training.run import ATM_YEARS_FILE

log = logs.get(__name__)


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


def model_maps(root: Path, forward_file: Path) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """A forward file's ensemble mean as its mean annual NEE map (gC m-2 yr-1) and its
    per-pixel temporal R against the inversion mean and against the reference field.

    Reads its own inputs (dataset ``root``), so it runs in-process or as a Dask task alike.
    """
    data = CanonicalDataset(root)
    with xr.open_dataset(forward_file, engine=ENGINE) as ds:
        mean = ds["nee_mean"].load()
    inv_mean = data.open("inversions")["nee"].mean("member")
    return (
        annual_maps(mean).mean("year"),
        scores.pixel_correlation(mean, inv_mean),
        scores.pixel_correlation(mean, data.open("reference")["nee"]),
    )


class TowerScores(NamedTuple):
    """Daily tower NEE (gC m-2 d-1): (site, time) predictions per model, observations, and the
    (site,) mask of towers without the scenario's bias."""

    predicted: dict[str, np.ndarray]
    observed: np.ndarray
    unbiased: np.ndarray


def unbiased_towers(sites: xr.Dataset) -> np.ndarray:
    """(site,) True for towers without the scenario's tower bias (``site_tropical`` ≠ 1);
    every tower when sites.nc has no ``site_tropical`` (real data)."""
    if "site_tropical" not in sites:
        return np.ones(sites.sizes["site"], dtype=bool)
    return sites["site_tropical"].values != 1


def held_out_years(run: Path, models: list[str]) -> dict[str, list[int]]:
    """Inversion years each model held out of its ATM term (fold_<k>/atm_years.json "val").

    Models without the files (EC, runs trained before they existed) are left out;
    folds of one model that disagree are an error naming both files.
    """
    dirs = model_dirs(run)
    out: dict[str, list[int]] = {}
    for model in models:
        found: dict[Path, list[int]] = {}
        for path in sorted(dirs[model].glob(f"fold_*/{ATM_YEARS_FILE}")):
            try:
                found[path] = sorted(int(y) for y in json.loads(path.read_text())["val"])
            except (ValueError, KeyError, TypeError) as err:
                raise FluxbridgeError(f"{path}: no list of years under key 'val' ({err})") from err
        if not found:
            continue
        (first, years), *others = found.items()
        for path, other in others:
            if other != years:
                raise FluxbridgeError(
                    f"{path}: held-out years {other} differ from {years} in {first}"
                )
        out[model] = years
    return out


def data_checks(
    data: CanonicalDataset,
    sites: xr.Dataset,
    forward: dict[str, Path],
    opposite_sign: dict[str, float],
) -> dict[str, object]:
    """What the scores leave out and where the models extrapolate (docs/plausibility.md).

    Tower-days with an NEE observation but a NaN driver (left out of training and of
    the tower scores); inversion months in years that are not complete in both the
    drivers and the inversions (left out of the ATM loss); per prepared product the
    share of land cell-months it left empty and prepare set to 0; and per model the
    cell-days of each driver outside the towers' range (recorded by forward); the models
    whose global NEE (PgC yr-1) has the opposite sign of the residual sink.
    """
    observed = np.isfinite(sites["nee_obs"].values)
    drivers_ok = np.all([np.isfinite(sites[n].values) for n in DRIVER_NAMES], axis=0)
    with data.open("drivers") as drivers, data.open("inversions") as inv:
        inv_months = pd.DatetimeIndex(inv["time"].values)
        years, months = complete_years(pd.DatetimeIndex(drivers["time"].values), inv_months)
    outside = {}
    for model, path in forward.items():
        with xr.open_dataset(path, engine=ENGINE) as ds:
            outside[model] = json.loads(str(ds.attrs.get(OUTSIDE_ATTR, "{}")))
    return {
        "tower_days_with_nee": int(observed.sum()),
        "tower_days_left_out_nan_driver": int((observed & ~drivers_ok).sum()),
        "inversion_months": months.total,
        "inversion_months_left_out": months.dropped,
        "atm_years": years,
        "inversion_years_left_out": sorted({int(y) for y in inv_months.year} - set(years)),
        "land_cell_months_filled_with_zero": filled_shares(data),
        "cell_days_outside_towers_range": outside,
        "models_opposite_sign_to_residual_sink": opposite_sign,
    }


def check_model_totals(
    data: CanonicalDataset, forward: dict[str, Path], allow: bool = False
) -> dict[str, float]:
    """Each model's annual global NEE (PgC yr-1, all land, + = source) within the models'
    plausible bounds, before anything is written; returns the models whose total has the
    opposite sign of the residual sink.

    Out of bounds is a units error and refused (unless ``allow``). The opposite sign is
    not: a forward output is the model under evaluation, not an input whose convention
    may be flipped (those are checked where they enter), and EC trained on towers biased
    towards sources is a net source; the report states it (docs/plausibility.md).
    """
    grid = data.grid_ds
    land_area = grid["cell_area"] * grid["land_fraction"]  # m2
    with data.open("residual_sink") as sink:
        residual = float(sink["nee_global"].mean())
    opposite = {}
    for model, path in forward.items():
        with xr.open_dataset(path, engine=ENGINE) as ds:
            nee = ds["nee_mean"]  # gC m-2 d-1, monthly means
            grams = (nee * land_area).sum(("lat", "lon")) * nee["time"].dt.days_in_month
            annual = float(grams.groupby("time.year").sum().mean()) / GRAMS_PER_PETAGRAM
        check_global_total(str(path), annual, MODEL_BOUNDS_PGC_YR, allow)
        if opposite_signs(annual, residual):
            log.warning(
                f"{path}: global NEE {annual:+.3g} PgC/yr has the opposite sign of the "
                f"residual sink ({residual:+.3g} PgC/yr); scored as it is"
            )
            opposite[model] = annual
    return opposite


def evaluate_run(
    run: Path, force: bool = False, dask: str | None = None, allow_implausible: bool = False
) -> dict[str, object]:
    """Compute every number of the run, write evaluation/ and report/, return metrics.

    A forward output that is missing, unreadable or made from another dataset or
    other checkpoints is refused; ``force`` recomputes it first.
    """
    data = CanonicalDataset(run_dataset(run))
    # one-against-many subset models have their own section (evaluation/sensitivity.py)
    models = [m for m in trained_models(run) if "-inv-" not in m]
    forward = {m: run / "forward" / f"{m}.nc" for m in models}
    for key in ("sites", "inversions", "reference", "residual_sink"):
        data.open(key).close()  # what is missing or malformed is named before any work
    check_dataset(data, top_down=True, allow=allow_implausible)
    digest = current_forward(run, data, models, force)
    opposite = check_model_totals(data, forward, allow_implausible)
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
    # dask: each source's regional series and each model's maps are tasks (bitwise the same)
    monthly = regional_monthly(data, forward, eval_dir / "regional_monthly.nc", dask=dask)
    sink = data.open("residual_sink")
    years = held_out_years(run, models)
    metrics: dict[str, object] = {
        "models": models,
        "global": scores.global_scores(monthly, models, sink),
        "regions": scores.regional_scores(monthly, [*models, "reference"]),
        "held_out_years": years,
        "regions_held_out_years": scores.held_out_regional_scores(monthly, years),
    }
    sites = data.open("sites")
    observed = sites["nee_obs"].values
    pft = majority_pft(data)
    predicted = {m: site_predictions(data, run, m) for m in models}
    metrics["sites"] = {m: scores.site_scores(predicted[m], observed, pft) for m in models}

    grid = data.grid_ds
    land_area = grid["cell_area"] * grid["land_fraction"]
    inv_mean = data.open("inversions")["nee"].mean("member")
    truth = data.open("truth") if data.has("truth") else None
    pixel_maps: dict[tuple[str, str], xr.DataArray] = {}
    mean_maps: dict[str, xr.DataArray] = {}  # mean annual NEE, gC m-2 yr-1
    metrics["pixels"] = {}
    root, paths = data.root.resolve(), {m: p.resolve() for m, p in forward.items()}
    maps = run_tasks(
        lambda m: model_maps(root, paths[m]),
        models,
        dask,
        desc="maps",
        unit="model",
        progress=False,
    )
    for m, (mean_maps[m], r_inv, r_ref) in zip(models, maps, strict=True):
        pixel_maps[m, "inversion mean"] = r_inv
        pixel_maps[m, "reference"] = r_ref
        metrics["pixels"][m] = {
            "median_r_vs_inversion_mean": scores.json_float(
                scores.area_weighted_median(r_inv, land_area)
            ),
            "median_r_vs_reference": scores.json_float(
                scores.area_weighted_median(r_ref, land_area)
            ),
        }
    mean_maps["inversion_mean"] = annual_maps(inv_mean).mean("year")
    if truth is not None:
        mean_maps["truth"] = annual_maps(truth["nee"]).mean("year")
        metrics["truth"] = truth_scores(
            data,
            monthly,
            forward,
            mean_maps,
            truth,
            TowerScores(predicted, observed, unbiased_towers(sites)),
            land_area,
        )
    if (run / "bridges.nc").exists():
        # the bridges on every trained model's map too (the "fields it never saw")
        write_fidelity(run, data.root, forward)
    metrics["data_checks"] = data_checks(data, sites, forward, opposite)
    metrics["inputs"] = {
        "dataset": digest,
        **{f"forward/{p.name}": file_digest(p) for p in forward.values()},
    }
    with atomic_path(eval_dir / "metrics.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1))
    build_report(
        run, data, monthly, metrics, forward, predicted, observed, pft, pixel_maps, mean_maps, sink
    )
    return metrics


def truth_scores(
    data: CanonicalDataset,
    monthly: xr.DataArray,
    forward: dict[str, Path],
    mean_maps: dict[str, xr.DataArray],
    truth: xr.Dataset,
    towers: TowerScores,
    land_area: xr.DataArray,
) -> dict[str, object]:
    """Twin world only: every model's and the inversion mean's error against the known truth.

    ``mean_maps`` holds the mean annual NEE map (gC m-2 yr-1) of each source and the truth,
    ``land_area`` each cell's land area (m²); tower scores (gC m-2 d-1) exist for
    the models only.
    """
    weights = land_area_weights(data)
    out: dict[str, object] = {}
    for name, mean_map in mean_maps.items():
        if name == "truth":
            continue
        entry = scores.truth_series_scores(monthly, name, mean_map, mean_maps["truth"], weights)
        if name == "inversion_mean":
            err = data.open("inversions")["nee"].mean("member") - truth["nee"]
        else:
            with xr.open_dataset(forward[name], engine=ENGINE) as ds:
                err = (ds["nee_mean"] - truth["nee"]).load()
        w = land_area.broadcast_like(err).where(np.isfinite(err))
        entry["pixel_monthly_rmse_gc_m2_d"] = scores.json_float(
            float(np.sqrt((err**2 * w).sum() / w.sum()))
        )
        if name in towers.predicted:
            predicted, unbiased = towers.predicted[name], towers.unbiased
            entry["site_rmse_vs_true_gc_m2_d"] = scores.json_float(
                mt.rmse(predicted, truth["site_nee"].values)
            )
            entry["site_rmse_vs_obs_unbiased_gc_m2_d"] = scores.json_float(
                mt.rmse(predicted[unbiased], towers.observed[unbiased])
            )
        out[name] = entry
    return out


def run_evaluate(
    run: Path, force: bool = False, dask: str | None = None, allow_implausible: bool = False
) -> int:
    """Entry point of `invoke evaluate`."""
    with stage_lock(run, "evaluate"):
        evaluate_run(run, force=force, dask=dask, allow_implausible=allow_implausible)
    log.info(f"wrote {run / 'evaluation' / 'metrics.json'} and {run / 'report' / 'index.html'}")
    return 0
