import numpy as np
import pytest
from scipy import stats

from fluxbridge.evaluation import metrics as m

RNG = np.random.default_rng(0)


def test_rmse_bias_by_hand():
    sim, obs = [1.0, 2.0, 4.0], [1.0, 1.0, 1.0]
    assert m.rmse(sim, obs) == pytest.approx(np.sqrt((0 + 1 + 9) / 3))
    assert m.bias(sim, obs) == pytest.approx(4 / 3)


def test_pearson_matches_scipy_and_ignores_nan():
    a, b = RNG.normal(size=50), RNG.normal(size=50)
    b[3] = np.nan
    keep = np.isfinite(b)
    assert m.pearson_r(a, b) == pytest.approx(stats.pearsonr(a[keep], b[keep])[0], abs=1e-12)


def test_nse_textbook_and_nnse():
    obs = np.array([1.0, 2.0, 3.0, 4.0])
    sim = np.array([1.5, 2.0, 2.5, 4.5])
    textbook = 1 - ((0.25 + 0 + 0.25 + 0.25) / (2.25 + 0.25 + 0.25 + 2.25))
    assert m.nse(sim, obs) == pytest.approx(textbook)
    assert m.nnse(sim, obs) == pytest.approx(1 / (2 - textbook))
    assert m.nnse(obs, obs) == 1.0
    assert m.nnse(np.full(4, obs.mean()), obs) == pytest.approx(0.5)


def test_msc_and_iav():
    months = np.tile(np.arange(1, 13), 3)
    x = np.sin(months) + np.repeat([0.0, 1.0, 2.0], 12)
    np.testing.assert_allclose(m.mean_seasonal_cycle(x, months), np.sin(np.arange(1, 13)) + 1.0)
    years = np.arange(2001, 2007)
    annual = 0.5 * years + np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    res = stats.linregress(years, annual)
    expected = annual - (res.slope * years + res.intercept)
    np.testing.assert_allclose(m.detrended_anomalies(annual, years), expected, atol=1e-9)
    assert m.iav_magnitude(annual, years) == pytest.approx(np.std(expected))


def test_ilamb_scores_by_hand():
    obs = np.array([0.0, 2.0, 4.0])
    assert m.ilamb_bias_score(obs + 1.0, obs) == pytest.approx(np.exp(-1 / np.std(obs)))
    msc = np.sin(2 * np.pi * np.arange(12) / 12)
    assert m.ilamb_phase_score(msc, msc) == 1.0
    assert m.ilamb_phase_score(np.roll(msc, 6), msc) == pytest.approx(0.0, abs=1e-12)
    assert m.ilamb_phase_score(np.roll(msc, 3), msc) == pytest.approx(0.5)
    months = np.tile(np.arange(1, 13), 2)
    base = np.tile(msc, 2)
    anomaly = np.r_[np.full(12, 1.0), np.full(12, -1.0)]
    assert m.ilamb_iav_score(base + anomaly, base + anomaly, months) == 1.0
    assert m.ilamb_iav_score(base, base + anomaly, months) == pytest.approx(np.exp(-1.0))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        m.rmse([1.0, 2.0], [1.0])
