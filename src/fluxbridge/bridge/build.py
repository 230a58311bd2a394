"""``invoke bridges``: build every region's bridge model from a canonical dataset.

Per region (Upton et al. §3.3.1; choices in docs/bridges.md):

1. target: the region's monthly integral of the reference NEE (PgC month-1),
   Σ nee × cell_area × land_fraction × region_fraction × days × 1e-15 over all cells,
   divided by the days of the month in the per-day basis (PgC d-1, default);
2. candidates: land cells whose region_fraction exceeds ``majority_threshold``
   (cells with NaN or constant reference series cannot be candidates);
3. DTW distances between the candidates' monthly series → spectral clusters;
4. ``n_runs`` seeded runs: stratified random sample of candidates → threshold Lasso
   (support) → unshrunk refit with Σ w fixed by the region's land area, the reference's
   total over the months reproduced (``period_total``) and the weights shrunk towards
   the support's nearest-pixel area weights (``spatial_prior``) → k-fold CV R²; the
   bridge is the run with the best CV R² among those reaching the threshold;
   inclusion frequencies and a stability score summarise all runs;
5. fallback (with a :class:`BridgeFallbackWarning`) where no run reaches the
   threshold or the regression is ill-posed: the area-weighted sum of the usable
   candidates, scaled to the region's land area (``fallback="area_weighted_mean"``).

``intercept``, ``per_day`` and ``refit`` in :class:`BridgeConfig` restore the paper's
variant (true, false, none; ``period_total`` and ``spatial_prior`` act on the
constrained refit only).

Outputs in RUN: bridges.nc, bridges_summary.csv, bridges_config.yaml,
bridges_fidelity.csv (:mod:`fluxbridge.bridge.fidelity`), figures/.
An existing bridges.nc is kept when its ``inputs_sha256`` (grid.nc, reference.nc,
result-relevant config) matches; otherwise the ``overwrite`` policy decides.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from joblib import Parallel, delayed

from fluxbridge import logs
from fluxbridge.bridge.bridgeset import BridgeSet, RegionBridge, bridge_inputs
from fluxbridge.bridge.cluster import spectral_clusters, stratified_sample
from fluxbridge.bridge.dtw import dtw_distance_matrix
from fluxbridge.bridge.fidelity import write_fidelity
from fluxbridge.bridge.figures import fidelity_figure, write_figures
from fluxbridge.bridge.lasso import (
    FitSpec,
    SpatialPrior,
    cv_r2_lasso,
    fit_threshold_lasso,
    r2_fixed,
)
from fluxbridge.bridge.quadrature import RegionQuadrature, unit_vectors
from fluxbridge.config import from_mapping, load_yaml, to_mapping
from fluxbridge.data.canonical import open_canonical
from fluxbridge.errors import FluxbridgeError
from fluxbridge.geo.integrate import regional_integral_pgc
from fluxbridge.io import atomic_path, open_netcdf
from fluxbridge.outputs import INPUTS_ATTR, fingerprint, inputs_attr, stage_lock
from fluxbridge.parallel import run_tasks

log = logs.get(__name__)


class BridgeFallbackWarning(UserWarning):
    """A region's bridge is a documented fallback, not a threshold-reaching Lasso."""


