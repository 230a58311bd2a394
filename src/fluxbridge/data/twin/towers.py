"""Eddy-covariance towers: placement, folds, records with gaps, biased noisy observations.

* Placement: a share of the towers per RECCAP2 region (:data:`DEFAULT_DENSITY`, dense
  in the USA and Europe, sparse in the tropics, Africa and Asia, or the scenario's
  weights), split by largest remainder; inside a region cells are drawn with
  probability ∝ vegetated land area in the region.
* Folds: grouped by cell (towers of one cell share its drivers and true NEE, so they
  always share a fold), cells dealt by region to the least-filled fold
  (:func:`fluxbridge.training.folds.grouped_folds`): folds differ in size by at most the
  largest cell's towers and each region's cells are spread over the folds.
* Observations: truth at the tower's pixel + representativeness error (AR(1), ρ = 0.9
  per day) + heteroscedastic measurement error (σ·(1 + 0.25|NEE|)) + the tropical bias
  on tropical towers (|lat| < 23.5° or in a TROPICAL_REGIONS region), NaN outside each
  tower's record and in gaps (a two-state Markov chain with 7-day mean gaps).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fluxbridge.data.canonical import DRIVER_NAMES, TROPICAL_REGIONS
from fluxbridge.training.folds import grouped_folds

from .fields import ar1, stream_rng
from .geography import TROPICS_LAT, Geography
from .landcover import PFTS
from .scenario import REGION_ABBRS, Scenario, SitesConfig

DEFAULT_DENSITY: dict[str, float] = {
    "USA": 30, "EU": 28, "CAN": 7, "CHN": 5, "KAJ": 4, "RUS": 4, "OCE": 4, "BRA": 3,
    "CAM": 2, "SAF": 2, "SEAS": 2, "NSA": 1, "SSA": 1, "NAF": 1, "EQAF": 1, "CAS": 1,
    "MIDE": 1, "SAS": 1,
}  # fmt: skip
MEAN_GAP_DAYS = 7.0
_STREAM_PLACE, _STREAM_RECORD, _STREAM_OBS, _STREAM_DRIVERS = 30, 31, 32, 33
DAILY_DRIVERS = ("WAI2", "Tair")


@dataclass(frozen=True)
class Towers:
    """Static description of the towers (arrays are (site,))."""

    ids: list[str]
    lat: np.ndarray
    lon: np.ndarray
    cell: np.ndarray  # index into the land cells
    region: np.ndarray  # RECCAP2 id the tower was placed in
    igbp: list[str]
    fold: np.ndarray
    tropical: np.ndarray

    @property
    def n(self) -> int:
        return len(self.ids)


def _allocate(count: int, weights: dict[str, float]) -> dict[str, int]:
    """Largest-remainder split of ``count`` towers by relative ``weights``."""
    names = list(weights)
    share = np.array([weights[n] for n in names], dtype=np.float64)
    exact = count * share / share.sum()
    out = np.floor(exact).astype(int)
    order = np.argsort(-(exact - out), kind="stable")
    out[order[: count - out.sum()]] += 1
    return dict(zip(names, out.tolist(), strict=True))


def place_towers(geo: Geography, cfg: SitesConfig, seed: int) -> Towers:
    """Tower positions, pixels, regions, IGBP classes and folds."""
    rng = stream_rng(seed, _STREAM_PLACE)
    density = DEFAULT_DENSITY if cfg.density == "default" else dict(cfg.density)
    vegetated = geo.on_cells(geo.land_fraction * geo.cell_area) * (
        1.0 - geo.on_cells(geo.pft_fraction[PFTS.index("BSV")])
    )
    weights = {}
    for abbr, w in density.items():
        mass = vegetated * geo.on_cells(geo.region_fraction[REGION_ABBRS.index(abbr)])
        if w > 0 and mass.sum() > 0:
            weights[abbr] = w
    if not weights:
        raise ValueError("sites.density: no region with a positive weight has vegetated land")
    cells, regions = [], []
    for abbr, n in _allocate(cfg.count, weights).items():
        r = REGION_ABBRS.index(abbr)
        mass = vegetated * geo.on_cells(geo.region_fraction[r])
        cells.append(rng.choice(geo.n_cells, size=n, p=mass / mass.sum()))
        regions.append(np.full(n, r))
    cell = np.concatenate(cells)
    region = np.concatenate(regions)
    dlat, dlon = geo.grid.resolution
    lat = geo.grid.lat[geo.cell_ilat[cell]] + dlat * rng.uniform(-0.4, 0.4, cell.size)
    lon = geo.grid.lon[geo.cell_ilon[cell]] + dlon * rng.uniform(-0.4, 0.4, cell.size)
    pft = geo.on_cells(geo.pft_fraction)[:, cell].argmax(axis=0)
    fold_seed = int(rng.integers(2**31))
    fold = grouped_folds(cell, cfg.folds, fold_seed, strata=region)
    tropical_ids = [REGION_ABBRS.index(a) for a in TROPICAL_REGIONS]
    return Towers(
        ids=[f"TW-{i + 1:04d}" for i in range(cell.size)],
        lat=lat,
        lon=lon,
        cell=cell,
        region=region,
        igbp=[PFTS[p] for p in pft],
        fold=fold,
        tropical=(np.abs(lat) < TROPICS_LAT) | np.isin(region, tropical_ids),
    )


def record_mask(towers: Towers, years: np.ndarray, cfg: SitesConfig, seed: int) -> np.ndarray:
    """(site, day) True where a tower has a daily flux: inside its record and not in a gap."""
    rng = stream_rng(seed, _STREAM_RECORD)
    unique = np.unique(years)
    n_years, n_days = unique.size, years.size
    shortest = min(cfg.record_years_min, n_years)
    length = rng.integers(shortest, n_years + 1, towers.n)
    first = unique[0] + (rng.random(towers.n) * (n_years - length + 1)).astype(int)
    inside = (years[None, :] >= first[:, None]) & (years[None, :] < (first + length)[:, None])
    leave_gap = 1.0 / MEAN_GAP_DAYS
    f = cfg.gap_fraction
    enter_gap = f / (1.0 - f) * leave_gap
    u = rng.random((towers.n, n_days))
    gap = np.empty((towers.n, n_days), dtype=bool)
    gap[:, 0] = u[:, 0] < f
    for t in range(1, n_days):
        gap[:, t] = np.where(gap[:, t - 1], u[:, t] >= leave_gap, u[:, t] < enter_gap)
    return inside & ~gap


def observe(truth: np.ndarray, towers: Towers, mask: np.ndarray, scenario: Scenario) -> np.ndarray:
    """(site, day) observed NEE (gC m-2 d-1) from the true tower NEE (site, day)."""
    cfg = scenario.sites
    rng = stream_rng(scenario.seed, _STREAM_OBS)
    represent = cfg.representativeness_noise_gc_m2_d * ar1(rng, truth.shape[1], towers.n, 0.9).T
    sigma = cfg.measurement_noise_gc_m2_d * (1.0 + 0.25 * np.abs(truth))
    measured = sigma * rng.standard_normal(truth.shape)
    bias = np.where(towers.tropical, scenario.tower_bias.tropics_gc_m2_d, 0.0)[:, None]
    return np.where(mask, truth + represent + measured + bias, np.nan)


def tower_drivers(pixel: dict[str, np.ndarray], scenario: Scenario) -> dict[str, np.ndarray]:
    """Drivers at the towers (site, day): pixel drivers plus tower-level noise.

    Daily drivers (WAI2, Tair: tower meteorology) get independent daily noise; the
    seasonal-cycle drivers get one offset per tower (the footprint differs from the
    pixel). Both have σ = driver_noise × the driver's spread over all towers and days.
    WAI2 and the amplitudes (AMP_*) are kept ≥ 0.
    """
    rng = stream_rng(scenario.seed, _STREAM_DRIVERS)
    out = {}
    for name in DRIVER_NAMES:
        values = pixel[name].astype(np.float64)
        sd = scenario.sites.driver_noise * values.std()
        shape = values.shape if name in DAILY_DRIVERS else (values.shape[0], 1)
        noisy = values + sd * rng.standard_normal(shape)
        # A bucket's water and a seasonal amplitude (max − min) cannot be negative; the
        # noise would make them so at dry or evergreen towers (and the plausibility
        # check refuses a negative amplitude: AMP_MSC_NDVI -0.0014 at 1°, issue 14).
        if name == "WAI2" or name.startswith("AMP_"):
            noisy = np.maximum(noisy, 0.0)
        out[name] = noisy.astype(np.float32)
    return out
