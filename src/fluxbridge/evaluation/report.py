"""The evaluation report: every figure and table of Upton et al. that applies, from a run."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.bridge.figures import fidelity_figure
from fluxbridge.data.canonical import TROPICAL_REGIONS, CanonicalDataset
from fluxbridge.evaluation import figures
from fluxbridge.evaluation.regional import GLOBAL, NO_REGION, annual_maps
from fluxbridge.io import ENGINE
from fluxbridge.reporting import Figure, Link, Section, Table, fmt, write_report

IAV_DRIVERS = 3  # regions named in the IAV paragraph
REGION_NOTE = (
    f"{GLOBAL} = the sum of the regions (what the inversions constrain); {NO_REGION} = land in "
    "no region (ice sheets, unassigned islands)."
)


def _table2_3(regions: dict, names: list[str], when: str = "") -> list[Table]:
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
        f"Table 2{when}: annual regional NEE vs the inversion-ensemble mean (R; RMSE in PgC yr-1).",
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
        f"Table 3{when}: monthly regional NEE and its MSC vs the inversion mean "
        "(RMSE in PgC month-1).",
    )
    keys = [
        ("ilamb_bias_score", "bias"),
        ("ilamb_phase_score", "phase"),
        ("ilamb_iav_score", "IAV"),
    ]
    ilamb = Table(
        ["region", *[f"{label} {n}" for _, label in keys for n in names]],
        [[r, *[regions[r].get(n, {}).get(k) for k, _ in keys for n in names]] for r in regions],
        f"ILAMB-style scores{when} vs the inversion mean, in (0, 1], 1 = perfect "
        "(definitions in docs/run_layout.md).",
    )
    return [annual, monthly, ilamb]


def _held_out_section(metrics: dict) -> Section:
    years = metrics["held_out_years"]
    title = "Regional skill on the held-out inversion years"
    if not years:
        return Section(
            title,
            [
                "Skipped: no model of this run has train/<model>/fold_<k>/atm_years.json "
                "(EC, or a run trained before training recorded its held-out years)."
            ],
        )
    listed = "; ".join(f"{m}: {', '.join(map(str, y))}" for m, y in years.items())
    tables = _table2_3(metrics["regions_held_out_years"], list(years), " (held-out years)")
    return Section(
        title,
        [
            "The same scores as above on the years each model's ATM term never saw "
            f"({listed}). {REGION_NOTE}"
        ],
        tables[:2],
    )


def _truth_section(metrics: dict, models: list[str]) -> Section:
    truth = metrics["truth"]
    sources = [*models, "inversion_mean"]
    glob = metrics["global"]
    rows = [
        [
            n,
            truth[n]["global_annual_bias_pgc_yr"],
            truth[n]["global_annual_rmse_pgc_yr"],
            truth[n]["tropical_annual_rmse_pgc_yr"],
            truth[n]["tropical_monthly_rmse_pgc_month"],
            truth[n]["extratropical_monthly_rmse_pgc_month"],
            truth[n]["within_region_spatial_r_median"],
            truth[n]["iav_ratio_global"],
            glob[n].get("anomaly_r2_vs_truth"),
            truth[n]["no_region_annual_pgc_yr"],
            truth[n]["pixel_monthly_rmse_gc_m2_d"],
            truth[n].get("site_rmse_vs_true_gc_m2_d"),
            truth[n].get("site_rmse_vs_obs_unbiased_gc_m2_d"),
            metrics["sites"].get(n, {}).get("rmse"),
        ]
        for n in sources
    ]
    no_region = glob["truth"]["no_region_annual_mean_pgc_yr"]
    section = Section(
        "Truth scorecard (twin world)",
        [
            "Errors of each model and of the inversion mean against the twin world's known true "
            f"NEE. Tropical = mean over {', '.join(TROPICAL_REGIONS)}; extratropical = mean over "
            "the other regions. Within-region R = land-area-weighted spatial correlation of the "
            "mean annual NEE map with the truth's inside each region, each map's regional mean "
            "removed (median over the regions). "
            f"{NO_REGION} = mean annual NEE on land in no region, which no inversion constrains "
            f"(truth: {fmt(no_region)} PgC/yr)."
        ],
        [
            Table(
                [
                    "source",
                    "global annual bias (PgC/yr)",
                    "global annual RMSE (PgC/yr)",
                    "tropical annual RMSE (PgC/yr)",
                    "tropical monthly RMSE (PgC/month)",
                    "extratropical monthly RMSE (PgC/month)",
                    "median within-region R",
                    "IAV ratio (global)",
                    "R² anomalies vs truth",
                    f"{NO_REGION} (PgC/yr)",
                    "pixel monthly RMSE (gC/m2/d)",
                    "site RMSE vs true NEE (gC/m2/d)",
                    "site RMSE vs unbiased towers' obs (gC/m2/d)",
                    "site RMSE vs tower obs (gC/m2/d)",
                ],
                rows,
            ),
            _spatial_r_table(truth, sources),
        ],
    )
    section.paragraphs += [_iav_paragraph(truth[m], m, glob) for m in models]
    if "EC" in truth and any(m.startswith("EC-ATM") for m in models):
        atm = next(m for m in models if m.startswith("EC-ATM"))
        section.paragraphs.append(_goal_sentence(truth["EC"], truth[atm], metrics["sites"], atm))
    return section


def _spatial_r_table(truth: dict, sources: list[str]) -> Table:
    regions = list(truth[sources[0]]["within_region_spatial_r"])
    return Table(
        ["region", *sources],
        [[r, *[truth[n]["within_region_spatial_r"][r] for n in sources]] for r in regions],
        "Within-region spatial R of the mean annual NEE map with the truth's (land-area "
        "weighted, each map's regional mean removed; 1 = the pattern inside the region is right).",
    )


def _iav_paragraph(scores: dict, name: str, glob: dict) -> str:
    """The global IAV ratio of one source and the regions that drive its departure."""
    excess = {
        r: v for r, v in scores["iav_excess_variance_by_region_pgc2_yr2"].items() if v is not None
    }
    drivers = sorted(excess, key=lambda r: -abs(excess[r]))[:IAV_DRIVERS]
    own, true = glob[name]["iav_magnitude_pgc_yr"], glob["truth"]["iav_magnitude_pgc_yr"]
    total = sum(excess.values())
    listed = ", ".join(
        f"{r} {excess[r]:+.3g} (its own IAV ratio {fmt(scores['iav_ratio'][r])})" for r in drivers
    )
    return (
        f"{name} IAV: {fmt(own)} PgC/yr vs the truth's {fmt(true)} PgC/yr, ratio "
        f"{fmt(scores['iav_ratio_global'])}. Its IAV² differs from the truth's by {total:+.3g} "
        "(PgC/yr)²; each region's part is cov(region anomaly, global anomaly) of the source minus "
        f"that of the truth. Largest parts: {listed}."
    )


def _goal_sentence(ec: dict, atm: dict, sites: dict, atm_name: str) -> str:
    """The project's science goals, stated plainly as met or not met with the numbers."""

    def cut(a: float | None, b: float | None) -> float | None:
        return None if a in (None, 0) or b is None else 100.0 * (1.0 - b / a)

    glob = cut(
        abs(ec["global_annual_bias_pgc_yr"] or 0.0) or None,
        abs(atm["global_annual_bias_pgc_yr"] or 0.0),
    )
    trop = cut(ec["tropical_monthly_rmse_pgc_month"], atm["tropical_monthly_rmse_pgc_month"])
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