@dataclass
class BridgeConfig:
    """Bridge-building settings (configs/bridges/default.yaml documents each)."""

    seed: int = 0
    r2_threshold: float = 0.95
    alpha_ratio: float = 0.85
    n_alphas: int = 100
    k_folds: int = 5
    n_runs: int = 50
    n_jobs: int = 2
    k_max_clusters: int = 8
    dtw_window: int | None = None
    max_dtw_pixels: int = 2000
    candidate_fraction: float = 0.5
    min_candidates: int = 10
    max_candidates: int = 100
    majority_threshold: float = 0.5
    min_pixels: int = 3
    intercept: bool = False
    per_day: bool = True
    refit: Literal["constrained", "none"] = "constrained"
    period_total: bool = True
    spatial_prior: float = 1.0
    figures: bool = True
    overwrite: Literal["never", "if_inputs_changed", "always"] = "if_inputs_changed"

    def __post_init__(self) -> None:
        checks = {
            "r2_threshold": 0.0 < self.r2_threshold <= 1.0,
            "alpha_ratio": 0.0 < self.alpha_ratio < 1.0,
            "n_alphas": self.n_alphas >= 1,
            "k_folds": self.k_folds >= 2,
            "n_runs": self.n_runs >= 1,
            "n_jobs": self.n_jobs >= 1 or self.n_jobs == -1,
            "k_max_clusters": self.k_max_clusters >= 2,
            "dtw_window": self.dtw_window is None or self.dtw_window >= 0,
            "max_dtw_pixels": self.max_dtw_pixels >= 3,
            "candidate_fraction": 0.0 < self.candidate_fraction <= 1.0,
            "min_candidates": self.min_candidates >= 1,
            "max_candidates": self.max_candidates >= self.min_candidates,
            "majority_threshold": 0.0 <= self.majority_threshold < 1.0,
            "min_pixels": self.min_pixels >= 2,
            "spatial_prior": self.spatial_prior >= 0.0,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"out of range: {', '.join(f'{k}={getattr(self, k)!r}' for k in bad)}")

    @property
    def spec(self) -> FitSpec:
        return FitSpec(
            intercept=self.intercept,
            per_day=self.per_day,
            refit=self.refit,
            period_total=self.period_total,
        )


@dataclass(frozen=True)
class RegionData:
    """One region's regression inputs on its usable candidate pixels."""

    abbr: str
    x: np.ndarray  # (months, pixels) reference NEE, gC m-2 d-1
    y: np.ndarray  # (months,) regional integral in the target basis, PgC d-1 or PgC month-1
    cells: np.ndarray  # canonical cell index of each pixel
    area_weights: np.ndarray  # weight units (PgC d-1 or month-1 per gC m-2 d-1); Σ = weight_sum
    n_pixels: int  # candidate cells before dropping NaN/constant series
    land_area: float  # m², the region's land area (all its cells)
    weight_sum: float  # Σ w of a bridge that passes a uniform offset through exactly
    days: np.ndarray  # (months,) days in each month
    quadrature: RegionQuadrature  # Voronoi weights of any subset of the pixels


@dataclass(frozen=True)
class RunResult:
    """One robustness run: contributing pixels (indices into RegionData columns)."""

    columns: np.ndarray
    weights: np.ndarray
    bias: float
    alpha: float
    r2_train: float
    r2_cv: float
    reached: bool


# -- inputs -----------------------------------------------------------------------------------


def load_config(config: Path | None) -> BridgeConfig:
    if config is None:
        return BridgeConfig()
    return from_mapping(BridgeConfig, load_yaml(config), str(config))


def inputs_hash(data: Path, cfg: BridgeConfig) -> str:
    """SHA-256 of grid.nc, reference.nc and the settings that change the bridges."""
    settings = {
        k: v for k, v in to_mapping(cfg).items() if k not in {"overwrite", "n_jobs", "figures"}
    }
    return fingerprint({"inputs": bridge_inputs(data), "settings": settings})


