"""Figures of the report (matplotlib, Agg backend), one function per figure kind.

Every figure shows NBP (positive = sink) as the tables do. Each function takes
tables from :mod:`fluxbridge.analysis.tables` and a path, writes one PNG and
returns nothing.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.analysis.config import MONTH_ABBR, EventWindow

GROUP_COLOURS = {
    "satellite-inversion": "#c0392b",
    "in-situ-inversion": "#2471a3",
    "biosphere-model": "#229954",
    "prior": "#7f8c8d",
}
DPI = 110


def _save(fig: plt.Figure, path: Path) -> None:
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _grid_of_axes(n: int, ncol: int, size: tuple[float, float]) -> tuple[plt.Figure, np.ndarray]:
    ncol = max(1, min(ncol, n))
    nrow = int(np.ceil(n / ncol))
    fig, axes = plt.subplots(
        nrow, ncol, figsize=(size[0] * ncol, size[1] * nrow), squeeze=False, constrained_layout=True
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def _map(ax: plt.Axes, da: xr.DataArray, title: str, cmap: str, vlim: float | None) -> None:
    kw = {"vmin": -vlim, "vmax": vlim} if vlim else {}
    mesh = ax.pcolormesh(da["lon"], da["lat"], da.values, cmap=cmap, shading="nearest", **kw)
    ax.set_title(title, fontsize=9)
    ax.set_aspect("equal")
    ax.tick_params(labelsize=7)
    plt.colorbar(mesh, ax=ax, shrink=0.8).ax.tick_params(labelsize=7)


def _symmetric_limit(values: np.ndarray) -> float | None:
    """98th percentile of |values| for a colour scale centred on 0 (None: let matplotlib pick)."""
    finite = np.abs(values[np.isfinite(values)])
    if finite.size == 0:
        return None
    limit = float(np.percentile(finite, 98))
    return limit if limit > 0 else None


def flux_maps(maps: xr.Dataset, units: str, path: Path, title: str) -> None:
    """Per-product maps, then each group's median and std (Figs. 3, 5, S3–S6)."""
    panels = [
        (maps["nbp"].sel(product=p), f"{p} ({g})", "RdBu")
        for p, g in zip(maps["product"].values, maps["product_group"].values, strict=True)
    ]
    for g in maps["nbp_median"]["group"].values:
        panels.append((maps["nbp_median"].sel(group=g), f"{g}: median", "RdBu"))
        panels.append((maps["nbp_std"].sel(group=g), f"{g}: std", "viridis"))
    vlim = _symmetric_limit(maps["nbp"].values)
    fig, axes = _grid_of_axes(len(panels), 4, (3.6, 2.6))
    for ax, (da, label, cmap) in zip(axes, panels, strict=False):
        _map(ax, da, label, cmap, vlim if cmap == "RdBu" else None)
    fig.suptitle(f"{title} [{units}], positive = sink")
    _save(fig, path)


def contribution_bars(
    contrib: xr.Dataset, regions: list[str], units: str, path: Path, title: str
) -> None:
    """Regional NBP per product (bars) with group medians (Figs. 4, 6)."""
    value = contrib["nbp"].sel(region=regions)
    groups = list(dict.fromkeys(contrib["product_group"].values))
    fig, axes = _grid_of_axes(len(groups), len(groups), (max(3.0, 0.9 * len(regions)), 3.0))
    for ax, g in zip(axes, groups, strict=False):
        members = value.where(value["product_group"] == g, drop=True)
        n = members.sizes["product"]
        width = 0.8 / max(n, 1)
        x = np.arange(len(regions))
        for k, p in enumerate(members["product"].values):
            ax.bar(x - 0.4 + (k + 0.5) * width, members.sel(product=p).values, width, label=str(p))
        ax.scatter(
            x,
            contrib["nbp_median"].sel(group=g, region=regions).values,
            color="k",
            marker="_",
            s=300,
            zorder=3,
            label="median",
        )
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xticks(x, regions, rotation=30, fontsize=8)
        ax.set_title(g, fontsize=9, color=GROUP_COLOURS.get(g, "k"))
        ax.set_ylabel(units)
        ax.legend(fontsize=6, ncol=2)
    fig.suptitle(f"{title}, positive = sink")
    _save(fig, path)


