"""Bridge building: the whole `invoke bridges` on the demo twin world, and a 0.5° global estimate.

The estimate times the per-region pipeline (DTW, spectral clustering, the seeded
Lasso robustness runs) on synthetic regions of the sizes the 18 RECCAP2 regions
have at 0.5° (the demo dataset's pixel counts × 64, thinned to the configured
DTW cap as `invoke bridges` does), 204 months each, and sums the times. Regions
of the same capped size are timed once.

    .venv/bin/python benchmarks/bench_bridges.py [--data runs/demo/data] [--skip-demo]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from fluxbridge.bridge.build import BridgeConfig, RegionData, build_region, run_bridges
from fluxbridge.bridge.quadrature import RegionQuadrature, unit_vectors
from fluxbridge.data.canonical import open_canonical


def synthetic_region(n_pixels: int, months: int, seed: int) -> RegionData:
    """Smooth seasonal pixel series whose weighted sum is the regional integral per day.

    ``area`` plays the per-day weights (PgC d-1 per gC m-2 d-1); their sum is the
    region's weight sum, i.e. its land area × 1e-15.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(months)
    phase = rng.uniform(0, 2 * np.pi, n_pixels)
    amp = rng.uniform(0.5, 3.0, n_pixels)
    x = amp * np.sin(2 * np.pi * t[:, None] / 12 + phase) + rng.normal(0, 0.05, (months, n_pixels))
    area = rng.uniform(1e-4, 3e-4, n_pixels)
    y = x @ area
    # pixels on a 0.5° patch; each pixel is its own cell for the nearest-pixel weights
    side = int(np.ceil(np.sqrt(n_pixels)))
    xyz = unit_vectors(0.5 * (np.arange(n_pixels) // side), 0.5 * (np.arange(n_pixels) % side))
    days = np.resize([31.0, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], months)
    return RegionData(
        "SYN",
        x,
        y,
        np.arange(n_pixels),
        area,
        n_pixels,
        area.sum() * 1e15,
        area.sum(),
        days,
        RegionQuadrature(cell_xyz=xyz, cell_weight=area, pixel_xyz=xyz),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("runs/demo/data"))
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    cfg = BridgeConfig(figures=False)
    if not args.skip_demo:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            run_bridges(args.data, Path(tmp), None)
            print(f"invoke bridges on {args.data}: {time.perf_counter() - t0:.1f} s")
    grid = open_canonical(args.data).grid_ds
    majority = (grid["region_fraction"] > cfg.majority_threshold) & (grid["land_fraction"] > 0)
    demo_counts = majority.sum(["lat", "lon"]).values
    dlat = float(grid["lat"][1] - grid["lat"][0])
    scale = (dlat / 0.5) ** 2
    timed: dict[int, float] = {}
    total = 0.0
    for k, n in enumerate(demo_counts):
        size = int(min(round(n * scale), cfg.max_dtw_pixels))
        if size not in timed:
            region = synthetic_region(size, 204, seed=k)
            t0 = time.perf_counter()
            build_region(region, cfg, k)
            timed[size] = time.perf_counter() - t0
            print(f"  region of {size} pixels × 204 months: {timed[size]:.1f} s")
        total += timed[size]
    print(
        f"estimate for 0.5° global, 18 regions, n_runs={cfg.n_runs}: {total / 60:.1f} min "
        f"(sum of measured per-region times on this machine)"
    )


if __name__ == "__main__":
    main()
