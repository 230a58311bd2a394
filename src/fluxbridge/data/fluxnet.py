"""Readers for FLUXNET2015 / ONEFlux FULLSET (and SUBSET) site CSV files, and ``invoke sites``.

Supported files (names as distributed; the site id is taken from the name):

* ``FLX_<site>_FLUXNET2015_<FULLSET|SUBSET>_<HH|HR|DD>_<y0>-<y1>_<version>.csv``
* ``AMF_<site>_FLUXNET_<FULLSET|SUBSET>_<HH|HR|DD>_<y0>-<y1>_<version>.csv`` (AmeriFlux ONEFlux)
* ``ICOSETC_<site>_FLUXNET_<HH|HR|DD>_L2.csv`` (ICOS ETC ONEFlux archive)
* ``AMF_<site>_BASE_<HH|HR>_<version>.csv`` (AmeriFlux BASE, not gap-filled by the
  network; read by :mod:`fluxbridge.data.ameriflux`, which documents its rules)

Other files of those distributions (ERAI, AUXMETEO, AUXNEE, WW/MM/YY
aggregates, ICOS ancillary tables) are skipped with a log line; any other CSV
name is an error. The La Thuile (2007) synthesis format is not read.

Half-hourly (HH) and hourly (HR) NEE is in µmol CO2 m-2 s-1 (ONEFlux
nee_proc/info/info_hh.txt); a day is the records whose TIMESTAMP_START falls
on that date (local standard time, as distributed). The daily NEE is the mean
of the day's valid records × 12.011e-6 × 86400 = 1.0377504 gC m-2 d-1 per
µmol m-2 s-1, and only when at least ``min_valid_fraction`` of the day's 48
(HH) or 24 (HR) records are valid (default 1.0: NEE_VUT_REF is gap-filled, so a
missing record means the gap filling failed there, and a partial mean would be
biased by the diurnal cycle). Daily (DD) NEE is already in gC m-2 d-1
(ONEFlux nee_proc/info/info_dd.txt) and is used as is.

Quality: ``nee_qc_fraction`` is the fraction of the day's records that are
measured or good-quality gap-filled (QC 0 or 1): the definition of the DD
``NEE_VUT_REF_QC`` column, so it means the same for HH- and DD-derived days.
``nee_measured_fraction`` is the fraction with QC 0 (measured), computable from
HH/HR files only (NaN for DD-derived sites). When a site has both, the DD file
is used: its NEE_VUT_REF is ONEFlux's reference chosen among daily aggregates,
which the daily mean of the half-hourly reference need not equal.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.data.canonical import NEE_UNITS, carbon_long_name
from fluxbridge.data.units import parse_flux_units
from fluxbridge.errors import ConfigError, SchemaError
from fluxbridge.io import write_netcdf

log = logging.getLogger(__name__)

MISSING = -9999
#: µmol CO2 m-2 s-1 → gC m-2 d-1 (12.011e-6 × 86400 = 1.0377504).
UMOL_TO_GC_PER_DAY = parse_flux_units("umol CO2 m-2 s-1").factor
#: W m-2 (daily mean) → MJ m-2 d-1.
W_TO_MJ_PER_DAY = 86_400.0 / 1e6
RECORDS_PER_DAY = {"HH": 48, "HR": 24}
STEP_MINUTES = {"HH": 30, "HR": 60}
NEE_VARIABLES = ("NEE_VUT_REF", "NEE_CUT_REF")

#: FLUXNET column → (output name, units, long name).
METEO = {
    "TA_F": ("tair", "degC", "air temperature, daily mean (TA_F)"),
    "SW_IN_F": ("sw_in", "MJ m-2 d-1", "incoming shortwave radiation, daily total (SW_IN_F)"),
    "VPD_F": ("vpd", "hPa", "vapour pressure deficit, daily mean (VPD_F)"),
    "P_F": ("precip", "mm d-1", "precipitation, daily total (P_F)"),
}
DAILY_COLUMNS = (
    "nee_obs",
    "nee_qc_fraction",
    "nee_measured_fraction",
    *(name for name, _, _ in METEO.values()),
)

_NAME = re.compile(
    r"^(?P<network>FLX|AMF|ICOSETC)_(?P<site>[A-Z]{2}-[A-Za-z0-9]{3})_(?P<rest>.+)\.csv$"
)
_TABLE = re.compile(
    r"^FLUXNET(?:2015)?_(?:(?P<set>FULLSET|SUBSET)_)?(?P<res>HH|HR|DD)_"
    r"(?:\d{4}-\d{4}_[A-Za-z0-9-]+|L2)$"
)
_BASE = re.compile(r"^BASE_(?P<res>HH|HR)_[A-Za-z0-9-]+$")
EXPECTED_NAMES = (
    "FLX_<site>_FLUXNET2015_FULLSET_<HH|HR|DD>_<yyyy>-<yyyy>_<v>.csv, "
    "AMF_<site>_FLUXNET_FULLSET_<HH|HR|DD>_<yyyy>-<yyyy>_<v>.csv, "
    "ICOSETC_<site>_FLUXNET_<HH|HR|DD>_L2.csv or "
    "AMF_<site>_BASE_<HH|HR>_<v>.csv (site like US-Ha1)"
)


@dataclass(frozen=True)
class SiteFile:
    """One site CSV: path, site id, time resolution (None = not a flux table) and product.

    ``product`` is ``"FLUXNET"`` (FLUXNET2015 / ONEFlux, gap-filled) or ``"BASE"``
    (AmeriFlux BASE, read by :mod:`fluxbridge.data.ameriflux`).
    """

    path: Path
    site: str
    resolution: Literal["HH", "HR", "DD"] | None
    product: Literal["FLUXNET", "BASE"] = "FLUXNET"


def parse_file_name(path: Path) -> SiteFile:
    """Site id and resolution from a distributed file name; unknown names are a SchemaError."""
    match = _NAME.match(path.name)
    if match is None:
        raise SchemaError(path, None, f"not a FLUXNET file name; expected {EXPECTED_NAMES}")
    base = _BASE.match(match["rest"]) if match["network"] == "AMF" else None
    if base is not None:
        return SiteFile(path, match["site"], base["res"], "BASE")  # type: ignore[arg-type]
    table = _TABLE.match(match["rest"])
    if table is None or (match["network"] == "FLX" and "2015" not in match["rest"]):
        return SiteFile(path, match["site"], None)
    return SiteFile(path, match["site"], table["res"])  # type: ignore[arg-type]


def read_site_file(
    path: str | Path, *, nee_variable: str = "NEE_VUT_REF", min_valid_fraction: float = 1.0
) -> pd.DataFrame:
    """Daily NEE (gC m-2 d-1, positive = source), QC fractions and meteorology of one file.

    Returns a frame indexed by contiguous days (``time``) with the columns
    :data:`DAILY_COLUMNS`; days without data are NaN. ``nee_variable`` chooses
    among the FLUXNET columns; an AmeriFlux BASE file picks its own NEE column
    (:func:`fluxbridge.data.ameriflux.read_base_file`) and only takes
    ``min_valid_fraction`` from here.
    """
    path = Path(path)
    if nee_variable not in NEE_VARIABLES:
        raise ConfigError(f"nee_variable {nee_variable!r}: expected one of {list(NEE_VARIABLES)}")
    if not 0.0 < min_valid_fraction <= 1.0:
        raise ConfigError(f"min_valid_fraction {min_valid_fraction!r}: expected in (0, 1]")
    info = parse_file_name(path)
    if info.resolution is None:
        raise SchemaError(path, None, f"not a HH/HR/DD flux table; expected {EXPECTED_NAMES}")
    if info.product == "BASE":
        from fluxbridge.data.ameriflux import read_base_records  # imports this module

        daily = read_base_records(path, info.resolution, min_valid_fraction=min_valid_fraction)
        nee_variable = str(daily.attrs.get("nee_column", nee_variable))
    elif info.resolution == "DD":
        daily = _read_daily(path, nee_variable)
    else:
        daily = _read_subdaily(path, info.resolution, nee_variable, min_valid_fraction)
    days = pd.date_range(daily.index[0], daily.index[-1], freq="D", name="time")
    daily = daily.reindex(days)
    valid = int(daily["nee_obs"].notna().sum())
    if valid == 0:
        raise SchemaError(
            path,
            nee_variable,
            f"no day with valid NEE in {len(days)} days (every record -9999 or below "
            f"min_valid_fraction {min_valid_fraction}); a site without NEE cannot train a model",
        )
    log.debug("%s: %d of %d days with NEE", path.name, valid, len(days))
    return daily


def _read_table(
    path: Path, stamps: tuple[str, ...], numeric: tuple[str, ...], skiprows: int = 0
) -> pd.DataFrame:
    """The named columns of a CSV; -9999 → NaN; ``skiprows`` lines before the header."""
    wanted = set(stamps + numeric)
    try:
        frame = pd.read_csv(
            path,
            skiprows=skiprows,
            usecols=lambda c: c in wanted,
            dtype=dict.fromkeys(stamps, str),
            na_values=[str(MISSING), f"{MISSING}.0"],
        )
    except pd.errors.EmptyDataError as exc:
        raise SchemaError(path, None, "empty file (no header line)") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise SchemaError(path, None, f"not a readable CSV table ({exc})") from exc
    missing = [c for c in stamps + numeric if c not in frame.columns]
    if missing:
        raise SchemaError(
            path, missing[0], f"missing column(s) {missing}; expected FLUXNET FULLSET columns"
        )
    if frame.empty:
        raise SchemaError(path, None, "header but no data rows")
    for column in numeric:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            line = int(np.argmax(bad.to_numpy())) + 2 + skiprows
            raise SchemaError(
                path, column, f"non-numeric value {frame[column][bad].iloc[0]!r} at line {line}"
            )
        frame[column] = values.astype(np.float64)
    return frame


def _parse_stamps(
    frame: pd.DataFrame, column: str, fmt: str, path: Path, skiprows: int = 0
) -> pd.DatetimeIndex:
    raw = frame[column]
    stamps = pd.to_datetime(raw, format=fmt, errors="coerce")
    first = 2 + skiprows  # file line of the first data row
    if stamps.isna().any():
        i = int(np.argmax(stamps.isna().to_numpy()))
        raise SchemaError(path, column, f"bad timestamp {raw.iloc[i]!r} at line {i + first}; {fmt}")
    index = pd.DatetimeIndex(stamps)
    step = np.diff(index.asi8)
    if (step == 0).any():
        i = int(np.argmax(step == 0)) + 1
        raise SchemaError(path, column, f"duplicate timestamp {raw.iloc[i]} at line {i + first}")
    if (step < 0).any():
        i = int(np.argmax(step < 0)) + 1
        raise SchemaError(
            path,
            column,
            f"timestamps not increasing: {raw.iloc[i]} at line {i + first} "
            f"follows {raw.iloc[i - 1]}",
        )
    return index


def subdaily_starts(
    frame: pd.DataFrame, path: Path, resolution: str, skiprows: int = 0
) -> pd.DatetimeIndex:
    """TIMESTAMP_START of a HH/HR table, checked against TIMESTAMP_END and the record grid."""
    start = _parse_stamps(frame, "TIMESTAMP_START", "%Y%m%d%H%M", path, skiprows)
    end = _parse_stamps(frame, "TIMESTAMP_END", "%Y%m%d%H%M", path, skiprows)
    step = pd.Timedelta(minutes=STEP_MINUTES[resolution])
    first = 2 + skiprows
    wrong = (end - start) != step
    if wrong.any():
        i = int(np.argmax(wrong))
        raise SchemaError(
            path,
            "TIMESTAMP_END",
            f"record at line {i + first} lasts {end[i] - start[i]}; a {resolution} file has {step}",
        )
    off_grid = (start - start[0]) % step != pd.Timedelta(0)
    if off_grid.any():
        i = int(np.argmax(off_grid))
        raise SchemaError(path, "TIMESTAMP_START", f"line {i + first} is off the {step} grid")
    return start


def _read_subdaily(
    path: Path, resolution: str, nee_variable: str, min_valid_fraction: float
) -> pd.DataFrame:
    qc_name = f"{nee_variable}_QC"
    frame = _read_table(path, ("TIMESTAMP_START", "TIMESTAMP_END"), (nee_variable, qc_name, *METEO))
    start = subdaily_starts(frame, path, resolution)
    qc = frame[qc_name]
    bad_qc = qc.notna() & ~qc.isin([0, 1, 2, 3])
    if bad_qc.any():
        raise SchemaError(path, qc_name, f"QC value {qc[bad_qc].iloc[0]} not in 0..3 (HH/HR flags)")
    per_day = RECORDS_PER_DAY[resolution]
    need = math.ceil(min_valid_fraction * per_day - 1e-9)
    day = start.normalize().rename("time")
    nee = frame[nee_variable]
    out = pd.DataFrame(
        {
            "nee_obs": daily_mean(nee, day, need) * UMOL_TO_GC_PER_DAY,
            "nee_qc_fraction": ((qc <= 1) & nee.notna()).groupby(day).sum() / per_day,
            "nee_measured_fraction": ((qc == 0) & nee.notna()).groupby(day).sum() / per_day,
        }
    )
    out["tair"] = daily_mean(frame["TA_F"], day, need)
    out["sw_in"] = daily_mean(frame["SW_IN_F"], day, need) * W_TO_MJ_PER_DAY
    out["vpd"] = daily_mean(frame["VPD_F"], day, need)
    # P_F is mm per record; the day's total is the mean per record × records per day.
    out["precip"] = daily_mean(frame["P_F"], day, need) * per_day
    return out[list(DAILY_COLUMNS)]


def daily_mean(values: pd.Series, day: pd.DatetimeIndex, need: int) -> pd.Series:
    """Mean of each day's valid values; NaN for a day with fewer than ``need`` of them."""
    grouped = values.groupby(day)
    return grouped.mean().where(grouped.count() >= need)


