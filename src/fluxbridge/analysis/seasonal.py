"""Mean seasonal cycles (MSC) of regional NBP and the numbers derived from them.

All functions here take NBP (positive = sink, PgC month-1), as the report does.
Definitions (also in docs/ensemble_analysis.md), for a 12-value MSC ``m``:

* ``peak_month``: calendar month (1..12) of the largest NBP (first one on ties);
* ``peak_value``: that largest NBP, PgC month-1;
* ``amplitude``: max(m) − min(m), PgC month-1;
* ``uptake_length``: number of consecutive months (the year wraps, Dec → Jan) with
  NBP > 0 in the run that contains the peak month; 0 when the peak NBP ≤ 0;
* ``onset_month``: first month of that run (NaN when the peak NBP ≤ 0 or when all
  twelve months are sinks, as then no month starts the uptake period).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from fluxbridge.data.canonical import MONTHLY_INTEGRAL_UNITS

METRICS: dict[str, tuple[str, str]] = {
    "peak_month": ("1", "calendar month of the largest NBP of the MSC"),
    "peak_value": (MONTHLY_INTEGRAL_UNITS, "largest NBP of the MSC (positive = sink), as carbon"),
    "amplitude": (MONTHLY_INTEGRAL_UNITS, "max minus min of the NBP MSC, as carbon"),
    "uptake_length": ("month", "length of the run of sink months that contains the peak month"),
    "onset_month": ("1", "first month of the run of sink months that contains the peak month"),
}


def monthly_climatology(monthly: xr.DataArray) -> xr.DataArray:
    """Mean over years for each calendar month: (..., time) → (..., month = 1..12).

    Months of the year missing from ``monthly`` are NaN in the result.
    """
    msc = monthly.groupby("time.month").mean("time", skipna=False)
    return msc.reindex(month=np.arange(1, 13))


def msc_metrics_1d(msc: np.ndarray) -> dict[str, float]:
    """The five derived numbers of one 12-month NBP MSC (see module docstring)."""
    m = np.asarray(msc, dtype=np.float64)
    if m.shape != (12,):
        raise ValueError(f"expected 12 monthly values, got shape {m.shape}")
    if np.isnan(m).any():
        return dict.fromkeys(METRICS, float("nan"))
    ipeak = int(np.argmax(m))
    out = {
        "peak_month": float(ipeak + 1),
        "peak_value": float(m[ipeak]),
        "amplitude": float(m.max() - m.min()),
        "uptake_length": 0.0,
        "onset_month": float("nan"),
    }
    sink = m > 0
    if not sink[ipeak]:
        return out
    if sink.all():
        out["uptake_length"] = 12.0
        return out
    start = ipeak
    while sink[(start - 1) % 12]:
        start -= 1
    end = ipeak
    while sink[(end + 1) % 12]:
        end += 1
    out["uptake_length"] = float(end - start + 1)
    out["onset_month"] = float(start % 12 + 1)
    return out


def msc_metrics(msc: xr.DataArray) -> xr.Dataset:
    """Derived numbers for every MSC in ``msc`` (..., month) → Dataset of (...) variables."""
    lead = [d for d in msc.dims if d != "month"]
    stacked = msc.transpose(*lead, "month")
    flat = stacked.values.reshape(-1, 12)
    rows = [msc_metrics_1d(r) for r in flat]
    shape = stacked.shape[:-1]
    coords = {k: v for k, v in stacked.coords.items() if "month" not in v.dims}
    data = {}
    for name, (units, long_name) in METRICS.items():
        values = np.array([r[name] for r in rows]).reshape(shape)
        data[name] = xr.DataArray(
            values, dims=lead, coords=coords, attrs={"units": units, "long_name": long_name}
        )
    return xr.Dataset(data)
