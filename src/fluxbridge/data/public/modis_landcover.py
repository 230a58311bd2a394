"""MCD12C1 land cover → land and PFT fractions, and the per-PFT weights of MODIS pixels.

MCD12C1 v061 (MODIS/Terra+Aqua Land Cover Type Yearly L3 Global 0.05° CMG,
doi:10.5067/MODIS/MCD12C1.061) holds, per 0.05° pixel, the share (percent,
uint8) of each of the 17 IGBP classes in ``Land_Cover_Type_1_Percent``
(3600 × 7200 × 17; layer k = IGBP class k, 0 = water). From it:

* :func:`landcover_fractions`: ``land_fraction`` (lat, lon) = area mean of
  1 − water share, and ``pft_fraction`` (pft, lat, lon) = each PFT's share of
  that land (Σ = 1 on land), on the canonical grid;
* :class:`LandCover.weights_at`: each PFT's share of the MCD12C1 pixel that
  holds a point, the weight of a MODIS pixel in the per-PFT means of
  :func:`fluxbridge.data.public.modis.modis_daily`;
* :class:`PftPairs`: the (PFT, land cell) pairs with a fraction > 0, the layout
  of the per-PFT fields, and their reconstruction Σ_pft fraction × value.

The IGBP classes map to the schema's PFTs by :data:`IGBP_TO_PFT` (docs/modis.md).
Rows are read in blocks: the 17 class layers of one block are at most
200 × 7200 × 17 bytes; the whole field (440 M values) is never held.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import xarray as xr

from fluxbridge.data.public.modis_io import LatLonGeoref, open_granule, row_blocks, valid_limits
from fluxbridge.data.public.modis_regrid import CellMeans, LatLonAggregator
from fluxbridge.errors import SchemaError
from fluxbridge.geo.grid import Grid

#: The IGBP class-percent SDS of MCD12C1 (Collection 6/6.1).
SDS = "Land_Cover_Type_1_Percent"
#: MCD12C1's IGBP legend, layer index = class value (User Guide V6, MCD12C1 legend:
#: 0 water … 16 barren; MCD12Q1 numbers water 17 instead).
IGBP_CLASSES: tuple[str, ...] = (
    "WAT", "ENF", "EBF", "DNF", "DBF", "MF", "CSH", "OSH", "WSA", "SAV", "GRA", "WET",
    "CRO", "URB", "CVM", "SNO", "BSV",
)  # fmt: skip
#: IGBP class → canonical PFT (:data:`PFTS`).
#: Closed shrubland joins open shrubland, woody savanna joins savanna, the
#: cropland/natural vegetation mosaic joins cropland, urban and snow/ice join
#: barren (non-vegetated); water is not land.
IGBP_TO_PFT: dict[str, str] = {
    "ENF": "ENF", "EBF": "EBF", "DNF": "DNF", "DBF": "DBF", "MF": "MF",
    "CSH": "OSH", "OSH": "OSH", "WSA": "SAV", "SAV": "SAV", "GRA": "GRA", "WET": "WET",
    "CRO": "CRO", "URB": "BSV", "CVM": "CRO", "SNO": "BSV", "BSV": "BSV",
}  # fmt: skip
#: The canonical PFT names, those of the twin world's grid.nc (fluxbridge.data.twin.landcover.
#: PFTS; a test keeps them equal: importing the twin here would be circular).
PFTS: tuple[str, ...] = (
    "ENF", "EBF", "DNF", "DBF", "MF", "OSH", "SAV", "GRA", "CRO", "WET", "BSV",
)  # fmt: skip
#: Percent fill of the MCD12 uint8 layers; valid percent 0–100 (User Guide V6).
FILL = 255
_ROWS_PER_BLOCK = 200


def class_to_pft() -> np.ndarray:
    """(17, n_pft) 0/1 matrix: row k has a 1 in the column of IGBP class k's PFT."""
    m = np.zeros((len(IGBP_CLASSES), len(PFTS)), dtype=np.float32)
    for k, name in enumerate(IGBP_CLASSES):
        if name in IGBP_TO_PFT:
            m[k, PFTS.index(IGBP_TO_PFT[name])] = 1.0
    return m