def seasonal_cycles(msc: xr.Dataset, regions: list[str], path: Path, title: str) -> None:
    """MSC per region: products thin, group median thick with ±std band (Figs. 7–8)."""
    fig, axes = _grid_of_axes(len(regions), 3, (3.8, 2.8))
    month = np.arange(1, 13)
    for ax, r in zip(axes, regions, strict=False):
        for p, g in zip(msc["product"].values, msc["product_group"].values, strict=True):
            ax.plot(
                month,
                msc["msc"].sel(product=p, region=r),
                lw=0.6,
                alpha=0.6,
                color=GROUP_COLOURS.get(str(g), "k"),
            )
        for g in msc["msc_median"]["group"].values:
            med = msc["msc_median"].sel(group=g, region=r).values
            std = np.nan_to_num(msc["msc_std"].sel(group=g, region=r).values)
            colour = GROUP_COLOURS.get(str(g), "k")
            ax.plot(month, med, lw=2, color=colour, label=str(g))
            ax.fill_between(month, med - std, med + std, color=colour, alpha=0.15)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_xticks(month, [m[0] for m in MONTH_ABBR], fontsize=7)
        ax.set_title(r, fontsize=9)
        ax.set_ylabel("PgC month-1", fontsize=8)
    axes[0].legend(fontsize=6)
    fig.suptitle(f"{title}, NBP positive = sink")
    _save(fig, path)


def annual_totals(totals: xr.Dataset, region: str, path: Path) -> None:
    """Annual NBP per product and year, group median ± std per year (Fig. 9)."""
    groups = list(dict.fromkeys(totals["product_group"].values))
    fig, axes = _grid_of_axes(len(groups), len(groups), (4.0, 3.0))
    years = totals["year"].values
    for ax, g in zip(axes, groups, strict=False):
        members = totals["nbp"].sel(region=region).where(totals["product_group"] == g, drop=True)
        for p in members["product"].values:
            ax.plot(years, members.sel(product=p), lw=0.7, marker=".", alpha=0.6)
        med = totals["nbp_median"].sel(group=g, region=region)
        ax.errorbar(
            years,
            med,
            yerr=totals["nbp_std"].sel(group=g, region=region).fillna(0),
            color="k",
            lw=2,
            capsize=3,
            label="median ± std",
        )
        ax.set_title(g, fontsize=9, color=GROUP_COLOURS.get(g, "k"))
        ax.set_ylabel("PgC yr-1")
        ax.set_xticks(years)
        ax.legend(fontsize=6)
    fig.suptitle(f"Annual NBP of {region}, positive = sink")
    _save(fig, path)


def anomalies(anom: xr.Dataset, regions: list[str], windows: list[EventWindow], path: Path) -> None:
    """Monthly NBP anomalies per sub-region: group medians with std bars, event windows shaded."""
    fig, axes = _grid_of_axes(len(regions), 1, (9.0, 2.2))
    time = pd.DatetimeIndex(anom["time"].values)
    for ax, r in zip(axes, regions, strict=False):
        for g in anom["anomaly_median"]["group"].values:
            ax.errorbar(
                time,
                anom["anomaly_median"].sel(group=g, region=r),
                yerr=anom["anomaly_std"].sel(group=g, region=r).fillna(0),
                lw=1,
                capsize=1.5,
                color=GROUP_COLOURS.get(str(g), "k"),
                label=str(g),
            )
        for w in windows:
            ax.axvspan(
                pd.Timestamp(w.start),
                pd.Timestamp(w.end) + pd.offsets.MonthEnd(0),
                alpha=0.15,
                color="tan",
            )
            ax.text(pd.Timestamp(w.start), ax.get_ylim()[1], w.label, fontsize=7, va="top")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set_title(r, fontsize=9)
        ax.set_ylabel("PgC month-1", fontsize=8)
    axes[0].legend(fontsize=6, ncol=4)
    fig.suptitle("Monthly NBP anomalies, positive = more sink")
    _save(fig, path)