# What `invoke bridges` draws into RUN/figures/ (bridge/figures.py), shown where they exist:
# the bridges stage writes no page of its own, so its figures are read here.
BRIDGE_FIGURES = (
    (
        "inclusion_map.png",
        "Robustness runs in which each pixel contributed (log10; Upton Fig. B2).",
    ),
    (
        "r2_by_region.png",
        "Training and CV R² of each region's bridge against the threshold; "
        "fallback regions hatched.",
    ),
    (
        "pft_contributing.png",
        "Majority PFT of all contributing pixels; black outlines: the "
        "share among all land pixels (Upton Fig. B3).",
    ),
    (
        "pft_by_region.png",
        "Majority-PFT composition of each region's contributing pixels (Upton Fig. B4).",
    ),
)
BRIDGE_FILES = ("bridges_fidelity.csv", "bridges_summary.csv", "bridges_config.yaml")


def _fidelity_section(run: Path, root: Path) -> Section | None:
    """RUN/bridges_fidelity.csv: the bridges on fields they were not fitted on, and the
    bridges' own figures and tables."""
    path = run / "bridges_fidelity.csv"
    if not path.exists():
        return None
    table = pd.read_csv(path)
    worst = table.assign(abs_bias=table["annual_bias_pgc_yr"].abs()).groupby("field", sort=False)
    rows = [
        [field, group["abs_bias"].max(), group.loc[group["abs_bias"].idxmax(), "region"],
         group["monthly_r2"].min()]
        for field, group in worst
    ]  # fmt: skip
    return Section(
        "Bridges: fidelity (bridge vs exact integral) and diagnostics (Figs. B2–B4)",
        [
            "Each field's regional integral from the bridges (contributing cells only) against "
            "the exact integral over every cell: the reference the bridges were fitted on, "
            "the reference plus a uniform offset and plus a latitudinal gradient, the truth "
            "(twin world) and every trained model's mean map. The full tables of the run "
            "folder are linked below the figures."
        ],
        [Table(["field", "max |annual bias| (PgC/yr)", "in region", "min monthly R²"], rows)],
        [
            Figure(
                fidelity_figure(table, root / "bridges_fidelity.png"),
                "Annual bias (bridge − exact, PgC/yr) per region and field.",
            ),
            *[
                Figure(run / "figures" / name, caption)
                for name, caption in BRIDGE_FIGURES
                if (run / "figures" / name).is_file()
            ],
        ],
        [Link(run / name, name) for name in BRIDGE_FILES if (run / name).is_file()],
    )


