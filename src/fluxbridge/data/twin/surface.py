"""Land surface seen from space: phenology → fAPAR, NDVI, EVI, NDWI, LST, MIR reflectance.

All arrays are (day, cell). Vegetation greenness follows a growing-season index
(Jolly et al. 2005 style: temperature × water × light limits, each 0..1) smoothed with
a 20-day exponential memory; fAPAR moves between each pixel's dormant and full-canopy
values. The indices then follow from fAPAR, water and cloudiness with small
MODIS-like noise.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

GREENUP_MEMORY_DAYS = 20.0
KELVIN = 273.15


def greenness(
    tair: np.ndarray, water: np.ndarray, rpot: np.ndarray, capacity: np.ndarray
) -> np.ndarray:
    """Smoothed growing-season index, 0..1 (day, cell)."""
    index = (
        np.clip((tair + 2.0) / 10.0, 0.0, 1.0)
        * np.clip(water / (0.35 * capacity), 0.0, 1.0)
        * np.clip(rpot / 15.0, 0.0, 1.0)
    )
    alpha = 1.0 / GREENUP_MEMORY_DAYS
    start = index[: min(365, index.shape[0])].mean(axis=0)
    smoothed, _ = lfilter(
        [alpha], [1.0, alpha - 1.0], index, axis=0, zi=((1 - alpha) * start)[None]
    )
    return smoothed


def remote_sensing(
    tair: np.ndarray,
    water: np.ndarray,
    rpot: np.ndarray,
    cloud: np.ndarray,
    rg: np.ndarray,
    traits: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """True fAPAR and the MODIS-like base variables of Table A2 (unitless; LST in K)."""
    capacity = traits["capacity"][None, :]
    green = greenness(tair, water, rpot, capacity)
    fapar = traits["fapar_min"] + (traits["fapar_max"] - traits["fapar_min"]) * green
    wet = np.clip(water / capacity, 0.0, 1.0)
    shape = fapar.shape

    def noisy(values: np.ndarray, sd: float) -> np.ndarray:
        return values + sd * rng.standard_normal(shape)

    ndvi = np.clip(noisy((fapar + 0.168) / 1.24, 0.02), -0.1, 1.0)  # inverse of Myneni's fAPAR
    evi = np.clip(noisy(0.65 * ndvi - 0.04, 0.015), -0.1, 1.0)
    ndwi = np.clip(noisy(-0.25 + 0.6 * fapar * (0.3 + 0.7 * wet), 0.02), -1.0, 1.0)
    dry_bare = (1.0 - fapar) * (1.0 - wet)
    lst_day = noisy(tair + KELVIN + 1.0 + 12.0 * dry_bare * rg / 25.0, 1.0)
    lst_night = noisy(tair + KELVIN - 2.0 - 4.0 * (1.0 - cloud), 1.0)
    mir = np.clip(noisy(0.04 + 0.22 * (1.0 - fapar) * (1.0 - 0.4 * wet), 0.01), 0.0, 1.0)
    return {
        "fapar": fapar,
        "fapar_obs": np.clip(noisy(fapar, 0.02), 0.0, 1.0),
        "ndvi": ndvi,
        "evi": evi,
        "ndwi": ndwi,
        "lst_day": lst_day,
        "lst_night": lst_night,
        "mir": mir,
    }
