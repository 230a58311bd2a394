"""Pairwise dynamic time warping (DTW) distances, vectorised across pairs.

The distance is the one of dtw-python's ``dtw(x, y, distance_only=True).distance``
with its defaults: local cost ``d(i, j) = |x_i - y_j|`` and the ``symmetric2``
step pattern,

    g(0, 0) = d(0, 0)
    g(i, j) = min(g(i-1, j-1) + 2 d(i, j),  g(i, j-1) + d(i, j),  g(i-1, j) + d(i, j)),

returning the unnormalised ``g(T-1, T-1)``. An optional Sakoe–Chiba band keeps
only cells with ``|i - j| <= window`` (dtw-python's ``window_type="sakoechiba"``).

Why this layout: the recursion is sequential along one pair's cost matrix (each
cell needs its left neighbour, a latency-bound chain), but pairs are
independent. The kernel therefore runs a block of pairs that share their first
series side by side, pairs innermost and contiguous, so LLVM turns the pair
loop into SIMD lanes and the latency chain of one pair overlaps with the
others. The series are stored transposed, (T, n), so the second series of the
pairs of one block are a contiguous slice and need no gather. Blocks run in
parallel with ``prange``; only pairs ``i < j`` are computed (the matrix is
symmetric with a zero diagonal).

Precision: the DP runs in float32 by default (``dtype=np.float32``), float64 on
request. The kernel is bound by vector throughput and by moving the two DP rows
through the caches, so float32 (8 lanes per AVX2 register instead of 4, half
the bytes) is about twice as fast. The float64 path equals dtw-python to the
last bits. The float32 path is within a first-order rounding bound (unit
roundoff u = 2**-24, T steps, M the largest ``|x - c|`` after the shift c below:
each local cost is off by at most 4uM and a warping path's weights sum to 2T;
each of its <= 2T additions adds u times a partial sum <= D; underflow adds at
most η = 2**-149 per rounding, <= 8Tη), doubled for safety:
``|D32 - D| <= 2 (8 T u M + 2 T u D + 8 T η)``. On the twin worlds that is
<= 1.4e-5 relative, and the bridges' spectral clusters were identical. Before
casting, the series are shifted by one common offset (the centre of their
range): ``|x - y|`` is unchanged, and the rounding error of the inputs shrinks
to a fraction of their spread instead of their magnitude. See
``benchmarks/bench_dtw.py`` for the measured speed against dtaidistance and
dtw-python, and docs/bridges.md "DTW speed".
"""

from __future__ import annotations

import numba
import numpy as np

#: Pairs per block: 64 lanes = 8 (float32) or 16 (float64) AVX2 vectors in flight,
#: and a block's series and two DP rows (3 × 204 × 64 × 4 B ≈ 160 kB in float32)
#: stay in L2. 32 and 128 lanes were slower in float32, 16 did not vectorise.
BLOCK_PAIRS = 64

#: The DP precisions offered (see the module docstring).
DTYPES = (np.float32, np.float64)


@numba.njit(cache=True, nogil=True, fastmath={"nnan", "ninf", "nsz"})
def _block(st: np.ndarray, a: int, j0: int, nb: int, window: int, out: np.ndarray) -> None:
    """DTW of series ``a`` against series ``j0 .. j0+nb-1`` (columns of ``st``).

    The lane count is the compile-time constant BLOCK_PAIRS (a constant trip count
    is what lets LLVM vectorise the lane loop); lanes past ``nb`` run on zero
    padding and are discarded.
    """
    t_len = st.shape[0]
    lanes = BLOCK_PAIRS
    # buffers in the dtype of ``st``: float64 literals would promote the lane
    # arithmetic to float64 and halve the float32 throughput, hence ``d + d``
    y = np.zeros((t_len, lanes), dtype=st.dtype)
    y[:, :nb] = st[:, j0 : j0 + nb]
    prev = np.full((t_len, lanes), np.inf, dtype=st.dtype)
    cur = np.full((t_len, lanes), np.inf, dtype=st.dtype)
    for i in range(t_len):
        lo = max(0, i - window)
        hi = min(t_len - 1, i + window)
        xi = st[i, a]
        if lo > 0:
            # left neighbour of the band's first cell lies outside the band
            cur[lo - 1, :] = np.inf
        if lo == 0:
            first, y0 = cur[0], y[0]
            for b in range(lanes):
                d = abs(xi - y0[b])
                first[b] = prev[0, b] + d if i > 0 else d
            start = 1
        else:
            start = lo
        for j in range(start, hi + 1):
            c, c_left, p_diag, p_up, yj = cur[j], cur[j - 1], prev[j - 1], prev[j], y[j]
            for b in range(lanes):
                d = abs(xi - yj[b])
                # min(diag + 2d, left + d, up + d) with one add fewer: rounding is
                # monotone, so min(left, up) + d rounds to min(left + d, up + d)
                diag = p_diag[b] + (d + d)
                lu = c_left[b] if c_left[b] < p_up[b] else p_up[b]
                m = lu + d
                c[b] = diag if diag < m else m
        prev, cur = cur, prev
    for b in range(nb):
        out[a, j0 + b] = prev[t_len - 1, b]
        out[j0 + b, a] = prev[t_len - 1, b]