def event_maps(event: xr.Dataset, path: Path) -> None:
    """ΔNBP of a group median beside z-scores of soil moisture, SIF and LAI (Fig. 11)."""
    names = ["delta_nbp", *[v for v in ("z_soil_moisture", "z_sif", "z_lai") if v in event]]
    fig, axes = _grid_of_axes(len(names), len(names), (3.8, 2.8))
    for ax, v in zip(axes, names, strict=False):
        cmap = "RdBu" if v == "delta_nbp" else "BrBG"
        vlim = _symmetric_limit(event[v].values) if v == "delta_nbp" else 2.5
        _map(ax, event[v], f"{v} [{event[v].attrs.get('units', '')}]", cmap, vlim)
    fig.suptitle(
        f"Event {event.attrs['event_year']}, months {event.attrs['event_months']} "
        f"({event.attrs['event_group']} median)"
    )
    _save(fig, path)


def consistency(cons: xr.Dataset, path: Path) -> None:
    """MSC spread and pairwise r per group and region; r with SIF/LAI (Figs. S9–S10)."""
    keys = ["msc_spread", "msc_pairwise_r", *[k for k in ("r_sif", "r_lai") if k in cons]]
    fig, axes = _grid_of_axes(len(keys), 2, (5.0, 3.0))
    regions = [str(r) for r in cons["region"].values]
    x = np.arange(len(regions))
    for ax, k in zip(axes, keys, strict=False):
        da = cons[k]
        if "product" in da.dims:  # per product: median per group
            da = da.groupby("product_group").median("product").rename(product_group="group")
        groups = list(da["group"].values)
        width = 0.8 / len(groups)
        for i, g in enumerate(groups):
            ax.bar(
                x - 0.4 + (i + 0.5) * width,
                da.sel(group=g).values,
                width,
                color=GROUP_COLOURS.get(str(g), "k"),
                label=str(g),
            )
        ax.set_xticks(x, regions, rotation=30, fontsize=7)
        ax.set_title(k, fontsize=9)
    axes[0].legend(fontsize=6)
    _save(fig, path)


def aircraft_bias(bias: xr.Dataset, path_maps: Path, path_hist: Path) -> None:
    """Mean bias per box and band for each product; bias histograms (Fig. 2)."""
    pairs = [(p, b) for b in bias["band"].values for p in bias["product"].values]
    fig, axes = _grid_of_axes(len(pairs), bias.sizes["product"], (3.4, 2.8))
    vlim = _symmetric_limit(bias["mean_bias"].values) or 1.0
    for ax, (p, b) in zip(axes, pairs, strict=False):
        _map(ax, bias["mean_bias"].sel(product=p, band=b), f"{p}, {b}", "RdBu_r", vlim)
    fig.suptitle("Posterior minus observed CO2 [ppm]")
    _save(fig, path_maps)
    fig, axes = _grid_of_axes(bias.sizes["band"], bias.sizes["band"], (4.5, 3.0))
    edges = np.asarray(bias.attrs["bias_bin_edges_ppm"])
    for ax, b in zip(axes, bias["band"].values, strict=False):
        for p in bias["product"].values:
            ax.stairs(bias["bias_histogram"].sel(product=p, band=b).values, edges, label=str(p))
        ax.set_title(str(b), fontsize=9)
        ax.set_xlabel("bias [ppm]")
        ax.legend(fontsize=6)
    _save(fig, path_hist)
