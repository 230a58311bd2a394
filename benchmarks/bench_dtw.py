"""Benchmark: all-pairs DTW distance matrix (symmetric2) against two baselines.

Prints DTW cells per second (cells = pairs i<j × T², the same work per cell in
every implementation) for

* fluxbridge.bridge.dtw_distance_matrix on n series (default 2000, T = 204), in
  its default float32 precision (what the bridges call) and in float64 (exact);
* dtaidistance.dtw.distance_matrix_fast(parallel=True) (C + OpenMP; its step
  pattern is symmetric1 on squared differences, but the work per cell is the
  same), timed on the first ``--dtai-n`` series (all their pairs) because the
  full matrix takes minutes;
* a dtw-python double loop, timed once on ``--dtwpy-pairs`` random pairs;

and the ratios of fluxbridge's rates to each. fluxbridge and dtaidistance both
use every core (numba threads, OpenMP); dtw-python runs on one. Every timed call
is warmed up first, and the timings of fluxbridge and dtaidistance are
interleaved ``--repeats`` times (best of each) so that both see the same
changing load of a shared machine. The sampled pairs are also checked against
dtw-python (float64: relative difference; float32: against its rounding bound,
see fluxbridge.bridge.dtw). Usage:

    .venv/bin/python benchmarks/bench_dtw.py [--n 2000] [--t 204] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numba
import numpy as np
from dtaidistance import dtw as dtai
from dtw import dtw as dtw_python

from fluxbridge.bridge import dtw_distance_matrix


def _cells(n: int, t_len: int) -> float:
    return n * (n - 1) / 2 * t_len**2


def _timed(fn: Callable[[], np.ndarray]) -> tuple[np.ndarray, float, float]:
    """Result, wall seconds and CPU seconds of this process (all its threads)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="number of series (float32 run)")
    parser.add_argument("--t", type=int, default=204, help="series length (months)")
    parser.add_argument("--double-n", type=int, default=1000, help="series for the float64 run")
    parser.add_argument("--dtai-n", type=int, default=300, help="series for dtaidistance")
    parser.add_argument("--dtwpy-pairs", type=int, default=200, help="pairs for dtw-python")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timings, best kept")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    # Random walks: smooth, seasonal-like series keep DTW paths non-trivial.
    series = np.cumsum(rng.normal(size=(args.n, args.t)), axis=1)
    n_dtai = min(args.dtai_n, args.n)
    n_double = min(args.double_n, args.n)
    print(f"cores: {os.cpu_count()}, numba threads: {numba.get_num_threads()}, T = {args.t}")
    print(f"load average (1, 5, 15 min) before: {_load()}")

    # warm-up: JIT compile / load the numba cache, load dtaidistance's C library
    for dtype in (np.float32, np.float64):
        dtw_distance_matrix(series[:70], dtype=dtype)
    dtai.distance_matrix_fast(series[:20], parallel=True)

    runs = {
        "fluxbridge float32": (args.n, lambda: dtw_distance_matrix(series, dtype=np.float32)),
        "dtaidistance": (n_dtai, lambda: dtai.distance_matrix_fast(series[:n_dtai], parallel=True)),
        "fluxbridge float64": (
            n_double,
            lambda: dtw_distance_matrix(series[:n_double], dtype=np.float64),
        ),
    }
    wall = dict.fromkeys(runs, np.inf)
    cpu = dict.fromkeys(runs, np.inf)
    results = {}
    for rep in range(args.repeats):
        line = []
        for name, (_, fn) in runs.items():
            results[name], w, c = _timed(fn)
            wall[name], cpu[name] = min(wall[name], w), min(cpu[name], c)
            line.append(f"{name} {w:.2f} s ({c:.2f} s CPU)")
        print(f"repeat {rep + 1}: " + ", ".join(line) + f"; load average {_load()}")

    rate = {name: _cells(n, args.t) / wall[name] for name, (n, _) in runs.items()}
    cpu_rate = {name: _cells(n, args.t) / cpu[name] for name, (n, _) in runs.items()}
    for name, (n, _) in runs.items():
        print(
            f"{name:18s} n={n:5d}: best {wall[name]:7.2f} s  {rate[name] / 1e9:7.3f} Gcells/s, "
            f"best CPU {cpu[name]:7.2f} s  {cpu_rate[name] / 1e9:7.3f} Gcells/CPU-s"
        )
    dist32, dist64 = results["fluxbridge float32"], results["fluxbridge float64"]

    pairs = rng.choice(n_double, size=(args.dtwpy_pairs, 2))
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    start = time.perf_counter()
    ref = np.array(
        [dtw_python(series[i], series[j], distance_only=True).distance for i, j in pairs]
    )
    py_s = time.perf_counter() - start
    py_rate = len(pairs) * args.t**2 / py_s
    print(f"dtw-python   {len(pairs):5d} pairs: {py_s:6.2f} s  {py_rate / 1e9:7.3f} Gcells/s")

    rel64 = np.abs(dist64[pairs[:, 0], pairs[:, 1]] - ref) / ref
    err32 = np.abs(dist32[pairs[:, 0], pairs[:, 1]] - ref)
    u, spread = 2.0**-24, np.ptp(series)
    bound32 = 2 * (8 * args.t * u * spread / 2 + 2 * args.t * u * ref)
    print(f"float64 vs dtw-python on those pairs: max relative difference {rel64.max():.2e}")
    print(
        f"float32 vs dtw-python on those pairs: max relative difference {(err32 / ref).max():.2e}, "
        f"max difference / rounding bound {(err32 / bound32).max():.3f}"
    )
    dtai_name = "dtaidistance.distance_matrix_fast(parallel=True)"
    for prec in ("float32", "float64"):
        ours = f"fluxbridge {prec}"
        print(
            f"ratio vs {dtai_name}, {prec}: {rate[ours] / rate['dtaidistance']:6.1f}x wall "
            f"({cpu_rate[ours] / cpu_rate['dtaidistance']:.1f}x per CPU second)"
        )
    print(f"ratio vs dtw-python double loop, float32: {rate['fluxbridge float32'] / py_rate:6.1f}x")
    print(f"load average (1, 5, 15 min) after: {_load()}")


if __name__ == "__main__":
    main()
