"""Mean seasonal cycles and their derived numbers on hand-made cycles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.analysis.seasonal import monthly_climatology, msc_metrics, msc_metrics_1d


def test_climatology_is_the_mean_of_each_calendar_month() -> None:
    t = pd.date_range("2015-01-01", "2017-12-01", freq="MS")
    values = np.arange(t.size, dtype=float) ** 1.5
    clim = monthly_climatology(xr.DataArray(values, dims="time", coords={"time": t}))
    np.testing.assert_allclose(clim.values, values.reshape(3, 12).mean(axis=0))


def test_metrics_of_a_march_to_october_uptake() -> None:
    m = np.array([-2, -1, 0.5, 1, 2, 3, 4, 3.5, 2, 1, -1, -3], dtype=float)
    got = msc_metrics_1d(m)
    assert got == {
        "peak_month": 7.0,
        "peak_value": 4.0,
        "amplitude": 7.0,
        "uptake_length": 8.0,  # March..October
        "onset_month": 3.0,
    }


def test_uptake_run_wraps_over_new_year_and_picks_the_peak_run() -> None:
    # Sinks Nov-Feb (peak Dec) and a separate weaker one in Jun.
    m = np.array([2, 1, -1, -1, -1, 0.5, -1, -1, -1, -1, 1, 3], dtype=float)
    got = msc_metrics_1d(m)
    assert got["peak_month"] == 12
    assert got["uptake_length"] == 4
    assert got["onset_month"] == 11


def test_no_sink_and_all_sink_cases() -> None:
    never = msc_metrics_1d(-np.ones(12))
    assert never["uptake_length"] == 0 and np.isnan(never["onset_month"])
    always = msc_metrics_1d(np.linspace(1, 2, 12))
    assert always["uptake_length"] == 12 and np.isnan(always["onset_month"])
    with pytest.raises(ValueError, match="12 monthly values"):
        msc_metrics_1d(np.ones(11))


def test_vectorised_metrics_keep_labels() -> None:
    m = np.stack([np.roll(np.arange(12.0) - 5, k) for k in range(3)])
    da = xr.DataArray(m, dims=("region", "month"), coords={"region": ["a", "b", "c"]})
    got = msc_metrics(da)
    assert list(got["peak_month"].values) == [12.0, 1.0, 2.0]
    assert list(got["region"].values) == ["a", "b", "c"]
