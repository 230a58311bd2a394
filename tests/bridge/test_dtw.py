"""DTW distance matrix against dtw-python (the reference implementation)."""

from __future__ import annotations

import numpy as np
import pytest
from dtw import dtw
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fluxbridge.bridge import dtw_distance_matrix


def reference_matrix(x: np.ndarray, window: int | None) -> np.ndarray:
    kw = (
        {}
        if window is None
        else {"window_type": "sakoechiba", "window_args": {"window_size": window}}
    )
    n = len(x)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                out[i, j] = dtw(x[i], x[j], distance_only=True, **kw).distance
    return out


def assert_matches(got: np.ndarray, ref: np.ndarray) -> None:
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    n=st.integers(2, 5),
    t=st.integers(1, 12),
    ties=st.booleans(),
)
def test_equals_dtw_python(data: st.DataObject, n: int, t: int, ties: bool) -> None:
    # integer-valued series produce many tied steps in the recursion
    elements = st.integers(-3, 3).map(float) if ties else st.floats(-1e3, 1e3)
    x = data.draw(arrays(np.float64, (n, t), elements=elements))
    window = data.draw(st.one_of(st.none(), st.integers(0, t)))
    assert_matches(dtw_distance_matrix(x, window), reference_matrix(x, window))


def test_more_pairs_than_one_block_with_window() -> None:
    # 70 series: rows span two 64-lane blocks, the second one partly padded
    x = np.cumsum(np.random.default_rng(1).normal(size=(70, 15)), axis=1)
    got = dtw_distance_matrix(x, window=3)
    rows = [0, 5, 69]
    ref = reference_matrix(x, 3)
    assert_matches(got[rows], ref[rows])


def test_symmetric_zero_diagonal_and_constant_series() -> None:
    x = np.random.default_rng(2).normal(size=(9, 20))
    d = dtw_distance_matrix(x)
    assert np.array_equal(d, d.T)
    assert np.all(np.diag(d) == 0)
    assert np.all(d[~np.eye(9, dtype=bool)] > 0)
    const = np.full((3, 7), 2.5)
    assert np.all(dtw_distance_matrix(const) == 0)
    # by hand: g(0,0) = d = 1, then six diagonal steps of weight 2 → 1 + 6 * 2 = 13
    assert dtw_distance_matrix(np.array([np.zeros(7), np.ones(7)]))[0, 1] == 13.0
    # a repeated first step is absorbed by warping (zero distance)
    warped = dtw_distance_matrix(np.array([[0.0, 1.0, 2.0, 2.0], [0.0, 0.0, 1.0, 2.0]]))
    assert warped[0, 1] == 0.0


def test_bad_input() -> None:
    x = np.zeros((3, 5))
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"series 1, step 2"):
        dtw_distance_matrix(x)
    with pytest.raises(ValueError, match="2-D"):
        dtw_distance_matrix(np.zeros(5))
    with pytest.raises(ValueError, match="window"):
        dtw_distance_matrix(np.zeros((3, 5)), window=-1)
    assert dtw_distance_matrix(np.zeros((1, 5))).shape == (1, 1)
