"""Figures of the evaluation report (Upton et al. Figs. 2–8, C1–C2), matplotlib Agg.

Each function draws one figure from data already computed and saves a PNG;
none computes a metric. Map outlines come from the dataset's own land
fraction (the 0.5 contour), so no coastline download is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from fluxbridge.evaluation import metrics as m
from fluxbridge.evaluation.regional import GLOBAL, annual_totals

COLOURS = {
    "EC": "tab:green",
    "EC-ATM": "tab:blue",
    "inversion_mean": "tab:red",
    "reference": "goldenrod",
    "truth": "black",
}


def _colour(name: str) -> str:
    return COLOURS.get(name, COLOURS.get(name.split("-")[0] + "-ATM", "tab:purple"))


def _save(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _members(monthly: xr.DataArray, model: str) -> list[str]:
    return [str(s) for s in monthly["source"].values if str(s).startswith(f"{model}:")]


def global_annual(
    monthly: xr.DataArray,
    models: Sequence[str],
    sink: xr.Dataset | None,
    path: Path,
    labels: dict[str, str] | None = None,
) -> Path:
    """Fig. 2: global annual NEE with member bands, anomalies, and IAV magnitude.

    ``labels`` names the lines of the anomaly panel (C), e.g. with their R²; source names
    by default.
    """
    labels = labels or {}
    annual = annual_totals(monthly.sel(region=GLOBAL))
    years = annual["year"].values
    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    ax = axes[0, 0]
    for model in models:
        mean = annual.sel(source=model).values
        spread = annual.sel(source=_members(monthly, model)).std("source").values
        ax.plot(years, mean, color=_colour(model), label=model)
        ax.fill_between(years, mean - spread, mean + spread, color=_colour(model), alpha=0.25)
    for src in annual["source"].values:
        if str(src).startswith("inversion:"):
            ax.plot(years, annual.sel(source=src), ":", color="tab:red", lw=0.8)
    for name in ("inversion_mean", "reference", "truth"):
        if name in annual["source"].values:
            ax.plot(years, annual.sel(source=name), color=_colour(name), label=name)
    if sink is not None:
        s = sink["nee_global"].reindex(year=years).values
        sig = sink["nee_global_sigma"].reindex(year=years).values
        ax.plot(years, s, "k--", label="residual sink")
        ax.fill_between(years, s - sig, s + sig, color="grey", alpha=0.2)
    ax.set(title="(A) global annual NEE", ylabel="PgC yr-1")
    ax.legend(fontsize=7)
    names = [
        n for n in [*models, "inversion_mean", "reference", "truth"] if n in annual["source"].values
    ]
    axes[0, 1].bar(
        names,
        [float(annual.sel(source=n).mean()) for n in names],
        color=[_colour(n) for n in names],
    )
    axes[0, 1].set(title="(B) mean annual NEE", ylabel="PgC yr-1")
    axes[0, 1].tick_params(axis="x", rotation=30)
    for n in names:
        axes[1, 0].plot(
            years,
            m.detrended_anomalies(annual.sel(source=n).values, years),
            color=_colour(n),
            label=labels.get(n, n),
        )
    axes[1, 0].set(title="(C) detrended anomalies", ylabel="PgC yr-1")
    axes[1, 0].legend(fontsize=6)
    iav = [m.iav_magnitude(annual.sel(source=n).values, years) for n in names]
    err = [
        np.std([m.iav_magnitude(annual.sel(source=s).values, years) for s in _members(monthly, n)])
        if _members(monthly, n)
        else 0.0
        for n in names
    ]
    axes[1, 1].bar(names, iav, yerr=err, color=[_colour(n) for n in names])
    axes[1, 1].set(title="(D) IAV magnitude", ylabel="PgC yr-1")
    axes[1, 1].tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return _save(fig, path)


def nnse_bars(
    scores: dict[str, dict[str, dict[str, float | None]]], models: Sequence[str], path: Path
) -> Path:
    """Fig. 3: nNSE per region vs the inversion mean, regions ordered by the last model."""
    regions = sorted(scores, key=lambda r: -(scores[r].get(models[-1], {}).get("nnse") or 0))
    fig, ax = plt.subplots(figsize=(12, 4))
    width = 0.8 / len(models)
    for k, model in enumerate(models):
        values = [scores[r].get(model, {}).get("nnse") or np.nan for r in regions]
        ax.bar(
            np.arange(len(regions)) + k * width, values, width, label=model, color=_colour(model)
        )
    ax.axhline(0.5, color="grey", lw=0.8)
    ax.set_xticks(np.arange(len(regions)) + 0.4 - width / 2, regions, rotation=60)
    ax.set(ylabel="nNSE", ylim=(0, 1), title="nNSE of monthly regional NEE vs inversion mean")
    ax.legend()
    return _save(fig, path)


def msc_panels(monthly: xr.DataArray, models: Sequence[str], path: Path) -> Path:
    """Figs. 4 and C1: mean seasonal cycle per region, ensemble mean ± member std."""
    months = monthly["time"].dt.month.values
    regions = [str(r) for r in monthly["region"].values]
    ncol = 5
    nrow = int(np.ceil(len(regions) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.4 * nrow), squeeze=False)
    x = np.arange(1, 13)
    inversions = [s for s in monthly["source"].values if str(s).startswith("inversion:")]
    for ax, region in zip(axes.ravel(), regions, strict=False):
        sel = monthly.sel(region=region)
        for model in models:
            mean = m.mean_seasonal_cycle(sel.sel(source=model).values, months)
            spread = np.std(
                [
                    m.mean_seasonal_cycle(sel.sel(source=s).values, months)
                    for s in _members(monthly, model)
                ],
                axis=0,
            )
            ax.plot(x, mean, color=_colour(model), label=model)
            ax.fill_between(x, mean - spread, mean + spread, color=_colour(model), alpha=0.25)
        inv = np.array(
            [m.mean_seasonal_cycle(sel.sel(source=s).values, months) for s in inversions]
        )
        ax.plot(x, inv.mean(0), color=_colour("inversion_mean"), label="inversion mean")
        ax.fill_between(
            x,
            inv.mean(0) - inv.std(0),
            inv.mean(0) + inv.std(0),
            color=_colour("inversion_mean"),
            alpha=0.15,
        )
        for name in ("reference", "truth"):
            if name in sel["source"].values:
                ax.plot(
                    x,
                    m.mean_seasonal_cycle(sel.sel(source=name).values, months),
                    color=_colour(name),
                    lw=1,
                    ls="--" if name == "truth" else "-",
                    label=name,
                )
        ax.set_title(region, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(regions) :]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=6)
    fig.supylabel("PgC month-1")
    fig.tight_layout()
    return _save(fig, path)


def map_grid(
    fields: dict[str, xr.DataArray],
    land: xr.DataArray,
    path: Path,
    *,
    title: str,
    units: str,
    diverging: bool = True,
    ncol: int = 3,
) -> Path:
    """A panel of lat/lon maps with land outlines from the dataset's land fraction."""
    names = list(fields)
    nrow = int(np.ceil(len(names) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.8 * ncol, 2.7 * nrow), squeeze=False)
    finite = np.concatenate([np.ravel(f.values[np.isfinite(f.values)]) for f in fields.values()])
    vmax = float(np.nanpercentile(np.abs(finite), 98)) if finite.size else 1.0
    vmin = -vmax if diverging else float(np.nanpercentile(finite, 2)) if finite.size else 0.0
    for ax, name in zip(axes.ravel(), names, strict=False):
        f = fields[name]
        im = ax.pcolormesh(
            f["lon"],
            f["lat"],
            f,
            cmap="RdBu_r" if diverging else "viridis",
            vmin=vmin,
            vmax=vmax,
            shading="nearest",
        )
        ax.contour(land["lon"], land["lat"], land, levels=[0.5], colors="k", linewidths=0.4)
        ax.set_title(name, fontsize=9)
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
        fig.colorbar(im, ax=ax, shrink=0.7, label=units)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    fig.suptitle(title)
    return _save(fig, path)


