"""The 10 drivers of Upton et al. Table A2 from the twin world's base variables.

| driver | definition here |
|---|---|
| WAI2 | daily bucket water (mm) |
| MSC_EVIRpot | MSC(EVI × Rg) (the table's formula; the name says Rpot) |
| MSC_FparLST | MSC(fAPAR × LST_day) |
| MIN_MSC_NDWI | min(MSC(NDWI)) |
| AMP_Band4 | max − min of monthly-mean MIR reflectance within each calendar year |
| MSC_LST_Night | MSC(LST_night) |
| Rg_VIMSC | MSC(NDVI × Rpot) |
| AMP_MSC_NDVI | max − min of MSC(NDVI) |
| Tair | daily air temperature (°C) |
| AMP_MSC_WAI | max − min of MSC(WAI) |

MSCs are over the scenario's base period, smoothed by a circular running mean of
``window`` days, and expanded back to every day; constants are repeated daily.
"""

from __future__ import annotations

import numpy as np

from fluxbridge.data.canonical import DRIVER_NAMES

from .seasonal import Calendar, amplitude, annual_amplitude, expand, minimum, monthly_means, msc


def table_a2(base: dict[str, np.ndarray], calendar: Calendar, window: int) -> dict[str, np.ndarray]:
    """The 10 drivers (day, cell) as float32, in :data:`DRIVER_NAMES` order."""
    n_days = len(calendar.days)

    def cycle(values: np.ndarray) -> np.ndarray:
        return msc(values, calendar.slots, calendar.base, window)

    def daily(cycle_values: np.ndarray) -> np.ndarray:
        return expand(cycle_values, calendar.slots)

    def constant(values: np.ndarray) -> np.ndarray:
        return np.broadcast_to(values, (n_days, values.shape[-1]))

    ndvi_cycle = cycle(base["ndvi"])
    wai_cycle = cycle(base["water"])
    mir_monthly = monthly_means(base["mir"], calendar.month_of_day)
    mir_amp = annual_amplitude(mir_monthly, calendar.year_of_month)
    drivers = {
        "WAI2": base["water"],
        "MSC_EVIRpot": daily(cycle(base["evi"] * base["rg"])),
        "MSC_FparLST": daily(cycle(base["fapar_obs"] * base["lst_day"])),
        "MIN_MSC_NDWI": constant(minimum(cycle(base["ndwi"]))),
        "AMP_Band4": mir_amp[calendar.year_of_day],
        "MSC_LST_Night": daily(cycle(base["lst_night"])),
        "Rg_VIMSC": daily(cycle(base["ndvi"] * base["rpot"])),
        "AMP_MSC_NDVI": constant(amplitude(ndvi_cycle)),
        "Tair": base["tair"],
        "AMP_MSC_WAI": constant(amplitude(wai_cycle)),
    }
    return {name: np.ascontiguousarray(drivers[name], dtype=np.float32) for name in DRIVER_NAMES}
