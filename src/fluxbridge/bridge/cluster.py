"""Spectral clustering of pixels by DTW distance, and stratified candidate sampling.

Choices (Upton et al. §3.3.1 name the methods, not their settings):

* affinity: self-tuning Gaussian kernel ``A_ij = exp(-D_ij² / (σ_i σ_j))`` with σ_i the
  DTW distance of pixel i to its 7th nearest neighbour (local scaling, Zelnik-Manor &
  Perona 2004): scale-free, and unlike one global scale (e.g. the median distance)
  it keeps well-separated groups apart so the eigengap sees them;
* number of clusters: eigengap heuristic on the symmetric normalised Laplacian
  ``L = I − D^-1/2 A D^-1/2``: ``k = argmax_k (λ_{k+1} − λ_k)`` over ``k ∈ [2, k_max]``
  (eigenvalues ascending), bounded by ``n − 1``;
* labels: scikit-learn ``SpectralClustering(affinity="precomputed",
  assign_labels="cluster_qr")`` — cluster_qr needs no k-means restarts and is
  deterministic given the seeded eigensolver;
* sampling: proportional allocation across clusters with at least one pixel per
  cluster (largest-remainder rounding), simple random sampling within clusters.
"""

from __future__ import annotations

import numpy as np
from numpy.linalg import LinAlgError
from scipy.linalg import cholesky, eigh
from scipy.sparse.linalg import ArpackError, ArpackNoConvergence, eigsh
from sklearn.cluster import SpectralClustering


