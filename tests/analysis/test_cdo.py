"""Cross-check of regional annual totals and mean seasonal cycles against CDO.

CDO computes the same integral from the product file alone:
``gridarea`` (exact spherical cell areas, R = 6 371 000 m) × mask fraction ×
``muldpm`` (days per month) → ``fldsum`` → ``yearsum`` / ``ymonmean``.

CDO's ``gridarea`` treats cell edges as great-circle arcs, so its 1° cell areas
differ from the exact lat/lon-band areas by up to 2.3e-5 (relative; measured on
CDO 2.1.1). The ``gridarea`` comparison therefore allows 5e-5; a second
comparison feeds CDO exact areas written out in this file and must agree to 1e-9,
so every other step (fraction, days per month, sums, means) is checked tightly.
"""

from __future__ import annotations

import shutil
import subprocess

import fluxbridge_tests_analysis_fixtures as fx
import numpy as np
import pytest
import xarray as xr

pytestmark = [
    pytest.mark.cdo,
    pytest.mark.skipif(
        shutil.which("cdo") is None, reason="CDO is not installed (apt-get install cdo)"
    ),
]


def _cdo(chain: str, src, mask, area, out) -> np.ndarray:
    """Run ``cdo <chain> -fldsum -muldpm -mul -mul SRC MASK AREA`` → NBP PgC values.

    ``area`` is a file of cell areas, or ``-gridarea SRC`` to let CDO compute them.
    """
    cmd = (
        f"cdo -s -L -b F64 -f nc4 -mulc,-1e-15 {chain} -fldsum -muldpm "
        f"-mul -mul {src} {mask} {area} {out}"
    )
    subprocess.run(cmd.split(), check=True, capture_output=True)
    ds = xr.load_dataset(out, engine="h5netcdf")
    return ds["nee"].values.ravel()


@pytest.fixture(scope="module")
def cdo_inputs(analysis_run, tmp_path_factory):
    root, out = analysis_run
    g = fx.window_grid(1.0, 1.0)
    work = tmp_path_factory.mktemp("cdo")
    mask, area = work / "mask.nc", work / "area.nc"
    dsin = np.diff(np.sin(np.deg2rad(g.lat_bounds)))
    exact = 6_371_000.0**2 * dsin[:, None] * np.deg2rad(np.diff(g.lon_bounds))[None, :]
    for path, name, values in ((mask, "frac", fx.domain_fraction(g)), (area, "area", exact)):
        ds = g.bounds_dataset()
        ds[name] = (("lat", "lon"), values, {"units": "1"})
        ds.to_netcdf(path, engine="h5netcdf")
    return root, out, mask, area


CASES = [
    ("-yearsum", "annual_totals", "nbp"),
    ("-ymonmean", "seasonal_cycles", "msc"),
]


@pytest.mark.parametrize(("chain", "table", "variable"), CASES)
def test_against_cdo_with_exact_areas(cdo_inputs, tmp_path, chain, table, variable) -> None:
    root, out, mask, area = cdo_inputs
    expected = _cdo(chain, root / "insitu_c.nc", mask, area, tmp_path / "cdo.nc")
    ours = xr.load_dataset(out / f"{table}.nc", engine="h5netcdf")[variable]
    got = ours.sel(product="insitu_c", region="TST").values
    np.testing.assert_allclose(got, expected, rtol=1e-9)


@pytest.mark.parametrize(("chain", "table", "variable"), CASES)
def test_against_cdo_gridarea(cdo_inputs, tmp_path, chain, table, variable) -> None:
    root, out, mask, _ = cdo_inputs
    src = root / "insitu_c.nc"
    expected = _cdo(chain, src, mask, f"-gridarea {src}", tmp_path / "cdo.nc")
    ours = xr.load_dataset(out / f"{table}.nc", engine="h5netcdf")[variable]
    got = ours.sel(product="insitu_c", region="TST").values
    np.testing.assert_allclose(got, expected, rtol=5e-5)