def region_inputs(cds_root: Path, cfg: BridgeConfig) -> tuple[list[RegionData], dict]:
    """Targets and candidate pixel series for every region, plus grid context."""
    cds = open_canonical(cds_root, validate=False)
    grid = cds.open("grid")
    ref = cds.open("reference")
    nee = ref["nee"].values.astype(np.float64)
    land_fraction = grid["land_fraction"].values
    land = land_fraction > 0
    area = grid["cell_area"].values * land_fraction
    rf = grid["region_fraction"].values
    days = ref["time"].dt.days_in_month.values.astype(np.float64)
    lat, lon = grid["lat"].values, grid["lon"].values
    if nee.shape[0] < max(cfg.k_folds, 3):
        raise FluxbridgeError(
            f"{cds.path('reference')}: {nee.shape[0]} months, need at least "
            f"max(k_folds={cfg.k_folds}, 3)"
        )
    spec = cfg.spec
    # NaN reference values on land count as zero (warned about below)
    targets = regional_integral_pgc(
        ref["nee"], grid["cell_area"], grid["land_fraction"], grid["region_fraction"], skipna=True
    ).values
    if spec.per_day:
        targets = targets / days
    cell_of = np.full(land.shape, -1, dtype=np.int64)
    cell_of[land] = np.arange(int(land.sum()))  # row-major order, as drivers.nc
    finite = np.isfinite(nee).all(axis=0)
    varies = np.ptp(np.nan_to_num(nee), axis=0) > 0
    if (land & ~finite).any():
        warnings.warn(
            f"{cds.path('reference')}: nee has NaN at {(land & ~finite).sum()} land cells; they "
            "count as zero in the regional targets and cannot be bridge pixels",
            BridgeFallbackWarning,
            stacklevel=2,
        )
    regions = []
    for r, abbr in enumerate(cds.region_abbrs):
        cand = land & (rf[r] > cfg.majority_threshold)
        if not cand.any():
            cand = land & (rf[r] > 0)
            if cand.any():
                warnings.warn(
                    f"region {abbr}: no land cell with region_fraction > "
                    f"{cfg.majority_threshold}; using its {cand.sum()} minority cells",
                    BridgeFallbackWarning,
                    stacklevel=2,
                )
        usable = cand & finite & varies
        iy, ix = np.nonzero(usable)
        region_area = float((area * rf[r]).sum())
        weight_sum = spec.weight_sum(region_area)
        w = area[iy, ix] * rf[r, iy, ix]
        cy, cx = np.nonzero(land & (rf[r] > 0))
        quad = RegionQuadrature(
            cell_xyz=unit_vectors(lat[cy], lon[cx]),
            cell_weight=area[cy, cx] * rf[r, cy, cx] * (weight_sum / region_area)
            if region_area > 0
            else np.zeros(cy.size),
            pixel_xyz=unit_vectors(lat[iy], lon[ix]),
        )
        regions.append(
            RegionData(
                abbr=abbr,
                x=nee[:, iy, ix],
                y=targets[r],
                cells=cell_of[iy, ix],
                area_weights=w * (weight_sum / w.sum()) if w.size else w,
                n_pixels=int(cand.sum()),
                land_area=region_area,
                weight_sum=weight_sum,
                days=days,
                quadrature=quad,
            )
        )
    context = {
        "lat": grid["lat"].values,
        "lon": grid["lon"].values,
        "cell_ilat": np.nonzero(land)[0],
        "cell_ilon": np.nonzero(land)[1],
        "n_cells": int(land.sum()),
        "pft_fraction": grid["pft_fraction"].values,
        "pft_names": [str(p) for p in grid["pft"].values]
        if "pft" in grid.coords
        else [str(i) for i in range(grid.sizes["pft"])],
        "land": land,
    }
    return regions, context


# -- one region -------------------------------------------------------------------------------


def _one_run(
    reg: RegionData,
    pool: np.ndarray,
    labels: np.ndarray,
    n_samples: int,
    cfg: BridgeConfig,
    seed: int,
) -> RunResult:
    rng = np.random.default_rng(seed)
    cand = pool[stratified_sample(labels, n_samples, rng)]
    x = reg.x[:, cand]
    prior = None
    if cfg.spatial_prior > 0 and cfg.refit == "constrained":
        prior = SpatialPrior(
            _memoised(lambda cols: reg.quadrature.weights(cand[cols])), cfg.spatial_prior
        )
    fit = fit_threshold_lasso(
        x,
        reg.y,
        threshold=cfg.r2_threshold,
        ratio=cfg.alpha_ratio,
        n_alphas=cfg.n_alphas,
        spec=cfg.spec,
        weight_sum=reg.weight_sum,
        days=reg.days,
        prior=prior,
    )
    return RunResult(
        columns=cand[fit.columns],
        weights=fit.weights,
        bias=fit.bias,
        alpha=fit.alpha,
        r2_train=fit.r2_train,
        r2_cv=cv_r2_lasso(
            x,
            reg.y,
            fit.alpha * cfg.alpha_ratio ** np.arange(cfg.n_alphas),
            cfg.k_folds,
            threshold=cfg.r2_threshold,
            spec=cfg.spec,
            weight_sum=reg.weight_sum,
            days=reg.days,
            prior=prior,
        ),
        reached=fit.reached,
    )


