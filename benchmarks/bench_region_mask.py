"""Benchmark: peak memory of a fine integer region mask aggregated to the 0.5° grid.

The raw twin writes its RECCAP2-style id map at 1/16° for a 0.5° dataset. The
baseline regrids every region's one-hot layer as one (region, lat, lon) float64
stack, as ``fluxbridge.geo.regions`` did before; fluxbridge now regrids region by
region. Each runs in its own child process; printed: wall time, peak RSS
(``ru_maxrss`` of the child) and the ratio, and that both give the same fractions.

    .venv/bin/python benchmarks/bench_region_mask.py [--step 0.0625] [--regions 19]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

from fluxbridge.geo.grid import Grid
from fluxbridge.geo.regrid import regrid_conservative

TARGET = Grid.global_regular(0.5)


def write_mask(path: Path, step: float, regions: int) -> None:
    """Latitude bands of ``regions`` ids (10° wide, cycling), on a global ``step`` grid."""
    lat = np.arange(-90 + step / 2, 90, step)
    lon = np.arange(-180 + step / 2, 180, step)
    band = (np.floor((lat + 90) / 10).astype(np.int64) % regions).astype(np.float32)
    ids = np.broadcast_to(band[:, None], (lat.size, lon.size))
    xr.Dataset({"region_id": (("lat", "lon"), ids)}, coords={"lat": lat, "lon": lon}).to_netcdf(
        path, engine="h5netcdf"
    )


def stacked(path: Path) -> np.ndarray:
    """The baseline: every region's layer at once."""
    ds = xr.open_dataset(path, engine="h5netcdf")
    values = ds["region_id"].values.astype(np.float64)
    ids = np.unique(values[np.isfinite(values)]).astype(np.int64)
    onehot = np.stack([(values == i).astype(np.float64) for i in ids])
    da = xr.DataArray(
        onehot, dims=("region", "lat", "lon"), coords={"lat": ds["lat"], "lon": ds["lon"]}
    )
    return regrid_conservative(da, TARGET).fillna(0.0).values


def by_region(path: Path) -> np.ndarray:
    from fluxbridge.geo.regions import regions_from_file

    return regions_from_file(path, TARGET).fraction.values


def child(kind: str, path: Path, out: Path) -> None:
    start = time.perf_counter()
    values = {"stacked": stacked, "by_region": by_region}[kind](path)
    wall = time.perf_counter() - start
    np.save(out, values)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall_s": wall, "peak_mib": peak}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", type=float, default=1 / 16)
    parser.add_argument("--regions", type=int, default=19)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], Path(args.child[1]), Path(args.child[2]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        mask = Path(tmp) / "mask.nc"
        write_mask(mask, args.step, args.regions)
        result, fractions = {}, {}
        for kind in ("stacked", "by_region"):
            out = Path(tmp) / f"{kind}.npy"
            run = subprocess.run(
                [sys.executable, __file__, "--child", kind, str(mask), str(out)],
                check=True,
                capture_output=True,
                text=True,
            )
            result[kind] = json.loads(run.stdout.strip().splitlines()[-1])
            fractions[kind] = np.load(out)
    diff = float(np.abs(fractions["stacked"] - fractions["by_region"]).max())
    for kind, r in result.items():
        print(f"{kind:>9}: {r['wall_s']:.1f} s, peak RSS {r['peak_mib']:.0f} MiB")
    ratio = result["by_region"]["peak_mib"] / result["stacked"]["peak_mib"]
    print(f"peak RSS by region / stacked: {ratio:.3f}; max |fraction difference| {diff:.2e}")


if __name__ == "__main__":
    main()
