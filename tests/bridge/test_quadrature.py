"""Nearest-pixel (Voronoi) quadrature weights of a region's pixels."""

from __future__ import annotations

import numpy as np
import pytest

from fluxbridge.bridge.quadrature import RegionQuadrature, unit_vectors


def test_unit_vectors_on_the_sphere() -> None:
    np.testing.assert_allclose(
        unit_vectors(np.array([0.0, 90.0]), np.array([90.0, 0.0])),
        [[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]],
        atol=1e-15,
    )


def test_each_cell_goes_to_its_nearest_pixel() -> None:
    # five equatorial cells at lon 0..4 with weights 1..5; pixels at lon 0 and 3:
    # cells 0, 1 -> pixel at 0 (1 + 2); cells 2, 3, 4 -> pixel at 3 (3 + 4 + 5)
    lon = np.arange(5.0)
    quad = RegionQuadrature(
        cell_xyz=unit_vectors(np.zeros(5), lon),
        cell_weight=np.arange(1.0, 6.0),
        pixel_xyz=unit_vectors(np.zeros(5), lon),
    )
    assert quad.weights(np.array([0, 3])).tolist() == [3.0, 12.0]
    assert quad.weights(np.array([3, 0])).tolist() == [12.0, 3.0]  # order of the request
    assert quad.weights(np.array([4])).tolist() == [15.0]  # one pixel carries the region
    assert quad.weights(np.array([], dtype=int)).size == 0
    # any subset's weights sum to the region's total
    assert quad.weights(np.array([1, 2, 4])).sum() == pytest.approx(15.0)


def test_nearest_is_great_circle_not_degrees() -> None:
    # at 80° N a cell 20° of longitude away is nearer (great circle) than one 5° of
    # latitude away: a lon/lat-degree metric would pick the other pixel
    quad = RegionQuadrature(
        cell_xyz=unit_vectors(np.array([80.0]), np.array([0.0])),
        cell_weight=np.array([1.0]),
        pixel_xyz=unit_vectors(np.array([80.0, 75.0]), np.array([20.0, 0.0])),
    )
    assert quad.weights(np.array([0, 1])).tolist() == [1.0, 0.0]
