"""Grids, exact cell areas, regridding, region masks and regional integrals.

Modules: :mod:`.grid` (grids, exact areas), :mod:`.regrid` (conservative
regridding), :mod:`.regions` (RECCAP2, country and user masks as data),
:mod:`.integrate` (regional integrals in PgC). Only the grid is re-exported
here: the canonical schema imports it, and the other modules import the schema.
"""

from fluxbridge.geo.grid import EARTH_RADIUS_M, Grid, cell_areas_m2, normalise_lon

__all__ = ["EARTH_RADIUS_M", "Grid", "cell_areas_m2", "normalise_lon"]
