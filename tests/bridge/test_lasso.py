"""Threshold Lasso: planted sparse relation, stopping rule, CV, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Lasso
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

from fluxbridge.bridge.lasso import alpha_path, cv_r2_lasso, fit_threshold_lasso


def planted(seed: int = 0, months: int = 60, pixels: int = 40, noise: float = 0.01):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(months, pixels)) * rng.uniform(0.5, 3.0, size=pixels)
    y = 0.3 * x[:, 3] + 0.2 * x[:, 17] - 0.1 * x[:, 25] + 1.5 + noise * rng.normal(size=months)
    return x, y


def test_recovers_planted_sparse_relation() -> None:
    x, y = planted()
    fit = fit_threshold_lasso(x, y, threshold=0.999, ratio=0.85, n_alphas=100)
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
    fit = fit_threshold_lasso(x, y, threshold=threshold, ratio=ratio, n_alphas=80)
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
    fit = fit_threshold_lasso(x, y, threshold=0.95, ratio=0.5, n_alphas=10)
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
    assert cv_r2_lasso(x, y, alpha, k) == pytest.approx(r2_score(y, pred), abs=1e-4)


def test_bad_input_is_named() -> None:
    x, y = planted()
    bad = x.copy()
    bad[5, 7] = np.nan
    with pytest.raises(ValueError, match=r"pixel series \[7\].*NaN"):
        fit_threshold_lasso(bad, y, threshold=0.9, ratio=0.8, n_alphas=5)
    const = x.copy()
    const[:, 2] = 1.0
    with pytest.raises(ValueError, match=r"\[2\] are constant"):
        fit_threshold_lasso(const, y, threshold=0.9, ratio=0.8, n_alphas=5)
    with pytest.raises(ValueError, match="target is constant"):
        fit_threshold_lasso(x, np.ones_like(y), threshold=0.9, ratio=0.8, n_alphas=5)
    with pytest.raises(ValueError, match="ratio"):
        alpha_path(1.0, 1.5, 3)
    with pytest.raises(ValueError, match="k_folds"):
        cv_r2_lasso(x, y, 0.1, 1)
