"""Bridge fidelity: the comparison by hand, fields the bridge was not fitted on, the CSV."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.bridge import BridgeSet, RegionBridge
from fluxbridge.bridge.fidelity import (
    COLUMNS,
    compare_integrals,
    fidelity_table,
    write_fidelity,
)
from fluxbridge.bridge.figures import fidelity_figure
from fluxbridge.bridge.lasso import FitSpec, least_squares

LAT = np.array([-30.0, 0.0, 30.0])
LON = np.array([0.0, 20.0, 40.0, 60.0])
TIME = pd.date_range("2001-01-01", periods=24, freq="MS")


def test_compare_integrals_by_hand() -> None:
    exact = np.array([[1.0, 2.0, 3.0]])
    bridge = np.array([[1.5, 2.0, 2.5]])
    row = compare_integrals(["EU"], exact, bridge, n_years=0.25).iloc[0]
    assert row.rel_error == pytest.approx((0.5 + 0 + 0.5) / 3 / 2)
    assert row["corr"] == pytest.approx(np.corrcoef(exact[0], bridge[0])[0, 1])
    assert row.exact_pgc_yr == pytest.approx(24.0) and row.bridge_pgc_yr == pytest.approx(24.0)
    assert row.annual_bias_pgc_yr == pytest.approx(0.0)
    # R² = 1 − (0.25 + 0 + 0.25) / ((1 − 2)² + 0 + (3 − 2)²)
    assert row.monthly_r2 == pytest.approx(0.75)
    shifted = compare_integrals(["EU"], exact, exact + 0.1, n_years=0.25).iloc[0]
    assert shifted.annual_bias_pgc_yr == pytest.approx(0.3 / 0.25)
    with pytest.raises(ValueError, match=r"shape \(1, months\)"):
        compare_integrals(["EU"], exact, bridge[:, :2], n_years=1.0)


@pytest.fixture
def world() -> dict:
    """3 × 4 grid, two regions, a land fraction < 1, one cell shared by both regions."""
    rng = np.random.default_rng(0)
    cell_area = np.cos(np.deg2rad(LAT))[:, None] * np.full((3, 4), 4e12)
    land = np.array([[1.0, 1.0, 0.5, 0.0], [1.0, 1.0, 1.0, 0.0], [0.8, 1.0, 1.0, 0.0]])
    rf = np.zeros((2, 3, 4))
    rf[0, :, :2] = 1.0
    rf[1, :, 2] = 1.0
    rf[0, 1, 2], rf[1, 1, 2] = 0.4, 0.6
    t = np.arange(24)
    nee = (
        np.sin(2 * np.pi * t / 12)[:, None, None] * rng.uniform(0.5, 2.0, (3, 4))
        + rng.uniform(-1.0, 0.5, (3, 4))
        + 0.1 * rng.normal(size=(24, 3, 4))
    )
    nee[:, land == 0] = np.nan
    grid_ds = xr.Dataset(
        {
            "cell_area": (("lat", "lon"), cell_area),
            "land_fraction": (("lat", "lon"), land),
            "region_fraction": (("region", "lat", "lon"), rf),
            "region_abbr": ("region", np.array(["AAA", "BBB"], dtype=object)),
        },
        coords={"lat": LAT, "lon": LON, "region": [0, 1]},
    )
    field = xr.DataArray(
        nee, dims=("time", "lat", "lon"), coords={"time": TIME, "lat": LAT, "lon": LON}
    )
    return {"grid": grid_ds, "nee": field, "area": cell_area * land, "rf": rf}


def fitted_bridges(world: dict) -> BridgeSet:
    """Per-day bridges fitted on the world's field (two cells each, Σ w = land area · 1e-15)."""
    days = TIME.days_in_month.values
    cells_of = {"AAA": [(0, 0), (2, 1)], "BBB": [(0, 2), (2, 2)]}
    land = np.isfinite(world["nee"].values[0])
    index = np.full((3, 4), -1)
    index[land] = np.arange(land.sum())
    bridges = []
    for r, (abbr, cells) in enumerate(cells_of.items()):
        weight = world["area"] * world["rf"][r]
        exact = np.nansum(world["nee"].values * weight, axis=(1, 2)) * days * 1e-15
        ilat, ilon = np.array(cells).T
        x = world["nee"].values[:, ilat, ilon]
        w, b = least_squares(x, exact / days, intercept=False, weight_sum=weight.sum() * 1e-15)
        bridges.append(
            RegionBridge(
                abbr, index[ilat, ilon], ilat, ilon, LAT[ilat], LON[ilon], w, b, 0.0, 1.0, 1.0,
                float(weight.sum()),
            )
        )  # fmt: skip
    return BridgeSet(bridges, LAT, LON, int(land.sum()))


