"""Area-weighted means of fine MODIS cells on the canonical grid, one block of rows at a time.

:class:`CellMeans` accumulates, for each destination cell, Σ value·a and Σ a over
the *valid* source cells, with a the area of the overlap divided by the
destination cell's area (so Σ a is the valid-covered fraction of the cell).
The mean is Σ value·a / Σ a where the covered fraction reaches
``min_coverage``, NaN elsewhere. Blocks of rows (and several tiles of one
composite) add to the same sums, so a 3600 × 7200 CMG band is never held whole
in floating point.

* lat/lon sources (the 0.05° CMG, geographic NetCDF subsets): exact spherical
  overlaps, the separable factors of :mod:`fluxbridge.geo.regrid`;
* sinusoidal tiles (MCD15A2H, 463 m): the MODIS sinusoidal projection is equal
  area, so each pixel carries the same area dx·dy and is given whole to the
  destination cell holding its centre (the error at cell borders is below one
  pixel row, < 1 % of a 0.5° cell).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from fluxbridge.data.public.modis_io import (
    SINUSOIDAL_RADIUS_M,
    Georef,
    LatLonGeoref,
    SinusoidalGeoref,
)
from fluxbridge.geo.grid import EARTH_RADIUS_M, Grid, cell_areas_m2
from fluxbridge.geo.regrid import apply_overlap, overlap_fractions


class CellMeans:
    """Running area-weighted sums of one variable on ``grid``."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.weighted_sum = np.zeros(grid.shape)
        self.coverage = np.zeros(grid.shape)

    def add(self, weighted_sum: np.ndarray, coverage: np.ndarray) -> None:
        self.weighted_sum += weighted_sum
        self.coverage += coverage

    def mean(self, min_coverage: float) -> np.ndarray:
        """Area-weighted mean (float32) where the valid fraction is ≥ ``min_coverage``."""
        ok = (self.coverage >= min_coverage) & (self.coverage > 0)
        out = np.full(self.grid.shape, np.nan, dtype=np.float32)
        out[ok] = self.weighted_sum[ok] / self.coverage[ok]
        return out


class LatLonAggregator:
    """Exact overlap fractions from a regular lat/lon source (any row order) to ``dst``."""

    def __init__(self, georef: LatLonGeoref, dst: Grid) -> None:
        lat_edges = georef.lat_edges()
        north_up = georef.dlat < 0
        asc = lat_edges[::-1] if north_up else lat_edges
        lon_edges = georef.lon_edges()
        # the products' own edges can overshoot ±90/±180 by rounding of packed degrees
        src = Grid(np.clip(asc, -90.0, 90.0), np.clip(lon_edges, -180.0, 180.0))
        lat, self.lon = overlap_fractions(src, dst)
        self.lat = sp.csc_matrix(lat[:, ::-1] if north_up else lat)  # columns in file order

    def add(self, acc: CellMeans, values: np.ndarray, rows: slice) -> None:
        """Add a block of source rows (file order) of ``values`` (NaN = invalid) to ``acc``."""
        valid = ~np.isnan(values)
        lat = self.lat[:, rows]
        acc.add(
            apply_overlap(np.where(valid, values, 0.0), lat, self.lon),
            apply_overlap(valid.astype(np.float64), lat, self.lon),
        )


class SinusoidalAggregator:
    """Equal-area sinusoidal pixels binned by centre into the cells of ``dst``."""

    def __init__(self, georef: SinusoidalGeoref, dst: Grid) -> None:
        self.georef = georef
        self.dst = dst
        # destination areas on the sinusoidal grid's own sphere, so that a full cell sums to 1
        areas = (
            cell_areas_m2(dst.lat_bounds, dst.lon_bounds)
            * (SINUSOIDAL_RADIUS_M / EARTH_RADIUS_M) ** 2
        )
        self.pixel_fraction = (georef.dx * georef.dy) / areas.ravel()

    def cell_index(self, rows: slice) -> np.ndarray:
        """Flat destination index of each pixel centre in ``rows`` (−1 outside ``dst``)."""
        g = self.georef
        i = np.arange(rows.start, rows.stop, dtype=np.float64)
        j = np.arange(g.nx, dtype=np.float64)
        y = g.y0 - (i + 0.5) * g.dy
        x = g.x0 + (j + 0.5) * g.dx
        lat = np.rad2deg(y / SINUSOIDAL_RADIUS_M)
        coslat = np.cos(np.deg2rad(lat))
        with np.errstate(divide="ignore", invalid="ignore"):
            lon = np.rad2deg(x[None, :] / (SINUSOIDAL_RADIUS_M * coslat[:, None]))
        lat = np.broadcast_to(lat[:, None], lon.shape)
        ilat = np.searchsorted(self.dst.lat_bounds, lat, side="right") - 1
        ilon = np.searchsorted(self.dst.lon_bounds, lon, side="right") - 1
        nlat, nlon = self.dst.shape
        inside = (ilat >= 0) & (ilat < nlat) & (ilon >= 0) & (ilon < nlon) & np.isfinite(lon)
        return np.where(inside, ilat * nlon + ilon, -1)

    def add(self, acc: CellMeans, values: np.ndarray, rows: slice) -> None:
        """Add a block of tile rows of ``values`` (NaN = invalid) to ``acc``."""
        index = self.cell_index(rows).ravel()
        v = values.ravel()
        keep = (index >= 0) & ~np.isnan(v)
        n = self.dst.shape[0] * self.dst.shape[1]
        w = self.pixel_fraction[index[keep]]
        acc.add(
            np.bincount(index[keep], weights=v[keep] * w, minlength=n).reshape(self.dst.shape),
            np.bincount(index[keep], weights=w, minlength=n).reshape(self.dst.shape),
        )


Aggregator = LatLonAggregator | SinusoidalAggregator


def aggregator_for(georef: Georef, dst: Grid) -> Aggregator:
    """The aggregator for a source georeference."""
    if isinstance(georef, LatLonGeoref):
        return LatLonAggregator(georef, dst)
    return SinusoidalAggregator(georef, dst)
