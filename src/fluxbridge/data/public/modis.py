"""MODIS reflectances, LST and fAPAR as distributed → daily fields on the canonical grid.

:func:`modis_daily` reads three products (docs/modis.md gives the choices and
their reasons) and returns daily (time, lat, lon) float32 fields for one year:

=========  ==================================================  =====
variable   from                                                units
=========  ==================================================  =====
EVI        MCD43C4 NBAR bands 1, 2, 3 (MODIS EVI formula)      1
NDVI       MCD43C4 bands 1, 2                                  1
NDWI       MCD43C4 bands 2 and 5 (Gao 1996: 0.86 and 1.24 µm)  1
Band4      MCD43C4 band 7 (2.13 µm, the MODIS "MIR")           1
LST_Day    MOD11C2 (or MYD11C2) LST_Day_CMG                    K
LST_Night  MOD11C2 (or MYD11C2) LST_Night_CMG                  K
FPAR       MCD15A2H Fpar_500m                                  1
=========  ==================================================  =====

Quality screening (bits from the products' user guides, see :class:`ModisQuality`)
happens on the native cells; indices are computed there too, then averaged
over each canonical cell by area (:mod:`.modis_regrid`) where at least
``min_coverage`` of the cell has valid data. Composites become daily values by
the rule of :func:`day_to_composite`. One composite (all tiles of one date) is
read at a time, in blocks of rows; the year is returned as dask arrays that
index the stack of per-composite canonical fields, so neither the 0.05° bands
nor the daily year are ever held in memory.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import dask.array as da
import numpy as np
import xarray as xr

from fluxbridge.data.public.modis_io import Granule, bits, decode, open_granule, row_blocks
from fluxbridge.data.public.modis_landcover import PFTS, LandCover, PftPairs
from fluxbridge.data.public.modis_regrid import Aggregator, CellMeans, aggregator_for
from fluxbridge.errors import ConfigError, SchemaError
from fluxbridge.geo.grid import Grid

log = logging.getLogger(__name__)

#: Output variables: (units, long_name).
VARIABLES: dict[str, tuple[str, str]] = {
    "EVI": ("1", "enhanced vegetation index from MCD43C4 NBAR"),
    "NDVI": ("1", "normalized difference vegetation index from MCD43C4 NBAR"),
    "NDWI": ("1", "normalized difference water index (Gao 1996) from MCD43C4 NBAR"),
    "Band4": ("1", "MIR (MODIS band 7, 2.1 um) nadir BRDF-adjusted reflectance, MCD43C4"),
    "LST_Day": ("K", "daytime land surface temperature, MOD11C2"),
    "LST_Night": ("K", "nighttime land surface temperature, MOD11C2"),
    "FPAR": ("1", "fraction of absorbed photosynthetically active radiation, MCD15A2H"),
}

#: MODIS EVI coefficients (Huete et al. 2002; MOD13 ATBD): G, C1, C2, L.
EVI_G, EVI_C1, EVI_C2, EVI_L = 2.5, 6.0, 7.5, 1.0

_NBAR = "Nadir_Reflectance_Band{}"
_ROWS_PER_BLOCK = 200


@dataclass(frozen=True)
class ModisQuality:
    """Quality screening and aggregation settings (defaults: docs/modis.md).

    Attributes
    ----------
    max_brdf_quality : MCD43C4 ``BRDF_Quality`` kept (0 best … 4 all magnitude
        inversions, 5 mostly fill, 255 fill); 2 keeps "relative good quality,
        75 % or more full inversions" and better.
    max_percent_snow : MCD43C4 ``Percent_Snow`` kept (0–100 % of the 0.05° cell).
    max_lst_error : MOD11C2 QC bits 6–7 kept (0: ≤ 1 K, 1: ≤ 2 K, 2: ≤ 3 K, 3: > 3 K);
        bits 0–1 (mandatory QA) must be 00 or 01 (LST produced).
    max_fpar_scf : MCD15A2H ``FparLai_QC`` bits 5–7 kept (0: main algorithm,
        1: main algorithm with saturation; 2–3 back-up algorithm; 4 not produced).
    min_coverage : smallest valid fraction of a canonical cell's area for a mean.
    nearest_days : MCD43C4 (daily files, date = centre of its 16-day window): a
        day without its own file takes the nearest file within this many days.
    ndwi_swir_band : MODIS band of the NDWI's water-absorption channel (5: 1.24 µm, Gao).
    mir_band : MODIS band returned as ``Band4`` (7: 2.13 µm).
    """

    max_brdf_quality: int = 2
    max_percent_snow: float = 50.0
    max_lst_error: int = 1
    max_fpar_scf: int = 1
    min_coverage: float = 0.25
    nearest_days: int = 8
    ndwi_swir_band: int = 5
    mir_band: int = 7

    def __post_init__(self) -> None:
        if not 0.0 < self.min_coverage <= 1.0:
            raise ConfigError(f"ModisQuality.min_coverage={self.min_coverage}; expected (0, 1]")
        for name in ("ndwi_swir_band", "mir_band"):
            if getattr(self, name) not in range(1, 8):
                raise ConfigError(f"ModisQuality.{name}={getattr(self, name)}; expected 1..7")


@dataclass(frozen=True)
class ModisFiles:
    """The files of each product, as downloaded (.hdf) or subset (.nc).

    Attributes
    ----------
    nbar : MCD43C4 v061 (0.05° CMG, daily, date = centre of the 16-day window).
    lst : MOD11C2 v061 (Terra, 8-day, 0.05° CMG); MYD11C2 (Aqua) instead is
        accepted, never both in one list (different overpass times).
    fpar : MCD15A2H v061 (8-day, 500 m sinusoidal tiles), or MOD15A2H/MYD15A2H.
    """

    nbar: tuple[Path, ...] = ()
    lst: tuple[Path, ...] = ()
    fpar: tuple[Path, ...] = ()

    def __post_init__(self) -> None:
        for name in ("nbar", "lst", "fpar"):
            object.__setattr__(self, name, tuple(Path(p) for p in getattr(self, name)))
        platforms = {p.name[:3] for p in self.lst if re.match(r"M[OY]D11", p.name)}
        if len(platforms) > 1:
            raise ConfigError(
                "ModisFiles.lst mixes MOD11 (Terra) and MYD11 (Aqua) files; give one platform"
            )


# ------------------------------------------------------------------ quality + derived fields


def _nbar_fields(g: Granule, rows: slice, t: int, q: ModisQuality) -> dict[str, np.ndarray]:
    """EVI, NDVI, NDWI, Band4 of one block of an MCD43C4 granule (NaN where screened out)."""
    quality = g.read("BRDF_Quality", rows, t)
    snow = g.read("Percent_Snow", rows, t)
    good = (quality <= q.max_brdf_quality) & (snow <= q.max_percent_snow)

    def band(b: int) -> np.ndarray:
        name = _NBAR.format(b)
        values = decode(g.read(name, rows, t), g.attrs(name))
        return np.where(good, values, np.nan)

    red, nir, blue = band(1), band(2), band(3)
    swir, mir = band(q.ndwi_swir_band), band(q.mir_band)
    with np.errstate(divide="ignore", invalid="ignore"):
        ndvi = (nir - red) / (nir + red)
        evi_den = nir + EVI_C1 * red - EVI_C2 * blue + EVI_L
        evi = EVI_G * (nir - red) / evi_den
        ndwi = (nir - swir) / (nir + swir)
    # the indices are bounded by construction; outside ±1 the inputs are degenerate
    # (a near-zero EVI denominator over snow or water, reflectances summing to 0)
    for index in (ndvi, evi, ndwi):
        index[~(np.abs(index) <= 1.0)] = np.nan
    evi[~(evi_den > 0)] = np.nan
    return {"EVI": evi, "NDVI": ndvi, "NDWI": ndwi, "Band4": mir}


def _lst_fields(g: Granule, rows: slice, t: int, q: ModisQuality) -> dict[str, np.ndarray]:
    """LST_Day, LST_Night (K) of one block of a MOD11C2/MYD11C2 granule."""
    out = {}
    for name, lst, qc_name in (
        ("LST_Day", "LST_Day_CMG", "QC_Day"),
        ("LST_Night", "LST_Night_CMG", "QC_Night"),
    ):
        qc = g.read(qc_name, rows, t)
        good = (bits(qc, 0, 2) <= 1) & (bits(qc, 6, 2) <= q.max_lst_error)
        out[name] = np.where(good, decode(g.read(lst, rows, t), g.attrs(lst)), np.nan)
    return out


def _fpar_fields(g: Granule, rows: slice, t: int, q: ModisQuality) -> dict[str, np.ndarray]:
    """FPAR (1) of one block of an MCD15A2H granule; 249–254 (non-vegetated codes) are invalid."""
    qc = g.read("FparLai_QC", rows, t)
    good = bits(qc, 5, 3) <= q.max_fpar_scf
    return {
        "FPAR": np.where(good, decode(g.read("Fpar_500m", rows, t), g.attrs("Fpar_500m")), np.nan)
    }


FieldReader = Callable[[Granule, slice, int, ModisQuality], dict[str, np.ndarray]]


@dataclass(frozen=True)
class Product:
    """One MODIS product: its SDS, how to screen it, how its dates map to days."""

    name: str
    sds: tuple[str, ...]
    outputs: tuple[str, ...]
    fields: FieldReader
    #: ``period``: a date is the first day of an 8-day composite; ``centre``: a daily file.
    dating: str = "period"
    sds_for: Callable[[ModisQuality], tuple[str, ...]] | None = field(default=None)

    def required_sds(self, q: ModisQuality) -> tuple[str, ...]:
        return self.sds + (self.sds_for(q) if self.sds_for else ())


NBAR = Product(
    "MCD43C4",
    ("BRDF_Quality", "Percent_Snow", *(_NBAR.format(b) for b in (1, 2, 3))),
    ("EVI", "NDVI", "NDWI", "Band4"),
    _nbar_fields,
    dating="centre",
    sds_for=lambda q: (_NBAR.format(q.ndwi_swir_band), _NBAR.format(q.mir_band)),
)
LST = Product(
    "MOD11C2",
    ("LST_Day_CMG", "QC_Day", "LST_Night_CMG", "QC_Night"),
    ("LST_Day", "LST_Night"),
    _lst_fields,
)
FPAR = Product("MCD15A2H", ("Fpar_500m", "FparLai_QC"), ("FPAR",), _fpar_fields)


# ------------------------------------------------------------------ composites → days


def day_to_composite(
    days: Sequence[dt.date], dates: Sequence[dt.date], dating: str, nearest_days: int = 8
) -> np.ndarray:
    """Index into ``dates`` of the composite each day takes (−1: none).

    * ``period`` (MOD11C2, MCD15A2H): a composite dated D covers D … D+7, cut at
      31 December (the last composite of a year is 5 or 6 days long; the next
      year restarts on 1 January). A day takes the composite whose period holds
      it: a step function that keeps each composite's mean and moves no
      information across periods.
    * ``centre`` (MCD43C4 v061, produced daily for the centre of a moving
      16-day window): a day takes the file of the nearest date within
      ``nearest_days`` (ties: the earlier), so daily files map one to one and
      a sparser download (e.g. every 8th day) fills the days between.
    """
    order = np.argsort(np.asarray(dates, dtype="datetime64[D]"), kind="stable")
    sorted_dates = np.asarray(dates, dtype="datetime64[D]")[order]
    d = np.asarray(days, dtype="datetime64[D]")
    out = np.full(d.size, -1, dtype=np.int64)
    if sorted_dates.size == 0:
        return out
    if dating == "period":
        k = np.searchsorted(sorted_dates, d, side="right") - 1
        ok = k >= 0
        start = sorted_dates[np.clip(k, 0, None)]
        year_end = (start.astype("datetime64[Y]") + 1).astype("datetime64[D]") - 1
        end = np.minimum(start + 7, year_end)
        ok &= d <= end
        out[ok] = order[k[ok]]
        return out
    if dating == "centre":
        k = np.searchsorted(sorted_dates, d, side="left")
        before = np.clip(k - 1, 0, sorted_dates.size - 1)
        after = np.clip(k, 0, sorted_dates.size - 1)
        dist_before = np.abs((d - sorted_dates[before]).astype(np.int64))
        dist_after = np.abs((sorted_dates[after] - d).astype(np.int64))
        pick = np.where(dist_after < dist_before, after, before)
        dist = np.minimum(dist_before, dist_after)
        ok = dist <= nearest_days
        out[ok] = order[pick[ok]]
        return out
    raise ValueError(f"dating '{dating}'; expected 'period' or 'centre'")


# ------------------------------------------------------------------ reading a product


@dataclass
class _Entry:
    path: Path
    time_index: int


def _index_files(
    paths: Sequence[Path], product: Product, q: ModisQuality
) -> dict[dt.date, list[_Entry]]:
    """Composite date → the (file, time index) pairs holding it; checks the SDS of each file."""
    by_date: dict[dt.date, list[_Entry]] = {}
    for path in paths:
        g = open_granule(path)
        try:
            missing = [s for s in product.required_sds(q) if s not in g.names()]
            if missing:
                raise SchemaError(
                    path,
                    missing[0],
                    f"SDS missing; a {product.name} file needs {list(product.required_sds(q))}",
                )
            for t, date in enumerate(g.dates):
                by_date.setdefault(date, []).append(_Entry(path, t))
        finally:
            g.close()
    return by_date


@dataclass(frozen=True)
class PerPft:
    """Per-PFT means: the MCD12C1 file and the (PFT, land cell) pairs to return."""

    landcover: Path
    pairs: PftPairs


class _PftSums:
    """Per-PFT running sums of one composite: PFT-weighted values and each PFT's area."""

    def __init__(self, grid: Grid, outputs: Sequence[str], pairs: PftPairs) -> None:
        self.pfts = sorted({int(p) for p in pairs.pft})
        self.area = {p: CellMeans(grid) for p in self.pfts}
        self.sums = {v: {p: CellMeans(grid) for p in self.pfts} for v in outputs}
        self.pairs = pairs

    def add(self, agg: Aggregator, fields: dict[str, np.ndarray], rows: slice, w: np.ndarray):
        for p in self.pfts:
            if not (w[p] > 0).any():
                continue  # no pixel of this PFT in the block
            agg.add(self.area[p], np.zeros(w[p].shape), rows, weight=w[p])
            for name, values in fields.items():
                agg.add(self.sums[name][p], values, rows, weight=w[p])

    def means(self, name: str, all_cover: np.ndarray, min_coverage: float) -> np.ndarray:
        """(n_pairs,) float32: the PFT's mean where its valid pixels cover ≥ ``min_coverage``
        of its area in the cell, else the all-cover cell mean ``all_cover`` (lat, lon)."""
        pairs = self.pairs
        out = all_cover[pairs.ilat, pairs.ilon].astype(np.float32)
        for p in self.pfts:
            sel = np.flatnonzero(pairs.pft == p)
            i, j = pairs.ilat[sel], pairs.ilon[sel]
            acc, area = self.sums[name][p], self.area[p].coverage[i, j]
            cov = acc.coverage[i, j]
            ok = (cov > 0) & (cov >= min_coverage * area)
            out[sel[ok]] = acc.weighted_sum[i, j][ok] / cov[ok]
        return out


