"""BridgeSet: application (numpy, torch, gridded), gradients, refit, storage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from fluxbridge.bridge import BridgeSet, RegionBridge
from fluxbridge.errors import SchemaError

LAT = np.array([-15.0, -5.0, 5.0, 15.0])
LON = np.array([0.0, 10.0, 20.0])
# land cells in row-major order: every grid cell is land here, cell = ilat * 3 + ilon
N_CELLS = 12


def region(name: str, cells: list[int], weights: list[float], bias: float) -> RegionBridge:
    cells_a = np.array(cells, dtype=np.int64)
    ilat, ilon = cells_a // 3, cells_a % 3
    return RegionBridge(
        region=name,
        cells=cells_a,
        ilat=ilat,
        ilon=ilon,
        lat=LAT[ilat],
        lon=LON[ilon],
        weights=np.array(weights),
        bias=bias,
        alpha=0.01,
        r2_train=0.97,
        r2_cv=0.9,
    )


@pytest.fixture
def bset() -> BridgeSet:
    freq = np.full((4, 3), np.nan)
    freq[0, :] = [0.5, 1.0, 0.0]
    return BridgeSet(
        [region("AAA", [7, 2, 5], [0.1, -0.2, 0.3], 1.0), region("BBB", [5, 11], [2.0, 0.5], -0.5)],
        LAT,
        LON,
        N_CELLS,
        freq,
        {"seed": 3},
    )


def by_hand(bset: BridgeSet, nee_cells: np.ndarray) -> np.ndarray:
    out = np.zeros((*nee_cells.shape[:-1], len(bset.bridges)))
    col = {c: k for k, c in enumerate(bset.all_cells.tolist())}
    for r, br in enumerate(bset.bridges):
        out[..., r] = br.bias
        for c, w in zip(br.cells.tolist(), br.weights, strict=True):
            out[..., r] += w * nee_cells[..., col[c]]
    return out


def test_all_cells_and_apply_cells(bset: BridgeSet) -> None:
    assert bset.all_cells.tolist() == [2, 5, 7, 11]
    nee = np.random.default_rng(0).normal(size=(2, 6, 4))
    np.testing.assert_allclose(bset.apply_cells(nee), by_hand(bset, nee), rtol=1e-14)
    got = bset.apply_cells(torch.from_numpy(nee))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), by_hand(bset, nee), rtol=1e-14)
    with pytest.raises(ValueError, match="last dimension 4"):
        bset.apply_cells(np.zeros((6, 5)))


def test_apply_cells_gradcheck(bset: BridgeSet) -> None:
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(bset.apply_cells, (x,))
    bset.apply_cells(x).sum().backward()
    # d(Σ outputs)/d(nee at cell 5) = Σ of its weights over regions, per month
    np.testing.assert_allclose(x.grad[:, 1].numpy(), 0.3 + 2.0)


def test_apply_gridded_and_grid_mismatch(bset: BridgeSet) -> None:
    rng = np.random.default_rng(1)
    time = np.array(["2001-01-01", "2001-02-01"], dtype="datetime64[ns]")
    field = xr.DataArray(
        rng.normal(size=(2, 4, 3)),
        dims=("time", "lat", "lon"),
        coords={"time": time, "lat": LAT, "lon": LON},
        name="nee",
    )
    got = bset.apply(field)
    assert got.dims == ("region", "time") and got.attrs["units"] == "PgC month-1"
    flat = field.values.reshape(2, -1)[:, bset.all_cells]
    np.testing.assert_allclose(got.values.T, by_hand(bset, flat), rtol=1e-14)
    shifted = field.assign_coords(lon=LON + 1.0)
    with pytest.raises(SchemaError, match="differs from the bridges' grid"):
        bset.apply(shifted)


def test_cells_out_of_range_and_duplicates() -> None:
    with pytest.raises(ValueError, match="outside the 11 canonical land cells"):
        BridgeSet([region("AAA", [3, 11], [1.0, 1.0], 0.0)], LAT, LON, 11)
    with pytest.raises(ValueError, match="duplicate region"):
        BridgeSet([region("A", [1], [1.0], 0.0), region("A", [2], [1.0], 0.0)], LAT, LON, 12)


def test_refit_region_recovers_exact_relation(bset: BridgeSet) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(24, 4))  # columns = all_cells [2, 5, 7, 11]
    target = 0.7 * x[:, 2] - 0.4 * x[:, 0] + 0.05 * x[:, 1] + 3.0  # cells 7, 2, 5
    new = bset.refit_region("AAA", x, target)
    np.testing.assert_allclose(new.weights, [0.7, -0.4, 0.05], atol=1e-12)  # order of cells
    assert new.bias == pytest.approx(3.0) and new.r2_train == pytest.approx(1.0)
    assert new.fallback == "refit_ols"
    np.testing.assert_allclose(bset.apply_cells(x)[:, 0], target, atol=1e-12)
    # the torch cache was rebuilt
    np.testing.assert_allclose(bset.apply_cells(torch.from_numpy(x))[:, 0].numpy(), target)
    with pytest.raises(KeyError, match="ZZZ"):
        bset.refit_region("ZZZ", x, target)


def test_save_load_round_trip(bset: BridgeSet, tmp_path) -> None:
    path = bset.save(tmp_path / "bridges.nc")
    back = BridgeSet.load(path)
    assert back.regions == bset.regions and back.n_cells == N_CELLS
    for a, b in zip(bset.bridges, back.bridges, strict=True):
        for name in ("cells", "ilat", "ilon", "lat", "lon", "weights"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert (a.bias, a.alpha, a.r2_train, a.r2_cv, a.fallback) == (
            b.bias,
            b.alpha,
            b.r2_train,
            b.r2_cv,
            b.fallback,
        )
    np.testing.assert_array_equal(back.inclusion_frequency, bset.inclusion_frequency)
    assert int(back.attrs["seed"]) == 3
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert ds["weight"].attrs["units"] == "PgC month-1 (gC m-2 d-1)-1"
        assert ds["contrib_region"].values.tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(FileExistsError):
        bset.save(path)
    xr.Dataset({"x": ("a", [1.0])}).to_netcdf(tmp_path / "other.nc", engine="h5netcdf")
    with pytest.raises(SchemaError, match="region_abbr"):
        BridgeSet.load(tmp_path / "other.nc")
