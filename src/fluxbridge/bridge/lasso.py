"""Sparse linear bridge of one region (Upton et al. Eq. 1–3 and 7) and how it is fitted.

A bridge maps monthly-mean pixel NEE x (gC m-2 d-1, positive = source) to the
region's integral. With ``FitSpec.per_day`` (default) the regression target is the
integral per day of the month, y = I / days (PgC d-1), and the bridge of a month is
``days × (Σ_p w_p x_p + b)``; the paper's basis (``per_day=False``) regresses the
monthly integral I (PgC month-1) directly. Weights are in target units per
gC m-2 d-1, the bias b in target units (0 without an intercept).

Fit: a Lasso on unit-scale pixel series (columns divided by their RMS, or centred
and divided by their standard deviation when there is an intercept, so α does not
depend on the pixels' units) with α decreasing geometrically from α_max (the
smallest α giving all-zero weights) selects the support. With ``refit="constrained"``
the support's weights are then refitted without shrinkage by least squares subject
to Σ_p w_p = ``weight_sum`` (the region's land area × 1e-15 [× the mean month length
in the per-month basis]), so a uniform offset over the region passes through at its
integral; by default also subject to the fitted months' total being reproduced
(``FitSpec.period_total``) and, given a :class:`SpatialPrior`, shrunk towards
quadrature weights of the support (a ridge towards them, not towards 0). The walk
stops early once every candidate is in the support (the refit cannot change any
more). The first α whose *used* bridge (the refit, or the Lasso itself with
``refit="none"``) reaches the R² threshold is kept. α is scikit-learn's (objective
``1/(2T) ||y − Zw||² + α ||w||₁``, i.e. Eq. 1's α divided by 2T), in target units.
k-fold cross-validation (contiguous blocks of months, no shuffling, since months
are autocorrelated) reruns the same pipeline on each training part — from the
chosen α down the path to the first bridge reaching the threshold on that part —
and scores the pooled out-of-fold predictions. R² is that of y (the target basis).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import Lasso
from sklearn.utils import check_random_state

try:  # the solver Lasso.fit calls; private, so the public Lasso stays the fallback
    from sklearn.linear_model._cd_fast import enet_coordinate_descent
except ImportError:  # pragma: no cover - another scikit-learn layout
    enet_coordinate_descent = None

from fluxbridge.data.canonical import DAILY_INTEGRAL_UNITS, MONTHLY_INTEGRAL_UNITS, NEE_UNITS
from fluxbridge.schema import GRAMS_PER_PETAGRAM

MEAN_DAYS_PER_MONTH = 365.25 / 12.0
#: singular values below this fraction of the largest are dropped in the unshrunk refit,
#: so near-collinear neighbours do not get huge weights of opposite sign
RCOND = 1e-8


@dataclass(frozen=True)
class FitSpec:
    """How bridges are fitted; the defaults depart from the paper (docs/bridges.md).

    Paper variant: ``FitSpec(intercept=True, per_day=False, refit="none")``.
    """

    intercept: bool = False
    per_day: bool = True
    refit: Literal["constrained", "none"] = "constrained"
    #: the constrained refit also reproduces the target's total over the fitted months
    #: (Σ_m days_m·(y_m − x_m·w) = 0); only with ``refit="constrained"`` and no intercept
    #: (an intercept already zeroes the mean residual)
    period_total: bool = True

    def __post_init__(self) -> None:
        if self.refit not in ("constrained", "none"):
            raise ValueError(f"refit must be 'constrained' or 'none', got {self.refit!r}")

    @property
    def total_constraint(self) -> bool:
        """Whether the refit carries the period-total constraint (see ``period_total``)."""
        return self.period_total and self.refit == "constrained" and not self.intercept

    def period_weights(self, days: np.ndarray | None, n_months: int) -> np.ndarray | None:
        """Month weights p of the period-total constraint Σ p·(y − x w) = 0, or None.

        Per-day basis: the days of each month (the target is an integral per day);
        per-month basis: ones. ``days`` None (unknown month lengths): ones.
        """
        if not self.total_constraint:
            return None
        if days is None or not self.per_day:
            return np.ones(n_months)
        return np.asarray(days, dtype=np.float64)

    def weight_sum(self, land_area_m2: float) -> float:
        """Σ w that passes a uniform offset of 1 gC m-2 d-1 through at its exact integral.

        Per-day basis: A·1e-15 (PgC d-1 per gC m-2 d-1); per-month basis: A·1e-15 × the
        mean month length (exact only for a month of 365.25/12 days).
        """
        days = 1.0 if self.per_day else MEAN_DAYS_PER_MONTH
        return land_area_m2 / GRAMS_PER_PETAGRAM * days

    @property
    def weight_units(self) -> str:
        return f"{self.target_units} ({NEE_UNITS})-1"

    @property
    def target_units(self) -> str:
        return DAILY_INTEGRAL_UNITS if self.per_day else MONTHLY_INTEGRAL_UNITS


@dataclass(frozen=True)
class SpatialPrior:
    """Shrink the constrained refit towards quadrature weights of its support.

    ``weights_of(columns)`` gives the prior weights w̃ of candidate columns (e.g.
    :meth:`fluxbridge.bridge.quadrature.RegionQuadrature.weights`, Σ w̃ = weight_sum);
    the refit minimises ``||y − x w||² + μ ||w − w̃||²`` under its constraints, with
    μ = ``strength`` × Σ(y − ȳ)² / ||w̃||²: moving the weights by the prior's own norm
    costs ``strength`` × the target's variance (``strength`` 0.1: 10 % of R²).
    """

    weights_of: Callable[[np.ndarray], np.ndarray]
    strength: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.strength) and self.strength >= 0):
            raise ValueError(f"spatial prior strength must be ≥ 0, got {self.strength}")


@dataclass(frozen=True)
class LassoBridgeFit:
    """Result of the threshold Lasso on one set of candidate pixels.

    ``columns`` index the candidate matrix (the support); ``weights`` and ``bias`` are
    those of the bridge that is used (the refit unless ``refit="none"``); ``reached``
    is False when the smallest α on the path still misses the threshold.
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


