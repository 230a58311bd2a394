"""Anomalies, IAV and event z-scores computed by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.analysis.anomalies import (
    event_anomaly,
    event_zscore,
    interannual_variability,
    monthly_anomalies,
)
from fluxbridge.errors import ConfigError


def _series() -> xr.DataArray:
    t = pd.date_range("2015-01-01", "2019-12-01", freq="MS")
    rng = np.random.default_rng(3)
    return xr.DataArray(rng.standard_normal(t.size), dims="time", coords={"time": t})


def test_monthly_anomalies_remove_the_calendar_month_mean() -> None:
    s = _series()
    table = s.values.reshape(5, 12)
    expected = (table - table.mean(axis=0)).ravel()
    np.testing.assert_allclose(monthly_anomalies(s).values, expected)


def test_event_zscore_and_anomaly_by_hand() -> None:
    s = _series()
    months = [6, 7, 8, 9, 10, 11]
    per_year = s.values.reshape(5, 12)[:, 5:11].mean(axis=1)
    z = (per_year[4] - per_year.mean()) / per_year.std(ddof=1)
    assert np.isclose(float(event_zscore(s, 2019, months)), z)
    assert np.isclose(float(event_anomaly(s, 2019, months)), per_year[4] - per_year.mean())
    with pytest.raises(ConfigError, match="2021"):
        event_zscore(s, 2021, months)


def test_iav_is_sample_std_across_years() -> None:
    a = xr.DataArray([0.3, 0.5, 0.4, 0.1], dims="year", coords={"year": [2015, 2016, 2017, 2018]})
    assert np.isclose(float(interannual_variability(a)), np.std([0.3, 0.5, 0.4, 0.1], ddof=1))
    assert np.isnan(float(interannual_variability(a.isel(year=[0]))))
