"""Sparse linear bridge: regional integral ≈ Σ_p w_p NEE_p + b (Upton et al. Eq. 1–3).

Units: pixel NEE in gC m-2 d-1 (monthly means, positive = source), the target
in PgC month-1, so weights are PgC month-1 per gC m-2 d-1 and the bias is in
PgC month-1.

The Lasso is fitted on z-scored pixel series and the centred target (so α does not
depend on the pixels' units or variance); α is scikit-learn's (objective
``1/(2T) ||y − Zw||² + α ||w||₁``, i.e. Eq. 1's α divided by 2T), in PgC month-1.
α starts at α_max (the smallest α giving all-zero weights) and decreases
geometrically until the training R² reaches the threshold; the weights are then
mapped back to raw units. k-fold cross-validation (contiguous blocks of months, no
shuffling, since months are autocorrelated) refits the same pipeline at the chosen
α and scores the pooled out-of-fold predictions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


@dataclass(frozen=True)
class LassoBridgeFit:
    """Result of the threshold Lasso on one set of candidate pixels.

    ``columns`` index the candidate matrix (non-zero weights only); ``reached`` is
    False when the smallest α on the path still misses the threshold.
    """

    columns: np.ndarray
    weights: np.ndarray
    bias: float
    alpha: float
    r2_train: float
    reached: bool


def check_design(x: np.ndarray, y: np.ndarray) -> None:
    """Raise ValueError unless x (months, pixels) and y (months,) are finite and regressable."""
    if x.ndim != 2 or y.ndim != 1 or x.shape[0] != y.shape[0]:
        raise ValueError(
            f"expected x (months, pixels) and y (months,), got {x.shape} and {y.shape}"
        )
    if x.shape[0] < 3:
        raise ValueError(f"need at least 3 months to fit a bridge, got {x.shape[0]}")
    if not np.isfinite(x).all():
        cols = np.flatnonzero(~np.isfinite(x).all(axis=0))
        raise ValueError(f"pixel series {cols[:10].tolist()} contain NaN or inf")
    if not np.isfinite(y).all():
        raise ValueError("target contains NaN or inf")
    if np.ptp(y) == 0:
        raise ValueError("target is constant; R² is undefined")
    constant = np.flatnonzero(np.ptp(x, axis=0) == 0)
    if constant.size:
        raise ValueError(f"pixel series {constant[:10].tolist()} are constant (zero variance)")


def alpha_path(alpha_max: float, ratio: float, n_alphas: int) -> np.ndarray:
    """Geometric α sequence α_max·ratio^k, k = 1..n_alphas (α_max itself zeroes every weight)."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"alpha ratio must lie in (0, 1), got {ratio}")
    if n_alphas < 1:
        raise ValueError(f"n_alphas must be at least 1, got {n_alphas}")
    return alpha_max * ratio ** np.arange(1, n_alphas + 1)


def fit_threshold_lasso(
    x: np.ndarray, y: np.ndarray, *, threshold: float, ratio: float, n_alphas: int
) -> LassoBridgeFit:
    """Decrease α until the training R² ≥ ``threshold``; return the first such fit.

    If no α on the path reaches the threshold the last (smallest-α) fit is
    returned with ``reached=False``; the caller decides on a fallback.
    """
    check_design(x, y)
    mu, sd = x.mean(axis=0), x.std(axis=0)
    z = (x - mu) / sd
    yc = y - y.mean()
    alpha_max = float(np.max(np.abs(z.T @ yc)) / len(y))
    model = Lasso(fit_intercept=False, warm_start=True, max_iter=20_000, tol=1e-6)
    for alpha in alpha_path(alpha_max, ratio, n_alphas):
        model.set_params(alpha=alpha)
        with warnings.catch_warnings():
            # at tiny α with more pixels than months coordinate descent converges slowly;
            # the R² test below is what matters
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(z, yc)
        r2 = float(r2_score(yc, z @ model.coef_))
        if r2 >= threshold:
            break
    coef = model.coef_
    columns = np.flatnonzero(coef)
    weights = coef[columns] / sd[columns]
    return LassoBridgeFit(
        columns=columns,
        weights=weights,
        bias=float(y.mean() - weights @ mu[columns]),
        alpha=float(alpha),
        r2_train=r2,
        reached=r2 >= threshold,
    )


def cv_r2_lasso(x: np.ndarray, y: np.ndarray, alpha: float, k_folds: int) -> float:
    """R² of pooled out-of-fold predictions of z-score + Lasso(α) over k contiguous folds."""
    check_design(x, y)
    if not 2 <= k_folds <= len(y):
        raise ValueError(f"k_folds must lie in [2, {len(y)}] (months), got {k_folds}")
    model = make_pipeline(StandardScaler(), Lasso(alpha=alpha, max_iter=20_000, tol=1e-6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pred = cross_val_predict(model, x, y, cv=KFold(k_folds, shuffle=False))
    return float(r2_score(y, pred))


def r2_fixed(x: np.ndarray, y: np.ndarray, weights: np.ndarray, bias: float) -> float:
    """R² of a fixed (not fitted) linear bridge, e.g. the area-weighted fallback.

    Nothing is fitted, so this is also its cross-validated R².
    """
    return float(r2_score(y, x @ weights + bias))