@numba.njit(cache=True, parallel=True, nogil=True)
def _all_pairs(st: np.ndarray, tasks: np.ndarray, window: int, out: np.ndarray) -> None:
    for k in numba.prange(tasks.shape[0]):
        _block(st, tasks[k, 0], tasks[k, 1], tasks[k, 2], window, out)


def _tasks(n: int, block: int) -> np.ndarray:
    """Blocks (a, j0, nb) covering every pair a < j; each costs one full block of lanes."""
    rows = [(a, j0, min(block, n - j0)) for a in range(n - 1) for j0 in range(a + 1, n, block)]
    return np.asarray(rows, dtype=np.int64).reshape(-1, 3)


def dtw_distance_matrix(
    series: np.ndarray, window: int | None = None, dtype: type = np.float32
) -> np.ndarray:
    """Symmetric matrix of DTW distances between the rows of ``series``.

    Parameters
    ----------
    series : (n, T) array of finite values (any units; the distance has the same units
        times a number of steps).
    window : Sakoe–Chiba half-width in time steps (``|i - j| <= window``), or None for
        no constraint.
    dtype : precision of the dynamic programme: ``np.float32`` (default, about twice
        as fast, within the rounding bound of the module docstring) or
        ``np.float64`` (dtw-python's value to rounding, ~1e-15 relative).

    Returns
    -------
    (n, n) float64 array, zero diagonal, ``D[i, j] == D[j, i]`` equal to dtw-python's
    ``dtw(series[i], series[j], distance_only=True).distance`` (symmetric2, absolute
    difference), with ``window_type="sakoechiba"`` when ``window`` is given.
    """
    x = np.asarray(series, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"series must be 2-D (n, T), got shape {x.shape}")
    n, t_len = x.shape
    if t_len == 0:
        raise ValueError("series must have at least one time step")
    if not np.isfinite(x).all():
        bad = np.argwhere(~np.isfinite(x))[0]
        raise ValueError(
            f"series contains a non-finite value at (series {bad[0]}, step {bad[1]}); "
            "DTW needs complete series (fill or drop gaps first)"
        )
    if window is None:
        w = t_len
    elif isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 0:
        raise ValueError(f"window must be a non-negative integer or None, got {window!r}")
    else:
        w = int(window)
    if not any(dtype is d or (isinstance(dtype, np.dtype) and dtype == d) for d in DTYPES):
        raise ValueError(f"dtype must be np.float32 or np.float64, got {dtype!r}")
    single = np.dtype(dtype) == np.float32
    out = np.zeros((n, n), dtype=np.float64)
    if n < 2:
        return out
    if single and 4.0 * t_len * np.ptp(x) >= np.finfo(np.float32).max:
        raise ValueError(
            f"series spread {np.ptp(x):.3g} over {t_len} steps overflows the float32 DP; "
            "use dtype=np.float64"
        )
    if single:
        # a common shift leaves every |x - y| unchanged and keeps float32's relative
        # rounding error on the spread of the values, not on their magnitude
        x = x - 0.5 * (x.max() + x.min())
    st = np.ascontiguousarray(x.T, dtype=np.float32 if single else np.float64)
    _all_pairs(st, _tasks(n, BLOCK_PAIRS), w, out)
    return out