def _read_daily(path: Path, nee_variable: str) -> pd.DataFrame:
    qc_name = f"{nee_variable}_QC"
    frame = _read_table(path, ("TIMESTAMP",), (nee_variable, qc_name, *METEO))
    day = _parse_stamps(frame, "TIMESTAMP", "%Y%m%d", path).rename("time")
    qc = frame[qc_name]
    bad_qc = qc.notna() & ((qc < 0) | (qc > 1))
    if bad_qc.any():
        raise SchemaError(
            path,
            qc_name,
            f"QC value {qc[bad_qc].iloc[0]} not in [0, 1] (DD: fraction of good data)",
        )
    out = pd.DataFrame(
        {
            "nee_obs": frame[nee_variable].to_numpy(),
            "nee_qc_fraction": qc.to_numpy(),
            "nee_measured_fraction": np.nan,
            "tair": frame["TA_F"].to_numpy(),
            "sw_in": frame["SW_IN_F"].to_numpy() * W_TO_MJ_PER_DAY,
            "vpd": frame["VPD_F"].to_numpy(),
            "precip": frame["P_F"].to_numpy(),
        },
        index=day,
    )
    return out


def select_site_files(folder: Path, exclude: Path | None = None) -> dict[str, SiteFile]:
    """The file to read for every site in ``folder``: DD when present, else HH or HR."""
    chosen: dict[str, dict[str, SiteFile]] = {}
    for path in sorted(folder.glob("*.csv")):
        if exclude is not None and path.resolve() == exclude.resolve():
            continue
        info = parse_file_name(path)
        if info.resolution is None:
            log.info("skipping %s (not a HH/HR/DD flux table)", path.name)
            continue
        by_res = chosen.setdefault(info.site, {})
        if info.resolution in by_res:
            raise SchemaError(
                path,
                None,
                f"site {info.site} has a second {info.resolution} file "
                f"(also {by_res[info.resolution].path.name}); keep one",
            )
        by_res[info.resolution] = info
    selected = {}
    for site, by_res in sorted(chosen.items()):
        if "DD" in by_res:
            selected[site] = by_res["DD"]
        elif len(by_res) > 1:
            raise SchemaError(folder, None, f"site {site} has both HH and HR files; keep one")
        else:
            selected[site] = next(iter(by_res.values()))
    return selected