class LandCover:
    """An MCD12C1 file (HDF4 as the LP DAAC distributes it), read by blocks of rows."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._g = open_granule(self.path)
        if SDS not in self._g.names():
            self._g.close()
            raise SchemaError(
                self.path, SDS, "SDS missing; an MCD12C1 file needs the IGBP class percentages"
            )
        georef = self._g.georef
        shape = self._g.shape(SDS)
        expected = (georef.ny, georef.nx, len(IGBP_CLASSES))
        if not isinstance(georef, LatLonGeoref) or shape != expected:
            self._g.close()
            raise SchemaError(
                self.path,
                SDS,
                f"shape {shape}; expected {expected} (rows, columns, 17 IGBP class "
                "percentages) on a lat/lon grid",
            )
        self.georef: LatLonGeoref = georef
        attrs = self._g.attrs(SDS)
        self._fill = int(np.asarray(attrs.get("_FillValue", FILL)).ravel()[0])
        lo, hi = valid_limits(attrs)
        self._lo = 0.0 if lo is None else lo
        self._hi = 100.0 if hi is None else hi
        self._m = class_to_pft()
        self._cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def close(self) -> None:
        self._g.close()

    def __enter__(self) -> LandCover:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def pft_weights(self, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        """PFT shares (n_pft, rows, nx) and water share (rows, nx) of each pixel, float32.

        Shares are the class percentages divided by their sum (a pixel's percentages
        may add to 99 or 101 by rounding); NaN where any class is fill or out of range,
        or all are 0.
        """
        percent, water, total = self._percent(rows)
        scale = _scale(total)
        return percent * scale, water * scale

    def _percent(self, rows: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-PFT percent sums (n_pft, rows, nx), water percent and Σ percent (rows, nx),
        float32 holding integers; Σ percent is 0 for a bad pixel."""
        raw = self._g.read(SDS, rows)
        lead = raw.shape[:-1]
        flat = raw.reshape(-1, raw.shape[-1])
        bad = (flat.max(axis=1) > self._hi) | (flat.min(axis=1) < self._lo)
        if self._lo <= self._fill <= self._hi:  # a fill inside the valid range
            bad |= (flat == self._fill).any(axis=1)
        counts = flat.astype(np.float32)
        total = np.where(bad, np.float32(0.0), counts.sum(axis=1))
        percent = self._m.T @ counts.T  # one 2-D matrix product (a 3-D matmul is ~10× slower)
        return percent.reshape(-1, *lead), counts[:, 0].reshape(lead), total.reshape(lead)

    def block_weights(self, rows: slice) -> np.ndarray:
        """PFT shares (n_pft, rows, nx) float32 of the file's own pixels in ``rows``.

        For MODIS products on the file's own grid (the 0.05° CMG) every composite asks
        for the same rows, so they are kept after the first read as integer PFT percent
        sums and percent totals (uint8, or uint16 if a malformed pixel exceeds 255):
        about 0.3 GB for the whole CMG, instead of reading and converting 440 M values
        again for each composite. The shares are the same numbers as :meth:`pft_weights`.
        """
        key = (rows.start, rows.stop)
        if key not in self._cache:
            percent, _, total = self._percent(rows)
            wide = max(percent.max(initial=0.0), total.max(initial=0.0)) > 255
            dtype = np.uint16 if wide else np.uint8
            self._cache[key] = (percent.astype(dtype), total.astype(dtype))
        percent, total = self._cache[key]
        return percent.astype(np.float32) * _scale(total.astype(np.float32))

    def weights_at(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """PFT shares (n_pft, *lat.shape) of the MCD12C1 pixel holding each point (degrees);
        NaN outside the file's grid or where the pixel is fill."""
        g = self.georef
        row = np.floor((lat - g.lat0) / g.dlat)
        col = np.floor((lon - g.lon0) / g.dlon)
        inside = (row >= 0) & (row < g.ny) & (col >= 0) & (col < g.nx) & np.isfinite(col)
        out = np.full((len(PFTS), *np.shape(lat)), np.nan, dtype=np.float32)
        if not inside.any():
            return out
        r = row[inside].astype(np.int64)
        c = col[inside].astype(np.int64)
        first, last = int(r.min()), int(r.max()) + 1
        weights, _ = self.pft_weights(slice(first, last))
        out[:, inside] = weights[:, r - first, c]
        return out


def _scale(total: np.ndarray) -> np.ndarray:
    """1 / Σ percent (float32), NaN where Σ percent is 0 (a bad pixel)."""
    ok = total > 0
    return np.where(ok, 1.0 / np.where(ok, total, 1.0), np.nan).astype(np.float32)


def landcover_fractions(path: str | Path, grid: Grid) -> tuple[xr.DataArray, xr.DataArray]:
    """``land_fraction`` (lat, lon) and ``pft_fraction`` (pft, lat, lon) from an MCD12C1 file.

    land_fraction = Σ a_s (1 − water_s) / Σ a_s over the valid pixels s of a cell
    (a_s: overlap area); pft_fraction_p = Σ a_s w_sp / Σ a_s (1 − water_s), w_sp the
    pixel's share of PFT p. Both 0 where the cell has no valid pixel or no land.
    """
    with LandCover(path) as lc:
        agg = LatLonAggregator(lc.georef, grid)
        land = CellMeans(grid)
        pft = [CellMeans(grid) for _ in PFTS]
        for rows in row_blocks(lc.georef.ny, _ROWS_PER_BLOCK):
            weights, water = lc.pft_weights(rows)
            agg.add(land, 1.0 - water.astype(np.float64), rows)
            for p, acc in enumerate(pft):
                agg.add(acc, weights[p].astype(np.float64), rows)
    with np.errstate(invalid="ignore", divide="ignore"):
        land_fraction = np.where(land.coverage > 0, land.weighted_sum / land.coverage, 0.0)
        fractions = np.stack(
            [
                np.where(land.weighted_sum > 0, acc.weighted_sum / land.weighted_sum, 0.0)
                for acc in pft
            ]
        )
    coords = grid.coords()
    land_da = xr.DataArray(
        np.clip(land_fraction, 0.0, 1.0),
        dims=("lat", "lon"),
        coords={k: v for k, v in coords.items() if k in ("lat", "lon")},
        attrs={"units": "1", "source_product": "MCD12C1"},
    )
    pft_da = xr.DataArray(
        np.clip(fractions, 0.0, 1.0),
        dims=("pft", "lat", "lon"),
        coords={"pft": np.array(PFTS, dtype=object), **land_da.coords},
        attrs={"units": "1", "source_product": "MCD12C1"},
    )
    return land_da, pft_da


@dataclass(frozen=True)
class PftPairs:
    """The (PFT, land cell) pairs with a PFT fraction > 0: the per-PFT fields' layout.

    Attributes (each (n_pairs,)): ``pft`` index into :data:`PFTS`, ``cell`` index
    into the canonical land cells, ``ilat``/``ilon`` grid indices, ``fraction`` the
    PFT's share of the cell's land. Ordered by cell, then PFT.
    """

    pft: np.ndarray
    cell: np.ndarray
    ilat: np.ndarray
    ilon: np.ndarray
    fraction: np.ndarray
    n_cells: int

    @classmethod
    def from_fractions(
        cls, pft_fraction: np.ndarray, cells: tuple[np.ndarray, np.ndarray]
    ) -> PftPairs:
        """Pairs of ``pft_fraction`` (pft, lat, lon) > 0 at the land ``cells`` (ilat, ilon)."""
        f = np.asarray(pft_fraction)[:, cells[0], cells[1]]  # (pft, cell)
        cell, pft = np.nonzero(f.T > 0)
        return cls(
            pft=pft.astype(np.int64),
            cell=cell.astype(np.int64),
            ilat=np.asarray(cells[0])[cell],
            ilon=np.asarray(cells[1])[cell],
            fraction=f[pft, cell].astype(np.float64),
            n_cells=int(np.asarray(cells[0]).size),
        )

    @property
    def size(self) -> int:
        return int(self.pft.size)

    def first_of_cells(self) -> np.ndarray:
        """Index of each land cell's first pair (every land cell must have one)."""
        first = np.searchsorted(self.cell, np.arange(self.n_cells))
        ok = first < self.size
        if not (ok.all() and (self.cell[first[ok]] == np.arange(self.n_cells)[ok]).all()):
            missing = int(self.n_cells - np.unique(self.cell).size)
            raise ValueError(f"{missing} land cell(s) have no PFT with a fraction > 0")
        return first

    def cell_range(self, first: int, stop: int) -> tuple[slice, PftPairs]:
        """The pairs of land cells ``first`` … ``stop − 1`` (a slice: pairs are ordered by
        cell) and those pairs as their own :class:`PftPairs` (cells counted from ``first``)."""
        p0, p1 = (int(i) for i in np.searchsorted(self.cell, [first, stop]))
        sel = slice(p0, p1)
        return sel, PftPairs(
            pft=self.pft[sel],
            cell=self.cell[sel] - first,
            ilat=self.ilat[sel],
            ilon=self.ilon[sel],
            fraction=self.fraction[sel],
            n_cells=stop - first,
        )

    def to_cells(self, values: np.ndarray) -> np.ndarray:
        """Σ_pft fraction × value: (…, pair) → (…, cell) float32, the FLUXCOM reconstruction.

        A NaN of a pair (a PFT present in the cell) stays NaN in its cell.
        """
        m = sp.csr_matrix(
            (self.fraction, (np.arange(self.size), self.cell)), shape=(self.size, self.n_cells)
        )
        v = np.asarray(values, dtype=np.float64)
        flat = v.reshape(-1, self.size)
        nan = np.isnan(flat)
        out = np.asarray((sp.csr_matrix(np.where(nan, 0.0, flat)) @ m).todense())
        if nan.any():
            out[(sp.csr_matrix(nan.astype(np.float64)) @ m).toarray() > 0] = np.nan
        return out.reshape(*v.shape[:-1], self.n_cells).astype(np.float32)
