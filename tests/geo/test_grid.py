import math

import numpy as np
import pytest

from fluxbridge.geo.grid import EARTH_RADIUS_M, Grid, cell_areas_m2, normalise_lon


@pytest.mark.parametrize("res", [0.5, 1.0, 2.5, 4.0, (1.875, 3.75), (4.0, 5.0)])
def test_global_areas_sum_to_sphere(res):
    dlat, dlon = res if isinstance(res, tuple) else (res, res)
    grid = Grid.global_regular(dlat, dlon)
    total = grid.cell_area().values.sum()
    assert total == pytest.approx(4 * math.pi * EARTH_RADIUS_M**2, rel=1e-9)


def test_single_band_area_by_hand():
    # Band 0..30°N, 0..90°E: R² · π/2 · (sin 30° − sin 0°) = R² · π/4.
    area = cell_areas_m2(np.array([0.0, 30.0]), np.array([0.0, 90.0]))
    assert area[0, 0] == pytest.approx(EARTH_RADIUS_M**2 * math.pi / 4, rel=1e-12)


def test_from_centres_round_trip():
    grid = Grid.global_regular(2.0, 2.5)
    again = Grid.from_centres(grid.lat, grid.lon)
    assert again.same_as(grid)


def test_normalise_lon():
    np.testing.assert_allclose(
        normalise_lon([0, 180, 359.5, -180, 190]), [0, -180, -0.5, -180, -170]
    )


def test_rejects_descending():
    with pytest.raises(ValueError, match="ascending"):
        Grid(np.array([10.0, 0.0]), np.array([0.0, 1.0]))


def test_longitudes_0_to_360_are_refused_with_the_fix():
    import xarray as xr

    from fluxbridge.errors import SchemaError

    ds = xr.Dataset(coords={"lat": [-45.0, 45.0], "lon": np.arange(45.0, 360.0, 90.0)})
    with pytest.raises(SchemaError, match=r"grid\.nc, variable 'lon': longitudes 45\.\.315"):
        Grid.from_dataset(ds, "grid.nc")