def _global_section(
    metrics: dict, monthly: xr.DataArray, models: list[str], sink: xr.Dataset, root: Path
) -> Section:
    g = metrics["global"]
    names = [n for n in [*models, "inversion_mean", "reference", "truth"] if n in g]
    r2_keys = [
        k for k in ("anomaly_r2_vs_inversion_mean", "anomaly_r2_vs_truth") if k in g[names[0]]
    ]
    labels = {
        n: n
        + "".join(f", R² vs {k.split('_vs_')[1]} {fmt(g[n][k], 2)}" for k in r2_keys if k in g[n])
        for n in names
    }
    return Section(
        "Global annual NEE (Fig. 2)",
        [
            "NEE positive = source to the atmosphere. Bands: ±1σ across the fold members. "
            f"{REGION_NOTE} R² = squared correlation of the detrended annual anomalies "
            "(Upton Fig. 2C)."
        ],
        [
            Table(
                [
                    "source",
                    "mean (PgC/yr)",
                    "member σ",
                    "RMSE vs residual sink",
                    "R vs residual sink",
                    "IAV (PgC/yr)",
                    *[f"R² anomalies vs {k.split('_vs_')[1]}" for k in r2_keys],
                    f"{NO_REGION} mean (PgC/yr)",
                ],
                [
                    [
                        n,
                        g[n]["annual_mean_pgc_yr"],
                        g[n].get("annual_mean_member_std_pgc_yr"),
                        g[n].get("rmse_vs_residual_sink_pgc_yr"),
                        g[n].get("r_vs_residual_sink"),
                        g[n]["iav_magnitude_pgc_yr"],
                        *[g[n].get(k) for k in r2_keys],
                        g[n]["no_region_annual_mean_pgc_yr"],
                    ]
                    for n in names
                ],
            )
        ],
        [
            Figure(
                figures.global_annual(
                    monthly, models, sink, root / "fig2_global_annual.png", labels=labels
                ),
                "Global (Σ regions) annual NEE, mean annual NEE, detrended anomalies (legend: R² "
                "with the inversion mean and the truth) and IAV magnitude.",
            )
        ],
    )