def read_site_info(path: Path, sites: list[str]) -> pd.DataFrame:
    """SITE_ID, LOCATION_LAT, LOCATION_LONG, IGBP rows for ``sites`` (every site required)."""
    columns = ("SITE_ID", "LOCATION_LAT", "LOCATION_LONG", "IGBP")
    try:
        table = pd.read_csv(path, dtype={"SITE_ID": str, "IGBP": str})
    except FileNotFoundError as exc:
        raise SchemaError(path, None, "site-info file not found") from exc
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise SchemaError(path, None, f"not a readable CSV table ({exc})") from exc
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise SchemaError(path, missing[0], f"missing column(s) {missing}; expected {columns}")
    duplicated = table["SITE_ID"][table["SITE_ID"].duplicated()]
    if not duplicated.empty:
        raise SchemaError(path, "SITE_ID", f"site {duplicated.iloc[0]} listed twice")
    table = table.set_index("SITE_ID")
    absent = [s for s in sites if s not in table.index]
    if absent:
        raise SchemaError(path, "SITE_ID", f"no row for site(s) {absent}")
    table = table.loc[sites, list(columns[1:])]
    for column, limit in (("LOCATION_LAT", 90.0), ("LOCATION_LONG", 180.0)):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna() | (values.abs() > limit)
        if bad.any():
            raise SchemaError(
                path,
                column,
                f"site {values[bad].index[0]}: {table[column][bad].iloc[0]!r} "
                f"is not a coordinate within ±{limit}",
            )
        table[column] = values
    return table


