"""Inversion-like fields: regional integrals close to the truth, noisy pixels.

A member is truth + a regional error + pixel noise, all monthly on land cells:

* the regional error e(month, region) in PgC month-1 is an AR(1) series per member and
  region with a member-specific σ (between half and all of the configured value);
  it is spread as a uniform flux over each region's land, solving the small
  region × region overlap system so that cells shared by two regions still give
  every region exactly its error;
* the pixel noise is a spatially correlated field from which each region's integral
  is removed the same way, so it changes pixels but no regional integral.

Regional integral (PgC month-1) = Σ nee · cell_area · land_fraction · region_fraction ·
days_in_month · 1e-15, as in the canonical schema.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from .fields import CorrelatedField, ar1, rho_from_timescale, stream_rng, unit_vectors
from .geography import Geography

PG_PER_G = 1e-15


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


def perturbed_member(
    truth: np.ndarray,
    geo: Geography,
    operator: RegionalOperator,
    days_in_month: np.ndarray,
    *,
    regional_sigma: float,
    timescale_months: float,
    pixel_sigma: float,
    length_scale_deg: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One member (month, cell): truth + regional AR(1) error + integral-free pixel noise."""
    n_months, n_regions = truth.shape[0], operator.weights.shape[0]
    rho = rho_from_timescale(timescale_months)
    error = regional_sigma * ar1(rng, n_months, n_regions, rho)
    field = CorrelatedField.draw(rng, n_months, length_scale_deg, 0.5)
    xyz = unit_vectors(geo.grid.lat[geo.cell_ilat], geo.grid.lon[geo.cell_ilon])
    noise = operator.remove_integrals(pixel_sigma * field.values(xyz), days_in_month)
    return truth + operator.spread(error, days_in_month) + noise


def inversion_members(
    truth: np.ndarray,
    geo: Geography,
    operator: RegionalOperator,
    days_in_month: np.ndarray,
    *,
    members: int,
    regional_sigma: float,
    pixel_sigma: float,
    timescale_months: float,
    length_scale_deg: float,
    seed: int,
    stream: int,
) -> Iterator[np.ndarray]:
    """Yield ``members`` member fields (month, cell); member m has σ_m ∈ [σ/2, σ]."""
    scale_rng = stream_rng(seed, stream)
    scales = scale_rng.uniform(0.5, 1.0, members)
    for m in range(members):
        yield perturbed_member(
            truth,
            geo,
            operator,
            days_in_month,
            regional_sigma=regional_sigma * scales[m],
            timescale_months=timescale_months,
            pixel_sigma=pixel_sigma,
            length_scale_deg=length_scale_deg,
            rng=stream_rng(seed, stream, m + 1),
        )
