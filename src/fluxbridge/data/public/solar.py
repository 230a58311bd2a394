"""Rpot: potential (top-of-atmosphere) shortwave radiation from solar geometry.

Daily extraterrestrial radiation after FAO-56 (Allen et al. 1998), Eqs. 21–25:

    Ra = 24·60/π · Gsc · dr · [ωs sinφ sinδ + cosφ cosδ sin ωs]       (MJ m-2 d-1)
    dr = 1 + 0.033 cos(2πJ/365)          inverse relative Earth–Sun distance
    δ  = 0.409 sin(2πJ/365 − 1.39)       solar declination (rad)
    ωs = arccos(−tanφ tanδ)              sunset hour angle (rad)

with Gsc = 0.0820 MJ m-2 min-1, φ the latitude (rad, + north) and J the day of
the year (1..365/366). ωs is clipped to [0, π]: 0 in polar night (Ra = 0),
π in polar day (the sun never sets), which FAO-56 leaves to the user.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

#: Solar constant (MJ m-2 min-1), FAO-56 Eq. 21.
SOLAR_CONSTANT_MJ_PER_MIN = 0.0820


def potential_radiation(lat_deg: np.ndarray | float, day_of_year: np.ndarray | int) -> np.ndarray:
    """Daily top-of-atmosphere radiation Ra (MJ m-2 d-1, ≥ 0) at latitude ``lat_deg`` (°N).

    ``lat_deg`` and ``day_of_year`` (1 = 1 January) broadcast against each other.
    """
    phi = np.deg2rad(np.asarray(lat_deg, dtype=np.float64))
    j = np.asarray(day_of_year, dtype=np.float64)
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi * j / 365.0)
    delta = 0.409 * np.sin(2.0 * np.pi * j / 365.0 - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))
    ra = (
        24.0
        * 60.0
        / np.pi
        * SOLAR_CONSTANT_MJ_PER_MIN
        * dr
        * (ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws))
    )
    return np.maximum(ra, 0.0)  # rounding can give -1e-16 in polar night


def rpot_daily(days: pd.DatetimeIndex, lat_deg: np.ndarray) -> xr.DataArray:
    """Rpot (time, lat) in MJ m-2 d-1 for every day in ``days`` and every latitude."""
    doy = np.asarray(days.day_of_year)
    values = potential_radiation(np.asarray(lat_deg)[None, :], doy[:, None])
    return xr.DataArray(
        values,
        dims=("time", "lat"),
        coords={"time": days, "lat": np.asarray(lat_deg)},
        attrs={
            "units": "MJ m-2 d-1",
            "long_name": "potential (top-of-atmosphere) shortwave radiation (FAO-56 Eq. 21)",
        },
    )
