"""Nearest-pixel (Voronoi) area weights: the integral a set of bridge pixels can stand for.

A bridge fitted on one field (the reference) is applied to others (the truth, a
model's output) whose within-region spatial pattern it never saw. The only weights
that integrate *any* smooth field about right are quadrature weights: every cell of
the region is represented by its nearest contributing pixel, which carries that
cell's area. :class:`RegionQuadrature` computes them for any subset of a region's
candidate pixels; the bridge refit shrinks towards them
(``BridgeConfig.spatial_prior``, docs/bridges.md).

Weights are in the bridge's weight units (PgC d-1 per gC m-2 d-1, or per month in the
per-month basis): a cell's area × land fraction × region fraction × 1e-15 [× mean
days per month], so the weights of any subset sum to the region's weight sum.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def unit_vectors(lat_deg: np.ndarray, lon_deg: np.ndarray) -> np.ndarray:
    """(n, 3) points on the unit sphere; nearest by great-circle = largest dot product."""
    lat, lon = np.deg2rad(np.asarray(lat_deg, float)), np.deg2rad(np.asarray(lon_deg, float))
    return np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)


@dataclass(frozen=True)
class RegionQuadrature:
    """A region's cells (positions, weights) and its candidate pixels' positions.

    ``cell_xyz`` (m, 3) and ``cell_weight`` (m,): every cell with a share in the region
    (weight units; Σ = the region's weight sum); ``pixel_xyz`` (n, 3): the candidate
    pixels, in the column order of the region's regression matrix.
    """

    cell_xyz: np.ndarray
    cell_weight: np.ndarray
    pixel_xyz: np.ndarray

    def weights(self, pixels: np.ndarray) -> np.ndarray:
        """Voronoi weights of candidate pixels ``pixels`` (indices), Σ = Σ cell_weight.

        Each cell goes to the nearest pixel (great circle; ties: the first in ``pixels``).
        """
        pixels = np.asarray(pixels, dtype=np.int64)
        if pixels.size == 0:
            return np.empty(0)
        nearest = np.argmax(self.cell_xyz @ self.pixel_xyz[pixels].T, axis=1)
        return np.bincount(nearest, weights=self.cell_weight, minlength=pixels.size)
