"""MODIS at the tower pixel from the ORNL DAAC MODIS/VIIRS subset service (site subsets).

The ORNL DAAC Land Product Subsets web service (Collection 6/6.1; ORNL DAAC 2018,
doi:10.3334/ORNLDAAC/1557) returns, per product, band and site, a window of
``nrows`` × ``ncols`` native pixels centred on the pixel holding the requested
point, one row of pixel values per composite date. Its JSON (``header``,
``xllcorner``, ``yllcorner``, ``cellsize``, ``nrows``, ``ncols``, ``band``,
``units``, ``scale``, ``latitude``, ``longitude`` and ``subset`` records with
``modis_date``, ``calendar_date``, ``band``, ``tile``, ``proc_date``, ``data``)
is what the MODISTools R client (``mt_subset``) writes as a long CSV, one row per
date, band and pixel::

    xllcorner,yllcorner,cellsize,nrows,ncols,band,units,scale,latitude,longitude,
    site,product,start,end,complete,modis_date,calendar_date,tile,proc_date,pixel,value

``value`` is the stored integer (the service does not scale), ``scale`` the
band's scale factor ("Not Scaled" for QC bands), ``pixel`` 1 … nrows·ncols in
row-major order from the north-west corner. This is the layout read here (any
number of files per folder, any number of bands per file; extra columns are
ignored). The "statistics" files of the subset tools are not read: they are
already screened with ORNL's own quality rules and averaged over the whole
window, and this reader applies the rules of :mod:`.modis` instead.

Products (Collection 6.1, native resolution; band attributes from the user guides):

* MCD43A4 (500 m, daily, centre of a 16-day window) ``Nadir_Reflectance_Band1..7``
  (scale 1e-4, fill 32767) with ``BRDF_Albedo_Band_Mandatory_Quality_Band<N>``
  (0 full inversion, 1 magnitude inversion, 255 fill) → EVI, NDVI, NDWI, Band4;
* MOD11A2 (or MYD11A2; 1 km, 8-day) ``LST_Day_1km``/``LST_Night_1km`` (scale 0.02 K,
  fill 0, valid 7500–65535) with ``QC_Day``/``QC_Night`` → LST_Day, LST_Night (K);
* MCD15A2H (or MOD15A2H/MYD15A2H; 500 m, 8-day) ``Fpar_500m`` (scale 0.01, valid
  0–100, 249–255 non-vegetated/fill codes) with ``FparLai_QC`` → FPAR.

Quality screening and indices are those of :mod:`.modis` (its field functions run
on the window through :class:`_WindowGranule`); MCD43A4 has no ``BRDF_Quality`` or
``Percent_Snow``: a pixel whose bands used are all full inversions counts as
quality 0 (MCD43C4's "100 % full inversions"), one with any magnitude inversion as
4 ("all magnitude inversions"), and snow is not screened (docs/modis.md). The tower
value of each composite is the mean of the valid pixels in the ``window`` ×
``window`` block centred on the tower pixel, where at least ``min_coverage`` of
the block is valid (``window=1``: the tower pixel alone). Composites become days
by :func:`.modis.day_to_composite`.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fluxbridge.data.public import modis
from fluxbridge.errors import ConfigError, SchemaError

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("band", "scale", "nrows", "ncols", "product", "site", "pixel", "value")
#: The QC code a date without a QC row gets: every bit set fails every screen of modis.py.
_MISSING_QC = 255


@dataclass(frozen=True)
class Band:
    """A subset band: its stored-value attributes as :func:`.modis_io.decode` reads them."""

    name: str
    scale: float | None = None  # None: a QC band (not scaled)
    fill: float | None = None
    valid: tuple[float, float] | None = None

    def attrs(self, scale: float | None) -> dict[str, object]:
        out: dict[str, object] = {}
        if scale is not None:
            out["scale_factor"] = scale
        if self.fill is not None:
            out["_FillValue"] = self.fill
        if self.valid is not None:
            out["valid_range"] = self.valid
        return out

    @property
    def missing(self) -> float:
        """The raw value of a date this band has no row for (screened out downstream)."""
        if self.scale is None:
            return float(_MISSING_QC)
        assert self.fill is not None
        return float(self.fill)


def _nbar(b: int) -> Band:
    return Band(f"Nadir_Reflectance_Band{b}", 1e-4, 32767, (0, 32766))


def _nbar_qa(b: int) -> Band:
    return Band(f"BRDF_Albedo_Band_Mandatory_Quality_Band{b}")


@dataclass(frozen=True)
class SiteProduct:
    """A subset product: names it goes by, its bands by the SDS name :mod:`.modis` reads."""

    names: tuple[str, ...]
    product: modis.Product
    bands: dict[str, Band]


NBAR = SiteProduct(
    ("MCD43A4",),
    modis.NBAR,
    {
        **{modis._NBAR.format(b): _nbar(b) for b in range(1, 8)},
        **{f"QA{b}": _nbar_qa(b) for b in range(1, 8)},
    },
)
LST = SiteProduct(
    ("MOD11A2", "MYD11A2"),
    modis.LST,
    {
        "LST_Day_CMG": Band("LST_Day_1km", 0.02, 0, (7500, 65535)),
        "LST_Night_CMG": Band("LST_Night_1km", 0.02, 0, (7500, 65535)),
        "QC_Day": Band("QC_Day"),
        "QC_Night": Band("QC_Night"),
    },
)
FPAR = SiteProduct(
    ("MCD15A2H", "MOD15A2H", "MYD15A2H"),
    modis.FPAR,
    {"Fpar_500m": Band("Fpar_500m", 0.01, 255, (0, 100)), "FparLai_QC": Band("FparLai_QC")},
)
PRODUCTS = (NBAR, LST, FPAR)


def product_of(name: str) -> SiteProduct | None:
    """The :class:`SiteProduct` a subset's ``product`` value names (None: not used here)."""
    for p in PRODUCTS:
        if name.upper() in p.names:
            return p
    return None


