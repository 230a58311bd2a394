"""Per-PFT public drivers: MCD12C1 fractions for grid.nc, base quantities and drivers per
(PFT, cell) pair, and their reconstruction Σ_pft fraction × driver at each land cell.

With ``drivers.modis.landcover`` (public drivers) prepare works as FLUXCOM did
(Upton et al. Sect. 2.1, after Jung et al. 2019 and Tramontana et al. 2016): the
MODIS quantities are means over the pixels of each PFT in a cell
(:func:`fluxbridge.data.public.modis.modis_daily` with ``per_pft``), the MSC-based
drivers are computed per PFT, and a cell's driver is the PFT-fraction-weighted sum.
The ERA5/WAI quantities (Tair, Rg, precipitation, WAI) do not depend on the PFT and
stay at the cells. The layout is (PFT, cell) pairs with a fraction > 0
(:class:`~fluxbridge.data.public.modis_landcover.PftPairs`) rather than a dense
``pft`` dimension: about 3–4 PFTs per cell instead of 11.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr
from numpy.typing import ArrayLike

from fluxbridge.data.canonical import DRIVERS
from fluxbridge.data.public.drivers import MSC_INPUTS, base_year, compose_year
from fluxbridge.data.public.modis_io import date_from_name
from fluxbridge.data.public.modis_landcover import PFTS, PftPairs, landcover_fractions
from fluxbridge.errors import SchemaError
from fluxbridge.geo.grid import Grid

#: Base quantities that do not depend on the PFT (kept at the land cells).
CELL_INPUTS = ("WAI", "Tair", "Rg", "Precip")
#: Pairs composed at once in :func:`compose_year_per_pft` (10 drivers × 366 days × this
#: many float32 values ≈ 300 MB).
MAX_PAIRS_PER_CHUNK = 20_000


def landcover_file(folder: Path, year: int) -> Path:
    """The one MCD12C1 file of ``year`` (``MCD12C1.AYYYY001…``; .hdf) under ``folder``."""
    found = sorted(
        p
        for p in Path(folder).rglob("MCD12C1.A*")
        if p.is_file()
        and p.suffix.lower() == ".hdf"
        and (d := date_from_name(p))
        and d.year == year
    )
    if len(found) != 1:
        raise SchemaError(
            folder,
            None,
            f"expected one MCD12C1 file of {year} (MCD12C1.A{year}001.*.hdf), found {len(found)}"
            f"{': ' + ', '.join(p.name for p in found) if found else ''}",
        )
    return found[0]


def landcover_static(
    path: Path, grid: Grid, min_land_fraction: float
) -> tuple[xr.DataArray, xr.DataArray]:
    """grid.nc's land fraction and PFT fractions from one MCD12C1 file.

    Cells with less land than ``min_land_fraction`` are ocean (as with the ERA5 mask);
    their PFT fractions are 0.
    """
    land, pft = landcover_fractions(path, grid)
    land = land.where(land >= min_land_fraction, 0.0)
    pft = pft.where(land > 0, 0.0)
    return land.assign_attrs(units="1"), pft.assign_attrs(units="1")


def base_year_per_pft(
    era5: xr.Dataset, modis: xr.Dataset, rpot: np.ndarray, wai: np.ndarray, pairs: PftPairs
) -> xr.Dataset:
    """:func:`~fluxbridge.data.public.drivers.base_year` per (PFT, cell) pair.

    ``modis``: (time, pair) fields of ``modis_daily(..., per_pft=...)``; ``era5``,
    ``rpot``, ``wai``: (time, cell) at the land cells. Returns the MODIS-based
    quantities on (time, pair) and :data:`CELL_INPUTS` on (time, cell).
    """
    cell = pairs.cell
    per_pair = base_year(era5.isel(cell=cell), modis, rpot[:, cell], wai[:, cell], None)
    first = pairs.first_of_cells()
    out = per_pair[[n for n in per_pair.data_vars if n not in CELL_INPUTS]].rename(cell="pair")
    for name in CELL_INPUTS:
        out[name] = (("time", "cell"), per_pair[name].values[:, first])
    return out.assign_coords(
        pair_pft=("pair", np.array(PFTS, dtype=object)[pairs.pft]),
        pair_cell=("pair", pairs.cell.astype(np.int32)),
        pair_fraction=("pair", pairs.fraction),
    )


def compose_year_per_pft(
    base: xr.Dataset, cycles: Mapping[str, ArrayLike], pairs: PftPairs
) -> xr.Dataset:
    """The 10 drivers (time, cell) of one year: composed per pair, then Σ fraction × driver.

    ``base``: ``WAI``, ``Tair`` on (time, cell) and ``Band4`` on (time, pair);
    ``cycles``: every :data:`MSC_INPUTS` cycle, ``WAI`` on (slot, cell), the others on
    (slot, pair) (arrays or lazily read variables: read one chunk of pairs at a time).
    A driver that does not depend on the PFT (WAI2, Tair, AMP_MSC_WAI) comes out as
    itself, the fractions of a cell summing to 1.
    """
    days = base["time"].values
    n_cells = pairs.n_cells
    out = {d.name: np.empty((days.size, n_cells), np.float32) for d in DRIVERS}
    cells_per_chunk = max(1, MAX_PAIRS_PER_CHUNK * n_cells // max(pairs.size, 1))
    for first in range(0, n_cells, cells_per_chunk):
        stop = min(first + cells_per_chunk, n_cells)
        sel, sub = pairs.cell_range(first, stop)
        at_pairs = sub.cell + first  # each pair's land cell

        def cyc(name: str, sel: slice = sel, at_pairs: np.ndarray = at_pairs) -> np.ndarray:
            values = cycles[name]
            if name == "WAI":
                return np.asarray(values)[:, at_pairs]
            return np.asarray(values[:, sel])

        daily = xr.Dataset(
            {
                "WAI": (("time", "cell"), base["WAI"].values[:, at_pairs]),
                "Tair": (("time", "cell"), base["Tair"].values[:, at_pairs]),
                "Band4": (("time", "cell"), base["Band4"].values[:, sel]),
            },
            coords={"time": days},
        )
        composed = compose_year(daily, {name: cyc(name) for name in MSC_INPUTS})
        for d in DRIVERS:
            out[d.name][:, first:stop] = sub.to_cells(composed[d.name].values)
    return xr.Dataset(
        {
            d.name: (("time", "cell"), out[d.name], {"units": d.units, "long_name": d.long_name})
            for d in DRIVERS
        },
        coords={"time": days},
    )
