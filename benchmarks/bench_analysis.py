"""Benchmark of ``invoke analyze``: 20 products × 7 years × monthly at 1° over China.

Prints (1) the wall time of the full analysis (read, regrid, every table, figures,
report) and (2) the regional-integral step against CDO on the same files: for
every product the annual NEE totals over the country mask, by
``read_gridded`` + ``regional_integral_pgc`` and by
``cdo yearsum -fldsum -muldpm -mul -mul FILE MASK -gridarea FILE``; the figure
of merit is CDO time / our time (goal ≥ 2). Run:

    .venv/bin/python benchmarks/bench_analysis.py [--products 20] [--years 7] [--keep DIR]
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
import yaml

from fluxbridge.analysis.ingest import crop_to
from fluxbridge.analysis.run import run_analyze
from fluxbridge.data.gridded import ProductMapping, read_gridded
from fluxbridge.geo.grid import Grid
from fluxbridge.geo.integrate import regional_integral_pgc
from fluxbridge.geo.regions import country_mask

GROUPS = ("satellite-inversion", "in-situ-inversion", "biosphere-model", "prior")


def make_inputs(root: Path, n_products: int, n_years: int, seed: int = 0) -> list[Path]:
    """Global 1° monthly NEE files (gC m-2 d-1, float32) and a 1° climate-zone map."""
    grid = Grid.global_regular(1.0)
    months = pd.date_range("2015-01-01", periods=12 * n_years, freq="MS")
    rng = np.random.default_rng(seed)
    lat = grid.lat[:, None]
    season = -np.cos(2 * np.pi * (months.month.to_numpy() - 7) / 12)[:, None, None]
    base = (0.5 + 1.5 * np.cos(np.deg2rad(lat)) * season).astype(np.float32)
    files = []
    (root / "products").mkdir(parents=True)
    for k in range(n_products):
        noise = 0.3 * rng.standard_normal((months.size, *grid.shape)).astype(np.float32)
        ds = grid.bounds_dataset().assign_coords(time=months)
        ds["nee"] = (("time", "lat", "lon"), base + noise + 0.05 * k, {"units": "gC m-2 d-1"})
        ds.attrs["group"] = GROUPS[k % len(GROUPS)]
        path = root / "products" / f"p{k:02d}.nc"
        ds.to_netcdf(path, engine="h5netcdf")
        files.append(path)
    zone = np.where(grid.lat < 30, 1, np.where(grid.lat < 40, 2, 3))[:, None] * np.ones(
        grid.shape[1]
    )
    classes = grid.bounds_dataset()
    classes["climate_zone"] = (
        ("lat", "lon"),
        zone.astype(np.int32),
        {"flag_values": np.array([1, 2, 3], np.int32), "flag_meanings": "south centre north"},
    )
    classes.to_netcdf(root / "classes.nc", engine="h5netcdf")
    return files


def write_config(root: Path, n_years: int) -> Path:
    cfg = {
        "period": {"start": 2015, "end": 2014 + n_years},
        "grid": {"resolution": [1.0, 1.0]},
        "domain": {"country": "CHN"},
        "product_dirs": [{"directory": "products"}],
        "partitions": [{"name": "zones", "file": "classes.nc", "variable": "climate_zone"}],
        "anomalies": {"event_year": 2014 + n_years},
        "output": "out",
    }
    path = root / "analysis.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def ours(files: list[Path], mask: xr.DataArray, grid: Grid) -> list[np.ndarray]:
    """Annual totals as the analysis computes them: the country's bounding box, read at once."""
    sub, cut = crop_to(grid, mask)
    area = sub.cell_area()
    land = xr.ones_like(area)
    fraction = mask.isel(cut).expand_dims(region=["CHN"]).assign_coords(sub.coords())
    out = []
    for f in files:
        nee = read_gridded(f, ProductMapping(variable="nee")).isel(cut).load()
        out.append(regional_integral_pgc(nee, area, land, fraction, per="year").values.ravel())
    return out


def cdo(files: list[Path], mask_file: Path, work: Path) -> list[np.ndarray]:
    out = []
    for f in files:
        target = work / f"cdo_{f.stem}.nc"
        cmd = (
            f"cdo -s -L -b F64 -f nc4 -mulc,1e-15 -yearsum -fldsum -muldpm "
            f"-mul -mul {f} {mask_file} -gridarea {f} {target}"
        )
        subprocess.run(cmd.split(), check=True, capture_output=True)
        out.append(xr.load_dataset(target, engine="h5netcdf")["nee"].values.ravel())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=20)
    parser.add_argument("--years", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="keep the inputs and outputs in this directory")
    parser.add_argument("--integral-only", action="store_true", help="skip the full analysis")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="bench_analysis_"))
    try:
        t0 = time.perf_counter()
        files = make_inputs(root, args.products, args.years)
        print(
            f"inputs: {len(files)} products × {args.years} years, global 1°, "
            f"{time.perf_counter() - t0:.1f} s to write"
        )

        if not args.integral_only:
            config = write_config(root, args.years)
            t0 = time.perf_counter()
            run_analyze(config)
            full = time.perf_counter() - t0
            print(f"full analysis (read, regrid, tables, figures, report): {full:.1f} s")

        grid = Grid.global_regular(1.0)
        mask = country_mask(grid, "CHN")
        mask_file = root / "mask_chn.nc"
        ds = grid.bounds_dataset()
        ds["mask"] = mask
        ds.to_netcdf(mask_file, engine="h5netcdf")

        t0 = time.perf_counter()
        mine = ours(files, mask, grid)
        t_ours = time.perf_counter() - t0
        if shutil.which("cdo") is None:
            print(f"integral step (ours): {t_ours:.2f} s; CDO not installed, no ratio")
            return
        t0 = time.perf_counter()
        theirs = cdo(files, mask_file, root)
        t_cdo = time.perf_counter() - t0
        rel = max(float(np.max(np.abs(a / b - 1))) for a, b in zip(mine, theirs, strict=True))
        print(
            f"integral step: ours {t_ours:.2f} s, CDO {t_cdo:.2f} s, "
            f"ratio CDO/ours = {t_cdo / t_ours:.2f}x (goal >= 2x); "
            f"max relative difference {rel:.1e} (CDO gridarea uses great-circle edges)"
        )
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