def constrained_lstsq(
    x: np.ndarray,
    y: np.ndarray,
    total: float,
    period: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    mu: float = 0.0,
) -> np.ndarray:
    """argmin_w ||y − x w||² subject to Σ w = ``total``; minimum-norm if x is rank-deficient.

    With ``period`` (month weights p) also Σ_m p_m (y_m − x_m w) = 0: the fitted months'
    total is reproduced exactly. That second constraint is dropped where it cannot be
    met together with the first (one column, or every column with the same p-weighted
    total), since Σ w is what passes offsets through.

    With ``prior`` w̃ and ``mu`` > 0 the objective gains ``mu ||w − w̃||²`` (a ridge
    towards w̃ instead of towards 0).

    Solved in the null space of the constraints C w = d: w = w0 + N v with w0 the
    minimum-norm solution of C w = d, N an orthonormal basis of {v : C v = 0}, v by
    least squares. One column: w = total.
    """
    k = x.shape[1]
    if k == 0:
        raise ValueError("no column to carry the weight-sum constraint")
    rows, rhs = [np.ones(k)], [total]
    if period is not None and k > 1:
        row = np.asarray(period, dtype=np.float64) @ x
        # independent of the ones row? (relative size of its component orthogonal to 1)
        if np.linalg.norm(row - row.mean()) > 1e-9 * np.linalg.norm(row):
            rows.append(row)
            rhs.append(float(np.asarray(period, dtype=np.float64) @ y))
    c, d = np.vstack(rows), np.asarray(rhs)
    w0 = np.linalg.lstsq(c, d, rcond=None)[0]
    if k == c.shape[0]:
        return w0
    null = np.linalg.svd(c, full_matrices=True)[2][c.shape[0] :].T
    design, rhs_v = x @ null, y - x @ w0
    if prior is not None and mu > 0:
        root = np.sqrt(mu)
        design = np.vstack([design, root * null])
        rhs_v = np.concatenate([rhs_v, root * (np.asarray(prior, np.float64) - w0)])
    # singular values are cut relative to x's scale, not the projected design's: two
    # identical columns project to a (rounding-level) zero column that must be dropped
    u, sv, vt = np.linalg.svd(design, full_matrices=False)
    keep = sv > RCOND * np.sqrt(float((x**2).sum()) + (mu if prior is not None else 0.0) * k)
    v = vt[keep].T @ ((u[:, keep].T @ rhs_v) / sv[keep])
    return w0 + null @ v


