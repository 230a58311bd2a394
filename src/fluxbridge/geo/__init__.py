"""Grids, exact cell areas, regridding, region masks and regional integrals."""

from fluxbridge.geo.grid import EARTH_RADIUS_M, Grid, cell_areas_m2, normalise_lon
from fluxbridge.geo.integrate import region_land_area_m2, regional_integral_pgc, run_integrate
from fluxbridge.geo.regions import (
    RegionSet,
    country_mask,
    reccap2,
    regions_from_file,
    subregions_from_classes,
)
from fluxbridge.geo.regrid import conservative_weights, regrid_conservative

__all__ = [
    "EARTH_RADIUS_M",
    "Grid",
    "RegionSet",
    "cell_areas_m2",
    "conservative_weights",
    "country_mask",
    "normalise_lon",
    "reccap2",
    "region_land_area_m2",
    "regional_integral_pgc",
    "regions_from_file",
    "regrid_conservative",
    "run_integrate",
    "subregions_from_classes",
]