# ------------------------------------------------------------------ reading the CSV files


@dataclass
class SiteSubset:
    """One product at one site: raw band windows (date, row, col), rows from the north."""

    site: str
    product: SiteProduct
    product_name: str
    latitude: float
    longitude: float
    dates: tuple[dt.date, ...]
    raw: dict[str, np.ndarray]  # subset band name → (date, nrows, ncols) float64, NaN: no row
    scales: dict[str, float | None]
    source: str


def _scale(value: object, path: Path, band: str) -> float | None:
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        if text.lower() in ("not scaled", "na", "nan", "none", ""):
            return None
        raise SchemaError(path, "scale", f"{text!r} for band {band}; expected a number") from None


def _dates(table: pd.DataFrame, path: Path) -> pd.Series:
    if "calendar_date" in table:
        parsed = pd.to_datetime(table["calendar_date"], format="%Y-%m-%d", errors="coerce")
        column = "calendar_date"
    elif "modis_date" in table:
        parsed = pd.to_datetime(
            table["modis_date"].astype(str).str[1:], format="%Y%j", errors="coerce"
        )
        column = "modis_date"
    else:
        raise SchemaError(path, None, "no calendar_date or modis_date column")
    bad = parsed.isna()
    if bad.any():
        value = table[column][bad].iloc[0]
        raise SchemaError(path, column, f"{value!r} is not a date (YYYY-MM-DD or AYYYYDDD)")
    return parsed.dt.date


