"""Grids, exact cell areas, regridding, region masks and regional integrals."""

from fluxbridge.geo.grid import EARTH_RADIUS_M, Grid, cell_areas_m2, normalise_lon

__all__ = ["EARTH_RADIUS_M", "Grid", "cell_areas_m2", "normalise_lon"]
