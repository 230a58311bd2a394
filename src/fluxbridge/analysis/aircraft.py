"""Posterior CO2 against aircraft profiles (He et al. Fig. 2).

Input: a CSV table, one row per observation, with columns ``time`` (ISO 8601),
``lat`` (degrees north), ``lon`` (degrees east), ``altitude_m`` (m above sea
level), ``obs_ppm`` (observed CO2 dry-air mole fraction, ppm) and one
``<product>_ppm`` column per product (that product's posterior mole fraction
co-sampled at the observation, ppm; empty where it has none).

Bias = model − observation (ppm). Rows below the lowest band bottom (default
2 km, the boundary layer near airports) are excluded. For each altitude band
``[bottom, top)`` the mean bias is computed in lat/lon boxes and as a histogram.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.analysis.config import AircraftConfig
from fluxbridge.errors import SchemaError

REQUIRED = ("time", "lat", "lon", "altitude_m", "obs_ppm")


def read_aircraft_table(path: Path) -> tuple[pd.DataFrame, list[str]]:
    """Read and check the CSV; returns the table and the product names found."""
    try:
        table = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise SchemaError(path, None, f"not a readable CSV table ({exc})") from exc
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise SchemaError(path, ", ".join(missing), f"missing column(s); required: {REQUIRED}")
    products = [c[: -len("_ppm")] for c in table.columns if c.endswith("_ppm") and c != "obs_ppm"]
    if not products:
        raise SchemaError(path, None, "no '<product>_ppm' column: nothing to evaluate")
    for c in (*REQUIRED[1:], *(f"{p}_ppm" for p in products)):
        if not pd.api.types.is_numeric_dtype(table[c]):
            raise SchemaError(path, c, f"expected numbers, got dtype {table[c].dtype}")
    try:
        table["time"] = pd.to_datetime(table["time"])
    except (ValueError, TypeError) as exc:
        raise SchemaError(path, "time", f"not ISO 8601 dates ({exc})") from exc
    return table, products


def aircraft_bias(table: pd.DataFrame, products: list[str], cfg: AircraftConfig) -> xr.Dataset:
    """Mean bias per (product, band, lat box, lon box), bias histograms and counts."""
    dlat, dlon = cfg.box_deg
    lat_edges = np.arange(cfg.lat_range[0], cfg.lat_range[1] + 1e-9, dlat)
    lon_edges = np.arange(cfg.lon_range[0], cfg.lon_range[1] + 1e-9, dlon)
    if lat_edges[-1] < cfg.lat_range[1]:
        lat_edges = np.append(lat_edges, lat_edges[-1] + dlat)
    if lon_edges[-1] < cfg.lon_range[1]:
        lon_edges = np.append(lon_edges, lon_edges[-1] + dlon)
    hist_edges = np.asarray(cfg.hist_edges_ppm, dtype=np.float64)
    nb, nla, nlo = len(cfg.bands_m), lat_edges.size - 1, lon_edges.size - 1
    mean_bias = np.full((len(products), nb, nla, nlo), np.nan)
    count = np.zeros((len(products), nb, nla, nlo), dtype=np.int64)
    hist = np.zeros((len(products), nb, hist_edges.size - 1), dtype=np.int64)
    overall = np.full((len(products), nb), np.nan)
    alt, lat, lon = (table[c].to_numpy(float) for c in ("altitude_m", "lat", "lon"))
    for ip, p in enumerate(products):
        bias = table[f"{p}_ppm"].to_numpy(float) - table["obs_ppm"].to_numpy(float)
        for ib, (bottom, top) in enumerate(cfg.bands_m):
            sel = (alt >= bottom) & (alt < top) & np.isfinite(bias)
            b = bias[sel]
            hist[ip, ib] = np.histogram(b, bins=hist_edges)[0]
            if b.size:
                overall[ip, ib] = b.mean()
            total, _, _ = np.histogram2d(lat[sel], lon[sel], [lat_edges, lon_edges], weights=b)
            n, _, _ = np.histogram2d(lat[sel], lon[sel], [lat_edges, lon_edges])
            count[ip, ib] = n.astype(np.int64)
            with np.errstate(invalid="ignore", divide="ignore"):
                mean_bias[ip, ib] = np.where(n > 0, total / n, np.nan)
    band_labels = [f"{bottom / 1000:g}-{top / 1000:g} km" for bottom, top in cfg.bands_m]
    coords = {
        "product": products,
        "band": band_labels,
        "band_bottom_m": ("band", [b[0] for b in cfg.bands_m]),
        "band_top_m": ("band", [b[1] for b in cfg.bands_m]),
        "lat": 0.5 * (lat_edges[1:] + lat_edges[:-1]),
        "lon": 0.5 * (lon_edges[1:] + lon_edges[:-1]),
        "bias_bin": 0.5 * (hist_edges[1:] + hist_edges[:-1]),
    }
    return xr.Dataset(
        {
            "mean_bias": (
                ("product", "band", "lat", "lon"),
                mean_bias,
                {"units": "ppm", "long_name": "mean posterior minus observed CO2 in the box"},
            ),
            "n_obs": (("product", "band", "lat", "lon"), count, {"units": "1"}),
            "bias_histogram": (
                ("product", "band", "bias_bin"),
                hist,
                {"units": "1", "long_name": "observations per bias bin"},
            ),
            "overall_mean_bias": (("product", "band"), overall, {"units": "ppm"}),
        },
        coords=coords,
        attrs={"bias_bin_edges_ppm": hist_edges},
    )