def read_subset_csv(path: Path) -> list[SiteSubset]:
    """The (site, product) subsets of one long CSV; products not used here are skipped."""
    path = Path(path)
    try:
        table = pd.read_csv(path, dtype={"site": str, "band": str, "product": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise SchemaError(path, None, f"not a readable CSV ({exc})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise SchemaError(
            path,
            missing[0],
            f"column missing; an ORNL DAAC subset CSV has {list(REQUIRED_COLUMNS)}",
        )
    table["date"] = _dates(table, path)
    value = pd.to_numeric(table["value"], errors="coerce")
    if value.isna().any():
        raise SchemaError(
            path, "value", f"{table['value'][value.isna()].iloc[0]!r} is not a number"
        )
    table["value"] = value
    if "proc_date" in table:
        # A reprocessed date appears twice; the latest processing wins (as ORNL's own tables).
        table = table.sort_values("proc_date", kind="stable")
    table = table.drop_duplicates(["site", "product", "band", "date", "pixel"], keep="last")
    out = []
    for (site, product_name), group in table.groupby(["site", "product"], sort=True):
        product = product_of(str(product_name))
        if product is None:
            log.info("%s: product %s is not used for tower drivers; skipped", path, product_name)
            continue
        out.append(_subset(path, str(site), str(product_name), product, group))
    return out


def _subset(
    path: Path, site: str, name: str, product: SiteProduct, group: pd.DataFrame
) -> SiteSubset:
    shape = set(zip(group["nrows"], group["ncols"], strict=True))
    if len(shape) != 1:
        raise SchemaError(
            path, "nrows", f"site {site} {name}: several window sizes {sorted(shape)}"
        )
    nrows, ncols = (int(v) for v in shape.pop())
    if nrows % 2 == 0 or ncols % 2 == 0:
        raise SchemaError(
            path,
            "nrows",
            f"site {site} {name}: {nrows} x {ncols} window; expected odd sizes "
            "(the service centres the window on the site's pixel)",
        )
    pixel = group["pixel"].to_numpy()
    if pixel.min() < 1 or pixel.max() > nrows * ncols:
        raise SchemaError(path, "pixel", f"site {site} {name}: pixel outside 1..{nrows * ncols}")
    dates = tuple(sorted(set(group["date"])))
    date_index = {d: i for i, d in enumerate(dates)}
    wanted = {b.name: b for b in product.bands.values()}
    raw: dict[str, np.ndarray] = {}
    scales: dict[str, float | None] = {}
    for band_name, rows in group.groupby("band"):
        band = wanted.get(str(band_name))
        if band is None:
            continue
        scale = _scale(rows["scale"].iloc[0], path, band.name)
        if band.scale is not None and (scale is None or not math.isclose(scale, band.scale)):
            raise SchemaError(
                path, "scale", f"band {band.name} has scale {scale}; {name} has {band.scale}"
            )
        cube = np.full((len(dates), nrows, ncols), np.nan)
        t = rows["date"].map(date_index).to_numpy()
        k = rows["pixel"].to_numpy() - 1
        cube[t, k // ncols, k % ncols] = rows["value"].to_numpy(np.float64)
        raw[band.name], scales[band.name] = cube, scale
    first = group.iloc[0]
    lat = float(first["latitude"]) if "latitude" in group else float("nan")
    lon = float(first["longitude"]) if "longitude" in group else float("nan")
    return SiteSubset(site, product, name, lat, lon, dates, raw, scales, str(path))


def read_subset_folder(folder: Path) -> list[SiteSubset]:
    """Every (site, product) subset of the ``*.csv`` files under ``folder`` (recursively).

    Files without the subset columns are an error (one line naming the file); the
    ORNL "statistics" tables are recognised by name and skipped.
    """
    found: list[SiteSubset] = []
    for path in sorted(Path(folder).rglob("*.csv")):
        if "statistics" in path.name.lower():
            log.info("%s: an ORNL statistics table, not read (docs/modis.md)", path)
            continue
        found.extend(read_subset_csv(path))
    return found


# ------------------------------------------------------------------ window → composite values


class _WindowGranule:
    """A :class:`.modis_io.Granule` view of one subset: what :mod:`.modis`'s screens read."""

    def __init__(self, subset: SiteSubset, q: modis.ModisQuality) -> None:
        self.subset = subset
        self.arrays: dict[str, np.ndarray] = {}
        self._attrs: dict[str, dict[str, object]] = {}
        n = len(subset.dates)
        shape = next(iter(subset.raw.values())).shape if subset.raw else (n, 1, 1)
        for sds, band in subset.product.bands.items():
            if band.name not in subset.raw:
                continue
            cube = subset.raw[band.name]
            self.arrays[sds] = np.where(np.isnan(cube), band.missing, cube)
            self._attrs[sds] = band.attrs(subset.scales[band.name])
        if subset.product is NBAR:
            used = (1, 2, 3, q.ndwi_swir_band, q.mir_band)
            absent = [b for b in used if f"QA{b}" not in self.arrays]
            if absent:
                raise SchemaError(
                    subset.source,
                    _nbar_qa(absent[0]).name,
                    f"site {subset.site} {subset.product_name}: band missing; the "
                    "reflectances used need their mandatory quality bands",
                )
            qa = np.zeros(shape)
            for b in used:
                qa = np.maximum(qa, self.arrays[f"QA{b}"])
            # MCD43C4's scale: 0 = all full inversions, 4 = all magnitude inversions.
            self.arrays["BRDF_Quality"] = np.select([qa == 0, qa == 1], [0.0, 4.0], 255.0)
            self.arrays["Percent_Snow"] = np.zeros(shape)  # not in MCD43A4 (see docstring)
            self._attrs["BRDF_Quality"] = self._attrs["Percent_Snow"] = {}

    def names(self) -> set[str]:
        return set(self.arrays)

    def attrs(self, name: str) -> dict[str, object]:
        return self._attrs[name]

    def read(self, name: str, rows: slice, time_index: int = 0) -> np.ndarray:
        return self.arrays[name][time_index][rows]


def window_means(
    subset: SiteSubset, q: modis.ModisQuality, window: int = 3
) -> dict[str, np.ndarray]:
    """Per composite date, the tower value of each output of the subset's product.

    Returns {output: (date,) float64}: the mean of the valid pixels (after the
    screens and indices of :mod:`.modis`) in the ``window`` × ``window`` block
    centred on the tower pixel, NaN where fewer than ``q.min_coverage`` of the
    block is valid. Units as :data:`.modis.VARIABLES`.
    """
    if window < 1 or window % 2 == 0:
        raise ConfigError(f"modis subsets window={window}; expected an odd number >= 1")
    g = _WindowGranule(subset, q)
    needed = [s for s in subset.product.product.required_sds(q) if s not in g.names()]
    if needed:
        band = subset.product.bands.get(needed[0])
        raise SchemaError(
            subset.source,
            band.name if band else needed[0],
            f"site {subset.site} {subset.product_name}: band missing (needed for "
            f"{list(subset.product.product.outputs)})",
        )
    nrows, ncols = next(iter(subset.raw.values())).shape[1:]
    if window > min(nrows, ncols):
        raise SchemaError(
            subset.source,
            "nrows",
            f"site {subset.site} {subset.product_name}: {nrows} x {ncols} window is smaller "
            f"than the {window} x {window} block asked for",
        )
    r, c, h = nrows // 2, ncols // 2, window // 2
    block = (slice(r - h, r + h + 1), slice(c - h, c + h + 1))
    out = {v: np.full(len(subset.dates), np.nan) for v in subset.product.product.outputs}
    for t in range(len(subset.dates)):
        for name, values in subset.product.product.fields(g, slice(None), t, q).items():
            cut = values[block]
            valid = np.isfinite(cut)
            if valid.mean() >= q.min_coverage and valid.any():
                out[name][t] = float(cut[valid].mean())
    return out


def site_daily(
    subsets: Iterable[SiteSubset],
    days: Sequence[dt.date] | pd.DatetimeIndex,
    quality: modis.ModisQuality | None = None,
    window: int = 3,
) -> dict[str, np.ndarray]:
    """Daily EVI, NDVI, NDWI, Band4 (1), LST_Day, LST_Night (K), FPAR (1) at one tower.

    ``subsets``: one per product (all three needed); composites map to ``days``
    by :func:`.modis.day_to_composite` (MCD43A4: nearest daily file within
    ``nearest_days``; 8-day products: the composite whose period holds the day).
    Returns {variable: (day,) float64}, NaN where no valid composite.
    """
    q = quality or modis.ModisQuality()
    day_list = [pd.Timestamp(d).date() for d in days]
    by_product: dict[str, SiteSubset] = {}
    for s in subsets:
        key = s.product.names[0]
        if key in by_product:
            raise SchemaError(
                s.source,
                "product",
                f"site {s.site}: {s.product_name} given twice ({by_product[key].source}); "
                "give one platform per product",
            )
        by_product[key] = s
    absent = [p.names[0] for p in PRODUCTS if p.names[0] not in by_product]
    if absent:
        raise SchemaError("modis subsets", "product", f"no {absent} subset for this site")
    out: dict[str, np.ndarray] = {}
    for s in by_product.values():
        values = window_means(s, q, window)
        index = modis.day_to_composite(day_list, s.dates, s.product.product.dating, q.nearest_days)
        for name, series in values.items():
            padded = np.append(series, np.nan)
            out[name] = padded[np.where(index >= 0, index, series.size)]
    return {v: out[v] for v in modis.VARIABLES}


# ------------------------------------------------------------------ subsets → towers

#: Largest distance (km) between a subset's centre and a tower it is matched to by position.
MAX_MATCH_KM = 1.0


def match_towers(
    subsets: Iterable[SiteSubset], sites: Sequence[str], lat: np.ndarray, lon: np.ndarray
) -> dict[str, list[SiteSubset]]:
    """Subsets by tower: the subset's ``site`` equal to the tower id (case-insensitive),
    else the nearest tower within :data:`MAX_MATCH_KM` of the subset's latitude/longitude.

    A subset matching no tower is logged and left out.
    """
    ids = {s.upper(): s for s in sites}
    out: dict[str, list[SiteSubset]] = {}
    for subset in subsets:
        tower = ids.get(subset.site.upper())
        if tower is None and np.isfinite([subset.latitude, subset.longitude]).all():
            km = _great_circle_km(subset.latitude, subset.longitude, lat, lon)
            nearest = int(np.argmin(km))
            if km[nearest] <= MAX_MATCH_KM:
                tower = sites[nearest]
        if tower is None:
            log.info(
                "%s: subset site %s (%.4f, %.4f) matches no tower; not used",
                subset.source,
                subset.site,
                subset.latitude,
                subset.longitude,
            )
            continue
        out.setdefault(tower, []).append(subset)
    return out


def _great_circle_km(lat0: float, lon0: float, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Haversine distance (km, sphere of radius 6371 km)."""
    p0, p = np.deg2rad(lat0), np.deg2rad(np.asarray(lat, np.float64))
    dlam = np.deg2rad(np.asarray(lon, np.float64) - lon0)
    h = np.sin((p - p0) / 2) ** 2 + np.cos(p0) * np.cos(p) * np.sin(dlam / 2) ** 2
    return 2 * 6371.0 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
