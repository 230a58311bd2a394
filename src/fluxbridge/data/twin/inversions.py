"""Inversion-like fields: regional integrals with the errors real ensembles have, noisy pixels.

A member is truth + a regional error + pixel noise, all monthly on land cells. The
regional error e(month, region) in PgC month-1 is the sum of

* errors *shared* by every member (one draw per ensemble), constant in time unless said:
  a per-region bias (σ ``shared_bias_pgc_yr``); a tropics ↔ northern-extratropics
  dipole d ~ N(0, ``dipole_pgc_yr``²) added to :data:`DIPOLE_TROPICS` and taken from
  :data:`DIPOLE_NORTH`, each region's share ∝ its land area, so the sum over the 18
  regions is unchanged; and a seasonal-amplitude error that scales each region's true
  mean seasonal cycle (minus its annual mean) by ε_r ~ N(0, ``seasonal_amplitude_error``²);
* errors of each member: a constant per-region bias (σ ``member_bias_pgc_yr``, the
  ensemble spread) and an AR(1) series per region whose σ is between half and all of
  ``regional_error_pgc_month``.

Constant biases are a constant daily rate within each year, so every calendar year's
integral shifts by exactly the bias in PgC yr-1. The error is spread as a uniform flux
over each region's land, solving the small region × region overlap system so that
cells shared by two regions still give every region exactly its error. The pixel noise
is a spatially correlated field from which each region's integral is removed the same
way, so it changes pixels but no regional integral. Land in no region gets neither:
inversions equal the truth there (no inversion constrains it).

Regional integral (PgC month-1) = Σ nee · cell_area · land_fraction · region_fraction ·
days_in_month · 1e-15, as in the canonical schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fluxbridge.data.canonical import TROPICAL_REGIONS

from .fields import CorrelatedField, ar1, rho_from_timescale, stream_rng, unit_vectors
from .geography import Geography
from .scenario import REGION_ABBRS, InversionsConfig
from .seasonal import monthly_cycle

PG_PER_G = 1e-15
#: The two sides of the shared dipole: the humid tropics (where inversions have the
#: fewest observations) against the well-observed northern extratropical regions.
DIPOLE_TROPICS: tuple[str, ...] = TROPICAL_REGIONS
DIPOLE_NORTH: tuple[str, ...] = ("USA", "CAN", "EU", "RUS", "CAS", "CHN", "KAJ")


@dataclass(frozen=True)
class RegionalOperator:
    """Integrals over regions and their inverse (uniform region-wide increments)."""

    weights: np.ndarray  # (region, cell) land area in the region, m2
    overlap: np.ndarray  # (region, region) Σ_cells weight_r · fraction_r'
    fraction: np.ndarray  # (region, cell)

    @classmethod
    def of(cls, geo: Geography) -> RegionalOperator:
        fraction = geo.on_cells(geo.region_fraction)
        area = geo.on_cells(geo.cell_area * geo.land_fraction)
        weights = fraction * area[None, :]
        present = weights.sum(axis=1) > 0
        overlap = weights @ fraction.T
        empty = np.flatnonzero(~present)
        overlap[empty, empty] = 1.0  # empty regions (coarse grids): keep the system invertible
        return cls(weights, overlap, fraction)

    @property
    def covered(self) -> np.ndarray:
        """(cell,) True where some region covers the cell."""
        return self.fraction.sum(axis=0) > 0

    def integrate(self, flux: np.ndarray, days_in_month: np.ndarray) -> np.ndarray:
        """(month, region) PgC month-1 of a (month, cell) flux in gC m-2 d-1."""
        return (flux @ self.weights.T) * days_in_month[:, None] * PG_PER_G

    def spread(self, integral: np.ndarray, days_in_month: np.ndarray) -> np.ndarray:
        """(month, cell) flux whose regional integrals are ``integral`` (month, region)."""
        grams_per_day = integral / (days_in_month[:, None] * PG_PER_G)
        level = np.linalg.solve(self.overlap, grams_per_day.T).T  # (month, region) g m-2 d-1
        return level @ self.fraction

    def remove_integrals(self, flux: np.ndarray, days_in_month: np.ndarray) -> np.ndarray:
        """``flux`` minus a region-wide level per region so that every regional integral is 0."""
        return flux - self.spread(self.integrate(flux, days_in_month), days_in_month)


def constant_rate(annual: np.ndarray, months: pd.DatetimeIndex) -> np.ndarray:
    """(month, region) PgC month-1 of a constant daily rate that sums to ``annual`` each year.

    ``annual`` is (region,) in PgC yr-1; a month gets its share of its year's days.
    """
    days = months.days_in_month.to_numpy().astype(np.float64)
    in_year = np.where(months.is_leap_year, 366.0, 365.0)
    return (days / in_year)[:, None] * annual[None, :]


def dipole_pattern(operator: RegionalOperator) -> np.ndarray:
    """(region,) +land share within :data:`DIPOLE_TROPICS`, −share within :data:`DIPOLE_NORTH`.

    Sums to 0; all zeros when either side has no land (coarse grids).
    """
    area = operator.weights.sum(axis=1)
    pattern = np.zeros(area.size)
    for names, sign in ((DIPOLE_TROPICS, 1.0), (DIPOLE_NORTH, -1.0)):
        idx = [REGION_ABBRS.index(a) for a in names]
        if area[idx].sum() <= 0:
            return np.zeros(area.size)
        pattern[idx] = sign * area[idx] / area[idx].sum()
    return pattern


def seasonal_anomaly(regional: np.ndarray, months: pd.DatetimeIndex) -> np.ndarray:
    """(month, region) mean seasonal cycle of ``regional`` minus its 12-month mean, per month."""
    cycle = monthly_cycle(regional, months)
    return (cycle - cycle.mean(axis=0))[months.month.to_numpy() - 1]


def shared_error(
    truth_regional: np.ndarray,
    operator: RegionalOperator,
    months: pd.DatetimeIndex,
    cfg: InversionsConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """(month, region) PgC month-1 error common to all members: bias, dipole, seasonal amplitude."""
    n_regions = operator.weights.shape[0]
    bias = cfg.shared_bias_pgc_yr * rng.standard_normal(n_regions)
    dipole = cfg.dipole_pgc_yr * rng.standard_normal() * dipole_pattern(operator)
    epsilon = cfg.seasonal_amplitude_error * rng.standard_normal(n_regions)
    amplitude = epsilon[None, :] * seasonal_anomaly(truth_regional, months)
    return constant_rate(bias + dipole, months) + amplitude


def pixel_noise(
    geo: Geography,
    operator: RegionalOperator,
    days_in_month: np.ndarray,
    cfg: InversionsConfig,
    rng: np.random.Generator,
) -> np.ndarray:
    """(month, cell) correlated noise with every regional integral 0, and 0 outside regions."""
    field = CorrelatedField.draw(rng, days_in_month.size, cfg.noise_length_scale_deg, 0.5)
    xyz = unit_vectors(geo.grid.lat[geo.cell_ilat], geo.grid.lon[geo.cell_ilon])
    noise = operator.remove_integrals(cfg.pixel_noise_gc_m2_d * field.values(xyz), days_in_month)
    return noise * operator.covered[None, :]


def inversion_members(
    truth: np.ndarray,
    geo: Geography,
    operator: RegionalOperator,
    months: pd.DatetimeIndex,
    cfg: InversionsConfig,
    *,
    members: int,
    seed: int,
    stream: int,
) -> Iterator[np.ndarray]:
    """Yield ``members`` fields (month, cell) in gC m-2 d-1 with the errors of ``cfg``.

    Member m's AR(1) σ is ``regional_error_pgc_month`` × a draw in [1/2, 1]; its AR(1)
    series and pixel noise come first from its stream, so with the shared and bias knobs
    at 0 the members are those of the error model without them.
    """
    days = months.days_in_month.to_numpy().astype(np.float64)
    n_regions = operator.weights.shape[0]
    rho = rho_from_timescale(cfg.error_timescale_months)
    scales = stream_rng(seed, stream).uniform(0.5, 1.0, members)
    truth_regional = operator.integrate(truth, days)
    shared = shared_error(truth_regional, operator, months, cfg, stream_rng(seed, stream, 0))
    for m in range(members):
        rng = stream_rng(seed, stream, m + 1)
        sigma = cfg.regional_error_pgc_month * scales[m]
        series = sigma * ar1(rng, days.size, n_regions, rho)
        noise = pixel_noise(geo, operator, days, cfg, rng)
        bias = constant_rate(cfg.member_bias_pgc_yr * rng.standard_normal(n_regions), months)
        yield truth + operator.spread(shared + series + bias, days) + noise