WeightsOf = Callable[[np.ndarray], np.ndarray]


def _memoised(weights_of: WeightsOf) -> WeightsOf:
    """``weights_of`` computed once per distinct support (the same array is returned again).

    Within a run the α walks of the full fit and of the k CV folds meet the same supports
    again and again; each Voronoi computation costs (region cells × support) and grows
    with the resolution. The callers never modify the returned weights.
    """
    cache: dict[bytes, np.ndarray] = {}

    def cached(columns: np.ndarray) -> np.ndarray:
        key = np.asarray(columns, dtype=np.int64).tobytes()
        if key not in cache:
            cache[key] = weights_of(columns)
        return cache[key]

    return cached


def mean_jaccard(sets: list[np.ndarray]) -> float:
    """Mean pairwise Jaccard similarity |A∩B|/|A∪B| of contributing sets (NaN for < 2 sets)."""
    if len(sets) < 2:
        return float("nan")
    scores = []
    for a, b in combinations(sets, 2):
        union = np.union1d(a, b).size
        scores.append(np.intersect1d(a, b).size / union if union else 1.0)
    return float(np.mean(scores))


@dataclass(frozen=True)
class RegionOutcome:
    """The chosen bridge of a region, its flag, every robustness run and the DTW pool."""

    chosen: RunResult
    fallback: str
    runs: list[RunResult]
    pool: np.ndarray  # columns of RegionData that were clustered
    n_samples: int  # candidates drawn per run


def build_region(reg: RegionData, cfg: BridgeConfig, region_index: int) -> RegionOutcome:
    """Fit one region's bridge (seeded by ``cfg.seed`` and ``region_index``)."""
    n_usable = reg.x.shape[1]
    ill_posed = n_usable < cfg.min_pixels or np.ptp(reg.y) == 0
    runs: list[RunResult] = []
    pool = np.arange(n_usable)
    n_samples = 0
    if not ill_posed:
        seeds = np.random.SeedSequence([cfg.seed, region_index])
        pool_seed, cluster_seed, *run_seeds = (
            int(s.generate_state(1)[0]) for s in seeds.spawn(cfg.n_runs + 2)
        )
        if n_usable > cfg.max_dtw_pixels:
            pool = np.sort(
                np.random.default_rng(pool_seed).choice(n_usable, cfg.max_dtw_pixels, replace=False)
            )
        dist = dtw_distance_matrix(reg.x[:, pool].T, cfg.dtw_window)
        labels = spectral_clusters(dist, cfg.k_max_clusters, cluster_seed)
        n_samples = min(
            pool.size,
            int(
                np.clip(
                    round(cfg.candidate_fraction * pool.size),
                    cfg.min_candidates,
                    cfg.max_candidates,
                )
            ),
        )
        runs = Parallel(n_jobs=min(cfg.n_jobs, cfg.n_runs))(
            delayed(_one_run)(reg, pool, labels, n_samples, cfg, s) for s in run_seeds
        )
        good = [k for k, run in enumerate(runs) if run.reached]
        if good:
            best = min(good, key=lambda k: (-runs[k].r2_cv, runs[k].columns.size, k))
            return RegionOutcome(runs[best], "none", runs, pool, n_samples)
    reason = (
        f"{n_usable} usable pixels (< min_pixels={cfg.min_pixels}) or a constant target"
        if ill_posed
        else f"no run reached R² ≥ {cfg.r2_threshold}"
    )
    warnings.warn(
        f"region {reg.abbr}: {reason}; using the area-weighted sum of its usable pixels "
        "(fallback='area_weighted_mean')",
        BridgeFallbackWarning,
        stacklevel=2,
    )
    r2 = r2_fixed(reg.x, reg.y, reg.area_weights, 0.0) if np.ptp(reg.y) > 0 else float("nan")
    fallback = RunResult(np.arange(n_usable), reg.area_weights, 0.0, float("nan"), r2, r2, False)
    return RegionOutcome(fallback, "area_weighted_mean", runs, pool, n_samples)


