"""The evaluation report: every figure and table of Upton et al. that applies, from a run."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import xarray as xr

from fluxbridge.data.canonical import TROPICAL_REGIONS, CanonicalDataset
from fluxbridge.evaluation import figures
from fluxbridge.io import ENGINE
from fluxbridge.reporting import Figure, Section, Table, fmt, write_report

DAYS_PER_YEAR = 365.25


def _table2_3(metrics: dict, models: list[str]) -> list[Table]:
    regions = metrics["regions"]
    names = [*models, "reference"]
    annual = Table(
        ["region", *[f"R {n}" for n in names], *[f"RMSE {n}" for n in names]],
        [
            [
                r,
                *[regions[r].get(n, {}).get("annual_r") for n in names],
                *[regions[r].get(n, {}).get("annual_rmse_pgc_yr") for n in names],
            ]
            for r in regions
        ],
        "Table 2: annual regional NEE vs the inversion-ensemble mean (R; RMSE in PgC yr-1).",
    )
    keys = [
        ("monthly_r", "R monthly"),
        ("monthly_rmse_pgc_month", "RMSE monthly"),
        ("msc_r", "R MSC"),
        ("msc_rmse_pgc_month", "RMSE MSC"),
    ]
    monthly = Table(
        ["region", *[f"{label} {n}" for _, label in keys for n in names]],
        [[r, *[regions[r].get(n, {}).get(k) for k, _ in keys for n in names]] for r in regions],
        "Table 3: monthly regional NEE and its MSC vs the inversion mean (RMSE in PgC month-1).",
    )
    keys = [
        ("ilamb_bias_score", "bias"),
        ("ilamb_phase_score", "phase"),
        ("ilamb_iav_score", "IAV"),
    ]
    ilamb = Table(
        ["region", *[f"{label} {n}" for _, label in keys for n in names]],
        [[r, *[regions[r].get(n, {}).get(k) for k, _ in keys for n in names]] for r in regions],
        "ILAMB-style scores vs the inversion mean, in (0, 1], 1 = perfect "
        "(definitions in docs/run_layout.md).",
    )
    return [annual, monthly, ilamb]


def _truth_section(metrics: dict, models: list[str]) -> Section:
    truth = metrics["truth"]
    rows = []
    for m in models:
        t = truth[m]
        tropical = [t["regional_monthly_rmse_pgc_month"].get(r) for r in TROPICAL_REGIONS]
        rows.append(
            [
                m,
                t["global_annual_bias_pgc_yr"],
                t["global_annual_rmse_pgc_yr"],
                float(np.mean([v for v in tropical if v is not None])) if tropical else None,
                t["pixel_monthly_rmse_gc_m2_d"],
                t["site_rmse_vs_true_gc_m2_d"],
                metrics["sites"][m]["rmse"],
            ]
        )
    section = Section(
        "Truth scorecard (twin world)",
        [
            "Errors of each model against the twin world's known true NEE. Tropical = mean of the "
            f"monthly RMSE of {', '.join(TROPICAL_REGIONS)}."
        ],
        [
            Table(
                [
                    "model",
                    "global annual bias (PgC/yr)",
                    "global annual RMSE (PgC/yr)",
                    "tropical monthly RMSE (PgC/month)",
                    "pixel monthly RMSE (gC/m2/d)",
                    "site RMSE vs true NEE (gC/m2/d)",
                    "site RMSE vs tower obs (gC/m2/d)",
                ],
                rows,
            )
        ],
    )
    if "EC" in truth and any(m.startswith("EC-ATM") for m in models):
        atm = next(m for m in models if m.startswith("EC-ATM"))
        section.paragraphs.append(_goal_sentence(truth["EC"], truth[atm], metrics["sites"], atm))
    return section


def _goal_sentence(ec: dict, atm: dict, sites: dict, atm_name: str) -> str:
    """The project's science goals, stated plainly as met or not met with the numbers."""

    def cut(a: float | None, b: float | None) -> float | None:
        return None if a in (None, 0) or b is None else 100.0 * (1.0 - b / a)

    glob = cut(
        abs(ec["global_annual_bias_pgc_yr"] or 0.0) or None,
        abs(atm["global_annual_bias_pgc_yr"] or 0.0),
    )
    trop_ec = np.mean([ec["regional_monthly_rmse_pgc_month"][r] for r in TROPICAL_REGIONS])
    trop_atm = np.mean([atm["regional_monthly_rmse_pgc_month"][r] for r in TROPICAL_REGIONS])
    trop = cut(float(trop_ec), float(trop_atm))
    site_change = 100.0 * (sites[atm_name]["rmse"] / sites["EC"]["rmse"] - 1.0)
    true_change = 100.0 * (atm["site_rmse_vs_true_gc_m2_d"] / ec["site_rmse_vs_true_gc_m2_d"] - 1.0)
    verdict = [
        f"global annual error cut by {fmt(glob)} % (goal ≥ 90 %: "
        f"{'met' if glob is not None and glob >= 90 else 'NOT met'})",
        f"tropical monthly RMSE cut by {fmt(trop)} % (goal ≥ 70 %: "
        f"{'met' if trop is not None and trop >= 70 else 'NOT met'})",
        f"site RMSE changed by {fmt(site_change)} % (goal within 5 %: "
        f"{'met' if abs(site_change) <= 5 else 'NOT met'}); against the true NEE at the same "
        f"towers the site RMSE changed by {fmt(true_change)} % (the observations include the "
        "scenario's tower bias and noise; the true NEE does not)",
    ]
    return f"{atm_name} vs EC: " + "; ".join(verdict) + "."


