"""Benchmark: regional monthly integrals (18 RECCAP2 regions + GLOBAL) vs a CDO pipeline.

Synthetic monthly NEE for 5 members × 17 years at 0.5° (one NetCDF per member,
float32, as inversion products come) is written to a temporary directory. Both
sides start from the same files and masks and are timed including file reading:

* fluxbridge: open each member file, ``regional_integral_pgc`` (reads 12 months
  at a time, so memory stays bounded);
* CDO: ``gridarea × mask × land`` weights per region (once), then per member
  and region ``fldsum(mul(nee, weights))`` then ``muldpm`` and ``mulc,1e-15``.

Prints both wall times and the ratio CDO / fluxbridge (goal ≥ 2). ``--scale``
shrinks the number of years for a quick run; the ratio is reported at the
size used. Usage::

    .venv/bin/python benchmarks/bench_integrals.py [--scale 0.25]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.geo.cdo import cdo_monthly_integral_pgc
from fluxbridge.geo.grid import Grid
from fluxbridge.geo.integrate import regional_integral_pgc
from fluxbridge.geo.regions import reccap2
from fluxbridge.io import open_netcdf, write_netcdf

MEMBERS = 5
YEARS = 17
GRID = Grid.global_regular(0.5)


def _gridded(name: str, da: xr.DataArray) -> xr.Dataset:
    return xr.merge([da.rename(name).to_dataset(), GRID.bounds_dataset()])


def write_inputs(root: Path, years: int, seed: int = 0) -> tuple[list[Path], Path, dict[str, Path]]:
    """Member files, the land fraction file and one mask file per region."""
    rng = np.random.default_rng(seed)
    coords = GRID.coords()
    land = xr.DataArray(rng.uniform(size=GRID.shape), dims=("lat", "lon"), coords=coords)
    land_path = root / "land.nc"
    write_netcdf(_gridded("land_fraction", land), land_path, action="bench", compress=False)
    masks = {}
    fractions = reccap2(GRID, land).fraction
    for abbr in fractions["region"].values:  # the order of the regions in the integrals
        masks[str(abbr)] = root / f"mask_{abbr}.nc"
        write_netcdf(
            _gridded("mask", fractions.sel(region=abbr, drop=True)),
            masks[str(abbr)],
            action="bench",
            compress=False,
        )
    masks["GLOBAL"] = root / "mask_GLOBAL.nc"
    write_netcdf(_gridded("mask", xr.ones_like(land)), masks["GLOBAL"], action="bench")
    time_axis = pd.date_range("2001-01-01", periods=12 * years, freq="MS")
    members = []
    for m in range(MEMBERS):
        nee = xr.DataArray(
            rng.normal(0.0, 2.0, size=(time_axis.size, *GRID.shape)).astype(np.float32),
            dims=("time", "lat", "lon"),
            coords={"time": time_axis, **coords},
            attrs={"units": "gC m-2 d-1"},
        )
        members.append(root / f"nee_member{m}.nc")
        write_netcdf(_gridded("nee", nee), members[-1], action="bench", compress=False)
    return members, land_path, masks


def run_ours(members: list[Path], land_path: Path) -> np.ndarray:
    """(member, region, time) integrals in PgC month-1, reading the files."""
    land = open_netcdf(land_path)["land_fraction"].load()
    fraction = reccap2(GRID, land).fraction
    area = GRID.cell_area()
    results = []
    for path in members:
        with open_netcdf(path) as ds:
            integral = regional_integral_pgc(ds["nee"], area, land, fraction, include_global=True)
        results.append(integral.values)
    return np.stack(results)


def run_cdo(members: list[Path], land_path: Path, masks: dict[str, Path], root: Path) -> np.ndarray:
    """The same integrals with CDO: weights once per region, then fldsum per member."""
    weights = {}
    for abbr, mask in masks.items():
        weights[abbr] = root / f"weights_{abbr}.nc"
        subprocess.run(
            [
                "cdo",
                "-s",
                "-O",
                "-mul",
                "-mul",
                str(mask),
                str(land_path),
                "-gridarea",
                str(land_path),
                str(weights[abbr]),
            ],
            check=True,
            capture_output=True,  # HDF5-DIAG thread noise of this CDO build (see test_cdo.py)
        )
    results = [[_cdo_integral(path, weights[abbr]) for abbr in masks] for path in members]
    return np.array(results)


def _cdo_integral(member: Path, weights: Path) -> list[float]:
    return cdo_monthly_integral_pgc("-mul", str(member), str(weights)).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 17 years")
    args = parser.parse_args()
    if shutil.which("cdo") is None:
        raise SystemExit("cdo not installed: apt-get install cdo")
    years = max(1, round(YEARS * args.scale))
    with tempfile.TemporaryDirectory(prefix="bench_integrals_") as tmp:
        root = Path(tmp)
        # also rasterises the polygons (cached per process): part of neither timed run
        members, land_path, masks = write_inputs(root, years)
        start = time.perf_counter()
        ours = run_ours(members, land_path)
        t_ours = time.perf_counter() - start
        start = time.perf_counter()
        theirs = run_cdo(members, land_path, masks, root)
        t_cdo = time.perf_counter() - start
    # relative to each region's typical monthly magnitude (random fields sum to near 0)
    typical = np.abs(theirs).mean(axis=-1, keepdims=True)
    print(f"size: {MEMBERS} members × {years} years × 0.5° ({len(masks)} regions incl. GLOBAL)")
    worst = (np.abs(ours - theirs) / typical).max()
    print(f"max |fluxbridge − CDO| / mean|CDO| per region: {worst:.2e}")
    print(
        f"fluxbridge: {t_ours:.1f} s   CDO: {t_cdo:.1f} s   ratio CDO/fluxbridge: "
        f"{t_cdo / t_ours:.1f}×"
    )


if __name__ == "__main__":
    main()
