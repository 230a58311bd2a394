"""Diagnostic figures of the bridge models (Upton et al. Figs. B2–B4), matplotlib Agg.

* ``inclusion_map.png`` (B2): log10 of the number of robustness runs in which each
  pixel was contributing;
* ``r2_by_region.png``: training and CV R² per region against the threshold,
  fallback regions hatched;
* ``pft_contributing.png`` (B3): share of each majority PFT among all contributing
  pixels, with the global share of land pixels as black outlines;
* ``pft_by_region.png`` (B4): majority-PFT composition of each region's contributing pixels;
* ``bridges_fidelity.png``: per region the annual bias (bridge − exact, PgC yr-1) of each
  field of the fidelity table (:mod:`fluxbridge.bridge.fidelity`).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from fluxbridge.bridge.bridgeset import BridgeSet
from fluxbridge.outputs import atomic_path


def pft_composition(bset: BridgeSet, pft_fraction: np.ndarray, n_pft: int) -> pd.DataFrame:
    """Counts of contributing pixels per (region, majority PFT); pft_fraction (pft, lat, lon)."""
    majority = np.argmax(pft_fraction, axis=0)
    table = np.zeros((len(bset.bridges), n_pft), dtype=np.int64)
    for r, br in enumerate(bset.bridges):
        table[r] = np.bincount(majority[br.ilat, br.ilon], minlength=n_pft)
    return pd.DataFrame(table, index=bset.regions)


def _save(fig: plt.Figure, path: Path) -> None:
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)


def inclusion_map(bset: BridgeSet, path: Path) -> None:
    freq = bset.inclusion_frequency
    n_runs = int(bset.attrs.get("n_runs", 1))
    fig, ax = plt.subplots(figsize=(10, 5))
    counts = np.where(np.nan_to_num(freq) > 0, freq * n_runs, np.nan) if freq is not None else None
    if counts is not None:
        mesh = ax.pcolormesh(
            bset.lon, bset.lat, np.log10(counts), shading="nearest", cmap="magma_r"
        )
        fig.colorbar(mesh, ax=ax, label=f"log10(inclusions in {n_runs} runs)")
        ax.contour(
            bset.lon,
            bset.lat,
            np.isfinite(freq).astype(float),
            levels=[0.5],
            colors="0.6",
            linewidths=0.5,
        )
    ax.set(
        xlabel="longitude (°E)",
        ylabel="latitude (°N)",
        title="Contributing-pixel inclusion across robustness runs",
    )
    _save(fig, path)


def r2_by_region(summary: pd.DataFrame, threshold: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(summary)), 4))
    pos = np.arange(len(summary))
    hatch = ["//" if f != "none" else "" for f in summary["fallback"]]
    for off, col, colour in ((-0.2, "r2_train", "tab:blue"), (0.2, "r2_cv", "tab:orange")):
        bars = ax.bar(pos + off, summary[col].fillna(0.0), width=0.4, label=col, color=colour)
        for bar, h in zip(bars, hatch, strict=True):
            bar.set_hatch(h)
    ax.axhline(threshold, color="k", linestyle="--", linewidth=1, label=f"threshold {threshold}")
    ax.set_xticks(pos, summary["region"], rotation=90)
    ax.set(
        ylabel="R²",
        ylim=(min(0.0, *summary[["r2_train", "r2_cv"]].fillna(0.0).to_numpy().ravel()), 1.02),
        title="Bridge R² per region (hatched: fallback)",
    )
    ax.legend(loc="lower right")
    _save(fig, path)


def pft_figures(
    table: pd.DataFrame, global_share: np.ndarray, names: list[str], out_dir: Path
) -> None:
    total = table.to_numpy().sum(axis=0)
    share = total / max(total.sum(), 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names)), 4))
    pos = np.arange(len(names))
    ax.bar(pos, share, color="tab:green", label="contributing pixels")
    ax.bar(pos, global_share, fill=False, edgecolor="k", label="all land pixels")
    ax.set_xticks(pos, names, rotation=90)
    ax.set(ylabel="share (majority PFT)", title="PFTs of contributing pixels (all regions)")
    ax.legend()
    _save(fig, out_dir / "pft_contributing.png")

    rows = table.to_numpy() / np.maximum(table.to_numpy().sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(table)), 4))
    bottom = np.zeros(len(table))
    cmap = plt.get_cmap("tab20")
    for k, name in enumerate(names):
        ax.bar(np.arange(len(table)), rows[:, k], bottom=bottom, color=cmap(k % 20), label=name)
        bottom += rows[:, k]
    ax.set_xticks(np.arange(len(table)), table.index, rotation=90)
    ax.set(ylabel="share of contributing pixels", title="Majority PFT of contributing pixels")
    ax.legend(fontsize="small", bbox_to_anchor=(1.01, 1), loc="upper left")
    _save(fig, out_dir / "pft_by_region.png")


def write_figures(
    bset: BridgeSet,
    summary: pd.DataFrame,
    pft_fraction: np.ndarray,
    pft_names: list[str],
    land: np.ndarray,
    threshold: float,
    out_dir: Path,
) -> list[Path]:
    """Write all bridge figures into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    inclusion_map(bset, out_dir / "inclusion_map.png")
    r2_by_region(summary, threshold, out_dir / "r2_by_region.png")
    table = pft_composition(bset, pft_fraction, len(pft_names))
    majority = np.argmax(pft_fraction, axis=0)[land]
    global_share = np.bincount(majority, minlength=len(pft_names)) / max(majority.size, 1)
    pft_figures(table, global_share, pft_names, out_dir)
    return [
        out_dir / n
        for n in (
            "inclusion_map.png",
            "r2_by_region.png",
            "pft_contributing.png",
            "pft_by_region.png",
        )
    ]


def fidelity_figure(table: pd.DataFrame, path: Path) -> Path:
    """Grouped bars: annual bias (PgC yr-1) per region, one bar per field of ``table``."""
    bias = table.pivot(index="region", columns="field", values="annual_bias_pgc_yr")
    bias = bias.loc[list(dict.fromkeys(table["region"])), list(dict.fromkeys(table["field"]))]
    n_regions, n_fields = bias.shape
    fig, ax = plt.subplots(figsize=(max(7.0, 0.6 * n_regions), 4.5))
    width = 0.8 / max(n_fields, 1)
    pos = np.arange(n_regions)
    cmap = plt.get_cmap("tab10")
    for k, field in enumerate(bias.columns):
        ax.bar(
            pos + (k - (n_fields - 1) / 2) * width,
            bias[field],
            width,
            label=field,
            color=cmap(k % 10),
        )
    ax.axhline(0.0, color="k", linewidth=0.8)
    ax.set_xticks(pos, bias.index, rotation=90)
    ax.set(
        ylabel="annual bias, bridge − exact (PgC yr⁻¹)",
        title="Bridge fidelity: annual bias per region and field",
    )
    ax.grid(axis="y", linewidth=0.3)
    ax.legend(fontsize="small", ncol=min(n_fields, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(fig, path)
    return path
