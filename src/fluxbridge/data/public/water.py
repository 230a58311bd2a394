"""WAI: water availability index (mm) from a daily one-layer soil-water bucket.

Tramontana et al. (2016, supplement S3) compute WAI with a water-balance bucket
fed by precipitation and drained by evapotranspiration limited by potential
evapotranspiration (PET) and by the water in the bucket. The supplement is not
in this project's sources, so the equations below are fluxbridge's reading of
that description; the parameters marked *choice* are ours (docs/real_data.md,
"Drivers from public products").

Per day t and cell (all water in mm, i.e. kg m-2):

1. snow:   below 0 °C precipitation falls as snow; melt = min(snow, m · max(Tair, 0))
           with the degree-day factor m (*choice*, 3 mm °C-1 d-1);
2. supply: S = min(C, W[t-1] + rain + melt) — water above the capacity C runs off;
3. ET:     E = min(S, PET · S / C)   (linear in the relative water content:
           *choice* of the stress function);
4. WAI:    W[t] = S − E.

PET is Priestley–Taylor (Priestley & Taylor 1972) with ground heat flux 0 at the
daily step: PET = α · Δ/(Δ+γ) · Rn/λ with α = 1.26, Δ from FAO-56 Eq. 13,
γ = 0.0674 kPa °C-1 (FAO-56 Eq. 8 at 101.3 kPa), λ = 2.45 MJ kg-1, and net
radiation Rn = f · Rg (*choice*, f = 0.6: ERA5's net radiation needs upward
longwave and albedo we do not read).

Spin-up: the bucket starts full without snow and the first year's forcing is
run ``spinup_years`` times before the first output day (*choice*).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Latent heat of vaporisation (MJ kg-1), FAO-56.
LAMBDA_MJ_PER_KG = 2.45
#: Psychrometric constant (kPa °C-1) at 101.3 kPa, FAO-56 Eq. 8.
GAMMA_KPA_PER_DEGC = 0.000665 * 101.3


@dataclass(frozen=True)
class BucketParameters:
    """Parameters of the WAI bucket (see the module docstring)."""

    capacity_mm: float = 150.0
    priestley_taylor_alpha: float = 1.26
    net_radiation_fraction: float = 0.6
    melt_mm_per_degc_day: float = 3.0
    spinup_years: int = 5

    def __post_init__(self) -> None:
        if self.capacity_mm <= 0:
            raise ValueError(f"capacity_mm must be > 0, got {self.capacity_mm}")
        if not 0 < self.net_radiation_fraction <= 1:
            raise ValueError(
                f"net_radiation_fraction must be in (0, 1], got {self.net_radiation_fraction}"
            )
        if self.spinup_years < 0:
            raise ValueError(f"spinup_years must be >= 0, got {self.spinup_years}")


@dataclass
class BucketState:
    """Water (mm) and snow (mm water equivalent) per cell at the end of a day."""

    water: np.ndarray
    snow: np.ndarray

    @classmethod
    def full(cls, n_cells: int, params: BucketParameters) -> BucketState:
        return cls(np.full(n_cells, params.capacity_mm), np.zeros(n_cells))


def saturation_slope(tair_c: np.ndarray) -> np.ndarray:
    """Δ: slope of the saturation vapour pressure curve (kPa °C-1), FAO-56 Eq. 13."""
    t = np.asarray(tair_c, dtype=np.float64)
    return 4098.0 * (0.6108 * np.exp(17.27 * t / (t + 237.3))) / (t + 237.3) ** 2


def priestley_taylor_pet(
    rg_mj: np.ndarray, tair_c: np.ndarray, params: BucketParameters
) -> np.ndarray:
    """PET (mm d-1, ≥ 0) from daily Rg (MJ m-2 d-1) and daily mean Tair (°C)."""
    delta = saturation_slope(tair_c)
    rn = params.net_radiation_fraction * np.maximum(np.asarray(rg_mj, dtype=np.float64), 0.0)
    return (
        params.priestley_taylor_alpha * delta / (delta + GAMMA_KPA_PER_DEGC) * rn / LAMBDA_MJ_PER_KG
    )


def run_bucket(
    precip_mm: np.ndarray,
    pet_mm: np.ndarray,
    tair_c: np.ndarray,
    state: BucketState,
    params: BucketParameters,
) -> tuple[np.ndarray, BucketState]:
    """Daily WAI (day, cell) in mm from (day, cell) forcing, and the state after the last day.

    ``precip_mm`` ≥ 0 (mm d-1), ``pet_mm`` (mm d-1), ``tair_c`` (°C). ``state`` is not
    modified. NaN forcing propagates to NaN WAI for that cell from that day on.
    """
    capacity = params.capacity_mm
    water = np.array(state.water, dtype=np.float64)
    snow = np.array(state.snow, dtype=np.float64)
    out = np.empty(np.shape(precip_mm), dtype=np.float64)
    for t in range(out.shape[0]):
        frozen = tair_c[t] < 0.0
        precip = np.maximum(precip_mm[t], 0.0)  # ERA5 tp can be -1e-9 after packing
        snow = snow + np.where(frozen, precip, 0.0)
        melt = np.minimum(snow, params.melt_mm_per_degc_day * np.maximum(tair_c[t], 0.0))
        snow = snow - melt
        supply = np.minimum(capacity, water + np.where(frozen, 0.0, precip) + melt)
        et = np.minimum(supply, np.maximum(pet_mm[t], 0.0) * supply / capacity)
        water = supply - et
        out[t] = water
    return out, BucketState(water, snow)


def spin_up(
    precip_mm: np.ndarray, pet_mm: np.ndarray, tair_c: np.ndarray, params: BucketParameters
) -> BucketState:
    """State after running one year of forcing ``params.spinup_years`` times from a full bucket."""
    state = BucketState.full(np.shape(precip_mm)[1], params)
    for _ in range(params.spinup_years):
        _, state = run_bucket(precip_mm, pet_mm, tair_c, state, params)
    return state