# -- driver -----------------------------------------------------------------------------------


def fit_regions(
    regions: list[RegionData], cfg: BridgeConfig, dask: str | None = None
) -> dict[int, RegionOutcome]:
    """:func:`build_region` of every region with land, keyed by region index.

    With ``dask`` (``"local"`` or a scheduler address) each region is one Dask task;
    its seeds depend on the region index only, so the outcomes are those of the
    in-process run. A task runs its robustness runs one after the other (``n_jobs=1``):
    the cluster's workers are the parallelism, and a worker must not fork a pool.
    """
    todo = [r for r, reg in enumerate(regions) if reg.n_pixels > 0]
    task_cfg = replace(cfg, n_jobs=1) if dask else cfg

    def fit(r: int) -> RegionOutcome:
        return build_region(regions[r], task_cfg, r)

    outcomes = run_tasks(fit, todo, dask, desc="bridges", unit="region")
    return dict(zip(todo, outcomes, strict=True))


def run_bridges(data: Path, run: Path, config: Path | None, dask: str | None = None) -> int:
    """Build the bridges of canonical dataset ``data`` into run directory ``run``.

    ``dask``: ``"local"`` or a scheduler address to fit the regions as Dask tasks
    (:mod:`fluxbridge.parallel`); the files are bitwise those of the in-process run.
    """
    cfg = load_config(config)
    data, run = Path(data), Path(run)
    with stage_lock(run, "bridges"):
        return _build_bridges(data, run, cfg, dask)