def least_squares(
    x: np.ndarray,
    y: np.ndarray,
    *,
    intercept: bool,
    weight_sum: float | None,
    period: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    strength: float = 0.0,
) -> tuple[np.ndarray, float]:
    """Unshrunk (weights, bias) of y ≈ x w + b on the given columns.

    ``weight_sum`` None: ordinary least squares; else Σ w = weight_sum, and with
    ``period`` (month weights, no intercept) also Σ period·(y − x w) = 0. Without
    ``intercept`` b = 0. Minimum-norm where the columns are collinear. With ``prior``
    (w̃, constrained only) the weights are shrunk towards w̃ by ``strength`` (see
    :class:`SpatialPrior`).
    """
    if intercept:
        mu, ym = x.mean(axis=0), float(y.mean())
        xc, yc = x - mu, y - ym
    else:
        mu, ym = np.zeros(x.shape[1]), 0.0
        xc, yc = x, y
    if weight_sum is None:
        weights = np.linalg.lstsq(xc, yc, rcond=RCOND)[0]
    else:
        ridge = 0.0
        if prior is not None and strength > 0:
            ridge = strength * float(((y - y.mean()) ** 2).sum()) / float(prior @ prior)
        weights = constrained_lstsq(xc, yc, weight_sum, None if intercept else period, prior, ridge)
    return weights, ym - float(mu @ weights)


def _lasso_design(
    x: np.ndarray, y: np.ndarray, intercept: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z, target, scale): unit-RMS pixel columns; with an intercept both sides are centred."""
    if intercept:
        x, y = x - x.mean(axis=0), y - y.mean()
    scale = np.sqrt((x**2).mean(axis=0))
    return x / scale, y, scale


def _used_bridge(
    coef: np.ndarray,
    scale: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    spec: FitSpec,
    weight_sum: float | None,
    days: np.ndarray | None = None,
    prior: SpatialPrior | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """(columns, weights, bias) of the bridge built on the Lasso's support ``coef != 0``."""
    columns = np.flatnonzero(coef)
    if columns.size == 0:
        return columns, np.empty(0), float(y.mean()) if spec.intercept else 0.0
    if spec.refit == "constrained":
        weights, bias = least_squares(
            x[:, columns],
            y,
            intercept=spec.intercept,
            weight_sum=weight_sum,
            period=spec.period_weights(days, len(y)),
            prior=None if prior is None else prior.weights_of(columns),
            strength=0.0 if prior is None else prior.strength,
        )
        return columns, weights, bias
    weights = coef[columns] / scale[columns]
    bias = float(y.mean() - x[:, columns].mean(axis=0) @ weights) if spec.intercept else 0.0
    return columns, weights, bias


LASSO_MAX_ITER = 20_000
LASSO_TOL = 1e-6


def _lasso() -> Lasso:
    return Lasso(fit_intercept=False, warm_start=True, max_iter=LASSO_MAX_ITER, tol=LASSO_TOL)


class PathLasso:
    """A warm-started Lasso (no intercept) walked along decreasing α.

    Bitwise scikit-learn's ``Lasso(fit_intercept=False, warm_start=True, max_iter=20000,
    tol=1e-6)`` refitted at each α (tested): the same coordinate-descent routine with
    the same arguments, but the design is put in Fortran order once per walk instead of
    validated and copied at every α (scikit-learn's checks were ~15 % of a bridge
    build). ``public=True`` (or a scikit-learn without that routine) uses ``Lasso``.
    """

    def __init__(self, z: np.ndarray, target: np.ndarray, public: bool = False) -> None:
        self._model = _lasso() if public or enet_coordinate_descent is None else None
        self._z = z if self._model is not None else np.asfortranarray(z, dtype=np.float64)
        self._target = np.ascontiguousarray(target, dtype=np.float64)
        self._coef = np.zeros(z.shape[1])

    def fit(self, alpha: float) -> np.ndarray:
        """Lasso coefficients at ``alpha`` (on z's columns), warm-started from the last α."""
        with warnings.catch_warnings():
            # at tiny α with more pixels than months coordinate descent converges slowly;
            # the R² of the used bridge is what matters
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self._model is not None:
                self._model.set_params(alpha=alpha)
                self._model.fit(self._z, self._target)
                return self._model.coef_.copy()
            n = self._z.shape[0]
            # Lasso.fit → enet_path: l1 = α·l1_ratio·n, l2 = α·(1 − l1_ratio)·n, l1_ratio 1;
            # cyclic selection still draws one number from the global RNG, as it does there
            enet_coordinate_descent(
                self._coef,
                alpha * 1.0 * n,
                alpha * (1.0 - 1.0) * n,
                self._z,
                self._target,
                LASSO_MAX_ITER,
                LASSO_TOL,
                check_random_state(None),
                False,
                False,
                True,
            )
        if not np.isfinite(self._coef).all():
            raise ValueError("Lasso coordinate descent gave non-finite coefficients")
        return self._coef.copy()


