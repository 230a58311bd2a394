"""Threshold Lasso: planted sparse relation, stopping rule, constrained refit, CV, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

from fluxbridge.bridge.lasso import (
    FitSpec,
    PathLasso,
    SpatialPrior,
    alpha_path,
    constrained_lstsq,
    cv_r2_lasso,
    fit_threshold_lasso,
    least_squares,
    r2,
)

PAPER = FitSpec(intercept=True, per_day=False, refit="none")
DEFAULT = FitSpec()


def planted(seed: int = 0, months: int = 60, pixels: int = 40, noise: float = 0.01):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(months, pixels)) * rng.uniform(0.5, 3.0, size=pixels)
    y = 0.3 * x[:, 3] + 0.2 * x[:, 17] - 0.1 * x[:, 25] + 1.5 + noise * rng.normal(size=months)
    return x, y


def test_recovers_planted_sparse_relation() -> None:
    x, y = planted()
    fit = fit_threshold_lasso(x, y, threshold=0.999, ratio=0.85, n_alphas=100, spec=PAPER)
    assert fit.reached
    assert {3, 17, 25} <= set(fit.columns.tolist())
    pred = x[:, fit.columns] @ fit.weights + fit.bias
    assert r2_score(y, pred) == pytest.approx(fit.r2_train, abs=1e-9)
    w = dict(zip(fit.columns.tolist(), fit.weights, strict=True))
    # the Lasso stops at the first α reaching R² 0.999, so weights are slightly shrunk
    assert w[3] == pytest.approx(0.3, abs=0.015)
    assert w[17] == pytest.approx(0.2, abs=0.015)
    assert w[25] == pytest.approx(-0.1, abs=0.015)
    assert fit.bias == pytest.approx(1.5, abs=0.05)


def independent_r2(x: np.ndarray, y: np.ndarray, alpha: float) -> float:
    z = StandardScaler().fit_transform(x)
    model = Lasso(alpha=alpha, max_iter=100_000, tol=1e-10).fit(z, y)
    return r2_score(y, model.predict(z))


@pytest.mark.parametrize("threshold", [0.5, 0.9, 0.99])
def test_alpha_loop_stops_at_first_alpha_reaching_threshold(threshold: float) -> None:
    x, y = planted(seed=1, noise=0.1)
    ratio = 0.8
    fit = fit_threshold_lasso(x, y, threshold=threshold, ratio=ratio, n_alphas=80, spec=PAPER)
    assert fit.reached
    assert independent_r2(x, y, fit.alpha) >= threshold - 1e-6
    # the previous (larger) α on the path did not reach it
    assert independent_r2(x, y, fit.alpha / ratio) < threshold
    # the path starts one step below α_max = max|Zᵀ(y - ȳ)| / T
    z = StandardScaler().fit_transform(x)
    alpha_max = np.max(np.abs(z.T @ (y - y.mean()))) / len(y)
    path = alpha_path(alpha_max, ratio, 80)
    assert np.isclose(path, fit.alpha, rtol=1e-12).sum() == 1


def test_threshold_unreachable_is_reported() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, 3))
    y = rng.normal(size=60)  # unrelated to x
    for spec in (PAPER, DEFAULT):
        fit = fit_threshold_lasso(
            x, y, threshold=0.95, ratio=0.5, n_alphas=10, spec=spec, weight_sum=1.0
        )
        assert not fit.reached
        assert fit.r2_train < 0.95


def test_cv_r2_matches_manual_folds() -> None:
    x, y = planted(seed=2, noise=0.2)
    alpha, k = 0.01, 4
    pred = np.empty_like(y)
    for test in np.array_split(np.arange(len(y)), k):
        train = np.setdiff1d(np.arange(len(y)), test)
        mu, sd = x[train].mean(0), x[train].std(0)
        model = Lasso(alpha=alpha, max_iter=100_000, tol=1e-10).fit((x[train] - mu) / sd, y[train])
        pred[test] = model.predict((x[test] - mu) / sd)
    got = cv_r2_lasso(x, y, np.array([alpha]), k, threshold=0.9, spec=PAPER)
    assert got == pytest.approx(r2_score(y, pred), abs=1e-4)


def test_bad_input_is_named() -> None:
    x, y = planted()
    bad = x.copy()
    bad[5, 7] = np.nan
    with pytest.raises(ValueError, match=r"pixel series \[7\].*NaN"):
        fit_threshold_lasso(bad, y, threshold=0.9, ratio=0.8, n_alphas=5, spec=PAPER)
    const = x.copy()
    const[:, 2] = 1.0
    with pytest.raises(ValueError, match=r"\[2\] are constant"):
        fit_threshold_lasso(const, y, threshold=0.9, ratio=0.8, n_alphas=5, spec=PAPER)
    with pytest.raises(ValueError, match="target is constant"):
        fit_threshold_lasso(x, np.ones_like(y), threshold=0.9, ratio=0.8, n_alphas=5, spec=PAPER)
    with pytest.raises(ValueError, match="ratio"):
        alpha_path(1.0, 1.5, 3)
    with pytest.raises(ValueError, match="k_folds"):
        cv_r2_lasso(x, y, np.array([0.1]), 1, threshold=0.9, spec=PAPER)
    with pytest.raises(ValueError, match="needs weight_sum"):
        fit_threshold_lasso(x, y, threshold=0.9, ratio=0.8, n_alphas=5, spec=DEFAULT)
    with pytest.raises(ValueError, match="refit must be"):
        FitSpec(refit="ols")  # type: ignore[arg-type]


def kkt_solution(x: np.ndarray, y: np.ndarray, total: float) -> np.ndarray:
    """min ||y − xw||² s.t. Σw = total from the Lagrange (KKT) system, solved directly."""
    k = x.shape[1]
    system = np.block([[2 * x.T @ x, np.ones((k, 1))], [np.ones((1, k)), np.zeros((1, 1))]])
    return np.linalg.solve(system, np.concatenate([2 * x.T @ y, [total]]))[:k]


def test_constrained_lstsq_matches_kkt_and_degenerate_cases() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=30)
    w = constrained_lstsq(x, y, 2.5)
    np.testing.assert_allclose(w, kkt_solution(x, y, 2.5), rtol=1e-10)
    assert w.sum() == pytest.approx(2.5, rel=1e-12)
    # one column: the constraint alone fixes the weight
    assert constrained_lstsq(x[:, :1], y, 2.5).tolist() == [2.5]
    # two identical columns: any split fits equally well; the minimum-norm one is even
    twin = np.column_stack([x[:, 0], x[:, 0]])
    np.testing.assert_allclose(constrained_lstsq(twin, 3.0 * x[:, 0], 3.0), [1.5, 1.5])


def test_least_squares_with_intercept_matches_kkt_on_centred_data() -> None:
    rng = np.random.default_rng(6)
    x = rng.normal(size=(40, 3)) + 5.0
    y = x @ np.array([0.2, 0.5, 0.3]) + 2.0 + 0.01 * rng.normal(size=40)
    w, b = least_squares(x, y, intercept=True, weight_sum=1.0)
    xc, yc = x - x.mean(0), y - y.mean()
    np.testing.assert_allclose(w, kkt_solution(xc, yc, 1.0), rtol=1e-10)
    assert b == pytest.approx(y.mean() - x.mean(0) @ w, rel=1e-12)
    w_ols, b_ols = least_squares(x, y, intercept=True, weight_sum=None)
    ref = np.linalg.lstsq(np.column_stack([x, np.ones(40)]), y, rcond=None)[0]
    np.testing.assert_allclose(np.r_[w_ols, b_ols], ref, rtol=1e-9)


def test_default_fit_has_no_intercept_unshrunk_weights_and_fixed_sum() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(60, 40)) * rng.uniform(0.5, 3.0, size=40) + 1.0
    true = {3: 0.3, 17: 0.2, 25: 0.5}
    y = sum(w * x[:, c] for c, w in true.items())
    fit = fit_threshold_lasso(
        x, y, threshold=0.999, ratio=0.85, n_alphas=100, spec=DEFAULT, weight_sum=1.0
    )
    assert fit.reached and fit.bias == 0.0
    assert fit.weights.sum() == pytest.approx(1.0, rel=1e-12)
    got = dict(zip(fit.columns.tolist(), fit.weights, strict=True))
    # the relation is exact and its weights sum to 1: the refit recovers them unshrunk
    for c, w in true.items():
        assert got[c] == pytest.approx(w, abs=1e-9)
    assert all(abs(w) < 1e-9 for c, w in got.items() if c not in true)
    # the reported R² is that of the used (refitted) bridge
    assert fit.r2_train == pytest.approx(r2_score(y, x[:, fit.columns] @ fit.weights), abs=1e-12)
    # a uniform offset of 1 passes through at exactly Σw = 1
    shifted = (x[:, fit.columns] + 1.0) @ fit.weights - x[:, fit.columns] @ fit.weights
    np.testing.assert_allclose(shifted, 1.0, rtol=1e-9)


def test_cv_of_default_fit_reruns_the_threshold_walk_per_fold() -> None:
    rng = np.random.default_rng(8)
    x = rng.normal(size=(48, 12)) + 2.0
    y = x[:, [1, 4, 9]] @ np.array([0.4, 0.4, 0.2]) + 0.05 * rng.normal(size=48)
    alphas, k, threshold = 0.7 ** np.arange(12), 4, 0.97
    pred = np.empty_like(y)
    steps = []
    for test in np.array_split(np.arange(len(y)), k):
        train = np.setdiff1d(np.arange(len(y)), test)
        rms = np.sqrt((x[train] ** 2).mean(0))
        for alpha in alphas:
            lasso = Lasso(alpha=alpha, fit_intercept=False, max_iter=100_000, tol=1e-12)
            support = np.flatnonzero(lasso.fit(x[train] / rms, y[train]).coef_)
            w = kkt_solution(x[train][:, support], y[train], 1.0)
            if r2_score(y[train], x[train][:, support] @ w) >= threshold:
                break
        steps.append(int(np.flatnonzero(alphas == alpha)[0]))
        pred[test] = x[test][:, support] @ w
    assert max(steps) > 0  # the walk matters here: the first α is not enough
    # the by-hand refit has Σ w fixed only (the period total is tested on its own below)
    spec = FitSpec(period_total=False)
    got = cv_r2_lasso(x, y, alphas, k, threshold=threshold, spec=spec, weight_sum=1.0)
    assert got == pytest.approx(r2_score(y, pred), abs=1e-4)


def kkt_two_constraints(
    x: np.ndarray, y: np.ndarray, total: float, period: np.ndarray, prior=None, mu: float = 0.0
) -> np.ndarray:
    """Independent: the Lagrange system of min ||y − Xw||² + mu||w − prior||² s.t. C w = d."""
    k = x.shape[1]
    c = np.vstack([np.ones(k), period @ x])
    d = np.array([total, period @ y])
    h = 2 * x.T @ x + 2 * mu * np.eye(k)
    g = 2 * x.T @ y + (2 * mu * prior if prior is not None else 0.0)
    system = np.block([[h, c.T], [c, np.zeros((2, 2))]])
    return np.linalg.solve(system, np.concatenate([g, d]))[:k]


def test_period_total_constraint_by_hand_and_kkt() -> None:
    # two columns, two constraints: w1 + w2 = 1 and Σ_m (y − x w) = 0, i.e.
    # 2 w1 + 3 w2 = 3  ->  w = (0, 1), whatever the least-squares fit would prefer
    x = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    y = np.ones(3)
    np.testing.assert_allclose(constrained_lstsq(x, y, 1.0, np.ones(3)), [0.0, 1.0], atol=1e-12)
    # more columns: the constrained least-squares optimum, total over the months exact
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(36, 5)) + 2.0, rng.normal(size=36) + 3.0
    days = np.tile([31.0, 28.0, 31.0, 30.0, 31.0, 30.0, 31.0, 31.0, 30.0, 31.0, 30.0, 31.0], 3)
    w = constrained_lstsq(x, y, 2.0, days)
    np.testing.assert_allclose(w, kkt_two_constraints(x, y, 2.0, days), rtol=1e-9)
    assert w.sum() == pytest.approx(2.0, rel=1e-12)
    assert days @ (y - x @ w) == pytest.approx(0.0, abs=1e-9)
    # without the period constraint the residual total is not zero here (the test can fail)
    assert abs(days @ (y - x @ constrained_lstsq(x, y, 2.0))) > 1.0
    # columns with equal period totals: the second constraint is dependent and dropped
    same = np.column_stack([x[:, 0], x[:, 0][::-1]])
    ones = np.ones(36)
    np.testing.assert_allclose(
        constrained_lstsq(same, y, 2.0, ones), constrained_lstsq(same, y, 2.0), rtol=1e-12
    )


def test_default_spec_applies_the_period_total_only_where_it_can() -> None:
    days = np.array([31.0, 28.0, 31.0])
    assert DEFAULT.period_total and DEFAULT.period_weights(days, 3).tolist() == days.tolist()
    assert FitSpec(per_day=False).period_weights(days, 3).tolist() == [1.0, 1.0, 1.0]
    assert PAPER.period_weights(days, 3) is None  # an intercept already zeroes the mean
    assert FitSpec(period_total=False).period_weights(days, 3) is None
    assert FitSpec(refit="none", intercept=False).period_weights(days, 3) is None


def test_spatial_prior_ridge_matches_kkt_and_limits() -> None:
    rng = np.random.default_rng(12)
    x = rng.normal(size=(24, 4)) + 1.0
    y = x @ np.array([0.7, -0.4, 0.5, 0.2]) + 0.05 * rng.normal(size=24)
    prior = np.array([0.1, 0.4, 0.3, 0.2])  # Σ = 1, the weight sum
    ones = np.ones(24)
    for mu in (0.5, 50.0):
        got = constrained_lstsq(x, y, 1.0, ones, prior, mu)
        np.testing.assert_allclose(got, kkt_two_constraints(x, y, 1.0, ones, prior, mu), rtol=1e-8)
    # an overwhelming prior gives the prior itself (it meets Σ w = 1; no period constraint)
    np.testing.assert_allclose(constrained_lstsq(x, y, 1.0, None, prior, 1e12), prior, atol=1e-6)
    # no prior strength: the plain constrained fit
    np.testing.assert_allclose(
        constrained_lstsq(x, y, 1.0, ones, prior, 0.0), constrained_lstsq(x, y, 1.0, ones)
    )
    # least_squares scales the strength by the target's variance over ||prior||²
    w, b = least_squares(x, y, intercept=False, weight_sum=1.0, prior=prior, strength=0.3)
    mu = 0.3 * ((y - y.mean()) ** 2).sum() / (prior @ prior)
    np.testing.assert_allclose(w, constrained_lstsq(x, y, 1.0, None, prior, mu), rtol=1e-12)
    assert b == 0.0
    with pytest.raises(ValueError, match="strength"):
        SpatialPrior(lambda cols: prior[cols], -1.0)


def test_walk_stops_once_every_candidate_is_in() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(60, 3)) + 1.0
    y = rng.normal(size=60)  # unrelated to x: the threshold is out of reach
    spec = FitSpec(period_total=False)
    fit = fit_threshold_lasso(
        x, y, threshold=0.95, ratio=0.5, n_alphas=60, spec=spec, weight_sum=1.0
    )
    assert not fit.reached and fit.columns.tolist() == [0, 1, 2]
    # the constrained refit of the full support is what smaller α would give too
    np.testing.assert_allclose(fit.weights, kkt_solution(x, y, 1.0), rtol=1e-9)
    z = x / np.sqrt((x**2).mean(0))
    alpha_max = np.max(np.abs(z.T @ y)) / 60
    assert fit.alpha > alpha_max * 0.5**60 * 1e6  # stopped long before the end of the path


def test_strong_spatial_prior_gives_the_supports_nearest_pixel_weights() -> None:
    from fluxbridge.bridge.quadrature import RegionQuadrature, unit_vectors

    # six equatorial pixels 1° apart, cell weights 1..6 (Σ 21); reference series share a
    # seasonal cycle, with pixel noise; target = the exact weighted sum
    rng = np.random.default_rng(13)
    lon, cell = np.arange(6.0), np.arange(1.0, 7.0)
    months = np.arange(48)
    x = np.sin(2 * np.pi * months / 12)[:, None] + 0.2 * rng.normal(size=(48, 6)) + 2.0
    y = x @ cell
    xyz = unit_vectors(np.zeros(6), lon)
    quad = RegionQuadrature(cell_xyz=xyz, cell_weight=cell, pixel_xyz=xyz)
    spec = FitSpec(period_total=False)
    prior = SpatialPrior(quad.weights, 1e8)
    fit = fit_threshold_lasso(
        x, y, threshold=0.9, ratio=0.85, n_alphas=100, spec=spec, weight_sum=21.0, prior=prior
    )
    assert fit.reached and fit.weights.sum() == pytest.approx(21.0, rel=1e-12)
    # here the support is {2, 5}: cells 0-3 -> pixel 2 (1+2+3+4 = 10), cells 4-5 -> pixel 5
    # (5+6 = 11); whatever the support, the weights are its nearest-pixel weights
    assert fit.columns.size >= 2
    np.testing.assert_allclose(fit.weights, quad.weights(fit.columns), rtol=1e-5)
    # without the prior the same support is refitted to the series instead
    free = fit_threshold_lasso(
        x, y, threshold=0.9, ratio=0.85, n_alphas=100, spec=spec, weight_sum=21.0
    )
    assert not np.allclose(free.weights, quad.weights(free.columns), rtol=1e-3)


@pytest.mark.parametrize("shape", [(36, 100), (29, 60), (72, 20), (12, 5)])
def test_path_lasso_is_bitwise_sklearns_warm_started_lasso(shape: tuple[int, int]) -> None:
    # the reference is scikit-learn's public Lasso refitted along the same α walk
    rng = np.random.default_rng(shape[1])
    months, pixels = shape
    x = rng.normal(size=(months, pixels)).cumsum(axis=0) + rng.normal(size=pixels)
    y = x[:, :4] @ rng.uniform(0.2, 1.0, 4) + 0.1 * rng.normal(size=months)
    z = x / np.sqrt((x**2).mean(axis=0))
    alpha_max = float(np.max(np.abs(z.T @ y)) / months)
    reference = Lasso(fit_intercept=False, warm_start=True, max_iter=20_000, tol=1e-6)
    ours = PathLasso(z, y)
    for alpha in alpha_max * 0.85 ** np.arange(1, 60):
        reference.set_params(alpha=alpha)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reference.fit(z, y)
        assert np.array_equal(ours.fit(alpha), reference.coef_)


def test_r2_is_bitwise_sklearns_r2_score() -> None:
    rng = np.random.default_rng(5)
    for n in (2, 3, 7, 29, 36, 204):
        y = rng.normal(size=n).cumsum() * 10.0 ** rng.integers(-16, 3)
        for noise in (0.0, 1e-3, 0.5, 5.0):
            pred = y + noise * np.std(y) * rng.normal(size=n)
            assert r2(y, pred) == r2_score(y, pred)
    assert r2(np.ones(4), np.ones(4)) == r2_score(np.ones(4), np.ones(4)) == 1.0
    assert r2(np.ones(4), np.arange(4.0)) == r2_score(np.ones(4), np.arange(4.0)) == 0.0
    with pytest.raises(ValueError, match="3 values, pred 4"):
        r2(np.ones(3), np.ones(4))
