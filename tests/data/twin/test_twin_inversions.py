"""Inversion error model: each knob's effect checked against integrals written out by hand."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from fluxbridge.data.twin.fields import stream_rng
from fluxbridge.data.twin.geography import synthetic_geography
from fluxbridge.data.twin.inversions import (
    DIPOLE_NORTH,
    DIPOLE_TROPICS,
    RegionalOperator,
    inversion_members,
)
from fluxbridge.data.twin.products import within_region_pattern
from fluxbridge.data.twin.scenario import REGION_ABBRS, InversionsConfig
from fluxbridge.geo.grid import Grid

MONTHS = pd.date_range("2003-01-01", "2005-12-01", freq="MS")  # 2004 is a leap year
OFF = {
    "regional_error_pgc_month": 0.0,
    "shared_bias_pgc_yr": 0.0,
    "dipole_pgc_yr": 0.0,
    "seasonal_amplitude_error": 0.0,
    "member_bias_pgc_yr": 0.0,
}


@pytest.fixture(scope="module")
def world():
    geo = synthetic_geography(Grid.global_regular(10.0))
    lat = geo.grid.lat[geo.cell_ilat]
    month = MONTHS.month.to_numpy()[:, None]
    # A seasonal cycle of opposite phase in the two hemispheres plus a small sink.
    truth = -0.2 + 2.0 * np.sign(lat)[None, :] * np.cos(2 * np.pi * (month - 7) / 12)
    return geo, RegionalOperator.of(geo), truth


def _by_hand(nee: np.ndarray, geo) -> np.ndarray:
    """(month, region) PgC month-1: Σ nee · area · land · fraction · days · 1e-15."""
    area = (geo.cell_area * geo.land_fraction)[geo.cell_ilat, geo.cell_ilon]
    frac = geo.region_fraction[:, geo.cell_ilat, geo.cell_ilon]
    days = MONTHS.days_in_month.to_numpy()
    out = np.zeros((len(MONTHS), frac.shape[0]))
    for t in range(len(MONTHS)):
        for r in range(frac.shape[0]):
            out[t, r] = np.sum(nee[t] * area * frac[r]) * days[t] * 1e-15
    return out


def _errors(world, members=3, seed=7, **knobs) -> np.ndarray:
    """(member, month, region) regional error of each member against the truth, PgC month-1."""
    geo, operator, truth = world
    cfg = InversionsConfig(members=members, **{**OFF, **knobs})
    fields = inversion_members(truth, geo, operator, MONTHS, cfg, members=members, seed=seed,
                               stream=50)  # fmt: skip
    true = _by_hand(truth, geo)
    return np.stack([_by_hand(f, geo) - true for f in fields])


def _annual(monthly: np.ndarray) -> np.ndarray:
    return monthly.reshape(*monthly.shape[:-2], 3, 12, monthly.shape[-1]).sum(axis=-2)


def _present(world) -> np.ndarray:
    return world[1].weights.sum(axis=1) > 0


def test_shared_bias_shifts_every_member_and_year_by_one_constant(world):
    annual = _annual(_errors(world, shared_bias_pgc_yr=0.5))[..., _present(world)]
    np.testing.assert_allclose(annual, annual[:1, :1].repeat(3, 0).repeat(3, 1), atol=1e-9)
    assert np.abs(annual[0, 0]).max() > 0.1  # the members' mean error is not 0
    # Constant daily rate: February 2004 gets 29/366 of the bias, February 2003 28/365.
    monthly = _errors(world, members=1, shared_bias_pgc_yr=0.5)[0][:, _present(world)]
    np.testing.assert_allclose(monthly[1] / annual[0, 0], 28 / 365, rtol=1e-9)
    np.testing.assert_allclose(monthly[13] / annual[0, 0], 29 / 366, rtol=1e-9)


def test_dipole_keeps_the_global_total_and_trades_tropics_for_north(world):
    error = _errors(world, members=2, dipole_pgc_yr=1.0)
    np.testing.assert_allclose(error.sum(axis=-1), 0.0, atol=1e-9)
    tropics = [REGION_ABBRS.index(a) for a in DIPOLE_TROPICS]
    north = [REGION_ABBRS.index(a) for a in DIPOLE_NORTH]
    annual = _annual(error)
    assert np.abs(annual[..., tropics].sum(-1)).min() > 1e-3
    np.testing.assert_allclose(annual[..., tropics].sum(-1), -annual[..., north].sum(-1), atol=1e-9)
    others = [r for r in range(len(REGION_ABBRS)) if r not in tropics + north]
    np.testing.assert_allclose(error[..., others], 0.0, atol=1e-12)
    # Each side is split by land area.
    area = world[1].weights.sum(axis=1)
    share = annual[0, 0, north] / annual[0, 0, north].sum()
    np.testing.assert_allclose(share, area[north] / area[north].sum(), rtol=1e-9)


def test_seasonal_amplitude_scales_each_regional_cycle(world):
    geo, _, truth = world
    error = _errors(world, seasonal_amplitude_error=0.3)
    np.testing.assert_allclose(error, error[:1].repeat(3, 0), atol=1e-12)  # shared
    true = _by_hand(truth, geo)
    true_msc = true.reshape(3, 12, -1).mean(0)
    true_msc -= true_msc.mean(0)
    err_msc = error.mean(0).reshape(3, 12, -1).mean(0)
    present = _present(world)
    ratio = err_msc[:, present] / true_msc[:, present]
    np.testing.assert_allclose(ratio, ratio[:1].repeat(12, 0), rtol=1e-6)  # one ε per region
    amplitude = np.ptp(err_msc[:, present], axis=0)
    np.testing.assert_allclose(amplitude, np.abs(ratio[0]) * np.ptp(true_msc[:, present], 0))
    assert 0.05 < np.abs(ratio[0]).mean() < 0.6
    np.testing.assert_allclose(_annual(error), 0.0, atol=1e-9)  # the annual totals stay


def test_member_bias_is_a_constant_per_member_and_region(world):
    annual = _annual(_errors(world, members=4, member_bias_pgc_yr=0.5))[..., _present(world)]
    np.testing.assert_allclose(annual, annual[:, :1].repeat(3, 1), atol=1e-9)
    assert np.std(annual[:, 0], axis=0).min() > 1e-3  # members differ
    assert 0.2 < annual[:, 0].std() < 0.9


def test_land_in_no_region_gets_the_truth(world):
    geo, _, truth = world
    fraction = geo.region_fraction.copy()
    fraction[:, geo.grid.lat > 40] = 0.0  # no region north of 40° N
    cut = replace(geo, region_fraction=fraction)
    operator = RegionalOperator.of(cut)
    cfg = InversionsConfig(members=2, shared_bias_pgc_yr=0.5, dipole_pgc_yr=0.5)
    outside = ~operator.covered
    assert outside.sum() > 5
    for field in inversion_members(truth, cut, operator, MONTHS, cfg, members=2, seed=1, stream=5):
        np.testing.assert_array_equal(field[:, outside], truth[:, outside])
        assert np.abs(field[:, ~outside] - truth[:, ~outside]).max() > 0.1


def test_same_seed_same_members_other_seed_others(world):
    geo, operator, truth = world
    cfg = InversionsConfig(members=2)
    a, b, c = (
        list(inversion_members(truth, geo, operator, MONTHS, cfg, members=2, seed=s, stream=50))
        for s in (3, 3, 4)
    )
    np.testing.assert_array_equal(np.stack(a), np.stack(b))
    assert not np.allclose(np.stack(a), np.stack(c))


def test_reference_pattern_is_unit_and_invisible_to_regions(world):
    geo, operator, _ = world
    pattern = within_region_pattern(geo, operator, stream_rng(0, 40, 1))
    covered = operator.covered
    assert pattern[covered].std() == pytest.approx(1.0)
    np.testing.assert_allclose(_by_hand(pattern[None].repeat(len(MONTHS), 0), geo), 0, atol=1e-12)
    np.testing.assert_array_equal(pattern[~covered], 0.0)
