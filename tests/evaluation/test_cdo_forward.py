"""Regional integrals of the demo's forward output against CDO (fldsum, mul, muldpm).

CDO is handed our exact cell areas (cell_area of grid.nc) × land_fraction ×
region_fraction as one weight field, multiplies the ensemble-mean NEE by it,
sums over the field (ocean cells are missing values and skipped), multiplies by
the days of each month and by 1e-15: the PgC month-1 of regional_monthly.nc.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from fluxbridge.geo.cdo import cdo_monthly_integral_pgc
from fluxbridge.io import ENGINE, write_netcdf

pytestmark = pytest.mark.cdo


def _weights_file(grid: xr.Dataset, region: str, path: Path) -> Path:
    """cell_area × land_fraction (× region_fraction of ``region``) in m², with cell bounds."""
    weight = grid["cell_area"] * grid["land_fraction"]
    if region != "GLOBAL":
        fraction = grid["region_fraction"].assign_coords(region=grid["region_abbr"].values)
        weight = weight * fraction.sel(region=region, drop=True)
    ds = xr.Dataset(
        {
            "weight": weight.assign_attrs(units="m2", long_name="integration weight"),
            "lat_bnds": grid["lat_bnds"],
            "lon_bnds": grid["lon_bnds"],
        }
    )
    return write_netcdf(ds, path, action="test: CDO weights")


@pytest.mark.parametrize("model", ["EC", "EC-ATM"])
@pytest.mark.parametrize("region", ["GLOBAL", "BRA", "RUS"])
def test_regional_integrals_agree_with_cdo(
    tiny_demo: Path, tmp_path: Path, model: str, region: str
) -> None:
    if shutil.which("cdo") is None:
        pytest.skip("cdo not installed (apt-get install cdo)")
    with xr.open_dataset(tiny_demo / "data" / "grid.nc", engine=ENGINE) as grid:
        weights = _weights_file(grid.load(), region, tmp_path / "weights.nc")
    forward = tiny_demo / "forward" / f"{model}.nc"
    theirs = cdo_monthly_integral_pgc("-mul", "-selname,nee_mean", str(forward), str(weights))
    with xr.open_dataset(tiny_demo / "evaluation" / "regional_monthly.nc", engine=ENGINE) as ds:
        ours = ds["nee"].sel(source=model, region=region).values
    assert theirs.shape == ours.shape == (36,)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5)
