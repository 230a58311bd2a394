"""Check: the bridges' DTW → spectral clustering gives the same labels in float32 and float64.

For every region of a canonical dataset, takes the DTW pool exactly as
fluxbridge.bridge.build.build_region does (same seeds, same thinning to
``max_dtw_pixels``), computes the DTW matrix in both precisions, and prints the
largest relative difference of the distances and whether the spectral cluster
labels are identical. Usage:

    .venv/bin/python benchmarks/dtw_precision_labels.py RUN/data [--config bridges.yaml]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

from fluxbridge.bridge.build import load_config, region_inputs
from fluxbridge.bridge.cluster import spectral_clusters
from fluxbridge.bridge.dtw import dtw_distance_matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path, help="canonical dataset folder (RUN/data)")
    parser.add_argument("--config", type=Path, default=None, help="bridge config YAML")
    args = parser.parse_args()
    cfg = load_config(args.config)
    warnings.simplefilter("ignore")  # NaN-reference and graph-connectivity warnings
    regions, _ = region_inputs(args.data, cfg)
    same = compared = 0
    for index, reg in enumerate(regions):
        n_usable = reg.x.shape[1]
        if n_usable < cfg.min_pixels:
            print(f"{reg.abbr:5s} {n_usable} usable pixels: not clustered")
            continue
        # the seeds and the thinning of build_region
        seeds = np.random.SeedSequence([cfg.seed, index])
        pool_seed, cluster_seed, *_ = (
            int(s.generate_state(1)[0]) for s in seeds.spawn(cfg.n_runs + 2)
        )
        pool = np.arange(n_usable)
        if n_usable > cfg.max_dtw_pixels:
            rng = np.random.default_rng(pool_seed)
            pool = np.sort(rng.choice(n_usable, cfg.max_dtw_pixels, replace=False))
        x = reg.x[:, pool].T
        d64 = dtw_distance_matrix(x, cfg.dtw_window, np.float64)
        d32 = dtw_distance_matrix(x, cfg.dtw_window, np.float32)
        off = ~np.eye(pool.size, dtype=bool) & (d64 > 0)
        rel = float(np.max(np.abs(d32 - d64)[off] / d64[off])) if off.any() else 0.0
        l64 = spectral_clusters(d64, cfg.k_max_clusters, cluster_seed)
        l32 = spectral_clusters(d32, cfg.k_max_clusters, cluster_seed)
        equal = bool(np.array_equal(l64, l32))
        same += equal
        compared += 1
        print(
            f"{reg.abbr:5s} n={pool.size:5d} T={x.shape[1]:4d} clusters={l64.max() + 1} "
            f"max relative difference {rel:.2e} same labels {equal}",
            flush=True,
        )
    print(f"identical labels in {same} of {compared} clustered regions")


if __name__ == "__main__":
    main()
