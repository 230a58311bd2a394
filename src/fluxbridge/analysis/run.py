"""``invoke analyze``: the whole inversion-ensemble analysis of He et al. (2023).

Reads the config, harmonises the products (:mod:`.ingest`), computes every
table (:mod:`.tables`, :mod:`.aircraft`), writes them as NetCDF, draws the
figures and writes the report — all into a staging folder that replaces the
output only when everything succeeded, so a failure never leaves a partial
report; an output that holds anything but an earlier analysis, or that
overlaps an input, is refused (:mod:`fluxbridge.outputs`).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import xarray as xr

from fluxbridge.analysis import figures
from fluxbridge.analysis import tables as T
from fluxbridge.analysis.aircraft import aircraft_bias, read_aircraft_table
from fluxbridge.analysis.config import MONTH_ABBR, LoadedConfig, load_config
from fluxbridge.analysis.ensemble import Ensemble
from fluxbridge.analysis.ingest import build_ensemble, load_ancillary
from fluxbridge.analysis.report import (
    SIGN_STATEMENT,
    Figure,
    Section,
    Table,
    fmt,
    pm,
    write_report,
)
from fluxbridge.analysis.seasonal import METRICS
from fluxbridge.io import write_netcdf
from fluxbridge.outputs import MARKER, staged_directory

log = logging.getLogger(__name__)


#: Config fields that name input files or folders (resolved against base_dir).
_INPUT_FIELDS = ("file", "directory", "mask_file")


def input_paths(lc: LoadedConfig) -> list[Path]:
    """Every file or folder the config reads, and the config itself."""
    found = [lc.path]

    def walk(node: object) -> None:
        if dataclasses.is_dataclass(node):
            for f in dataclasses.fields(node):
                value = getattr(node, f.name)
                if f.name in _INPUT_FIELDS and isinstance(value, str):
                    found.append(lc.resolve(value))
                else:
                    walk(value)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(lc.cfg)
    if (lc.base / MARKER).is_file():
        # a folder fluxbridge wrote (a twin dataset): an analysis inside it would change
        # the dataset's content digest and make every product made from it stale
        found.append(lc.base)
    return found


def run_analyze(config: Path) -> int:
    """Run the analysis described by ``config``; returns 0 (errors raise FluxbridgeError)."""
    lc = load_config(Path(config))
    out = lc.resolve(lc.cfg.output)
    ens = build_ensemble(lc)
    ancillary = load_ancillary(lc, ens)
    with staged_directory(out, "analyze", input_paths(lc), lc.cfg.overwrite) as tmp:
        results = compute(lc, ens, ancillary)
        write_tables(tmp, results, str(lc.path))
        sections = draw_and_describe(tmp, lc, ens, results)
        write_report(
            tmp,
            lc.cfg.title or f"Ensemble analysis: {ens.domain}",
            sections,
            summarise(lc, ens, results),
        )
    log.debug("analysis written to %s", out)
    log.info(f"analysis report: {out / 'index.html'}")
    return 0


def compute(
    lc: LoadedConfig, ens: Ensemble, ancillary: dict[str, xr.DataArray]
) -> dict[str, xr.Dataset]:
    """Every table of the report, keyed by its output file stem."""
    cfg = lc.cfg
    monthly = T.regional_monthly_nbp(ens)
    seasonal = T.seasonal_cycles(monthly)
    results = {
        "regions": _regions_table(ens),
        "regional_monthly": xr.Dataset({"nbp": monthly}),
        "annual_maps": T.annual_maps(ens),
        "peak_maps": T.peak_maps(ens, cfg.peak_months),
        "annual_totals": T.annual_totals(monthly),
        "contributions_annual": T.contributions(monthly),
        "contributions_peak": T.contributions(monthly, cfg.peak_months),
        "seasonal_cycles": seasonal,
        "anomalies": T.anomaly_table(monthly),
        "consistency": T.consistency_table(ens, seasonal["msc"], ancillary),
    }
    a = cfg.anomalies
    if a.event_year is not None:
        results["event"] = T.event_maps(ens, a.event_group, a.event_year, a.event_months, ancillary)
    if cfg.aircraft is not None:
        table, products = read_aircraft_table(lc.resolve(cfg.aircraft.file))
        results["aircraft_bias"] = aircraft_bias(table, products, cfg.aircraft)
    return results


def _regions_table(ens: Ensemble) -> xr.Dataset:
    return xr.Dataset(
        {
            "region_fraction": ens.region_fraction,
            "land_fraction": ens.land_fraction,
            "cell_area": ens.cell_area,
            "coverage": ens.coverage().assign_attrs(
                units="1", long_name="fraction of the domain's land where the product has values"
            ),
        }
    ).assign_coords(product_group=ens.nee["product_group"])


def write_tables(directory: Path, results: dict[str, xr.Dataset], source: str) -> None:
    for name, ds in results.items():
        ds = ds.copy()
        ds.attrs.setdefault("comment", SIGN_STATEMENT)
        write_netcdf(ds, directory / f"{name}.nc", action=f"invoke analyze --config {source}")


def _names(ens: Ensemble, partition: str | None) -> list[str]:
    return (
        [ens.region_fraction["region"].values[0].item()]
        if partition is None
        else ens.partition_regions(partition)
    )


def draw_and_describe(
    directory: Path, lc: LoadedConfig, ens: Ensemble, r: dict[str, xr.Dataset]
) -> list[Section]:
    """Draw every figure into ``directory`` and return the report sections."""
    cfg = lc.cfg
    dom = ens.domain
    peak = "–".join(MONTH_ABBR[m - 1] for m in (cfg.peak_months[0], cfg.peak_months[-1]))
    years = f"{ens.years[0]}–{ens.years[-1]}"
    all_regions = [str(x) for x in ens.region_fraction["region"].values]
    sections = [_overview(ens, r, years)]

    figures.flux_maps(
        r["annual_maps"],
        "gC m-2 yr-1",
        directory / "fig03_annual_maps.png",
        f"Mean annual NBP {years}",
    )
    figures.flux_maps(
        r["peak_maps"],
        "gC m-2 month-1",
        directory / "fig05_peak_maps.png",
        f"Mean peak-season ({peak}) NBP {years}",
    )
    sections.append(
        Section(
            "Spatial distribution",
            [
                "Mean annual NBP per product, and each group's median and inter-model "
                "std (ddof=1).",
            ],
            figures=[
                Figure(
                    directory / "fig03_annual_maps.png", f"Mean annual NBP {years} (Fig. 3, S3–S4)"
                ),
                Figure(directory / "fig05_peak_maps.png", f"Mean {peak} NBP (Fig. 5, S5–S6)"),
            ],
        )
    )

    contrib_figs = []
    for key, units, label in (
        ("contributions_annual", "PgC yr-1", "annual"),
        ("contributions_peak", "PgC month-1", f"peak season ({peak})"),
    ):
        for part in ens.partitions:
            name = f"fig_{key}_{_slug(part)}.png"
            figures.contribution_bars(
                r[key],
                ens.partition_regions(part),
                units,
                directory / name,
                f"{label} NBP by {part}",
            )
            contrib_figs.append(
                Figure(
                    directory / name, f"{label[0].upper()}{label[1:]} NBP by {part} (Figs. 4, 6)"
                )
            )
    sections.append(
        Section(
            "Contributions by sub-region",
            [
                f"Group median NBP by sub-region; share = sub-region / {dom} × 100.",
            ],
            tables=[
                _contribution_table(r["contributions_annual"], all_regions, "PgC yr-1"),
                _contribution_table(r["contributions_peak"], all_regions, "PgC month-1"),
            ],
            figures=contrib_figs,
        )
    )

    msc_figs = []
    for part in [None, *ens.partitions]:
        regions = _names(ens, part)
        name = f"fig07_msc_{_slug(part or 'domain')}.png"
        figures.seasonal_cycles(
            r["seasonal_cycles"], regions, directory / name, f"Mean seasonal cycle {years}"
        )
        msc_figs.append(
            Figure(directory / name, f"Mean seasonal cycles: {', '.join(regions)} (Figs. 7–8)")
        )
    sections.append(
        Section(
            "Mean seasonal cycles",
            [
                "Derived from each group's median MSC; definitions in docs/ensemble_analysis.md: "
                + "; ".join(f"{k}: {v[1]} [{v[0]}]" for k, v in METRICS.items())
                + ".",
            ],
            tables=[_msc_table(r["seasonal_cycles"], all_regions)],
            figures=msc_figs,
        )
    )

    figures.annual_totals(r["annual_totals"], dom, directory / "fig09_annual_totals.png")
    sections.append(
        Section(
            "Annual totals and IAV",
            [
                f"Annual NBP of {dom} per product; group median ± std (ddof=1) across products; "
                "IAV = std of the annual totals across years (ddof=1).",
            ],
            tables=[_annual_table(r["annual_totals"], dom)],
            figures=[Figure(directory / "fig09_annual_totals.png", "Annual NBP (Fig. 9)")],
        )
    )

    sub = [x for x in all_regions if x != dom] or [dom]
    figures.anomalies(r["anomalies"], sub, cfg.anomalies.windows, directory / "fig10_anomalies.png")
    sections.append(
        Section(
            "Monthly anomalies",
            [
                "Anomaly = monthly NBP minus the mean of that calendar month over the period; "
                "lines are group medians, bars the std across the group's products.",
            ],
            figures=[Figure(directory / "fig10_anomalies.png", "Monthly NBP anomalies (Fig. 10)")],
        )
    )

    if "event" in r:
        ev = r["event"]
        figures.event_maps(ev, directory / "fig11_event.png")
        sections.append(
            Section(
                f"Event {ev.attrs['event_year']}",
                [
                    f"ΔNBP of the {ev.attrs['event_group']} median over months "
                    f"{ev.attrs['event_months']} "
                    "minus the multi-year mean of the same months (gC m-2 d-1); z-scores of the "
                    "ancillary fields = (event-months mean of the year − mean over years) "
                    "/ std over years.",
                ],
                figures=[Figure(directory / "fig11_event.png", "Event anomalies (Fig. 11)")],
            )
        )

    figures.consistency(r["consistency"], directory / "figS9_consistency.png")
    sections.append(
        Section(
            "Inter-model consistency",
            [
                "msc_spread: mean over months of the across-product std of the MSC (PgC month-1); "
                "msc_pairwise_r: mean Pearson r over product pairs; r_sif / r_lai: "
                "Pearson r of each "
                "product's NBP MSC with the regional SIF / LAI MSC (group medians shown).",
            ],
            tables=[_consistency_table(r["consistency"])],
            figures=[
                Figure(directory / "figS9_consistency.png", "Consistency of MSCs (Figs. S9–S10)")
            ],
        )
    )

    if "aircraft_bias" in r:
        figures.aircraft_bias(
            r["aircraft_bias"],
            directory / "fig02_aircraft_bias_maps.png",
            directory / "fig02_aircraft_bias_hist.png",
        )
        b = r["aircraft_bias"]
        rows = [
            [
                str(p),
                *[
                    fmt(float(b["overall_mean_bias"].sel(product=p, band=x)))
                    for x in b["band"].values
                ],
            ]
            for p in b["product"].values
        ]
        sections.append(
            Section(
                "Posterior CO2 against aircraft",
                [
                    "Bias = posterior − observed CO2 (ppm); observations below the lowest "
                    "band excluded.",
                ],
                tables=[Table(["product", *map(str, b["band"].values)], rows)],
                figures=[
                    Figure(
                        directory / "fig02_aircraft_bias_maps.png", "Mean bias per box (Fig. 2a–h)"
                    ),
                    Figure(
                        directory / "fig02_aircraft_bias_hist.png", "Bias histograms (Fig. 2i–j)"
                    ),
                ],
            )
        )
    return sections


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")


def _overview(ens: Ensemble, r: dict[str, xr.Dataset], years: str) -> Section:
    cov = r["regions"]["coverage"]
    rows = [
        [p, str(g), fmt(100 * float(cov.sel(product=p)), 1)]
        for p, g in zip(ens.products, ens.nee["product_group"].values, strict=True)
    ]
    return Section(
        "Overview",
        [SIGN_STATEMENT, f"Domain: {ens.domain}; years {years}.", *ens.notes],
        tables=[Table(["product", "group", "domain land covered (%)"], rows)],
    )


def _contribution_table(ds: xr.Dataset, regions: list[str], units: str) -> Table:
    rows = []
    for g in ds["group"].values:
        for reg in regions:
            rows.append(
                [
                    str(g),
                    reg,
                    pm(
                        float(ds["nbp_median"].sel(group=g, region=reg)),
                        float(ds["nbp_std"].sel(group=g, region=reg)),
                    ),
                    fmt(float(ds["share_median"].sel(group=g, region=reg)), 1),
                ]
            )
    return Table(["group", "region", f"NBP median ± std [{units}]", "share median (%)"], rows)


def _msc_table(ds: xr.Dataset, regions: list[str]) -> Table:
    rows = [
        [
            str(g),
            reg,
            *[
                fmt(
                    float(ds[f"group_{k}"].sel(group=g, region=reg)),
                    3 if k in ("peak_value", "amplitude") else 0,
                )
                for k in METRICS
            ],
        ]
        for g in ds["group"].values
        for reg in regions
    ]
    return Table(["group", "region", *METRICS], rows)


def _annual_table(ds: xr.Dataset, region: str) -> Table:
    rows = [
        [
            str(p),
            str(g),
            fmt(float(ds["nbp_mean"].sel(product=p, region=region))),
            fmt(float(ds["iav"].sel(product=p, region=region))),
        ]
        for p, g in zip(ds["product"].values, ds["product_group"].values, strict=True)
    ]
    rows += [
        [
            f"{g} (median ± std)",
            str(g),
            pm(
                float(ds["nbp_mean_median"].sel(group=g, region=region)),
                float(ds["nbp_mean_std"].sel(group=g, region=region)),
            ),
            fmt(float(ds["iav_median"].sel(group=g, region=region))),
        ]
        for g in ds["group"].values
    ]
    return Table(["product", "group", "mean annual NBP [PgC yr-1]", "IAV [PgC yr-1]"], rows)


def _consistency_table(ds: xr.Dataset) -> Table:
    rows = [
        [
            str(g),
            str(reg),
            fmt(float(ds["msc_spread"].sel(group=g, region=reg)), 4),
            fmt(float(ds["msc_pairwise_r"].sel(group=g, region=reg)), 2),
        ]
        for g in ds["group"].values
        for reg in ds["region"].values
    ]
    return Table(["group", "region", "msc_spread [PgC month-1]", "msc_pairwise_r"], rows)


def summarise(lc: LoadedConfig, ens: Ensemble, r: dict[str, xr.Dataset]) -> dict:
    """The headline numbers as plain JSON (NBP, positive = sink)."""
    dom = ens.domain
    tot = r["annual_totals"]
    msc = r["seasonal_cycles"]
    groups = [str(g) for g in tot["group"].values]

    def per_group(ds: xr.Dataset, var: str, region: str) -> dict:
        return {
            g: {
                "median": float(ds[f"{var}_median"].sel(group=g, region=region)),
                "std": float(ds[f"{var}_std"].sel(group=g, region=region)),
            }
            for g in groups
        }

    regions = [str(x) for x in ens.region_fraction["region"].values]
    summary = {
        "sign_convention": SIGN_STATEMENT,
        "config": str(lc.path),
        "domain": dom,
        "years": ens.years,
        "notes": ens.notes,
        "peak_months": lc.cfg.peak_months,
        "products": {
            p: {
                "group": str(g),
                "coverage": float(r["regions"]["coverage"].sel(product=p)),
                "mean_annual_nbp_pgc_yr": float(tot["nbp_mean"].sel(product=p, region=dom)),
                "iav_pgc_yr": float(tot["iav"].sel(product=p, region=dom)),
            }
            for p, g in zip(ens.products, ens.nee["product_group"].values, strict=True)
        },
        "mean_annual_nbp_pgc_yr": {reg: per_group(tot, "nbp_mean", reg) for reg in regions},
        "peak_season_nbp_pgc_month": {
            reg: per_group(r["contributions_peak"], "nbp", reg) for reg in regions
        },
        "msc_metrics_of_group_median": {
            reg: {
                g: {k: float(msc[f"group_{k}"].sel(group=g, region=reg)) for k in METRICS}
                for g in groups
            }
            for reg in regions
        },
        "consistency": {
            reg: {
                g: {
                    "msc_spread_pgc_month": float(
                        r["consistency"]["msc_spread"].sel(group=g, region=reg)
                    ),
                    "msc_pairwise_r": float(
                        r["consistency"]["msc_pairwise_r"].sel(group=g, region=reg)
                    ),
                }
                for g in groups
            }
            for reg in regions
        },
        "tables": sorted(f"{k}.nc" for k in r),
    }
    if "aircraft_bias" in r:
        b = r["aircraft_bias"]
        summary["aircraft_mean_bias_ppm"] = {
            str(p): {
                str(x): float(b["overall_mean_bias"].sel(product=p, band=x))
                for x in b["band"].values
            }
            for p in b["product"].values
        }
    return summary
