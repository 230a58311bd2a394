"""GLOBAL = Σ regions and NO_REGION = land in no region, on a 1 × 4 grid computed by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.evaluation.regional import integrate_field, land_area_weights

AREA_M2 = 1e12  # every cell
# cell:             0           1           2           3
LAND = np.array([1.0, 0.5, 1.0, 1.0])
SHARE_A = np.array([0.6, 1.0, 0.0, 0.7])
SHARE_B = np.array([0.4, 0.0, 0.3, 0.5])  # cell 3: overlapping regions (Σ 1.2), cell 2: Σ 0.3


@pytest.fixture
def data() -> SimpleNamespace:
    """Duck-typed CanonicalDataset: what integrate_field reads (grid_ds, region_abbrs)."""
    coords = {"lat": [0.0], "lon": [0.0, 10.0, 20.0, 30.0]}
    grid = xr.Dataset(
        {
            "cell_area": (("lat", "lon"), np.full((1, 4), AREA_M2)),
            "land_fraction": (("lat", "lon"), LAND[None]),
            "region_fraction": (("region", "lat", "lon"), np.stack([SHARE_A, SHARE_B])[:, None]),
        },
        coords=coords,
    )
    return SimpleNamespace(grid_ds=grid, region_abbrs=["A", "B"])


def test_land_area_weights_by_hand(data: SimpleNamespace) -> None:
    w = land_area_weights(data).squeeze("lat") / AREA_M2
    assert w["region"].values.tolist() == ["A", "B", "GLOBAL", "NO_REGION"]
    np.testing.assert_allclose(w.sel(region="GLOBAL"), [1.0, 0.5, 0.3, 1.2])
    # land no region claims: 0 in cells 0, 1; 0.7 in cell 2; overlap (Σ > 1) clipped to 0
    np.testing.assert_allclose(w.sel(region="NO_REGION"), [0.0, 0.0, 0.7, 0.0])


def test_global_is_the_sum_of_the_regions_and_no_region_the_rest(data: SimpleNamespace) -> None:
    times = pd.date_range("2001-01-01", periods=2, freq="MS")  # 31 and 28 days
    nee = np.array([[1.0, 2.0, -3.0, 0.5], [0.0, 1.0, 1.0, -1.0]])  # gC m-2 d-1
    field = xr.DataArray(
        nee[:, None, :],
        dims=("time", "lat", "lon"),
        coords={"time": times, **{k: data.grid_ds[k] for k in ("lat", "lon")}},
    )
    got = integrate_field(field, data)
    days = np.array([31.0, 28.0])
    # Σ_cells nee · area · land · share · days / 1e15
    by_hand = {
        "A": (nee * LAND * SHARE_A).sum(axis=1),
        "B": (nee * LAND * SHARE_B).sum(axis=1),
        "NO_REGION": nee[:, 2] * 1.0 * 0.7,
    }
    by_hand["GLOBAL"] = by_hand["A"] + by_hand["B"]
    for region, value in by_hand.items():
        np.testing.assert_allclose(
            got.sel(region=region).values, value * AREA_M2 * days / 1e15, rtol=1e-12
        )
    assert np.abs(got.sel(region="NO_REGION").values).max() > 0