def site_scatter(
    predicted: dict[str, np.ndarray], observed: np.ndarray, pft: np.ndarray, path: Path
) -> Path:
    """Figs. 8 and C2: daily tower NEE, model vs observation, overall and per majority PFT."""
    groups = ["all", *sorted(set(pft.tolist()))]
    ncol = min(4, len(groups))
    nrow = int(np.ceil(len(groups) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, 3.1 * nrow), squeeze=False)
    lim = np.nanpercentile(np.abs(observed), 99.5)
    for ax, group in zip(axes.ravel(), groups, strict=False):
        rows = np.ones(pft.size, bool) if group == "all" else pft == group
        for model, pred in predicted.items():
            o, p = observed[rows].ravel(), pred[rows].ravel()
            keep = np.isfinite(o) & np.isfinite(p)
            ax.scatter(
                o[keep],
                p[keep],
                s=1,
                alpha=0.15,
                color=_colour(model),
                label=f"{model} RMSE {m.rmse(p, o):.2f}",
            )
        ax.plot([-lim, lim], [-lim, lim], "k-", lw=0.6)
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), title=str(group))
        ax.legend(fontsize=6, markerscale=8)
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(groups) :]:
        ax.axis("off")
    fig.supxlabel("tower NEE (gC m-2 d-1)")
    fig.supylabel("model NEE (gC m-2 d-1)")
    return _save(fig, path)
