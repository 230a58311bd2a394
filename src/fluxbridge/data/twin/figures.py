"""Figures of a twin-world dataset for docs/twin_world.md.

    python -m fluxbridge.data.twin.figures DATASET_DIR OUT_DIR

writes ``twin_global_budget.png`` (truth, residual sink, inversion mean and reference,
PgC yr-1), ``twin_regional_msc.png`` (mean seasonal cycles per RECCAP2 region,
PgC month-1) and ``twin_towers.png`` (tower map over the land fraction).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

from fluxbridge.data.canonical import open_canonical


def regional_integrals(nee: xr.DataArray, grid: xr.Dataset) -> xr.DataArray:
    """(time, region) PgC month-1 of a monthly (…, time, lat, lon) NEE field."""
    weight = grid["cell_area"] * grid["land_fraction"] * grid["region_fraction"]
    days = nee["time"].dt.days_in_month
    return (nee.fillna(0.0) * weight).sum(("lat", "lon")) * days * 1e-15


def global_integral(nee: xr.DataArray, grid: xr.Dataset) -> xr.DataArray:
    """(…, time) PgC month-1: the sum of the 18 regions (what the inversions constrain)."""
    return regional_integrals(nee, grid).sum("region")


def plot_global_budget(ds, out: Path) -> None:
    grid = ds.grid_ds
    truth = global_integral(ds.open("truth")["nee"], grid).groupby("time.year").sum()
    inv = global_integral(ds.open("inversions")["nee"], grid).groupby("time.year").sum()
    ref = global_integral(ds.open("reference")["nee"], grid).groupby("time.year").sum()
    sink = ds.open("residual_sink")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.plot(truth["year"], truth, "k-o", label="truth")
    ax.errorbar(
        sink["year"], sink["nee_global"], yerr=sink["nee_global_sigma"], fmt="s", color="tab:red",
        capsize=3, label="residual sink ±1σ",
    )  # fmt: skip
    ax.plot(inv["year"], inv.mean("member"), "-", color="tab:blue", label="inversion mean")
    ax.plot(ref["year"], ref, "--", color="tab:green", label="reference (FLUXCOM-like)")
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_ylabel("global land NEE (PgC yr$^{-1}$)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "twin_global_budget.png", dpi=120)
    plt.close(fig)


def plot_regional_msc(ds, out: Path) -> None:
    grid = ds.grid_ds
    series = {
        "truth": regional_integrals(ds.open("truth")["nee"], grid),
        "inversion mean": regional_integrals(ds.open("inversions")["nee"].mean("member"), grid),
        "reference": regional_integrals(ds.open("reference")["nee"], grid),
    }
    cycles = {k: v.groupby("time.month").mean() for k, v in series.items()}
    fig, axes = plt.subplots(3, 6, figsize=(14, 6.5), sharex=True)
    for r, ax in enumerate(axes.flat):
        for (label, cyc), style in zip(cycles.items(), ("k-", "b-", "g--"), strict=True):
            ax.plot(cyc["month"], cyc.isel(region=r), style, label=label, lw=1.2)
        ax.set_title(str(grid["region_abbr"].values[r]), fontsize=9)
        ax.axhline(0, color="0.7", lw=0.5)
        ax.tick_params(labelsize=7)
    axes[0, 0].legend(fontsize=7)
    fig.supylabel("NEE (PgC month$^{-1}$)")
    fig.supxlabel("month")
    fig.tight_layout()
    fig.savefig(out / "twin_regional_msc.png", dpi=110)
    plt.close(fig)


def plot_towers(ds, out: Path) -> None:
    grid, sites = ds.grid_ds, ds.open("sites")
    fig, ax = plt.subplots(figsize=(9, 4.5))
    ax.pcolormesh(grid["lon"], grid["lat"], grid["land_fraction"], cmap="Greys", vmin=0, vmax=2)
    tropical = sites["site_tropical"].values == 1 if "site_tropical" in sites else None
    colours = np.where(tropical, "tab:red", "tab:blue") if tropical is not None else "tab:blue"
    ax.scatter(sites["site_lon"], sites["site_lat"], s=12, c=colours, edgecolor="k", lw=0.3)
    ax.set_title(f"{sites.sizes['site']} towers (red: tropical, biased)", fontsize=10)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-60, 85)
    ax.set_aspect("equal")
    fig.tight_layout()
    fig.savefig(out / "twin_towers.png", dpi=120)
    plt.close(fig)


def make_figures(dataset: Path, out: Path) -> list[Path]:
    """Write the three figures of ``dataset`` into ``out``; return their paths."""
    ds = open_canonical(dataset)
    out.mkdir(parents=True, exist_ok=True)
    plot_global_budget(ds, out)
    plot_regional_msc(ds, out)
    plot_towers(ds, out)
    return [out / f"twin_{n}.png" for n in ("global_budget", "regional_msc", "towers")]


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m fluxbridge.data.twin.figures DATASET_DIR OUT_DIR")
    for path in make_figures(Path(sys.argv[1]), Path(sys.argv[2])):
        print(path)