def r2(y: np.ndarray, pred: np.ndarray) -> float:
    """``sklearn.metrics.r2_score(y, pred)`` to the last bit, without its input checks.

    1 − Σ(y − pred)² / Σ(y − ȳ)² (dimensionless); 1 where the numerator is 0, 0 where
    only the denominator is (scikit-learn's ``force_finite``). Same arithmetic as
    scikit-learn 1.9 (columns of shape (n, 1), sums along axis 0; tested bitwise).
    """
    yt = np.asarray(y, dtype=np.float64).reshape(-1, 1)
    yp = np.asarray(pred, dtype=np.float64).reshape(-1, 1)
    if yt.shape != yp.shape:
        raise ValueError(f"r2: y has {yt.shape[0]} values, pred {yp.shape[0]}")
    if yt.shape[0] < 2:
        return float("nan")
    num = float(np.sum((yt - yp) ** 2, axis=0)[0])
    den = float(np.sum((yt - np.mean(yt, axis=0)) ** 2, axis=0)[0])
    if num == 0:
        return 1.0
    if den == 0:
        return 0.0
    return float(1 - num / den)


def _first_reaching(
    x: np.ndarray,
    y: np.ndarray,
    alphas: np.ndarray,
    threshold: float,
    spec: FitSpec,
    weight_sum: float | None,
    days: np.ndarray | None = None,
    prior: SpatialPrior | None = None,
) -> LassoBridgeFit:
    """Walk ``alphas`` (decreasing, warm-started) to the first used bridge with R² ≥ threshold."""
    if spec.refit == "constrained" and weight_sum is None:
        raise ValueError("refit='constrained' needs weight_sum (the region's Σ w)")
    z, target, scale = _lasso_design(x, y, spec.intercept)
    model = PathLasso(z, target)
    for alpha in alphas:
        coef = model.fit(alpha)
        columns, weights, bias = _used_bridge(coef, scale, x, y, spec, weight_sum, days, prior)
        score = r2(y, x[:, columns] @ weights + bias)
        if score >= threshold:
            break
        if spec.refit == "constrained" and columns.size == x.shape[1]:
            # every candidate is in: the refit depends on the support only, so smaller α
            # cannot change it (and the Lasso is slowest there)
            break
    return LassoBridgeFit(columns, weights, bias, float(alpha), score, score >= threshold)


def fit_threshold_lasso(
    x: np.ndarray,
    y: np.ndarray,
    *,
    threshold: float,
    ratio: float,
    n_alphas: int,
    spec: FitSpec,
    weight_sum: float | None = None,
    days: np.ndarray | None = None,
    prior: SpatialPrior | None = None,
) -> LassoBridgeFit:
    """Decrease α until the used bridge's training R² ≥ ``threshold``; return that bridge.

    If no α on the path reaches the threshold the last (smallest-α) bridge is
    returned with ``reached=False``; the caller decides on a fallback. ``days``: the
    months' lengths, for the period-total constraint (``FitSpec.period_total``);
    ``prior``: shrink the constrained refit towards quadrature weights.
    """
    check_design(x, y)
    z, target, _ = _lasso_design(x, y, spec.intercept)
    alpha_max = float(np.max(np.abs(z.T @ target)) / len(y))
    alphas = alpha_path(alpha_max, ratio, n_alphas)
    return _first_reaching(x, y, alphas, threshold, spec, weight_sum, days, prior)


def cv_r2_lasso(
    x: np.ndarray,
    y: np.ndarray,
    alphas: np.ndarray,
    k_folds: int,
    *,
    threshold: float,
    spec: FitSpec,
    weight_sum: float | None = None,
    days: np.ndarray | None = None,
    prior: SpatialPrior | None = None,
) -> float:
    """R² of pooled out-of-fold predictions of the whole fit over k contiguous folds.

    Each training part gets its own scaling, and walks ``alphas`` (the rest of the
    run's path, from the chosen α down) to the first bridge reaching ``threshold``
    on that part, as the full fit did; a single α gives the plain Lasso(α) CV.
    """
    check_design(x, y)
    if not 2 <= k_folds <= len(y):
        raise ValueError(f"k_folds must lie in [2, {len(y)}] (months), got {k_folds}")
    pred = np.empty_like(y)
    for test in np.array_split(np.arange(len(y)), k_folds):
        train = np.ones(len(y), dtype=bool)
        train[test] = False
        fit = _first_reaching(
            x[train],
            y[train],
            alphas,
            threshold,
            spec,
            weight_sum,
            None if days is None else np.asarray(days)[train],
            prior,
        )
        pred[test] = x[test][:, fit.columns] @ fit.weights + fit.bias
    return r2(y, pred)


def r2_fixed(x: np.ndarray, y: np.ndarray, weights: np.ndarray, bias: float) -> float:
    """R² of a fixed (not fitted) linear bridge, e.g. the area-weighted fallback.

    Nothing is fitted, so this is also its cross-validated R².
    """
    return r2(y, x @ weights + bias)
