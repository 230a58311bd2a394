"""`invoke scorecard`: the demo pipeline on several twin scenarios, scored against the truth.

Each scenario runs as ``invoke demo`` does (resumable: unchanged steps are skipped) into
``OUT/<scenario stem>/``, plus EC-ATM with the exact integral (``exact_folds`` members),
and gives one row per source — EC, EC-ATM, EC-ATM-exact and the inversion mean — of
the truth scores that evaluation wrote to ``metrics.json["truth"]``, the bridges'
transfer error on the truth (``bridges_fidelity.csv``) and EC-ATM's distance to EC-ATM
exact. ``OUT/scorecard.csv`` holds the rows; ``OUT/scorecard.md`` the table and the
goals of docs/training.md with a verdict per scenario.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge import logs
from fluxbridge.data.canonical import TROPICAL_REGIONS
from fluxbridge.errors import FluxbridgeError
from fluxbridge.io import ENGINE
from fluxbridge.outputs import atomic_path

log = logs.get(__name__)

SOURCES = ("EC", "EC-ATM", "EC-ATM-exact", "inversion_mean")
#: metrics.json["truth"][source] keys copied into the scorecard, in column order
TRUTH_KEYS = (
    "global_annual_bias_pgc_yr",
    "global_annual_rmse_pgc_yr",
    "tropical_annual_rmse_pgc_yr",
    "extratropical_annual_rmse_pgc_yr",
    "tropical_monthly_rmse_pgc_month",
    "extratropical_monthly_rmse_pgc_month",
    "within_region_spatial_r_median",
    "iav_ratio_global",
    "no_region_annual_pgc_yr",
    "site_rmse_vs_obs_unbiased_gc_m2_d",
    "site_rmse_vs_true_gc_m2_d",
)
#: R² of the detrended global annual anomalies with the truth's (metrics.json["global"])
ANOMALY_R2 = "global_anomaly_r2_vs_truth"


def _nan(value: object) -> float:
    return float("nan") if value is None else float(value)  # type: ignore[arg-type]


def mean_regional_monthly_rmse(entry: dict) -> float:
    """Mean over the 18 regions of the monthly RMSE vs truth (PgC month-1); GLOBAL excluded."""
    per = entry.get("regional_monthly_rmse_pgc_month", {})
    values = [_nan(v) for k, v in per.items() if k not in ("GLOBAL", "NO_REGION")]
    return float(np.nanmean(values)) if values else float("nan")


def bridge_transfer(fidelity: pd.DataFrame | None) -> dict[str, float]:
    """Worst |annual bias| (PgC/yr) and lowest monthly R² of the bridges applied to the truth."""
    if fidelity is None or "truth" not in set(fidelity["field"]):
        return {"bridge_truth_max_abs_bias_pgc_yr": np.nan, "bridge_truth_min_monthly_r2": np.nan}
    rows = fidelity[fidelity["field"] == "truth"]
    return {
        "bridge_truth_max_abs_bias_pgc_yr": float(rows["annual_bias_pgc_yr"].abs().max()),
        "bridge_truth_min_monthly_r2": float(rows["monthly_r2"].min()),
    }


def exact_gap(annual_mean: pd.DataFrame) -> float:
    """Largest |EC-ATM − EC-ATM-exact| mean annual NEE (PgC/yr), GLOBAL and TROPICAL_REGIONS.

    ``annual_mean``: index region, columns source (PgC/yr). NaN without an exact model.
    """
    if not {"EC-ATM", "EC-ATM-exact"} <= set(annual_mean.columns):
        return float("nan")
    rows = [r for r in ("GLOBAL", *TROPICAL_REGIONS) if r in annual_mean.index]
    diff = annual_mean.loc[rows, "EC-ATM"] - annual_mean.loc[rows, "EC-ATM-exact"]
    return float(diff.abs().max())


def regional_annual_means(path: Path) -> pd.DataFrame:
    """Mean annual NEE (PgC/yr) per region (rows) and source (columns) of regional_monthly.nc."""
    with xr.open_dataset(path, engine=ENGINE) as ds:
        nee = ds["nee"].load()
    counts = nee["time"].dt.year.to_series().value_counts()
    full = sorted(int(y) for y, n in counts.items() if n == 12)
    annual = nee.groupby("time.year").sum("time").sel(year=full).mean("year")
    return annual.to_pandas().T


def scenario_rows(
    scenario: str,
    truth: dict[str, dict],
    fidelity: pd.DataFrame | None,
    annual_mean: pd.DataFrame,
    global_scores: dict[str, dict] | None = None,
) -> list[dict[str, object]]:
    """One row per source present in ``truth`` (metrics.json["truth"]).

    ``global_scores`` (metrics.json["global"]) gives each source's R² of detrended global
    annual anomalies with the truth's: the IAV ratio compares only their magnitudes, so a
    source whose years do not follow the truth's can pass it.
    """
    glob = global_scores or {}
    shared = {**bridge_transfer(fidelity), "ec_atm_vs_exact_max_abs_pgc_yr": exact_gap(annual_mean)}
    rows = []
    for source in SOURCES:
        if source not in truth:
            continue
        entry = truth[source]
        row: dict[str, object] = {"scenario": scenario, "source": source}
        row.update({k: _nan(entry.get(k)) for k in TRUTH_KEYS})
        row["regional_monthly_rmse_mean_pgc_month"] = mean_regional_monthly_rmse(entry)
        row[ANOMALY_R2] = _nan(glob.get(source, {}).get("anomaly_r2_vs_truth"))
        row.update(shared)
        rows.append(row)
    return rows


@dataclass(frozen=True)
class Goal:
    """One goal of issue 16 / docs/training.md, checked on one scenario's rows."""

    name: str
    value: float
    target: str
    met: bool


