"""Plausibility bounds and counts, checked against hand values."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from fluxbridge.plausibility import (
    TOP_DOWN_BOUNDS_PGC_YR,
    DriverRange,
    Dropped,
    ImplausibleError,
    check_driver_range,
    check_gap_share,
    check_global_total,
    check_same_sign,
    column_summary,
    complete_years,
)


def test_tair_in_kelvin_is_refused_with_a_hint():
    with pytest.raises(
        ImplausibleError, match=r"sites\.nc, variable 'Tair': values 250\.1..310"
    ) as e:
        check_driver_range("Tair", 250.1, 310.0, "sites.nc")
    assert "kelvin labelled degC?" in str(e.value) and "--allow-implausible" in str(e.value)
    check_driver_range("Tair", -89.2, 56.7, "sites.nc")  # the world's records pass


def test_allowed_implausible_values_only_warn(caplog):
    with caplog.at_level(logging.WARNING):
        check_driver_range("MSC_LST_Night", -30.0, 25.0, "drivers.nc", allow=True)
    assert "allowed by --allow-implausible" in caplog.text


@pytest.mark.parametrize(
    ("total", "ok"), [(-2.5, True), (-15.0, True), (-14897.0, False), (6.0, False)]
)
def test_top_down_global_total_bounds(total, ok):
    if ok:
        check_global_total("inversion CAMS", total, TOP_DOWN_BOUNDS_PGC_YR)
    else:
        with pytest.raises(ImplausibleError, match="inversion CAMS: global NEE"):
            check_global_total("inversion CAMS", total, TOP_DOWN_BOUNDS_PGC_YR)


def test_all_nan_total_is_refused():
    with pytest.raises(ImplausibleError, match="global NEE has no value"):
        check_global_total("inversion X", float("nan"), TOP_DOWN_BOUNDS_PGC_YR)


def test_opposite_signs_beyond_the_tolerance():
    with pytest.raises(ImplausibleError, match=r"\+2\.47 PgC/yr has the opposite sign"):
        check_same_sign("inversion mean", 2.47, "the residual sink", -2.06)
    check_same_sign("inversion mean", 0.3, "the residual sink", -2.06)  # |0.3| < 0.5: no call
    check_same_sign("inversion mean", -1.0, "the residual sink", -2.06)


def test_gap_share():
    check_gap_share("CAMS", 0.049)
    with pytest.raises(ImplausibleError, match="CAMS: 100 % of land cell-months"):
        check_gap_share("CAMS", 1.0)


def test_driver_range_counts_values_outside_the_widened_tower_range():
    towers = np.array([[0.0, 10.0], [10.0, 20.0]])  # driver a: 0..10, b: 10..20
    rng = DriverRange.of_towers(("a", "b"), towers)
    # widened by 10 % of the range: a -1..11, b 9..21
    np.testing.assert_allclose(rng.low, [-1.0, 9.0])
    np.testing.assert_allclose(rng.high, [11.0, 21.0])
    rng.update(np.array([[[-2.0, 15.0], [5.0, 22.0]], [[11.5, 8.0], [0.0, 21.0]]]))
    assert rng.outside.tolist() == [2, 2]  # a: -2, 11.5; b: 22, 8
    assert rng.n == 4
    back = DriverRange.from_json(rng.to_json())
    both = back.merged(rng)
    assert both.outside.tolist() == [4, 4] and both.n == 8
    assert both.minimum.tolist() == [-2.0, 8.0] and both.maximum.tolist() == [11.5, 22.0]
    assert rng.check("drivers.nc") == {"a": 2, "b": 2}


def test_column_summary_equals_plain_numpy():
    rng = np.random.default_rng(3)
    values = rng.normal(0.0, 1.0, (40, 7)).astype(np.float32)
    # a float32 value just above the float64 bound 0.1 (float32(0.1) > 0.1): outside in
    # float64, inside if the bound were rounded to float32 first
    values[0, 0] = np.float32(0.1)
    for low, high in [(-10.0, 10.0), (-0.5, 0.1), (0.0, 0.0), (5.0, 6.0)]:
        flat = values.astype(np.float64)
        want = (flat.min(), flat.max(), int(((flat < low) | (flat > high)).sum()))
        assert column_summary(values, np.float64(low), np.float64(high)) == want
    with_nan = values.copy()
    with_nan[3, 3] = np.nan
    minimum, maximum, outside = column_summary(with_nan, -10.0, 10.0)
    assert np.isnan(minimum) and np.isnan(maximum) and outside == 0  # NaN is not "outside"


def test_update_summary_equals_update():
    towers = np.array([[0.0, 10.0], [10.0, 20.0]])
    block = np.array([[[-2.0, 15.0], [5.0, 22.0]], [[11.5, 8.0], [0.0, 21.0]]], dtype=np.float32)
    direct = DriverRange.of_towers(("a", "b"), towers)
    direct.update(block)
    summed = DriverRange.of_towers(("a", "b"), towers)
    parts = [column_summary(block[..., k], summed.low[k], summed.high[k]) for k in range(2)]
    minimum, maximum, outside = (np.array([p[i] for p in parts]) for i in range(3))
    summed.update_summary(minimum, maximum, outside, 4)
    assert summed.to_json() == direct.to_json()


def test_dropped_line():
    d = Dropped("tower-days with NEE", 750, 1000, "a driver is NaN")
    assert d.line() == "750 of 1,000 tower-days with NEE (75 %) left out: a driver is NaN"


def test_complete_years_and_the_inversion_months_left_out():
    # drivers: 2001 whole, 2002 without 31 December, 2003 whole (leap years: none)
    days = pd.date_range("2001-01-01", "2003-12-31", freq="D").delete(729)
    # inversions: 2001 and 2002 whole, 2003 January-June only
    months = pd.date_range("2001-01-01", "2003-06-01", freq="MS")
    years, dropped = complete_years(days, months)
    assert years == [2001]
    assert (dropped.dropped, dropped.total) == (12 + 6, 30)
    assert "[2002, 2003]" in dropped.reason
    leap = pd.date_range("2004-01-01", "2004-12-31", freq="D")  # 366 days
    assert complete_years(leap, pd.date_range("2004-01-01", periods=12, freq="MS"))[0] == [2004]
    assert complete_years(leap[:-1], pd.date_range("2004-01-01", periods=12, freq="MS"))[0] == []