def product_composites(
    paths: Sequence[Path],
    product: Product,
    grid: Grid,
    days: Sequence[dt.date],
    q: ModisQuality,
    per_pft: PerPft | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Canonical-grid composites of ``product`` needed for ``days``, and each day's index.

    Returns ({output: (n_composites, nlat, nlon) float32}, day → composite index,
    −1 for none). Only composites some day takes are read, one at a time. With
    ``per_pft`` the stacks are (n_composites, n_pairs): per (PFT, cell) pair the
    mean over the MODIS pixels weighted by area and by the PFT's share of the
    MCD12C1 pixel holding each pixel's centre (:class:`_PftSums`).
    """
    by_date = _index_files(paths, product, q)
    dates = sorted(by_date)
    index = day_to_composite(days, dates, product.dating, q.nearest_days)
    used = sorted({int(i) for i in index if i >= 0})
    remap = np.full(len(dates) + 1, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    field_shape = grid.shape if per_pft is None else (per_pft.pairs.size,)
    stacks = {v: np.full((len(used), *field_shape), np.nan, np.float32) for v in product.outputs}
    aggregators: dict[object, Aggregator] = {}
    landcover = None if per_pft is None else LandCover(per_pft.landcover)
    try:
        for k, i in enumerate(used):
            sums = {v: CellMeans(grid) for v in product.outputs}
            pft_sums = None if per_pft is None else _PftSums(grid, product.outputs, per_pft.pairs)
            for entry in by_date[dates[i]]:
                g = open_granule(entry.path)
                try:
                    if g.georef not in aggregators:
                        aggregators[g.georef] = aggregator_for(g.georef, grid)
                    agg = aggregators[g.georef]
                    for rows in row_blocks(g.georef.ny, _ROWS_PER_BLOCK):
                        fields = product.fields(g, rows, entry.time_index, q)
                        for name, values in fields.items():
                            agg.add(sums[name], values, rows)
                        if pft_sums is not None and landcover is not None:
                            weights = (
                                landcover.block_weights(rows)  # the CMG: cached
                                if g.georef == landcover.georef
                                else landcover.weights_at(*agg.centres(rows))
                            )
                            pft_sums.add(agg, fields, rows, weights)
                finally:
                    g.close()
            for name, acc in sums.items():
                cell_mean = acc.mean(q.min_coverage)
                stacks[name][k] = (
                    cell_mean
                    if pft_sums is None
                    else pft_sums.means(name, cell_mean, q.min_coverage)
                )
            log.info(
                "%s %s: composite read (%d file(s))",
                product.name,
                dates[i],
                len(by_date[dates[i]]),
            )
    finally:
        if landcover is not None:
            landcover.close()
    return stacks, np.where(index >= 0, remap[np.clip(index, 0, None)], -1)


def _daily(stack: np.ndarray, index: np.ndarray) -> da.Array:
    """Daily dask array: day t is ``stack[index[t]]``, all NaN where index is −1."""
    nan = np.full((1, *stack.shape[1:]), np.nan, np.float32)
    padded = da.from_array(np.concatenate([stack, nan]), chunks=(1, *stack.shape[1:]))
    return padded[np.where(index >= 0, index, stack.shape[0])]


def modis_daily(
    files: ModisFiles,
    grid: Grid,
    year: int,
    quality: ModisQuality | None = None,
    per_pft: PerPft | None = None,
) -> xr.Dataset:
    """Daily EVI, NDVI, NDWI, Band4 (1), LST_Day, LST_Night (K) and FPAR (1) for ``year``.

    Parameters
    ----------
    files : the MODIS files (any may hold dates outside ``year``; those whose
        composites no day of ``year`` takes are not read).
    grid : the canonical grid.
    year : calendar year; the result has one time step per day (00:00).
    quality : screening and aggregation settings (default :class:`ModisQuality`).

    per_pft : per-PFT means (MCD12C1 file and (PFT, cell) pairs): the variables are
        then (time, pair), a PFT without enough valid pixels in a cell taking the
        all-cover cell mean (docs/modis.md "Per-PFT fields").

    Returns
    -------
    Dataset (time, lat, lon) — or (time, pair) — of float32 dask arrays, NaN where no
    valid data.
    """
    q = quality or ModisQuality()
    for name in ("nbar", "lst", "fpar"):
        if not getattr(files, name):
            raise ConfigError(f"ModisFiles.{name} is empty; the MODIS drivers need every product")
    days = [
        dt.date(year, 1, 1) + dt.timedelta(days=i)
        for i in range((dt.date(year + 1, 1, 1) - dt.date(year, 1, 1)).days)
    ]
    time = np.asarray(days, dtype="datetime64[ns]")
    coords: dict[str, object] = {"time": ("time", time)}
    dims: tuple[str, ...] = ("time", "lat", "lon")
    if per_pft is None:
        coords.update(grid.coords())
    else:
        pairs = per_pft.pairs
        dims = ("time", "pair")
        coords["pair_pft"] = ("pair", np.array(PFTS, dtype=object)[pairs.pft])
        coords["pair_cell"] = ("pair", pairs.cell)
    variables: dict[str, xr.DataArray] = {}
    for product, paths in ((NBAR, files.nbar), (LST, files.lst), (FPAR, files.fpar)):
        stacks, index = product_composites(paths, product, grid, days, q, per_pft)
        if (index < 0).all():
            log.warning(
                "%s: no file covers any day of %d; its variables are all NaN", product.name, year
            )
        for name, stack in stacks.items():
            units, long_name = VARIABLES[name]
            variables[name] = xr.DataArray(
                _daily(stack, index),
                dims=dims,
                coords=coords,
                attrs={"units": units, "long_name": long_name, "source_product": product.name},
            )
    ds = xr.Dataset({v: variables[v] for v in VARIABLES}, coords=coords)
    ds.attrs["min_coverage"] = q.min_coverage
    return ds
