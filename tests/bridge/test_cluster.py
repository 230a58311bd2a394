"""Affinity, cluster-count rule, spectral clusters and stratified sampling."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

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
