"""Fields derived from the monthly truth: FLUXCOM-like reference, residual sink, product families.

* Reference (what an EC-only upscaling of the biased towers gives): the explainable
  truth (truth − unexplained) with its interannual anomaly damped to ``iav_damping``,
  plus the tower bias over the vegetated share of tropical cells, plus a smooth
  model error, plus a fixed within-region error pattern (correlation length 3 grid
  cells, every regional integral 0, so no regional constraint can see it).
* Residual sink: the truth's global annual NEE + N(0, σ) per year.
* Product families for the ensemble analysis (He et al.): satellite-like inversions
  (errors as the scenario's inversions, shared errors drawn per family), in-situ-like
  inversions (2.5× the AR(1) regional and 1.5× the pixel error), biosphere-model-like
  fields (70 % of the seasonal cycle, 40 % of the interannual anomaly, so a weak
  drought response, plus a smooth bias) and one prior (80 % of the cycle, no interannual anomaly).
All fluxes in gC m-2 d-1 (source positive), monthly on land cells (month, cell).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .fields import CorrelatedField, stream_rng, unit_vectors
from .geography import Geography
from .inversions import RegionalOperator, inversion_members
from .landcover import PFTS
from .scenario import Scenario
from .seasonal import monthly_cycle

_STREAM_REFERENCE, _STREAM_SINK = 40, 41
_STREAM_SATELLITE, _STREAM_IN_SITU, _STREAM_BIOSPHERE, _STREAM_PRIOR = 42, 43, 44, 45
GROUPS = ("satellite-inversion", "in-situ-inversion", "biosphere-model", "prior")
PATTERN_LENGTH_CELLS = 3.0  # correlation length of the reference's within-region error


def _cycle_and_anomaly(
    monthly: np.ndarray, months: pd.DatetimeIndex
) -> tuple[np.ndarray, np.ndarray]:
    cycle = monthly_cycle(monthly, months)[months.month.to_numpy() - 1]
    return cycle, monthly - cycle


def _smooth_field(
    rng: np.random.Generator, geo: Geography, n_months: int, rho: float
) -> np.ndarray:
    xyz = unit_vectors(geo.grid.lat[geo.cell_ilat], geo.grid.lon[geo.cell_ilon])
    return CorrelatedField.draw(rng, n_months, 10.0, rho).values(xyz)


def within_region_pattern(
    geo: Geography, operator: RegionalOperator, rng: np.random.Generator
) -> np.ndarray:
    """(cell,) unit-σ correlated pattern whose every regional integral is 0; 0 outside regions.

    Correlation length :data:`PATTERN_LENGTH_CELLS` grid cells; σ is taken over the
    land cells that some region covers.
    """
    length_deg = PATTERN_LENGTH_CELLS * max(geo.grid.resolution)
    xyz = unit_vectors(geo.grid.lat[geo.cell_ilat], geo.grid.lon[geo.cell_ilon])
    raw = CorrelatedField.draw(rng, 1, length_deg, 0.0).values(xyz)
    pattern = operator.remove_integrals(raw, np.ones(1))[0] * operator.covered
    sd = pattern[operator.covered].std() if operator.covered.any() else 0.0
    return pattern / sd if sd > 0 else pattern


def reference(
    truth: np.ndarray,
    unexplained: np.ndarray,
    geo: Geography,
    operator: RegionalOperator,
    months: pd.DatetimeIndex,
    scenario: Scenario,
) -> np.ndarray:
    """FLUXCOM-like monthly NEE (month, cell) in gC m-2 d-1."""
    cfg = scenario.reference
    cycle, anomaly = _cycle_and_anomaly(truth - unexplained, months)
    bias = scenario.tower_bias.tropics_gc_m2_d if cfg.apply_tower_bias else 0.0
    # The towers' bias is lost night-time respiration, so it scales with vegetation.
    vegetated = 1.0 - geo.on_cells(geo.pft_fraction[PFTS.index("BSV")])
    tropical = geo.on_cells(geo.tropical) * vegetated
    rng = stream_rng(scenario.seed, _STREAM_REFERENCE)
    error = cfg.model_error_gc_m2_d * _smooth_field(rng, geo, len(months), 0.9)
    pattern = within_region_pattern(geo, operator, stream_rng(scenario.seed, _STREAM_REFERENCE, 1))
    error += cfg.spatial_error_gc_m2_d * pattern[None, :]
    return cycle + cfg.iav_damping * anomaly + bias * tropical[None, :] + error


def residual_sink(global_annual: np.ndarray, scenario: Scenario) -> tuple[np.ndarray, np.ndarray]:
    """(nee_global, nee_global_sigma) per year in PgC yr-1 from the true global annual NEE."""
    sigma = scenario.residual_sink.sigma_pgc_yr
    rng = stream_rng(scenario.seed, _STREAM_SINK)
    noisy = global_annual + sigma * rng.standard_normal(global_annual.shape)
    return noisy, np.full_like(global_annual, sigma)


@dataclass(frozen=True)
class Product:
    name: str
    group: str
    nee: np.ndarray  # (month, cell)


def product_families(
    truth: np.ndarray,
    geo: Geography,
    operator: RegionalOperator,
    months: pd.DatetimeIndex,
    scenario: Scenario,
) -> Iterator[Product]:
    """Yield the product families of the scenario one product at a time."""
    cfg, inv = scenario.products, scenario.inversions
    for prefix, group, count, reg, pix, stream in (
        ("SAT", GROUPS[0], cfg.satellite, 1.0, 1.0, _STREAM_SATELLITE),
        ("INS", GROUPS[1], cfg.in_situ, 2.5, 1.5, _STREAM_IN_SITU),
    ):
        family = replace(
            inv,
            regional_error_pgc_month=reg * inv.regional_error_pgc_month,
            pixel_noise_gc_m2_d=pix * inv.pixel_noise_gc_m2_d,
        )
        fields = inversion_members(
            truth, geo, operator, months, family, members=count, seed=scenario.seed, stream=stream
        )
        for i, nee in enumerate(fields):
            yield Product(f"{prefix}{i + 1}", group, nee)
    cycle, anomaly = _cycle_and_anomaly(truth, months)
    mean = cycle.mean(axis=0, keepdims=True)
    for i in range(cfg.biosphere):
        rng = stream_rng(scenario.seed, _STREAM_BIOSPHERE, i)
        bias = 0.3 * _smooth_field(rng, geo, 1, 0.0)
        yield Product(f"BIO{i + 1}", GROUPS[2], mean + 0.7 * (cycle - mean) + 0.4 * anomaly + bias)
    if cfg.prior:
        rng = stream_rng(scenario.seed, _STREAM_PRIOR)
        bias = 0.3 * _smooth_field(rng, geo, 1, 0.0)
        yield Product("PRIOR", GROUPS[3], 0.5 * mean + 0.8 * (cycle - mean) + bias)