def gaussian_affinity(dist: np.ndarray, neighbours: int = 7) -> np.ndarray:
    """Self-tuning Gaussian affinity in [0, 1] from a symmetric distance matrix.

    ``A_ij = exp(-D_ij² / (σ_i σ_j))`` with σ_i the distance from pixel i to its
    ``neighbours``-th nearest neighbour (Zelnik-Manor & Perona 2004, local scaling),
    floored at the smallest non-zero distance so duplicated series stay finite.
    All-identical series give an all-ones affinity.
    """
    d = np.asarray(dist, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distance matrix must be square, got shape {d.shape}")
    if not np.isfinite(d).all() or (d < 0).any():
        raise ValueError("distance matrix must be finite and non-negative")
    n = d.shape[0]
    positive = d[d > 0]
    if n < 2 or positive.size == 0:
        return np.ones_like(d)
    k = min(neighbours, n - 1)
    sigma = np.maximum(np.sort(d, axis=1)[:, k], positive.min())  # column 0 is the pixel itself
    return np.exp(-(d**2) / np.outer(sigma, sigma))


def eigengap_n_clusters(affinity: np.ndarray, k_max: int) -> int:
    """Number of clusters by the largest eigengap of the normalised Laplacian, in [2, k_max]."""
    n = affinity.shape[0]
    if n < 3:
        raise ValueError(f"need at least 3 pixels to choose a cluster count, got {n}")
    k_hi = min(k_max, n - 1)
    if k_hi < 2:
        raise ValueError(f"k_max must be at least 2, got {k_max}")
    degree = affinity.sum(axis=1)
    inv_sqrt = 1.0 / np.sqrt(degree)
    norm_aff = inv_sqrt[:, None] * affinity * inv_sqrt[None, :]
    if n >= LANCZOS_MIN_PIXELS:
        k = _eigengap_lanczos(norm_aff, k_hi)
        if k is not None:
            return k
    lap = np.eye(n) - norm_aff
    eig = eigh(lap, eigvals_only=True, subset_by_index=[0, k_hi])
    gaps = np.diff(eig)  # gaps[k-1] = λ_{k+1} − λ_k (1-based k)
    return int(np.argmax(gaps[1:k_hi]) + 2)


#: below this many pixels the dense eigensolver is cheap enough (and always exact)
LANCZOS_MIN_PIXELS = 300
#: a Lanczos eigenvalue must be this close to a true one (residual norm bound) ...
LANCZOS_RESIDUAL = 1e-9
#: ... and the largest eigengap must beat the runner-up by this much, else dense eigh
LANCZOS_GAP_MARGIN = 1e-7


def _eigengap_lanczos(norm_aff: np.ndarray, k_hi: int) -> int | None:
    """The dense eigengap's cluster count from k_hi + 1 Lanczos eigenvalues, or None.

    L = I − M (M = D^-1/2 A D^-1/2), so L's smallest eigenvalues are 1 − M's largest
    and the gaps are the same. The dense ``eigh`` reduces the whole n × n matrix to
    tridiagonal form (~4/3 n³, 10–15 s at n = 2000 on a busy core); shift-invert
    Lanczos needs one LU factorisation (~2/3 n³, all matrix-matrix work) and a few
    solves. The answer is used only when it is provably the dense one's: every Ritz
    value lies within its residual norm (≤ ``LANCZOS_RESIDUAL``) of an eigenvalue; none
    is missed (the Ritz pairs deflated, M − 3VVᵀ stays below the smallest Ritz value
    minus a margin: a Cholesky factorisation succeeds); and the largest gap leads the
    runner-up by ``LANCZOS_GAP_MARGIN``, far above both solvers' rounding (~1e-13).
    Otherwise None, and the caller runs the dense ``eigh``.
    """
    n, m = norm_aff.shape[0], k_hi + 1
    v0 = np.random.default_rng(0).uniform(-1.0, 1.0, n)  # fixed start: reproducible runs
    try:
        # shift-invert just above M's largest eigenvalue (1): the wanted end of the
        # spectrum becomes well separated, so few (LU-solve) iterations are needed
        mu, vec = eigsh(norm_aff, k=m, sigma=1.01, which="LM", v0=v0, tol=1e-13)
    except (ArpackNoConvergence, ArpackError):
        return None
    order = np.argsort(mu)[::-1]
    mu, vec = mu[order], vec[:, order]
    residual = np.linalg.norm(norm_aff @ vec - vec * mu, axis=0)
    if not (residual <= LANCZOS_RESIDUAL).all():
        return None
    # no eigenvalue of M above mu[-1] − margin outside the Ritz pairs: the deflated
    # matrix minus that level is negative definite
    level = mu[-1] - LANCZOS_GAP_MARGIN
    deflated = level * np.eye(n) - (norm_aff - 3.0 * (vec @ vec.T))
    try:
        cholesky(deflated, lower=True, check_finite=False, overwrite_a=True)
    except LinAlgError:
        return None
    gaps = -np.diff(mu)  # gaps[k-1] = λ_{k+1} − λ_k of L (1-based k)
    candidates = gaps[1:k_hi]
    best = int(np.argmax(candidates))
    if candidates.size > 1:
        runner_up = np.max(np.delete(candidates, best))
        if candidates[best] - runner_up <= LANCZOS_GAP_MARGIN:
            return None
    return best + 2


def spectral_clusters(dist: np.ndarray, k_max: int, seed: int) -> np.ndarray:
    """Cluster labels (0 .. k-1) of the pixels of a DTW distance matrix.

    Fewer than 3 pixels form a single cluster (nothing to choose between).
    """
    n = dist.shape[0]
    if n < 3:
        return np.zeros(n, dtype=np.int64)
    affinity = gaussian_affinity(dist)
    k = eigengap_n_clusters(affinity, k_max)
    model = SpectralClustering(
        n_clusters=k, affinity="precomputed", assign_labels="cluster_qr", random_state=seed
    )
    return model.fit_predict(affinity).astype(np.int64)


def proportional_allocation(sizes: np.ndarray, n_samples: int) -> np.ndarray:
    """Samples per cluster: proportional to size, ≥ 1 each, ≤ size, summing to n_samples.

    When ``n_samples`` is smaller than the number of clusters every cluster still
    gets one (the total is then the number of clusters); when it exceeds the
    number of pixels every pixel is taken.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    if (sizes < 1).any():
        raise ValueError("every cluster must have at least one pixel")
    total = int(sizes.sum())
    n_samples = min(max(n_samples, sizes.size), total)
    quota = n_samples * sizes / total
    alloc = np.clip(np.floor(quota).astype(np.int64), 1, sizes)
    while alloc.sum() < n_samples:
        # largest remainder first, among clusters that still have unsampled pixels
        k = int(np.argmax(np.where(alloc < sizes, quota - alloc, -np.inf)))
        alloc[k] += 1
    while alloc.sum() > n_samples:
        # minimum-one rule overshot: take back from the clusters most above their quota
        k = int(np.argmax(np.where(alloc > 1, alloc - quota, -np.inf)))
        alloc[k] -= 1
    return alloc


def stratified_sample(labels: np.ndarray, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of a stratified random sample of the pixels with these cluster labels."""
    labels = np.asarray(labels)
    clusters, sizes = np.unique(labels, return_counts=True)
    alloc = proportional_allocation(sizes, n_samples)
    picked = [
        rng.choice(np.flatnonzero(labels == c), size=int(m), replace=False)
        for c, m in zip(clusters, alloc, strict=True)
    ]
    return np.sort(np.concatenate(picked))
