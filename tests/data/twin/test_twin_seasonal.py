"""Solar geometry and the Table A2 seasonal operators against hand computations."""

import math

import numpy as np
import pandas as pd
import pytest

from fluxbridge.data.twin.seasonal import (
    amplitude,
    annual_amplitude,
    day_slots,
    expand,
    minimum,
    monthly_means,
    msc,
)
from fluxbridge.data.twin.weather import potential_radiation


def test_rpot_fao56_example_8():
    # FAO-56 Example 8: 20°S on 3 September (day 246) → Ra = 32.2 MJ m-2 d-1.
    assert potential_radiation(np.array(-20.0), np.array(246)) == pytest.approx(32.2, abs=0.05)


def test_rpot_by_hand_at_equinox_equator():
    # Day 80, 0°N: ωs = π/2, so Ra = 24·60/π · Gsc · dr · cos δ.
    j = 80
    dr = 1 + 0.033 * math.cos(2 * math.pi * j / 365)
    delta = 0.409 * math.sin(2 * math.pi * j / 365 - 1.39)
    expected = 24 * 60 / math.pi * 0.0820 * dr * math.cos(delta)
    assert potential_radiation(np.array(0.0), np.array(j)) == pytest.approx(expected, rel=1e-12)


def test_rpot_polar_night_is_zero():
    assert potential_radiation(np.array(80.0), np.array(355)) == pytest.approx(0.0, abs=1e-9)


def test_day_slots_share_feb_28_and_29():
    days = pd.date_range("2004-02-27", "2004-03-02", freq="D")
    assert day_slots(days).tolist() == [57, 58, 58, 59, 60]
    assert day_slots(pd.DatetimeIndex(["2003-12-31", "2004-12-31"])).tolist() == [364, 364]


def test_msc_amplitude_minimum_against_numpy():
    days = pd.date_range("2001-01-01", "2003-12-31", freq="D")  # 3 non-leap years
    rng = np.random.default_rng(1)
    values = rng.normal(size=(days.size, 2))
    slots = day_slots(days)
    base = days.year <= 2002
    cycle = msc(values, slots, np.asarray(base))
    by_hand = values[: 2 * 365].reshape(2, 365, 2).mean(axis=0)  # years 2001–2002 only
    np.testing.assert_allclose(cycle, by_hand, rtol=1e-12)
    np.testing.assert_allclose(amplitude(cycle), by_hand.max(0) - by_hand.min(0))
    np.testing.assert_allclose(minimum(cycle), by_hand.min(0))
    np.testing.assert_allclose(expand(cycle, slots)[730 + 10], by_hand[10])


def test_msc_smoothing_is_a_circular_running_mean():
    days = pd.date_range("2001-01-01", "2001-12-31", freq="D")
    values = np.arange(365.0)[:, None]
    smooth = msc(values, day_slots(days), np.ones(365, bool), window=3)
    assert smooth[0, 0] == pytest.approx((364 + 0 + 1) / 3)
    assert smooth[100, 0] == pytest.approx(100.0)


def test_msc_refuses_a_base_period_missing_days():
    days = pd.date_range("2001-01-01", "2001-06-30", freq="D")
    with pytest.raises(ValueError, match="every day of the year"):
        msc(np.ones((days.size, 1)), day_slots(days), np.ones(days.size, bool))


def test_monthly_means_and_annual_amplitude_by_hand():
    days = pd.date_range("2001-01-01", "2002-12-31", freq="D")
    month = (days.year - 2001) * 12 + days.month - 1
    values = np.asarray(month, dtype=float)[:, None] ** 2 + np.asarray(days.day)[:, None]
    means = monthly_means(values, np.asarray(month))
    jan = values[:31, 0].mean()
    assert means[0, 0] == pytest.approx(jan)
    amp = annual_amplitude(means, np.repeat([0, 1], 12))
    assert amp[1, 0] == pytest.approx(means[23, 0] - means[12, 0])