def _build_bridges(data: Path, run: Path, cfg: BridgeConfig, dask: str | None) -> int:
    out = run / "bridges.nc"
    regions, ctx = region_inputs(data, cfg)  # validates grid.nc and reference.nc
    digest = inputs_hash(data, cfg)
    if out.exists():
        with open_netcdf(out) as old:
            same = old.attrs.get("inputs_sha256") == digest
        if same and cfg.overwrite != "always":
            log.info(f"{out} is up to date (same inputs and settings); nothing to do")
            return 0
        if cfg.overwrite == "never":
            raise FluxbridgeError(
                f"{out} exists and was built from other inputs; config "
                "overwrite='never' forbids replacing it"
            )
    bridges, rows = [], []
    counts = np.zeros(ctx["land"].shape)
    in_pool = np.zeros(ctx["land"].shape, dtype=bool)
    outcomes = fit_regions(regions, cfg, dask)
    for r, reg in enumerate(regions):
        if reg.n_pixels == 0:
            warnings.warn(
                f"region {reg.abbr}: no land cell in this dataset; no bridge",
                BridgeFallbackWarning,
                stacklevel=2,
            )
            rows.append(_summary_row(reg, 0, None, "no_pixels", float("nan")))
            continue
        outcome = outcomes[r]
        chosen, flag = outcome.chosen, outcome.fallback
        il, io = ctx["cell_ilat"][reg.cells], ctx["cell_ilon"][reg.cells]
        in_pool[il[outcome.pool], io[outcome.pool]] = True
        for res in outcome.runs:
            np.add.at(counts, (il[res.columns], io[res.columns]), 1.0)
        cols = chosen.columns
        bridges.append(
            RegionBridge(
                region=reg.abbr,
                cells=reg.cells[cols],
                ilat=il[cols],
                ilon=io[cols],
                lat=ctx["lat"][il[cols]],
                lon=ctx["lon"][io[cols]],
                weights=chosen.weights,
                bias=chosen.bias,
                alpha=chosen.alpha,
                r2_train=chosen.r2_train,
                r2_cv=chosen.r2_cv,
                land_area=reg.land_area,
                fallback=flag,
            )
        )
        stability = mean_jaccard([res.columns for res in outcome.runs])
        rows.append(_summary_row(reg, outcome.n_samples, chosen, flag, stability))
    if not bridges:
        raise FluxbridgeError(f"{data}: no region has land cells; no bridge can be built")
    freq = np.where(in_pool, counts / cfg.n_runs, np.nan)
    attrs = {
        "inputs_sha256": digest,
        INPUTS_ATTR: inputs_attr(bridge_inputs(data)),
        "seed": cfg.seed,
        "r2_threshold": cfg.r2_threshold,
        "spatial_prior": cfg.spatial_prior,
        "n_runs": cfg.n_runs,
        "source_dataset": str(data),
    }
    bset = BridgeSet(bridges, ctx["lat"], ctx["lon"], ctx["n_cells"], freq, attrs, cfg.spec)
    summary = pd.DataFrame(rows)
    if cfg.figures:
        write_figures(
            bset,
            summary,
            ctx["pft_fraction"],
            ctx["pft_names"],
            ctx["land"],
            cfg.r2_threshold,
            run / "figures",
        )
    with atomic_path(run / "bridges_summary.csv", overwrite=True) as tmp:
        summary.to_csv(tmp, index=False, float_format="%.6g")
    with atomic_path(run / "bridges_config.yaml", overwrite=True) as tmp:
        tmp.write_text(yaml.safe_dump(to_mapping(cfg), sort_keys=False))
    bset.save(out, overwrite=True)  # its presence marks a complete build
    fidelity = pd.read_csv(write_fidelity(run, data))
    if cfg.figures:
        fidelity_figure(fidelity, run / "figures" / "bridges_fidelity.png")
    log.debug("bridges:\n" + summary.to_string(index=False))
    log.debug("fidelity:\n" + fidelity.to_string(index=False, float_format="%.3f"))
    log.info(_one_line(summary, fidelity, run))
    return 0


def _one_line(summary: pd.DataFrame, fidelity: pd.DataFrame, run: Path) -> str:
    """The bridges at a glance; the full tables are the CSV files it names."""
    worst_r2 = summary.loc[summary["r2_cv"].idxmin()]
    on_reference = fidelity[fidelity["field"] == "reference"]
    worst_bias = on_reference.loc[on_reference["annual_bias_pgc_yr"].abs().idxmax()]
    fallbacks = int((summary["fallback"] != "none").sum())
    return (
        f"bridges: {len(summary)} regions, {summary['n_contributing'].min()}-"
        f"{summary['n_contributing'].max()} contributing cells, CV R² ≥ {worst_r2.r2_cv:.3f} "
        f"({worst_r2.region}), {fallbacks} fallbacks; on the reference worst |annual bias| "
        f"{abs(worst_bias.annual_bias_pgc_yr):.3f} PgC/yr ({worst_bias.region}); tables: "
        f"{run / 'bridges_summary.csv'}, {run / 'bridges_fidelity.csv'}"
    )


def _summary_row(
    reg: RegionData, n_candidates: int, chosen: RunResult | None, flag: str, stability: float
) -> dict:
    nan = float("nan")
    return {
        "region": reg.abbr,
        "n_pixels": reg.n_pixels,
        "n_candidates": n_candidates,
        "n_contributing": 0 if chosen is None else int(chosen.columns.size),
        "alpha": nan if chosen is None else chosen.alpha,
        "r2_train": nan if chosen is None else chosen.r2_train,
        "r2_cv": nan if chosen is None else chosen.r2_cv,
        "stability": stability,
        "fallback": flag,
    }