def _decoupling_section(run: Path) -> Section | None:
    tables = []
    for path in sorted((run / "train").glob("*/decoupling.csv")):
        with path.open() as fh:
            rows = list(csv.reader(fh))
        if rows:
            tables.append(Table(rows[0], rows[1:], f"{path.parent.name}: {path.name}"))
    if not tables:
        return None
    return Section(
        "Bridge decoupling (post-hoc check, Upton §3.5)",
        [
            "Per region, the full integral of each final member's output against the "
            "bridge estimate on the same output: a large relative error or a low "
            "correlation means the bridge no longer represents the model."
        ],
        tables,
    )


def build_report(
    run: Path,
    data: CanonicalDataset,
    monthly: xr.DataArray,
    metrics: dict,
    forward: dict[str, Path],
    predicted: dict[str, np.ndarray],
    observed: np.ndarray,
    pft: np.ndarray,
    pixel_maps: dict[str, xr.DataArray],
    sink: xr.Dataset,
) -> None:
    """Write RUN/report/{index.html, report.md, *.png}."""
    root = run / "report"
    models = list(metrics["models"])
    land = data.grid_ds["land_fraction"]
    sections: list[Section] = []
    g = metrics["global"]
    sections.append(
        Section(
            "Global annual NEE (Fig. 2)",
            ["NEE positive = source to the atmosphere. Bands: ±1σ across the fold members."],
            [
                Table(
                    [
                        "source",
                        "mean (PgC/yr)",
                        "member σ",
                        "RMSE vs residual sink",
                        "R vs residual sink",
                        "IAV (PgC/yr)",
                    ],
                    [
                        [
                            n,
                            g[n]["annual_mean_pgc_yr"],
                            g[n].get("annual_mean_member_std_pgc_yr"),
                            g[n].get("rmse_vs_residual_sink_pgc_yr"),
                            g[n].get("r_vs_residual_sink"),
                            g[n]["iav_magnitude_pgc_yr"],
                        ]
                        for n in [*models, "inversion_mean", "reference", "truth"]
                        if n in g
                    ],
                )
            ],
            [
                Figure(
                    figures.global_annual(monthly, models, sink, root / "fig2_global_annual.png"),
                    "Global annual NEE, mean annual NEE, detrended anomalies and IAV magnitude.",
                )
            ],
        )
    )
    sections.append(
        Section(
            "Regional skill (Fig. 3, Tables 2–3)",
            [],
            _table2_3(metrics, models),
            [
                Figure(
                    figures.nnse_bars(metrics["regions"], models, root / "fig3_nnse.png"),
                    "nNSE of monthly regional NEE against the inversion-ensemble mean.",
                )
            ],
        )
    )
    sections.append(
        Section(
            "Mean seasonal cycles (Figs. 4, C1)",
            [],
            [],
            [
                Figure(
                    figures.msc_panels(monthly, models, root / "fig4_msc.png"),
                    "MSC per region (PgC month-1): mean ± member std; inversions mean ± std",
                )
            ],
        )
    )
    annual_maps, std_maps, month_maps = {}, {}, {}
    for m in models:
        with xr.open_dataset(forward[m], engine=ENGINE) as ds:
            nee = ds["nee_mean"].load()
        yearly = nee.groupby("time.year").mean("time") * DAYS_PER_YEAR
        annual_maps[f"{m} mean"] = yearly.mean("year")
        std_maps[f"{m} std"] = yearly.std("year")
        for month in (1, 4, 7, 10):
            month_maps[f"{m} month {month}"] = nee.sel(time=nee["time.month"] == month).mean("time")
    inv = data.open("inversions")["nee"].mean("member")
    inv_yearly = inv.groupby("time.year").mean("time") * DAYS_PER_YEAR
    annual_maps["inversion mean"] = inv_yearly.mean("year")
    std_maps["inversion mean std"] = inv_yearly.std("year")
    if len(models) >= 2:
        a, b = models[-1], models[0]
        for month in (1, 4, 7, 10):
            month_maps[f"{a} − {b} month {month}"] = (
                month_maps[f"{a} month {month}"] - month_maps[f"{b} month {month}"]
            )
    sections.append(
        Section(
            "Maps (Figs. 5–7)",
            [],
            [],
            [
                Figure(
                    figures.map_grid(
                        annual_maps,
                        land,
                        root / "fig5_annual_mean.png",
                        title="mean annual NEE",
                        units="gC m-2 yr-1",
                    ),
                    "Mean annual NEE (gC m-2 yr-1).",
                ),
                Figure(
                    figures.map_grid(
                        std_maps,
                        land,
                        root / "fig5_annual_std.png",
                        title="std of annual NEE",
                        units="gC m-2 yr-1",
                        diverging=False,
                    ),
                    "Interannual standard deviation of annual NEE (gC m-2 yr-1).",
                ),
                Figure(
                    figures.map_grid(
                        month_maps,
                        land,
                        root / "fig6_months.png",
                        title="monthly mean NEE",
                        units="gC m-2 d-1",
                        ncol=3 if len(models) >= 2 else 4,
                    ),
                    "Mean NEE of January, April, July and October (gC m-2 d-1).",
                ),
                Figure(
                    figures.map_grid(
                        pixel_maps,
                        land,
                        root / "fig7_pixel_r.png",
                        title="per-pixel temporal correlation",
                        units="R",
                        ncol=2,
                    ),
                    "Per-pixel Pearson R of monthly NEE with the inversion mean and the reference.",
                ),
            ],
        )
    )
    site_rows = [
        [m, metrics["sites"][m]["rmse"], metrics["sites"][m]["r"], metrics["sites"][m]["n"]]
        for m in models
    ]
    sections.append(
        Section(
            "Towers (Figs. 8, C2)",
            ["Each tower is predicted by the member that did not see its fold."],
            [Table(["model", "RMSE (gC/m2/d)", "R", "n days"], site_rows)],
            [
                Figure(
                    figures.site_scatter(predicted, observed, pft, root / "fig8_sites.png"),
                    "Daily tower NEE: model vs observation, overall and by majority PFT.",
                )
            ],
        )
    )
    from fluxbridge.evaluation.sensitivity import sensitivity_section

    sensitivity = sensitivity_section(run)
    if sensitivity is not None:
        sections.append(sensitivity)
    decoupling = _decoupling_section(run)
    if decoupling is not None:
        sections.append(decoupling)
    if "truth" in metrics:
        sections.append(_truth_section(metrics, models))
    notes = run / "notes.md"
    if notes.exists():
        sections.insert(0, Section("Run", [notes.read_text()]))
    write_report(f"fluxbridge evaluation: {run.name}", sections, root)