def build_site_dataset(
    daily: dict[str, pd.DataFrame], files: dict[str, SiteFile], info: pd.DataFrame | None
) -> xr.Dataset:
    """Stack per-site daily frames into a (site, time) dataset with CF attributes."""
    sites = sorted(daily)
    start = min(frame.index[0] for frame in daily.values())
    stop = max(frame.index[-1] for frame in daily.values())
    time = pd.date_range(start, stop, freq="D", name="time")
    stacked = {
        column: np.stack([daily[s][column].reindex(time).to_numpy() for s in sites])
        for column in DAILY_COLUMNS
    }
    attrs = {
        "nee_obs": {
            "units": NEE_UNITS,
            "long_name": carbon_long_name("net ecosystem exchange, daily (positive = source)"),
            "cell_methods": "time: mean",
        },
        "nee_qc_fraction": {
            "units": "1",
            "long_name": "fraction of the day's NEE records measured or good-quality gap-filled "
            "(QC 0 or 1)",
        },
        "nee_measured_fraction": {
            "units": "1",
            "long_name": "fraction of the day's NEE records measured (QC 0); NaN for DD input",
        },
        **{name: {"units": units, "long_name": long} for name, units, long in METEO.values()},
    }
    data = {name: (("site", "time"), stacked[name], attrs[name]) for name in DAILY_COLUMNS}
    n = len(sites)
    lat = info["LOCATION_LAT"].to_numpy(np.float64) if info is not None else np.full(n, np.nan)
    lon = info["LOCATION_LONG"].to_numpy(np.float64) if info is not None else np.full(n, np.nan)
    igbp = info["IGBP"].fillna("").astype(str).to_numpy() if info is not None else [""] * n
    data["site_lat"] = ("site", lat, {"units": "degrees_north", "long_name": "site latitude"})
    data["site_lon"] = ("site", lon, {"units": "degrees_east", "long_name": "site longitude"})
    data["site_igbp"] = ("site", np.array(igbp, dtype=object), {"long_name": "IGBP class"})
    data["source_file"] = (
        "site",
        np.array([files[s].path.name for s in sites], dtype=object),
        {"long_name": "FLUXNET file the site was read from"},
    )
    ds = xr.Dataset(
        data,
        coords={
            "site": ("site", np.array(sites, dtype=object), {"long_name": "FLUXNET site id"}),
            "time": ("time", time, {"standard_name": "time", "long_name": "day (local)"}),
        },
    )
    ds.attrs["title"] = "FLUXNET daily site data (fluxbridge canonical-style site file)"
    return ds


