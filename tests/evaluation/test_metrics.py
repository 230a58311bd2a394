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


def _weighted_r_numpy(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    c = np.cov(x, y, aweights=w)
    return c[0, 1] / np.sqrt(c[0, 0] * c[1, 1])


def test_within_region_spatial_r_matches_numpy_weighted_covariance():
    x, y = RNG.normal(size=40), RNG.normal(size=40)
    y = 0.6 * x + y
    w = RNG.uniform(0.0, 3.0, size=40)
    w[:5] = 0.0  # cells outside the region
    x[7] = np.nan  # a cell without a value
    keep = (w > 0) & np.isfinite(x)
    expected = _weighted_r_numpy(x[keep], y[keep], w[keep])
    got = m.within_region_spatial_r(x.reshape(5, 8), y.reshape(5, 8), w.reshape(5, 8))
    assert got == pytest.approx(expected, abs=1e-12)
    assert abs(got) > 0.2  # the constructed correlation, not noise
    # the unweighted special case is the textbook Pearson R
    assert m.within_region_spatial_r(x[keep], y[keep], np.ones(keep.sum())) == pytest.approx(
        stats.pearsonr(x[keep], y[keep])[0], abs=1e-12
    )


def test_within_region_spatial_r_by_hand_and_undefined_cases():
    # weights 1, 1, 2 → weighted means 11/4 and 1/4; Σw·dx·dy = −0.75, Σw·dx² = 6.75,
    # Σw·dy² = 0.75 → R = −0.75 / √(6.75 · 0.75) = −1/3
    x, y, w = np.array([1.0, 2.0, 4.0]), np.array([0.0, 1.0, 0.0]), np.array([1.0, 1.0, 2.0])
    assert m.within_region_spatial_r(x, y, w) == pytest.approx(-1.0 / 3.0)
    # each map's own regional mean is removed: shifting one map changes nothing
    assert m.within_region_spatial_r(x + 100.0, y, w) == pytest.approx(-1.0 / 3.0)
    assert np.isnan(m.within_region_spatial_r(x, np.full(3, 5.0), w))  # flat truth
    assert np.isnan(m.within_region_spatial_r(x, y, np.array([1.0, 1.0, 0.0])))  # 2 cells
    with pytest.raises(ValueError, match="size"):
        m.within_region_spatial_r(x, y, np.ones(2))


def _detrended_scipy(annual: np.ndarray, years: np.ndarray) -> np.ndarray:
    fit = stats.linregress(years, annual)
    return annual - (fit.slope * years + fit.intercept)


def test_iav_ratio_and_anomaly_r2():
    years = np.arange(2001, 2011)
    wiggle = RNG.normal(size=10)
    truth = 0.1 * years + wiggle
    sim = -0.3 * years + 2.0 * wiggle + 5.0  # twice the anomalies on another trend
    assert m.iav_ratio(sim, truth, years) == pytest.approx(2.0)
    expected = np.std(_detrended_scipy(sim, years)) / np.std(_detrended_scipy(truth, years))
    assert m.iav_ratio(sim, truth, years) == pytest.approx(expected)
    assert np.isnan(m.iav_ratio(sim, 0.5 * years, years))  # a truth without IAV (a line)
    assert np.isnan(m.iav_ratio(sim, np.zeros(10), years))
    noisy = sim + RNG.normal(size=10)
    r = stats.pearsonr(_detrended_scipy(noisy, years), _detrended_scipy(truth, years))[0]
    assert m.anomaly_r2(noisy, truth, years) == pytest.approx(r**2, abs=1e-12)
    assert 0.0 < m.anomaly_r2(noisy, truth, years) < 1.0
    assert m.anomaly_r2(sim, truth, years) == pytest.approx(1.0)


def test_variance_contributions_are_covariances_with_the_total():
    parts = RNG.normal(size=(4, 12))
    total = parts.sum(axis=0)
    expected = [np.cov(p, total, bias=True)[0, 1] for p in parts]
    got = m.variance_contributions(parts)
    np.testing.assert_allclose(got, expected, atol=1e-12)
    assert got.sum() == pytest.approx(np.var(total))
    # by hand: parts (1, −1) and (1, −1) → total (2, −2), var 4, each part carries 2
    np.testing.assert_allclose(m.variance_contributions([[1.0, -1.0], [1.0, -1.0]]), [2.0, 2.0])
    with_gap = parts.copy()
    with_gap[2, 5] = np.nan
    keep = np.arange(12) != 5
    np.testing.assert_allclose(
        m.variance_contributions(with_gap), m.variance_contributions(parts[:, keep])
    )
