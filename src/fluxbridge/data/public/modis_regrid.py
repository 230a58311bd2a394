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
        self.georef = georef
        lat, self.lon = overlap_fractions(src, dst)
        self.lat = sp.csc_matrix(lat[:, ::-1] if north_up else lat)  # columns in file order

    def add(
        self, acc: CellMeans, values: np.ndarray, rows: slice, weight: np.ndarray | None = None
    ) -> None:
        """Add a block of source rows (file order) of ``values`` (NaN = invalid) to ``acc``.

        ``weight`` (same shape, 0..1, NaN = unknown): each source cell counts with
        its overlap area times this share (a PFT's share of the pixel, per-PFT means).
        """
        w = _weights(values, weight)
        lat = self.lat[:, rows]
        acc.add(
            apply_overlap(np.where(w > 0, values, 0.0) * w, lat, self.lon),
            apply_overlap(w, lat, self.lon),
        )

    def centres(self, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) in degrees of the source cell centres of ``rows``, each (rows, nx)."""
        g = self.georef
        lat = g.lat0 + g.dlat * (np.arange(rows.start, rows.stop) + 0.5)
        lon = g.lon0 + g.dlon * (np.arange(g.nx) + 0.5)
        return np.broadcast_to(lat[:, None], (lat.size, lon.size)), np.broadcast_to(
            lon[None, :], (lat.size, lon.size)
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

    def centres(self, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        """(lat, lon) in degrees of the pixel centres of ``rows``, each (rows, nx); lon NaN/inf
        off the projection's valid area."""
        g = self.georef
        i = np.arange(rows.start, rows.stop, dtype=np.float64)
        j = np.arange(g.nx, dtype=np.float64)
        y = g.y0 - (i + 0.5) * g.dy
        x = g.x0 + (j + 0.5) * g.dx
        lat = np.rad2deg(y / SINUSOIDAL_RADIUS_M)
        coslat = np.cos(np.deg2rad(lat))
        with np.errstate(divide="ignore", invalid="ignore"):
            lon = np.rad2deg(x[None, :] / (SINUSOIDAL_RADIUS_M * coslat[:, None]))
        return np.broadcast_to(lat[:, None], lon.shape), lon

    def cell_index(self, rows: slice) -> np.ndarray:
        """Flat destination index of each pixel centre in ``rows`` (−1 outside ``dst``)."""
        lat, lon = self.centres(rows)
        ilat = np.searchsorted(self.dst.lat_bounds, lat, side="right") - 1
        ilon = np.searchsorted(self.dst.lon_bounds, lon, side="right") - 1
        nlat, nlon = self.dst.shape
        inside = (ilat >= 0) & (ilat < nlat) & (ilon >= 0) & (ilon < nlon) & np.isfinite(lon)
        return np.where(inside, ilat * nlon + ilon, -1)

    def add(
        self, acc: CellMeans, values: np.ndarray, rows: slice, weight: np.ndarray | None = None
    ) -> None:
        """Add a block of tile rows of ``values`` (NaN = invalid) to ``acc`` (``weight``: as
        :meth:`LatLonAggregator.add`)."""
        index = self.cell_index(rows).ravel()
        v = values.ravel()
        share = _weights(values, weight).ravel()
        keep = (index >= 0) & (share > 0)
        n = self.dst.shape[0] * self.dst.shape[1]
        w = self.pixel_fraction[index[keep]] * share[keep]
        acc.add(
            np.bincount(index[keep], weights=v[keep] * w, minlength=n).reshape(self.dst.shape),
            np.bincount(index[keep], weights=w, minlength=n).reshape(self.dst.shape),
        )


def _weights(values: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    """Each source cell's share (float64): 0 where the value or the weight is NaN."""
    valid = ~np.isnan(values)
    if weight is None:
        return valid.astype(np.float64)
    w = np.asarray(weight, dtype=np.float64)
    return np.where(valid & ~np.isnan(w), w, 0.0)


Aggregator = LatLonAggregator | SinusoidalAggregator


def aggregator_for(georef: Georef, dst: Grid) -> Aggregator:
    """The aggregator for a source georeference."""
    if isinstance(georef, LatLonGeoref):
        return LatLonAggregator(georef, dst)
    return SinusoidalAggregator(georef, dst)
