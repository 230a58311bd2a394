"""Cross-check of regional integrals against CDO (gridarea, mul, fldsum, muldpm)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.geo.cdo import cdo_integral_args
from fluxbridge.geo.grid import Grid
from fluxbridge.geo.integrate import regional_integral_pgc
from fluxbridge.geo.regions import reccap2
from fluxbridge.io import write_netcdf

pytestmark = pytest.mark.cdo

# CDO's gridarea treats cell edges as great-circle arcs; our areas are exact lat/lon cells.
# The two differ per cell by up to 2e-4 at 2° but 1.3e-5 at 0.5° (same global total), so the
# cross-check runs at 0.5°, the project's full resolution.
GRID = Grid.global_regular(0.5)


def _gridded(name: str, values: np.ndarray, dims: tuple[str, ...], **coords: object) -> xr.Dataset:
    """A CF file CDO reads as a lon/lat grid: coordinates with bounds."""
    da = xr.DataArray(values, dims=dims, coords={**coords, **GRID.coords()}, name=name)
    return xr.merge([da.to_dataset(), GRID.bounds_dataset()])


def cdo_lines(*args: str) -> list[str]:
    """Run CDO; fail on any warning or message other than HDF5 thread diagnostics.

    This CDO build (HDF5 1.10, not thread-safe) prints ``HDF5-DIAG`` traces of
    netCDF-C's probes for absent ``_Quantize*`` attributes whenever a pipeline
    reads two netCDF4 files at once, also for files CDO wrote itself; each of
    our files read alone gives no message at all (checked below).
    """
    proc = subprocess.run(["cdo", *args], capture_output=True, text=True, check=True)
    other = [
        line
        for line in proc.stderr.splitlines()
        if not line.startswith(("HDF5-DIAG", "  #0", "    major:", "    minor:"))
    ]
    assert other == [], proc.stderr
    return proc.stdout.split()


def assert_cdo_reads_cleanly(path: Path) -> None:
    proc = subprocess.run(
        ["cdo", "-s", "-outputf,%g,1", "-fldsum", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stderr == "", proc.stderr


def test_regional_integrals_agree_with_cdo(tmp_path: Path) -> None:
    if shutil.which("cdo") is None:
        pytest.skip("cdo not installed: apt-get install cdo")
    rng = np.random.default_rng(5)
    time = pd.date_range("2004-01-01", periods=3, freq="MS")  # includes a leap February
    nee = rng.normal(0.5, 2.0, size=(time.size, *GRID.shape))
    land = rng.uniform(size=GRID.shape)
    region_set = reccap2(GRID)

    nee_ds = _gridded("nee", nee, ("time", "lat", "lon"), time=time)
    nee_ds["nee"].attrs["units"] = "gC m-2 d-1"
    write_netcdf(nee_ds, tmp_path / "nee.nc", action="test")
    write_netcdf(_gridded("land", land, ("lat", "lon")), tmp_path / "land.nc", action="test")
    assert_cdo_reads_cleanly(tmp_path / "nee.nc")
    assert_cdo_reads_cleanly(tmp_path / "land.nc")

    ours = regional_integral_pgc(
        nee_ds["nee"],
        GRID.cell_area(),
        xr.DataArray(land, dims=("lat", "lon"), coords=GRID.coords()),
        region_set.fraction,
    )
    for abbr in ("USA", "BRA", "EU", "EQAF", "CHN", "OCE"):
        mask = tmp_path / f"mask_{abbr}.nc"
        write_netcdf(
            _gridded("mask", region_set.fraction.sel(region=abbr).values, ("lat", "lon")),
            mask,
            action="test",
        )
        assert_cdo_reads_cleanly(mask)
        pipeline = cdo_integral_args(
            "-mul",
            "-mul",
            "-mul",
            str(tmp_path / "nee.nc"),
            str(mask),
            str(tmp_path / "land.nc"),
            "-gridarea",
            str(tmp_path / "land.nc"),
        )
        theirs = np.array([float(v) for v in cdo_lines(*pipeline)])
        np.testing.assert_allclose(ours.sel(region=abbr).values, theirs, rtol=1e-5)