def goals(rows: pd.DataFrame) -> list[Goal]:
    """The scorecard goals for one scenario (rows indexed by source)."""
    r = rows.set_index("source")
    out: list[Goal] = []

    def get(source: str, key: str) -> float:
        return float(r.loc[source, key]) if source in r.index else float("nan")

    ec_rmse, atm_rmse = (
        get("EC", "global_annual_rmse_pgc_yr"),
        get("EC-ATM", "global_annual_rmse_pgc_yr"),
    )
    cut = 1.0 - atm_rmse / ec_rmse
    out.append(Goal("global annual RMSE vs truth cut vs EC", cut, "≥ 0.90", cut >= 0.9))
    ratio = get("EC-ATM", "regional_monthly_rmse_mean_pgc_month") / get(
        "inversion_mean", "regional_monthly_rmse_mean_pgc_month"
    )
    out.append(Goal("regional monthly RMSE / inversion mean's", ratio, "≤ 1.2", ratio <= 1.2))
    ec_r, atm_r = (
        get("EC", "within_region_spatial_r_median"),
        get("EC-ATM", "within_region_spatial_r_median"),
    )
    out.append(Goal("within-region spatial R (median) − EC's", atm_r - ec_r, "≥ 0", atm_r >= ec_r))
    iav = get("EC-ATM", "iav_ratio_global")
    out.append(Goal("IAV ratio to truth (global)", iav, "within 0.5–1.5", 0.5 <= iav <= 1.5))
    site = get("EC-ATM", "site_rmse_vs_obs_unbiased_gc_m2_d") / get(
        "EC", "site_rmse_vs_obs_unbiased_gc_m2_d"
    )
    out.append(Goal("site RMSE vs obs, unbiased towers / EC's", site, "≤ 1.05", site <= 1.05))
    gap = get("EC-ATM", "ec_atm_vs_exact_max_abs_pgc_yr")
    out.append(Goal("|EC-ATM − EC-ATM exact|, global + tropics", gap, "≤ 0.5 PgC/yr", gap <= 0.5))
    bias = get("EC-ATM", "bridge_truth_max_abs_bias_pgc_yr")
    out.append(Goal("bridge transfer on truth, max |bias|", bias, "≤ 0.1 PgC/yr", bias <= 0.1))
    r2 = get("EC-ATM", "bridge_truth_min_monthly_r2")
    out.append(Goal("bridge transfer on truth, min monthly R²", r2, "≥ 0.9", r2 >= 0.9))
    return out


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "–" if not np.isfinite(value) else f"{value:.3g}"
    return str(value)


def markdown(table: pd.DataFrame) -> str:
    """The scorecard table and, per scenario, the goals with their verdicts."""
    columns = [
        "scenario",
        "source",
        *TRUTH_KEYS,
        "regional_monthly_rmse_mean_pgc_month",
        ANOMALY_R2,
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in table[columns].itertuples(index=False):
        lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    for scenario, rows in table.groupby("scenario", sort=False):
        lines += [
            "",
            f"### Goals: {scenario}",
            "",
            "| goal | value | target | met |",
            "|---|---|---|---|",
        ]
        for goal in goals(rows):
            verdict = "yes" if goal.met else "**no**"
            lines.append(f"| {goal.name} | {_fmt(goal.value)} | {goal.target} | {verdict} |")
    return "\n".join(lines) + "\n"


def read_run(scenario: str, run: Path) -> list[dict[str, object]]:
    """Scorecard rows of a finished demo run directory."""
    metrics_path = run / "evaluation" / "metrics.json"
    if not metrics_path.exists():
        raise FluxbridgeError(f"{metrics_path} not found; the run of {scenario} did not finish")
    metrics = json.loads(metrics_path.read_text())
    truth = metrics.get("truth")
    if not truth:
        raise FluxbridgeError(f"{metrics_path}: no truth scores; a scorecard needs twin scenarios")
    fidelity_path = run / "bridges_fidelity.csv"
    fidelity = pd.read_csv(fidelity_path) if fidelity_path.exists() else None
    annual = regional_annual_means(run / "evaluation" / "regional_monthly.nc")
    return scenario_rows(scenario, truth, fidelity, annual, metrics.get("global"))


def run_scorecard(
    scenarios: Sequence[Path], out: Path, exact_folds: int = 1, force: bool = False
) -> int:
    """Entry point of `invoke scorecard`."""
    from fluxbridge.pipeline import run_demo

    scenarios = [Path(s) for s in scenarios]
    stems = [s.stem for s in scenarios]
    if not scenarios or len(set(stems)) != len(stems):
        raise FluxbridgeError(f"scenarios={stems}: need one or more files with distinct names")
    for path in scenarios:
        if not path.is_file():
            raise FluxbridgeError(f"scenario {path} not found")
    rows: list[dict[str, object]] = []
    for path in scenarios:
        run = Path(out) / path.stem
        log.info(f"[scorecard] {path.stem} → {run}")
        run_demo(path, run, force=force, exact_folds=exact_folds)
        rows.extend(read_run(path.stem, run))
        text = write_tables(pd.DataFrame(rows), Path(out))  # after each: a long run shows progress
    log.info(text)
    return 0


def write_tables(table: pd.DataFrame, out: Path) -> str:
    """``scorecard.csv`` and ``scorecard.md`` in ``out`` (atomic); returns the Markdown."""
    with atomic_path(out / "scorecard.csv", overwrite=True) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    text = markdown(table)
    with atomic_path(out / "scorecard.md", overwrite=True) as tmp:
        tmp.write_text(text)
    return text