def _pixel_r_panels(pixel_maps: dict[tuple[str, str], xr.DataArray], models: list[str]) -> dict:
    """Upton Fig. 7 layout: per target a row of each model's R, then each EC-ATM-type model − EC."""
    targets = list(dict.fromkeys(target for _, target in pixel_maps))
    others = [m for m in models if m != "EC"] if "EC" in models else []
    panels = {}
    for target in targets:
        panels |= {f"{m} vs {target}": pixel_maps[m, target] for m in models}
        panels |= {
            f"{m} − EC vs {target}": pixel_maps[m, target] - pixel_maps["EC", target]
            for m in others
        }
    return panels


def _maps_section(
    data: CanonicalDataset,
    forward: dict[str, Path],
    models: list[str],
    pixel_maps: dict[tuple[str, str], xr.DataArray],
    mean_maps: dict[str, xr.DataArray],
    root: Path,
) -> Section:
    land = data.grid_ds["land_fraction"]
    std_maps, month_maps = {}, {}
    for m in models:
        with xr.open_dataset(forward[m], engine=ENGINE) as ds:
            nee = ds["nee_mean"].load()
        std_maps[f"{m} std"] = annual_maps(nee).std("year")
        for month in (1, 4, 7, 10):
            month_maps[f"{m} month {month}"] = nee.sel(time=nee["time.month"] == month).mean("time")
    inv = data.open("inversions")["nee"].mean("member")
    std_maps["inversion mean std"] = annual_maps(inv).std("year")
    if len(models) >= 2:
        a, b = models[-1], models[0]
        for month in (1, 4, 7, 10):
            month_maps[f"{a} − {b} month {month}"] = (
                month_maps[f"{a} month {month}"] - month_maps[f"{b} month {month}"]
            )
    panels = _pixel_r_panels(pixel_maps, models)
    ncol = len(panels) // len({target for _, target in pixel_maps})
    figs = [
        Figure(
            figures.map_grid(
                {f"{n} mean": v for n, v in mean_maps.items() if n != "truth"},
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
                panels,
                land,
                root / "fig7_pixel_r.png",
                title="per-pixel temporal correlation",
                units="R",
                ncol=ncol,
            ),
            "Per-pixel Pearson R of monthly NEE with the inversion mean (first row) and the "
            "reference (second row); the last column(s): the model's R minus EC's (Upton Fig. 7).",
        ),
    ]
    if "truth" in mean_maps:
        truth = mean_maps["truth"]
        errors = {f"{n} − truth": v - truth for n, v in mean_maps.items() if n != "truth"}
        figs.append(
            Figure(
                figures.map_grid(
                    {"truth mean": truth},
                    land,
                    root / "fig5_truth_mean.png",
                    title="true mean annual NEE",
                    units="gC m-2 yr-1",
                    ncol=1,
                ),
                "Twin world: the true mean annual NEE (gC m-2 yr-1).",
            )
        )
        figs.append(
            Figure(
                figures.map_grid(
                    errors,
                    land,
                    root / "fig5_minus_truth.png",
                    title="mean annual NEE − truth",
                    units="gC m-2 yr-1",
                ),
                "Twin world: mean annual NEE minus the truth's (gC m-2 yr-1); the regional totals "
                "can be right while the pattern inside a region is not.",
            )
        )
    return Section("Maps (Figs. 5–7)", [], [], figs)


