"""BridgeSet: application (numpy, torch, gridded) with month lengths, gradients, refit, storage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr

from fluxbridge.bridge import BridgeSet, RegionBridge
from fluxbridge.bridge.lasso import FitSpec
from fluxbridge.errors import SchemaError

PAPER = FitSpec(intercept=True, per_day=False, refit="none")

LAT = np.array([-15.0, -5.0, 5.0, 15.0])
LON = np.array([0.0, 10.0, 20.0])
# land cells in row-major order: every grid cell is land here, cell = ilat * 3 + ilon
N_CELLS = 12


def region(
    name: str, cells: list[int], weights: list[float], bias: float, land_area: float = 4e11
) -> RegionBridge:
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
        land_area=land_area,
    )


DAYS = np.array([31.0, 28.0, 31.0, 30.0, 31.0, 30.0])  # Jan–Jun 2001


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
    """Per-day rate of each region: bias + Σ w · nee (before multiplying by days)."""
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
    days = np.broadcast_to(DAYS, (2, 6))
    expected = by_hand(bset, nee) * days[..., None]
    np.testing.assert_allclose(bset.apply_cells(nee, days), expected, rtol=1e-14)
    got = bset.apply_cells(torch.from_numpy(nee), torch.from_numpy(np.ascontiguousarray(days)))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-14)
    with pytest.raises(ValueError, match="last dimension 4"):
        bset.apply_cells(np.zeros((6, 5)), DAYS)
    with pytest.raises(ValueError, match=r"days_in_month must have shape \(2, 6\)"):
        bset.apply_cells(nee, DAYS)


def test_paper_basis_ignores_month_length(bset: BridgeSet) -> None:
    paper = BridgeSet(bset.bridges, LAT, LON, N_CELLS, spec=PAPER)
    nee = np.random.default_rng(3).normal(size=(6, 4))
    np.testing.assert_allclose(paper.apply_cells(nee, DAYS), by_hand(bset, nee), rtol=1e-14)


def test_apply_cells_gradcheck(bset: BridgeSet) -> None:
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    days = torch.tensor(DAYS[:3])
    assert torch.autograd.gradcheck(lambda v: bset.apply_cells(v, days), (x,))
    bset.apply_cells(x, days).sum().backward()
    # d(Σ outputs)/d(nee at cell 5) = days × Σ of its weights over regions, per month
    np.testing.assert_allclose(x.grad[:, 1].numpy(), DAYS[:3] * (0.3 + 2.0))


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
    assert got.dims == ("region", "time") and got.attrs["units"] == "Pg month-1"
    flat = field.values.reshape(2, -1)[:, bset.all_cells]
    np.testing.assert_allclose(got.values.T, by_hand(bset, flat) * DAYS[:2, None], rtol=1e-14)
    # a field constant in time: February's integral is 28/31 of January's
    steady = field.copy(data=np.broadcast_to(field.values[:1], (2, 4, 3)).copy())
    jan, feb = bset.apply(steady).transpose("time", ...).values
    np.testing.assert_allclose(feb, jan * 28 / 31, rtol=1e-14)
    # extra leading dimensions broadcast the month lengths along time
    members = xr.concat([field, 2 * field], dim="member").transpose("time", "member", ...)
    twice = by_hand(bset, 2 * flat) * DAYS[:2, None]
    np.testing.assert_allclose(bset.apply(members).sel(member=1).values.T, twice, rtol=1e-14)
    with pytest.raises(ValueError, match="time"):
        bset.apply(field.isel(time=0))
    # a region without contributing cells (a fallback on no usable pixel) reports 0
    empty = BridgeSet([region("AAA", [], [], 0.0)], LAT, LON, N_CELLS)
    assert empty.apply(members).values.tolist() == [[[0.0, 0.0], [0.0, 0.0]]]
    shifted = field.assign_coords(lon=LON + 1.0)
    with pytest.raises(SchemaError, match="differs from the bridges' grid"):
        bset.apply(shifted)


def test_cells_out_of_range_and_duplicates() -> None:
    with pytest.raises(ValueError, match="outside the 11 canonical land cells"):
        BridgeSet([region("AAA", [3, 11], [1.0, 1.0], 0.0)], LAT, LON, 11)
    with pytest.raises(ValueError, match="duplicate region"):
        BridgeSet([region("A", [1], [1.0], 0.0), region("A", [2], [1.0], 0.0)], LAT, LON, 12)
    with pytest.raises(ValueError, match="land_area must be > 0"):
        region("A", [1], [1.0], 0.0, land_area=0.0)


def months_of(n: int) -> np.ndarray:
    return np.tile([31.0, 28.0, 31.0, 30.0, 31.0, 30.0, 31.0, 31.0, 30.0, 31.0, 30.0, 31.0], 3)[:n]


def test_refit_region_is_per_day_without_intercept_and_constrained(bset: BridgeSet) -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(24, 4)) + 1.0  # columns = all_cells [2, 5, 7, 11]
    days = months_of(24)
    rate = 0.7 * x[:, 2] - 0.4 * x[:, 0] + 0.05 * x[:, 1] + 0.01 * rng.normal(size=24)
    target = rate * days  # PgC month-1
    new = bset.refit_region("AAA", x, target, days)
    total = 4e11 * 1e-15  # land area × 1e-15: PgC d-1 per gC m-2 d-1
    # independent: the Lagrange system of min ||rate − X w||² s.t. Σ w = total and
    # Σ days × (rate − X w) = 0 (the period total, default FitSpec)
    cols = x[:, [2, 0, 1]]  # region AAA's cells 7, 2, 5 among all_cells [2, 5, 7, 11]
    c = np.vstack([np.ones(3), days @ cols])
    kkt = np.block([[2 * cols.T @ cols, c.T], [c, np.zeros((2, 2))]])
    w = np.linalg.solve(kkt, np.r_[2 * cols.T @ rate, total, days @ rate])[:3]
    np.testing.assert_allclose(new.weights, w, rtol=1e-9)
    assert new.weights.sum() == pytest.approx(total, rel=1e-12)
    assert (cols @ new.weights * days).sum() == pytest.approx(target.sum(), rel=1e-12)
    assert new.bias == 0.0 and new.fallback == "refit_ols"
    np.testing.assert_allclose(bset.apply_cells(x, days)[:, 0], cols @ w * days, rtol=1e-9)
    # the torch cache was rebuilt
    got = bset.apply_cells(torch.from_numpy(x), torch.from_numpy(days))[:, 0].numpy()
    np.testing.assert_allclose(got, cols @ w * days, rtol=1e-9)
    with pytest.raises(KeyError, match="ZZZ"):
        bset.refit_region("ZZZ", x, target, days)
    with pytest.raises(ValueError, match="days_in_month"):
        bset.refit_region("AAA", x, target, days[:3])


def test_refit_region_paper_variant_recovers_exact_relation(bset: BridgeSet) -> None:
    paper = BridgeSet(bset.bridges, LAT, LON, N_CELLS, spec=PAPER)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(24, 4))
    target = 0.7 * x[:, 2] - 0.4 * x[:, 0] + 0.05 * x[:, 1] + 3.0  # cells 7, 2, 5
    new = paper.refit_region("AAA", x, target, months_of(24))
    np.testing.assert_allclose(new.weights, [0.7, -0.4, 0.05], atol=1e-12)  # order of cells
    assert new.bias == pytest.approx(3.0) and new.r2_train == pytest.approx(1.0)
    np.testing.assert_allclose(paper.apply_cells(x, months_of(24))[:, 0], target, atol=1e-12)


def test_save_load_round_trip(bset: BridgeSet, tmp_path) -> None:
    path = bset.save(tmp_path / "bridges.nc")
    back = BridgeSet.load(path)
    assert back.regions == bset.regions and back.n_cells == N_CELLS
    for a, b in zip(bset.bridges, back.bridges, strict=True):
        for name in ("cells", "ilat", "ilon", "lat", "lon", "weights"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert (a.bias, a.alpha, a.r2_train, a.r2_cv, a.land_area, a.fallback) == (
            b.bias,
            b.alpha,
            b.r2_train,
            b.r2_cv,
            b.land_area,
            b.fallback,
        )
    np.testing.assert_array_equal(back.inclusion_frequency, bset.inclusion_frequency)
    assert int(back.attrs["seed"]) == 3 and back.spec == FitSpec()
    assert "weights_basis" not in back.attrs  # read into the spec, written from it
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        assert ds.attrs["Conventions"] == "CF-1.8"
        assert ds.attrs["weights_basis"] == "per_day" and ds.attrs["refit"] == "constrained"
        assert ds["weight"].attrs["units"] == "Pg d-1 (g m-2 d-1)-1"
        assert ds["bias"].attrs["units"] == "Pg d-1"
        assert ds["contrib_region"].values.tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(FileExistsError):
        bset.save(path)
    paper = BridgeSet(bset.bridges, LAT, LON, N_CELLS, spec=PAPER).save(tmp_path / "paper.nc")
    assert BridgeSet.load(paper).spec == PAPER
    no_total = FitSpec(period_total=False)
    saved = BridgeSet(bset.bridges, LAT, LON, N_CELLS, spec=no_total).save(tmp_path / "nt.nc")
    assert BridgeSet.load(saved).spec == no_total
    # a file from before the period-total constraint was fitted without it
    old = bset.to_dataset()
    assert old.attrs.pop("period_total") == 1
    old.to_netcdf(tmp_path / "before_total.nc", engine="h5netcdf")
    assert BridgeSet.load(tmp_path / "before_total.nc").spec == no_total
    with xr.open_dataset(paper, engine="h5netcdf") as ds:
        assert ds["weight"].attrs["units"] == "Pg month-1 (g m-2 d-1)-1"
    xr.Dataset({"x": ("a", [1.0])}).to_netcdf(tmp_path / "other.nc", engine="h5netcdf")
    with pytest.raises(SchemaError, match="region_abbr"):
        BridgeSet.load(tmp_path / "other.nc")


def test_file_of_the_old_per_month_basis_is_refused(bset: BridgeSet, tmp_path) -> None:
    ds = bset.to_dataset()
    ds.attrs = {k: v for k, v in ds.attrs.items() if k != "weights_basis"}
    ds.to_netcdf(tmp_path / "old.nc", engine="h5netcdf")
    with pytest.raises(SchemaError, match=r"weights_basis.*predates per-day") as info:
        BridgeSet.load(tmp_path / "old.nc")
    assert "\n" not in str(info.value)