def by_hand(world: dict, bset: BridgeSet, nee: np.ndarray) -> pd.DataFrame:
    """Every column of the fidelity table with plain loops over regions and months."""
    days = TIME.days_in_month.values
    rows = []
    for r, br in enumerate(bset.bridges):
        exact = np.array(
            [
                sum(
                    nee[m, i, j] * world["area"][i, j] * world["rf"][r, i, j] * days[m] * 1e-15
                    for i in range(3)
                    for j in range(4)
                    if world["area"][i, j] > 0
                )
                for m in range(24)
            ]
        )
        bridge = np.array(
            [
                days[m]
                * sum(
                    w * nee[m, i, j] for w, i, j in zip(br.weights, br.ilat, br.ilon, strict=True)
                )
                for m in range(24)
            ]
        )
        resid = bridge - exact
        rows.append(
            {
                "bridge_pgc_yr": bridge.sum() / 2,
                "exact_pgc_yr": exact.sum() / 2,
                "annual_bias_pgc_yr": resid.sum() / 2,
                "monthly_r2": 1 - (resid**2).sum() / ((exact - exact.mean()) ** 2).sum(),
                "rel_error": np.abs(resid).mean() / np.abs(exact).mean(),
                "corr": np.corrcoef(exact, bridge)[0, 1],
            }
        )
    return pd.DataFrame(rows)


def test_fidelity_on_fields_the_bridge_was_not_fitted_on(world: dict) -> None:
    bset = fitted_bridges(world)
    gradient = world["nee"] + np.sin(np.deg2rad(world["nee"]["lat"]))
    fields = {"F": world["nee"], "F+gradient": gradient, "F+1": world["nee"] + 1.0}
    table = fidelity_table(bset, fields, world["grid"])
    assert table.columns.tolist() == list(COLUMNS)
    assert table["field"].tolist() == ["F", "F", "F+gradient", "F+gradient", "F+1", "F+1"]
    for name, nee in (("F", world["nee"]), ("F+gradient", gradient)):
        got = table[table["field"] == name].reset_index(drop=True)
        expected = by_hand(world, bset, nee.values)
        pd.testing.assert_frame_equal(got[expected.columns], expected, rtol=1e-10)
    # the gradient is not constant in either region: the bridges do not pass it exactly
    assert (table[table["field"] == "F+gradient"]["annual_bias_pgc_yr"].abs() > 1e-4).all()
    # a uniform offset passes through the constrained bridges exactly: the bias is unchanged
    offset = table[table["field"] == "F+1"]["annual_bias_pgc_yr"].to_numpy()
    base = table[table["field"] == "F"]["annual_bias_pgc_yr"].to_numpy()
    np.testing.assert_allclose(offset, base, rtol=1e-9, atol=1e-12)


def test_fidelity_figure_is_written(world: dict, tmp_path: Path) -> None:
    table = fidelity_table(fitted_bridges(world), {"F": world["nee"]}, world["grid"])
    path = fidelity_figure(table, tmp_path / "figures" / "fidelity.png")
    assert path.stat().st_size > 1000


def test_write_fidelity_on_the_demo_with_truth_and_a_model(tiny_demo: Path, tmp_path: Path) -> None:
    data = tiny_demo / "data"
    shutil.copy(tiny_demo / "bridges.nc", tmp_path / "bridges.nc")
    forward = sorted((tiny_demo / "forward").glob("*.nc"))[0]
    out = write_fidelity(tmp_path, data, {"model": forward})
    table = pd.read_csv(out)
    fields = ["reference", "reference+offset", "reference+gradient", "truth", "model"]
    assert table["field"].unique().tolist() == fields
    bset = BridgeSet.load(tmp_path / "bridges.nc")
    grid = xr.open_dataset(data / "grid.nc", engine="h5netcdf")
    area = (grid["cell_area"] * grid["land_fraction"]).values
    rf = grid["region_fraction"].values
    abbrs = [str(a) for a in grid["region_abbr"].values]
    for name, path, var in (("truth", data / "truth.nc", "nee"), ("model", forward, "nee_mean")):
        with xr.open_dataset(path, engine="h5netcdf") as ds:
            nee = ds[var].transpose("time", "lat", "lon").values.astype(np.float64)
            days = ds["time"].dt.days_in_month.values
        rows = table[table["field"] == name].set_index("region")
        for br in bset.bridges:
            weight = area * rf[abbrs.index(br.region)]
            exact = np.nansum(nee * weight, axis=(1, 2)) * days * 1e-15
            bridge = days * (nee[:, br.ilat, br.ilon] @ br.weights + br.bias)
            n_years = len(days) / 12
            row = rows.loc[br.region]
            assert row.exact_pgc_yr == pytest.approx(exact.sum() / n_years, rel=1e-5)
            assert row.annual_bias_pgc_yr == pytest.approx(
                (bridge - exact).sum() / n_years, rel=1e-5, abs=1e-6
            )
    assert bset.spec == FitSpec()