def _data_checks_section(checks: dict) -> Section:
    """Data left out and cell-days where the network extrapolates (docs/plausibility.md)."""
    n, dropped = checks["tower_days_with_nee"], checks["tower_days_left_out_nan_driver"]
    months, months_out = checks["inversion_months"], checks["inversion_months_left_out"]
    filled = checks["land_cell_months_filled_with_zero"]
    opposite = checks["models_opposite_sign_to_residual_sink"]
    rows = [
        [model, driver, count]
        for model, counts in checks["cell_days_outside_towers_range"].items()
        for driver, count in counts.items()
    ]
    lines = [
        f"Tower-days: {dropped:,} of {n:,} with NEE ({_percent(dropped, n)}) left out of "
        "training and of the tower scores: a driver is NaN there.",
        f"Months: {months_out:,} of {months:,} inversion months ({_percent(months_out, months)}) "
        "left out of the ATM loss"
        + (
            f": the year(s) {checks['inversion_years_left_out']} are not complete in both the "
            "daily drivers and the monthly inversions."
            if months_out
            else "."
        ),
        "Cells: land cell-months a product left empty and prepare set to 0: "
        + (
            ", ".join(f"{name} {100 * share:.3g} %" for name, share in filled.items())
            if filled
            else "none recorded (the dataset was not made by prepare from products)."
        ),
        "Cell-days whose driver lies outside the towers' range widened by 10 % on each side, "
        "where the network extrapolates: "
        + ("see the table." if rows else "none, for every model."),
        "Sign: "
        + (
            "; ".join(f"{m} {v:+.3g} PgC/yr" for m, v in opposite.items())
            + " of global NEE, the opposite sign of the residual sink: a net source, scored "
            "as it is (the inputs' sign conventions are checked where they enter)."
            if opposite
            else "every model's global NEE has the residual sink's sign."
        ),
    ]
    return Section(
        "Data checks", lines, [Table(["model", "driver", "cell-days"], rows)] if rows else []
    )


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.3g} %" if whole else "0 %"


def build_report(
    run: Path,
    data: CanonicalDataset,
    monthly: xr.DataArray,
    metrics: dict,
    forward: dict[str, Path],
    predicted: dict[str, np.ndarray],
    observed: np.ndarray,
    pft: np.ndarray,
    pixel_maps: dict[tuple[str, str], xr.DataArray],
    mean_maps: dict[str, xr.DataArray],
    sink: xr.Dataset,
) -> None:
    """Write RUN/report/{index.html, report.md, *.png}.

    ``pixel_maps`` holds per-pixel temporal R maps keyed (model, target);
    ``mean_maps`` the mean annual NEE maps (gC m-2 yr-1) of the models, the
    inversion mean and (twin world) the truth.
    """
    root = run / "report"
    models = list(metrics["models"])
    sections: list[Section] = [_global_section(metrics, monthly, models, sink, root)]
    sections.append(
        Section(
            "Regional skill (Fig. 3, Tables 2–3)",
            [REGION_NOTE],
            _table2_3(metrics["regions"], [*models, "reference"]),
            [
                Figure(
                    figures.nnse_bars(metrics["regions"], models, root / "fig3_nnse.png"),
                    "nNSE of monthly regional NEE against the inversion-ensemble mean.",
                )
            ],
        )
    )
    sections.append(_held_out_section(metrics))
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
    sections.append(_maps_section(data, forward, models, pixel_maps, mean_maps, root))
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
    for extra in (_fidelity_section(run, root), _decoupling_section(run)):
        if extra is not None:
            sections.append(extra)
    if "truth" in metrics:
        sections.append(_truth_section(metrics, models))
    sections.append(_data_checks_section(metrics["data_checks"]))
    notes = run / "notes.md"
    if notes.exists():
        sections.insert(0, Section("Run", [notes.read_text()]))
    write_report(f"fluxbridge evaluation: {run.name}", sections, root)
