"""Small pure metric functions on 1-D series and maps (numpy).

Every function takes ``sim`` (the model) and ``obs`` (the reference) in the
same units and ignores pairs where either is NaN. Returned values carry the
units of the inputs unless stated (R, R², NSE, nNSE, the IAV ratio and the
ILAMB scores are dimensionless). Sign conventions do not matter to these functions as long as
both inputs share one (the project's is NEE positive = source).
"""

from __future__ import annotations

import numpy as np

ArrayLike = np.ndarray | list[float]


def _paired(sim: ArrayLike, obs: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(sim, dtype=np.float64)
    o = np.asarray(obs, dtype=np.float64)
    if s.shape != o.shape:
        raise ValueError(f"sim and obs differ in shape: {s.shape} vs {o.shape}")
    keep = np.isfinite(s) & np.isfinite(o)
    return s[keep], o[keep]


def bias(sim: ArrayLike, obs: ArrayLike) -> float:
    """Mean of sim − obs (units of the inputs); positive = sim more of a source."""
    s, o = _paired(sim, obs)
    return float(np.mean(s - o)) if s.size else float("nan")


def rmse(sim: ArrayLike, obs: ArrayLike) -> float:
    """Root-mean-square error sqrt(mean((sim − obs)²)) (units of the inputs)."""
    s, o = _paired(sim, obs)
    return float(np.sqrt(np.mean((s - o) ** 2))) if s.size else float("nan")


def pearson_r(sim: ArrayLike, obs: ArrayLike) -> float:
    """Pearson correlation; NaN when fewer than 3 pairs or either series is constant."""
    s, o = _paired(sim, obs)
    if s.size < 3:
        return float("nan")
    ds, do = s - s.mean(), o - o.mean()
    denom = np.sqrt(np.sum(ds**2) * np.sum(do**2))
    return float(np.sum(ds * do) / denom) if denom > 0 else float("nan")


def nse(sim: ArrayLike, obs: ArrayLike) -> float:
    """Nash–Sutcliffe efficiency 1 − Σ(sim − obs)² / Σ(obs − mean(obs))², in (−∞, 1]."""
    s, o = _paired(sim, obs)
    denom = np.sum((o - o.mean()) ** 2)
    return float(1.0 - np.sum((s - o) ** 2) / denom) if s.size and denom > 0 else float("nan")


def nnse(sim: ArrayLike, obs: ArrayLike) -> float:
    """Normalised NSE, 1 / (2 − NSE), in (0, 1]; 0.5 = as good as the mean of obs (Upton Fig. 3)."""
    value = nse(sim, obs)
    return float(1.0 / (2.0 - value)) if np.isfinite(value) else float("nan")


def mean_seasonal_cycle(monthly: ArrayLike, months: ArrayLike) -> np.ndarray:
    """Mean seasonal cycle: the mean of each calendar month (1..12) → array of 12 (NaN-aware)."""
    x = np.asarray(monthly, dtype=np.float64)
    m = np.asarray(months)
    out = np.full(12, np.nan)
    for k in range(12):
        sel = x[m == k + 1]
        sel = sel[np.isfinite(sel)]
        if sel.size:
            out[k] = sel.mean()
    return out


def detrended_anomalies(annual: ArrayLike, years: ArrayLike) -> np.ndarray:
    """Annual values minus their least-squares linear trend over ``years`` (units of the input)."""
    y = np.asarray(annual, dtype=np.float64)
    t = np.asarray(years, dtype=np.float64)
    keep = np.isfinite(y)
    out = np.full_like(y, np.nan)
    if keep.sum() < 2:
        return out
    slope, intercept = np.polyfit(t[keep], y[keep], 1)
    out[keep] = y[keep] - (slope * t[keep] + intercept)
    return out


def iav_magnitude(annual: ArrayLike, years: ArrayLike) -> float:
    """Interannual variability: std (ddof=0) of detrended annual anomalies (units of the input)."""
    anomalies = detrended_anomalies(annual, years)
    finite = anomalies[np.isfinite(anomalies)]
    return float(np.std(finite)) if finite.size else float("nan")


def iav_ratio(sim_annual: ArrayLike, obs_annual: ArrayLike, years: ArrayLike) -> float:
    """IAV magnitude of ``sim`` over that of ``obs`` (dimensionless; 1 = same IAV).

    NaN when obs has no IAV: below 1e-9 of its largest magnitude, the round-off
    left by detrending a straight line (or an all-zero series such as NO_REGION).
    """
    reference = iav_magnitude(obs_annual, years)
    scale = float(np.nanmax(np.abs(np.asarray(obs_annual, dtype=np.float64)), initial=0.0))
    if not reference > 1e-9 * scale:
        return float("nan")
    return iav_magnitude(sim_annual, years) / reference


def anomaly_r2(sim_annual: ArrayLike, obs_annual: ArrayLike, years: ArrayLike) -> float:
    """R² of the detrended annual anomalies of ``sim`` and ``obs`` (Upton Fig. 2C; dimensionless).

    Standardising the anomalies first, as the paper does, leaves R² unchanged.
    """
    r = pearson_r(detrended_anomalies(sim_annual, years), detrended_anomalies(obs_annual, years))
    return r**2


def variance_contributions(parts: ArrayLike) -> np.ndarray:
    """Share of each part in the variance of the total: cov(part_k, Σ parts) (ddof=0).

    ``parts`` is (part, sample), e.g. each region's detrended annual anomalies in
    PgC yr-1; the result, in the inputs' units squared, sums to the variance of
    the total over parts, so a region's entry says how much of the global IAV²
    it carries. Samples where any part is NaN are dropped.
    """
    x = np.asarray(parts, dtype=np.float64)
    x = x[:, np.isfinite(x).all(axis=0)]
    if x.shape[1] == 0:
        return np.full(x.shape[0], np.nan)
    centred = x - x.mean(axis=1, keepdims=True)
    return centred @ centred.sum(axis=0) / x.shape[1]


def within_region_spatial_r(
    model_map: ArrayLike, truth_map: ArrayLike, weights: ArrayLike
) -> float:
    """Weighted Pearson R between two maps over the cells of one region (dimensionless).

    ``model_map`` and ``truth_map`` are the mean annual NEE (gC m-2 yr-1, positive
    = source) on the same cells; ``weights`` are each cell's land area in the
    region (cell_area × land_fraction × region_fraction, m²). Each map's own
    weighted regional mean is removed, so the score sees only the pattern inside
    the region, not its total. Cells with weight 0 or a NaN are left out; NaN
    when fewer than 3 cells remain or either map is flat.
    """
    x = np.asarray(model_map, dtype=np.float64).ravel()
    y = np.asarray(truth_map, dtype=np.float64).ravel()
    w = np.asarray(weights, dtype=np.float64).ravel()
    if not x.shape == y.shape == w.shape:
        raise ValueError(f"maps and weights differ in size: {x.size}, {y.size}, {w.size}")
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(w) & (w > 0)
    x, y, w = x[keep], y[keep], w[keep] / w[keep].sum()
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    dx, dy = x - np.sum(w * x), y - np.sum(w * y)
    return float(np.sum(w * dx * dy) / np.sqrt(np.sum(w * dx**2) * np.sum(w * dy**2)))


def ilamb_bias_score(sim: ArrayLike, obs: ArrayLike) -> float:
    """ILAMB bias score exp(−|mean(sim) − mean(obs)| / std(obs)) in (0, 1] (Collier et al. 2018)."""
    s, o = _paired(sim, obs)
    sigma = np.std(o)
    if not s.size or sigma == 0:
        return float("nan")
    return float(np.exp(-abs(s.mean() - o.mean()) / sigma))


def ilamb_phase_score(sim_msc: ArrayLike, obs_msc: ArrayLike) -> float:
    """ILAMB seasonal-cycle phase score ½(1 + cos(2π Δ/12)), Δ = months between MSC maxima.

    For NEE (positive = source) the seasonal peak of uptake is the MSC minimum,
    so callers pass −NEE to score the timing of the uptake peak.
    """
    s = np.asarray(sim_msc, dtype=np.float64)
    o = np.asarray(obs_msc, dtype=np.float64)
    if s.shape != (12,) or o.shape != (12,) or not (np.isfinite(s).all() and np.isfinite(o).all()):
        return float("nan")
    delta = int(np.argmax(s)) - int(np.argmax(o))
    return float(0.5 * (1.0 + np.cos(2.0 * np.pi * delta / 12.0)))


def ilamb_iav_score(sim: ArrayLike, obs: ArrayLike, months: ArrayLike) -> float:
    """ILAMB IAV score exp(−ε), ε = ‖a_sim − a_obs‖ / ‖a_obs‖ with a = anomaly from the MSC."""
    s = np.asarray(sim, dtype=np.float64)
    o = np.asarray(obs, dtype=np.float64)
    m = np.asarray(months)
    a_s = s - mean_seasonal_cycle(s, m)[m - 1]
    a_o = o - mean_seasonal_cycle(o, m)[m - 1]
    a_s, a_o = _paired(a_s, a_o)
    norm = np.sqrt(np.sum(a_o**2))
    if not a_s.size or norm == 0:
        return float("nan")
    return float(np.exp(-np.sqrt(np.sum((a_s - a_o) ** 2)) / norm))
