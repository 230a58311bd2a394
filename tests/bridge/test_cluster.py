"""Affinity, cluster-count rule, spectral clusters and stratified sampling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import eigh
from sklearn.metrics import adjusted_rand_score

from fluxbridge.bridge import cluster
from fluxbridge.bridge.cluster import (
    eigengap_n_clusters,
    gaussian_affinity,
    proportional_allocation,
    spectral_clusters,
    stratified_sample,
)
from fluxbridge.bridge.dtw import dtw_distance_matrix


def test_gaussian_affinity_by_hand() -> None:
    d = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0], [2.0, 3.0, 0.0]])
    a = gaussian_affinity(d, neighbours=1)
    # nearest-neighbour distances: σ = (1, 1, 2)
    assert a[0, 1] == pytest.approx(np.exp(-1 / (1 * 1)))
    assert a[0, 2] == pytest.approx(np.exp(-4 / (1 * 2)))
    assert a[1, 2] == pytest.approx(np.exp(-9 / (1 * 2)))
    assert np.all(np.diag(a) == 1.0)
    assert np.all(gaussian_affinity(np.zeros((3, 3))) == 1.0)
    with pytest.raises(ValueError, match="square"):
        gaussian_affinity(np.zeros((2, 3)))


def test_eigengap_finds_block_count() -> None:
    blocks = [4, 5, 6]
    a = np.full((15, 15), 1e-3)
    start = 0
    for b in blocks:
        a[start : start + b, start : start + b] = 1.0
        start += b
    assert eigengap_n_clusters(a, k_max=8) == 3
    assert eigengap_n_clusters(a, k_max=2) == 2  # bounded above


def planted_series(rng: np.random.Generator, n_per: int = 12, t: int = 36) -> tuple:
    months = np.arange(t)
    shapes = [
        np.sin(2 * np.pi * months / 12),
        2.0 * np.cos(2 * np.pi * months / 12) + 3.0,
        -np.sin(2 * np.pi * months / 6) - 4.0,
    ]
    x = np.concatenate([s + 0.05 * rng.normal(size=(n_per, t)) for s in shapes])
    truth = np.repeat(np.arange(3), n_per)
    return x, truth


def test_spectral_clusters_recover_planted_groups() -> None:
    x, truth = planted_series(np.random.default_rng(3))
    labels = spectral_clusters(dtw_distance_matrix(x), k_max=6, seed=0)
    assert adjusted_rand_score(truth, labels) == 1.0
    assert np.array_equal(labels, spectral_clusters(dtw_distance_matrix(x), k_max=6, seed=0))
    assert np.array_equal(spectral_clusters(np.zeros((2, 2)), 5, 0), [0, 0])


@pytest.mark.parametrize(
    ("sizes", "n", "expected"),
    [
        ([50, 30, 20], 10, [5, 3, 2]),
        ([97, 2, 1], 10, [8, 1, 1]),  # quotas 9.7, 0.2, 0.1; one each, cluster 0 gives back
        ([5, 5, 5], 2, [1, 1, 1]),  # fewer samples than clusters: one each
        ([3, 4], 50, [3, 4]),  # more samples than pixels: all
        ([10, 10, 10], 10, [4, 3, 3]),  # remainders tie: first cluster first
    ],
)
def test_proportional_allocation(sizes: list[int], n: int, expected: list[int]) -> None:
    assert proportional_allocation(np.array(sizes), n).tolist() == expected


def test_stratified_sample_seeded_and_covers_clusters() -> None:
    labels = np.repeat([0, 1, 2], [40, 8, 2])
    a = stratified_sample(labels, 10, np.random.default_rng(7))
    b = stratified_sample(labels, 10, np.random.default_rng(7))
    assert np.array_equal(a, b)
    assert len(np.unique(a)) == 10
    assert np.bincount(labels[a]).tolist() == [8, 1, 1]


def dense_eigengap(affinity: np.ndarray, k_max: int) -> int:
    """The rule written out with the dense solver on the whole Laplacian."""
    n = affinity.shape[0]
    d = affinity.sum(axis=1)
    lap = np.eye(n) - affinity / np.sqrt(np.outer(d, d))
    lam = eigh(lap, eigvals_only=True)[: min(k_max, n - 1) + 1]
    return int(np.argmax(np.diff(lam)[1:]) + 2)


@pytest.mark.parametrize("seed", range(6))
def test_lanczos_eigengap_is_the_dense_one(seed: int) -> None:
    # 300-600 pixels in 2-7 groups of unequal spread: the shift-invert path runs
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(2, 8))
    centres = rng.normal(size=(groups, 36)) * rng.uniform(0.5, 3.0)
    sizes = rng.integers(300 // groups + 1, 170, size=groups)
    spread = rng.uniform(0.1, 1.5, size=groups)
    x = np.concatenate(
        [c + s * rng.normal(size=(m, 36)) for c, m, s in zip(centres, sizes, spread, strict=True)]
    )
    assert x.shape[0] >= cluster.LANCZOS_MIN_PIXELS
    a = gaussian_affinity(dtw_distance_matrix(x))
    inv = 1.0 / np.sqrt(a.sum(axis=1))
    fast = cluster._eigengap_lanczos(inv[:, None] * a * inv[None, :], 8)
    assert fast is not None  # the checks pass on ordinary data ...
    assert fast == eigengap_n_clusters(a, 8) == dense_eigengap(a, 8)


def test_lanczos_eigengap_declines_near_ties_and_falls_back(monkeypatch) -> None:
    x, _ = planted_series(np.random.default_rng(1), n_per=110)
    a = gaussian_affinity(dtw_distance_matrix(x))
    inv = 1.0 / np.sqrt(a.sum(axis=1))
    # a margin no gap can beat: the Lanczos answer is refused, the dense rule answers
    monkeypatch.setattr(cluster, "LANCZOS_GAP_MARGIN", 10.0)
    assert cluster._eigengap_lanczos(inv[:, None] * a * inv[None, :], 8) is None
    assert eigengap_n_clusters(a, 8) == dense_eigengap(a, 8) == 3
    # so does a residual bound no Ritz pair can meet
    monkeypatch.setattr(cluster, "LANCZOS_GAP_MARGIN", 1e-7)
    monkeypatch.setattr(cluster, "LANCZOS_RESIDUAL", -1.0)
    assert cluster._eigengap_lanczos(inv[:, None] * a * inv[None, :], 8) is None
    assert eigengap_n_clusters(a, 8) == 3
