"""DTW distance matrix against dtw-python (the reference implementation)."""

from __future__ import annotations

import numpy as np
import pytest
from dtw import dtw
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fluxbridge.bridge import dtw_distance_matrix
from fluxbridge.bridge.cluster import spectral_clusters

DTYPES = [np.float64, np.float32]


def reference(x: np.ndarray, i: int, j: int, window: int | None) -> float:
    kw = (
        {}
        if window is None
        else {"window_type": "sakoechiba", "window_args": {"window_size": window}}
    )
    return dtw(x[i], x[j], distance_only=True, **kw).distance


def reference_rows(x: np.ndarray, rows: list[int], window: int | None) -> np.ndarray:
    out = np.zeros((len(rows), len(x)))
    for r, i in enumerate(rows):
        for j in range(len(x)):
            if i != j:
                out[r, j] = reference(x, i, j, window)
    return out


def reference_matrix(x: np.ndarray, window: int | None) -> np.ndarray:
    return reference_rows(x, list(range(len(x))), window)


def float32_bound(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """First-order rounding bound of the float32 path, written out independently.

    u = 2**-24; M = half the spread of all values (the kernel shifts them by the
    centre of their range); local costs off by <= 4uM with path weights summing to
    2T, and <= 2T additions each off by u x (partial sum <= D); an underflow costs
    at most eta per rounding; doubled.
    """
    u, eta = 2.0**-24, 2.0**-149  # unit roundoff, smallest subnormal (underflow)
    t = x.shape[1]
    m = 0.5 * (x.max() - x.min())
    return 2.0 * (8 * t * u * m + 2 * t * u * ref + 8 * t * eta)


def assert_matches(got: np.ndarray, ref: np.ndarray, x: np.ndarray, dtype: type) -> None:
    if dtype is np.float64:
        np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)
    else:
        excess = np.abs(got - ref) - float32_bound(x, ref)
        assert excess.max() <= 0, f"float32 off by more than its bound: {excess.max():.3g}"


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    n=st.integers(2, 5),
    t=st.integers(1, 12),
    ties=st.booleans(),
)
def test_equals_dtw_python(dtype: type, data: st.DataObject, n: int, t: int, ties: bool) -> None:
    # integer-valued series produce many tied steps in the recursion
    elements = st.integers(-3, 3).map(float) if ties else st.floats(-1e3, 1e3)
    x = data.draw(arrays(np.float64, (n, t), elements=elements))
    window = data.draw(st.one_of(st.none(), st.integers(0, t)))
    assert_matches(dtw_distance_matrix(x, window, dtype), reference_matrix(x, window), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("n", "window"), [(70, 3), (130, None)])
def test_block_edges(dtype: type, n: int, window: int | None) -> None:
    # 70 series: row 0 spans a full 64-lane block and one with 5 used lanes; 130: row 0
    # spans two full blocks and one with a single used lane, the last row none
    x = np.cumsum(np.random.default_rng(1).normal(size=(n, 15)), axis=1)
    got = dtw_distance_matrix(x, window=window, dtype=dtype)
    rows = [0, 5, n - 2, n - 1]
    assert_matches(got[rows], reference_rows(x, rows, window), x, dtype)
    assert np.array_equal(got, got.T)


def test_float32_far_from_zero_stays_within_bound() -> None:
    # NEE-like series around a large common level: without the common shift,
    # float32 rounding of the inputs (~1e4 x 6e-8 per step) would exceed the bound
    rng = np.random.default_rng(4)
    x = 1e4 + np.cumsum(rng.normal(scale=0.1, size=(6, 204)), axis=1)
    got = dtw_distance_matrix(x, dtype=np.float32)
    pairs = [(0, 1), (2, 5), (3, 4)]
    ref = np.array([reference(x, i, j, None) for i, j in pairs])
    got_pairs = np.array([got[i, j] for i, j in pairs])
    assert np.all(np.abs(got_pairs - ref) <= float32_bound(x, ref))
    assert np.max(np.abs(got_pairs - ref) / ref) < 1e-5


def test_float32_and_float64_cluster_alike() -> None:
    # three seasonal shapes with noise, as in the bridges' DTW → spectral clustering
    rng = np.random.default_rng(5)
    months = np.arange(48)
    shapes = [np.sin(2 * np.pi * months / 12), 2 * np.cos(2 * np.pi * months / 12) + 1, 0 * months]
    x = np.concatenate([s + 0.3 * rng.normal(size=(40, 48)) for s in shapes])
    labels = [spectral_clusters(dtw_distance_matrix(x, dtype=d), 8, seed=0) for d in DTYPES]
    assert np.array_equal(labels[0], labels[1])


@pytest.mark.parametrize("dtype", DTYPES)
def test_symmetric_zero_diagonal_and_constant_series(dtype: type) -> None:
    x = np.random.default_rng(2).normal(size=(9, 20))
    d = dtw_distance_matrix(x, dtype=dtype)
    assert np.array_equal(d, d.T)
    assert np.all(np.diag(d) == 0)
    assert np.all(d[~np.eye(9, dtype=bool)] > 0)
    const = np.full((3, 7), 2.5)
    assert np.all(dtw_distance_matrix(const, dtype=dtype) == 0)
    # by hand: g(0,0) = d = 1, then six diagonal steps of weight 2 → 1 + 6 * 2 = 13
    assert dtw_distance_matrix(np.array([np.zeros(7), np.ones(7)]), dtype=dtype)[0, 1] == 13.0
    # a repeated first step is absorbed by warping (zero distance)
    warped = np.array([[0.0, 1.0, 2.0, 2.0], [0.0, 0.0, 1.0, 2.0]])
    assert dtw_distance_matrix(warped, dtype=dtype)[0, 1] == 0.0


def test_bad_input() -> None:
    x = np.zeros((3, 5))
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"series 1, step 2"):
        dtw_distance_matrix(x)
    with pytest.raises(ValueError, match="2-D"):
        dtw_distance_matrix(np.zeros(5))
    with pytest.raises(ValueError, match="window"):
        dtw_distance_matrix(np.zeros((3, 5)), window=-1)
    with pytest.raises(ValueError, match=r"overflows the float32 DP; use dtype=np\.float64"):
        dtw_distance_matrix(np.array([[0.0, 1e38], [1e38, 0.0]]))
    big = dtw_distance_matrix(np.array([[0.0, 1e38], [1e38, 0.0]]), dtype=np.float64)
    assert big[0, 1] == 2e38  # by hand: g(1,1) = g(0,1) + d(1,1) = (1e38 + 0) + 1e38
    with pytest.raises(ValueError, match=r"dtype must be np\.float32 or np\.float64"):
        dtw_distance_matrix(np.zeros((3, 5)), dtype=np.float16)
    assert dtw_distance_matrix(np.zeros((1, 5))).shape == (1, 1)
    assert dtw_distance_matrix(np.zeros((2, 5)), dtype=np.dtype("float32")).shape == (2, 2)
