"""Conservative regridding: hand-computed cases, brute-force weights, conservation properties."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxbridge.geo.grid import Grid
from fluxbridge.geo.regrid import conservative_weights, regrid_conservative


def _field(values: np.ndarray, grid: Grid, lead: tuple[str, ...] = ()) -> xr.DataArray:
    return xr.DataArray(values, dims=(*lead, "lat", "lon"), coords=grid.coords(), name="f")


def _integral(values: np.ndarray, grid: Grid) -> np.ndarray:
    return np.nansum(values * grid.cell_area().values, axis=(-2, -1))


def test_latitude_bands_weighted_by_exact_area() -> None:
    # bands -90..-30, -30..30, 30..90 have Δsin φ = 0.5, 1, 0.5
    src = Grid(np.array([-90.0, -30.0, 30.0, 90.0]), np.array([-180.0, 180.0]))
    dst = Grid(np.array([-90.0, 90.0]), np.array([-180.0, 180.0]))
    out = regrid_conservative(_field(np.array([[1.0], [2.0], [4.0]]), src), dst, src_grid=src)
    assert out.values[0, 0] == pytest.approx((0.5 * 1 + 1.0 * 2 + 0.5 * 4) / 2.0)


def test_non_nested_longitudes_by_hand() -> None:
    src = Grid(np.array([-90.0, 90.0]), np.array([-180.0, 0.0, 180.0]))
    dst = Grid(np.array([-90.0, 90.0]), np.array([-180.0, -90.0, 90.0, 180.0]))
    out = regrid_conservative(_field(np.array([[1.0, 3.0]]), src), dst, src_grid=src)
    np.testing.assert_allclose(out.values, [[1.0, 2.0, 3.0]])


def test_weights_match_brute_force_overlaps() -> None:
    src = Grid.global_regular(30.0, 45.0)
    dst = Grid(np.array([-90.0, -50.0, 10.0, 90.0]), np.array([-180.0, -100.0, 20.0, 180.0]))
    weights = conservative_weights(src, dst).toarray()
    expected = np.zeros_like(weights)
    s_lat, s_lon = np.sin(np.deg2rad(src.lat_bounds)), src.lon_bounds
    d_lat, d_lon = np.sin(np.deg2rad(dst.lat_bounds)), dst.lon_bounds
    for i in range(dst.shape[0]):
        for j in range(dst.shape[1]):
            d_area = (d_lat[i + 1] - d_lat[i]) * (d_lon[j + 1] - d_lon[j])
            for k in range(src.shape[0]):
                for m in range(src.shape[1]):
                    dy = min(d_lat[i + 1], s_lat[k + 1]) - max(d_lat[i], s_lat[k])
                    dx = min(d_lon[j + 1], s_lon[m + 1]) - max(d_lon[j], s_lon[m])
                    if dy > 0 and dx > 0:
                        expected[i * dst.shape[1] + j, k * src.shape[1] + m] = dy * dx / d_area
    np.testing.assert_allclose(weights, expected, atol=1e-12)
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)


def test_lon_0_360_input_and_cell_across_the_seam() -> None:
    # 2° cells centred on 0, 2, ..., 358: the cell centred on 180 spans 179..181
    lat = Grid.global_regular(2.0).lat
    lon = np.arange(0.0, 360.0, 2.0)
    values = np.zeros((lat.size, lon.size))
    values[:, lon == 180.0] = 1.0
    da = xr.DataArray(values, dims=("lat", "lon"), coords={"lat": lat, "lon": lon})
    out = regrid_conservative(da, Grid.global_regular(1.0))
    one = out.sel(lon=[-179.5, 179.5]).values
    np.testing.assert_allclose(one, 1.0)
    assert float(out.sum()) == pytest.approx(2 * lat.size * 2)


def test_nan_cells_left_out_of_the_mean() -> None:
    src = Grid(np.array([-90.0, 90.0]), np.array([-180.0, -90.0, 0.0, 180.0]))
    dst = Grid(np.array([-90.0, 90.0]), np.array([-180.0, 180.0]))
    out = regrid_conservative(_field(np.array([[1.0, np.nan, 4.0]]), src), dst, src_grid=src)
    # valid overlap: 90° at value 1 and 180° at value 4
    assert out.values[0, 0] == pytest.approx((90 * 1 + 180 * 4) / 270)
    empty = regrid_conservative(_field(np.full((1, 3), np.nan), src), dst, src_grid=src)
    assert np.isnan(empty.values).all()


def test_non_nested_chain_conserves_with_leading_dims() -> None:
    rng = np.random.default_rng(1)
    g1, g2, g3 = Grid.global_regular(1.875, 3.75), Grid.global_regular(0.5), Grid.global_regular(1)
    values = rng.normal(size=(2, 3, *g1.shape))
    da = _field(values, g1, ("member", "time")).assign_coords(member=[7, 8])
    mid = regrid_conservative(da, g2)
    out = regrid_conservative(mid, g3)
    assert out.dims == ("member", "time", "lat", "lon")
    assert list(out["member"].values) == [7, 8]
    expected = _integral(values, g1)
    for got in (_integral(mid.values, g2), _integral(out.values, g3)):
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9 * np.abs(expected).max())


def test_land_weighted_regrid_conserves_land_integral() -> None:
    rng = np.random.default_rng(2)
    src, dst = Grid.global_regular(2.0, 2.5), Grid.global_regular(3.0)
    land = rng.uniform(size=src.shape) * (rng.uniform(size=src.shape) > 0.4)
    nee = rng.normal(size=src.shape)
    land_da = _field(land, src)
    nee_dst = regrid_conservative(_field(nee, src), dst, src_area_weights=land_da)
    land_dst = regrid_conservative(land_da, dst)
    got = _integral(np.nan_to_num(nee_dst.values) * land_dst.values, dst)
    assert got == pytest.approx(_integral(nee * land, src), rel=1e-9)


def _random_edges(draw, lo: float, hi: float) -> np.ndarray:
    n = draw(st.integers(1, 12))
    cuts = draw(st.lists(st.floats(0.02, 1.0), min_size=n, max_size=n))
    widths = np.array(cuts) / np.sum(cuts)
    return lo + (hi - lo) * np.concatenate([[0.0], np.cumsum(widths)])


@st.composite
def _grids(draw) -> Grid:
    lat = _random_edges(draw, -90.0, 90.0)
    lon = _random_edges(draw, -180.0, 180.0)
    lat[-1], lon[-1] = 90.0, 180.0
    return Grid(lat, lon)


@settings(max_examples=60, deadline=None)
@given(src=_grids(), dst=_grids(), seed=st.integers(0, 2**31 - 1))
def test_property_global_integral_conserved_and_constant_kept(
    src: Grid, dst: Grid, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.uniform(-5.0, 5.0, size=src.shape)
    src_da = _field(values, src)
    out = regrid_conservative(src_da, dst, src_grid=src)
    expected = _integral(values, src)
    scale = _integral(np.abs(values), src)
    assert abs(_integral(out.values, dst) - expected) <= 1e-6 * scale
    constant = regrid_conservative(xr.full_like(src_da, 3.25), dst, src_grid=src)
    np.testing.assert_allclose(constant.values, 3.25, rtol=1e-12)


def test_bad_weights_shape_is_refused() -> None:
    g = Grid.global_regular(30.0)
    with pytest.raises(ValueError, match="src_area_weights"):
        regrid_conservative(
            _field(np.ones(g.shape), g),
            Grid.global_regular(60.0),
            src_area_weights=xr.DataArray(np.ones(3), dims="x"),
        )