def run_sites(fluxnet: Path, site_info: Path | None, out: Path) -> int:
    """Convert a folder of FLUXNET CSV files into a daily (site, time) NetCDF site file.

    Writes ``out`` atomically and never overwrites it; any bad input raises a
    :class:`~fluxbridge.errors.FluxbridgeError` before anything is written.
    """
    fluxnet, out = Path(fluxnet), Path(out)
    if out.exists():
        raise ConfigError(f"{out} exists; refusing to overwrite it")
    if not fluxnet.is_dir():
        raise ConfigError(f"{fluxnet}: not a folder of FLUXNET CSV files")
    files = select_site_files(fluxnet, exclude=site_info)
    if not files:
        raise SchemaError(fluxnet, None, f"no FLUXNET flux tables found; expected {EXPECTED_NAMES}")
    # Site info first: a missing row fails before the (slow) CSV reading starts.
    info = read_site_info(Path(site_info), sorted(files)) if site_info is not None else None
    daily = {site: read_site_file(f.path) for site, f in files.items()}
    ds = build_site_dataset(daily, files, info)
    write_netcdf(ds, out, action=f"invoke sites --fluxnet {fluxnet}")
    log.info("wrote %s: %d sites, %d days", out, ds.sizes["site"], ds.sizes["time"])
    return 0
