"""Benchmark: all-pairs DTW distance matrix (exact symmetric2) against two baselines.

Prints DTW cells per second (cells = pairs i<j × T², the same work per cell in
every implementation) for

* fluxbridge.bridge.dtw_distance_matrix on n series (default 2000, T = 204);
* dtaidistance.dtw.distance_matrix_fast(parallel=True) (C + OpenMP; its step
  pattern is symmetric1 on squared differences, but the work per cell is the
  same), timed on the first ``--dtai-n`` series (all their pairs) because the
  full matrix takes minutes;
* a dtw-python double loop, timed on ``--dtwpy-pairs`` random pairs and scaled;

and the ratios of fluxbridge's rate to each. It also checks that the sampled
pairs agree with dtw-python to 1e-9 relative. Usage:

    .venv/bin/python benchmarks/bench_dtw.py [--n 2000] [--t 204]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from dtaidistance import dtw as dtai
from dtw import dtw as dtw_python

from fluxbridge.bridge import dtw_distance_matrix


def _rate(n_pairs: int, t_len: int, seconds: float) -> float:
    return n_pairs * t_len**2 / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="number of series")
    parser.add_argument("--t", type=int, default=204, help="series length (months)")
    parser.add_argument("--dtai-n", type=int, default=400, help="series for dtaidistance")
    parser.add_argument("--dtwpy-pairs", type=int, default=300, help="pairs for dtw-python")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    # Random walks: smooth, seasonal-like series keep DTW paths non-trivial.
    series = np.cumsum(rng.normal(size=(args.n, args.t)), axis=1)
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()}")

    dtw_distance_matrix(series[:3])  # JIT compile / load the cache outside the timing
    start = time.perf_counter()
    dist = dtw_distance_matrix(series)
    ours_s = time.perf_counter() - start
    ours = _rate(args.n * (args.n - 1) // 2, args.t, ours_s)
    print(f"fluxbridge   n={args.n:5d}: {ours_s:8.2f} s  {ours / 1e9:7.3f} Gcells/s")

    n_dtai = min(args.dtai_n, args.n)
    start = time.perf_counter()
    dtai.distance_matrix_fast(series[:n_dtai], parallel=True)
    dtai_s = time.perf_counter() - start
    dtai_rate = _rate(n_dtai * (n_dtai - 1) // 2, args.t, dtai_s)
    print(f"dtaidistance n={n_dtai:5d}: {dtai_s:8.2f} s  {dtai_rate / 1e9:7.3f} Gcells/s")

    pairs = rng.choice(args.n, size=(args.dtwpy_pairs, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    start = time.perf_counter()
    ref = [dtw_python(series[i], series[j], distance_only=True).distance for i, j in pairs]
    py_s = time.perf_counter() - start
    py_rate = _rate(len(pairs), args.t, py_s)
    print(f"dtw-python   {len(pairs):5d} pairs: {py_s:6.2f} s  {py_rate / 1e9:7.3f} Gcells/s")

    rel = np.abs(dist[pairs[:, 0], pairs[:, 1]] - ref) / np.abs(ref)
    print(f"max relative difference to dtw-python on those pairs: {rel.max():.2e}")
    print(f"ratio vs dtaidistance.distance_matrix_fast(parallel=True): {ours / dtai_rate:6.1f}x")
    print(f"ratio vs dtw-python double loop:                          {ours / py_rate:6.1f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
