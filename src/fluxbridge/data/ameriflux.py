"""Reader for AmeriFlux BASE half-hourly / hourly site files (``AMF_<site>_BASE_<HH|HR>_<v>.csv``).

Format (AmeriFlux "Data Variables" and "Half-Hourly / Hourly Data Upload
Format" pages; Chu et al. 2023, Sci. Data 10, 614):

* a few header lines starting with ``#`` (``# Site: US-Tw3``, ``# Version: 5-5``)
  and blank lines, then one CSV table with a header row;
* ``TIMESTAMP_START`` / ``TIMESTAMP_END`` as YYYYMMDDHHMM, local standard time,
  30 (HH) or 60 (HR) minutes apart; ``-9999`` is missing;
* FP-standard variable names: a base name (``FC``, ``NEE``, ``TA``, ...) plus
  qualifiers: ``_PI`` (processed by the tower team), ``_F`` (gap-filled),
  positional ``_H_V_R`` (horizontal, vertical — numbered from the top — and
  replicate; ``_H_V_A`` is the replicate average); a name without positional
  qualifier stands for ``_1_1_1``;
* the network QA/QCs the data but neither ustar-filters nor gap-fills them:
  BASE is *not* gap-filled (only tower teams may add ``_F`` columns).

NEE (µmol CO2 m-2 s-1, positive = upward = source) comes from the first column
present in :data:`NEE_CANDIDATES`: the tower team's gap-filled NEE, their NEE,
their gap-filled FC, then the network's plain FC (each also with ``_1_1_1``).
Storage (``SC``) is **not** added to FC: we found no stored primary source for
how missing SC records are to be treated, and NEE_PI, when a team provides it,
already holds their storage term. Records of a plain FC whose
``FC_SSITC_TEST`` flag is 2 (the Foken et al. 2004 0/1/2 steady-state and
integral-turbulence flag: 2 = discard) are treated as missing. No ustar filter
is applied (the file has no threshold): that is why a day needs complete
records by default (below).

Days: a record belongs to the date of its TIMESTAMP_START; the daily NEE is
the mean of the day's valid records × 1.0377504 gC m-2 d-1 per µmol m-2 s-1,
kept only when at least ``min_valid_fraction`` of the 48 (HH) or 24 (HR)
records are valid — the same rule as FLUXNET HH files. The default for BASE is
also **1.0**: with a gap-filled ``_PI_F`` column complete days are the norm; with
plain FC the missing records are mostly nights with weak turbulence, so the
mean of a partial day leans towards daytime uptake (too negative NEE) — the
bias the twin world simulates for tropical towers. A lower fraction is the
user's explicit choice.

Quality: BASE has no QC flags for gap-filled values, so ``nee_qc_fraction``
and ``nee_measured_fraction`` are both the fraction of the day's records where
the *un-gap-filled* counterpart (``NEE_PI`` for ``NEE_PI_F``, ``FC`` for
``FC_PI_F``; the column itself when it is not gap-filled) is valid. Meteorology
(``TA``, ``SW_IN``, ``VPD``, ``P``) uses :func:`meteo_candidates`: gap-filled
before plain, the tower's top position (``_1_1_1``, then the replicate average
``_1_1_A``), and the same completeness rule.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from fluxbridge.data.fluxnet import (
    DAILY_COLUMNS,
    RECORDS_PER_DAY,
    UMOL_TO_GC_PER_DAY,
    W_TO_MJ_PER_DAY,
    _read_table,
    daily_mean,
    parse_file_name,
    subdaily_starts,
)
from fluxbridge.errors import ConfigError, SchemaError

log = logging.getLogger(__name__)

#: NEE columns in order of preference, with the un-gap-filled column that tells
#: which records were measured (None = the column itself is not gap-filled).
NEE_CANDIDATES: tuple[tuple[str, str | None], ...] = (
    ("NEE_PI_F", "NEE_PI"),
    ("NEE_PI_F_1_1_1", "NEE_PI_1_1_1"),
    ("NEE_PI", None),
    ("NEE_PI_1_1_1", None),
    ("FC_PI_F", "FC"),
    ("FC_PI_F_1_1_1", "FC_1_1_1"),
    ("FC", None),
    ("FC_1_1_1", None),
)
#: Foken et al. (2004) flag of a plain FC column: records above this are discarded.
SSITC_MAX = 1
#: BASE base name → output column of the daily frame.
METEO_BASES = {"TA": "tair", "SW_IN": "sw_in", "VPD": "vpd", "P": "precip"}
_SITE_LINE = re.compile(r"^#\s*Site:\s*(?P<site>\S+)")


def meteo_candidates(base: str) -> tuple[str, ...]:
    """Columns tried for a meteorological base name, first present wins.

    Gap-filled before plain (``_PI_F``, ``_F``, plain, ``_PI``); each first
    without positional qualifier (= ``_1_1_1``), then ``_1_1_1`` and the
    replicate average ``_1_1_A`` (horizontal 1, top vertical position).
    """
    names = (f"{base}_PI_F", f"{base}_F", base, f"{base}_PI")
    return (*names, *(f"{n}_1_1_1" for n in names), *(f"{n}_1_1_A" for n in names))


def header_lines(path: Path) -> tuple[int, str | None]:
    """Number of ``#`` / blank lines before the CSV header, and the ``# Site:`` value."""
    site = None
    try:
        with path.open(encoding="utf-8", errors="replace") as stream:
            for count, line in enumerate(stream):
                text = line.strip()
                if text and not text.startswith("#"):
                    return count, site
                match = _SITE_LINE.match(text)
                if match:
                    site = match["site"]
    except OSError as exc:
        raise SchemaError(path, None, f"cannot read the file ({exc})") from exc
    raise SchemaError(path, None, "no CSV header after the '#' lines (empty BASE file)")


def _columns(path: Path, skiprows: int) -> list[str]:
    try:
        return list(pd.read_csv(path, skiprows=skiprows, nrows=0).columns)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise SchemaError(path, None, f"not a readable CSV table ({exc})") from exc


def choose_nee(columns: list[str], path: Path) -> tuple[str, str | None]:
    """(NEE column, its un-gap-filled counterpart or None) by :data:`NEE_CANDIDATES`."""
    present = set(columns)
    for column, measured in NEE_CANDIDATES:
        if column in present:
            return column, (measured if measured in present else None)
    names = [c for c, _ in NEE_CANDIDATES]
    raise SchemaError(path, "FC", f"no CO2 flux column; expected one of {names}")


def read_base_records(
    path: str | Path, resolution: str | None = None, *, min_valid_fraction: float = 1.0
) -> pd.DataFrame:
    """Daily values of one BASE file, indexed by the days present (not yet contiguous).

    Columns :data:`~fluxbridge.data.fluxnet.DAILY_COLUMNS`; ``attrs["nee_column"]``
    names the NEE column used. Prefer :func:`read_base_file` (or
    :func:`fluxbridge.data.fluxnet.read_site_file`) for the checked, contiguous frame.
    """
    path = Path(path)
    if not 0.0 < min_valid_fraction <= 1.0:
        raise ConfigError(f"min_valid_fraction {min_valid_fraction!r}: expected in (0, 1]")
    info = parse_file_name(path)
    if info.product != "BASE":
        raise SchemaError(
            path, None, "not an AmeriFlux BASE name (AMF_<site>_BASE_<HH|HR>_<v>.csv)"
        )
    resolution = resolution or info.resolution
    skiprows, header_site = header_lines(path)
    if header_site is not None and header_site != info.site:
        raise SchemaError(
            path, None, f"'# Site: {header_site}' in the header, but the file name says {info.site}"
        )
    columns = _columns(path, skiprows)
    nee_column, measured_column = choose_nee(columns, path)
    ssitc = f"{nee_column}_SSITC_TEST" if nee_column in ("FC", "FC_1_1_1") else None
    if ssitc is not None and ssitc not in columns:
        ssitc = None
    meteo = {}
    for base, output in METEO_BASES.items():
        found = next((c for c in meteo_candidates(base) if c in columns), None)
        if found is None:
            log.info("%s: no %s column; %s is NaN", path.name, base, output)
        else:
            meteo[output] = found
    numeric = tuple(
        dict.fromkeys(c for c in (nee_column, measured_column, ssitc, *meteo.values()) if c)
    )
    frame = _read_table(path, ("TIMESTAMP_START", "TIMESTAMP_END"), numeric, skiprows)
    start = subdaily_starts(frame, path, str(resolution), skiprows)
    nee = frame[nee_column]
    if ssitc is not None:
        flag = frame[ssitc]
        bad = flag.notna() & ~flag.isin([0, 1, 2])
        if bad.any():
            raise SchemaError(path, ssitc, f"flag {flag[bad].iloc[0]} not in 0, 1, 2")
        nee = nee.where(~(flag > SSITC_MAX))
    measured = (frame[measured_column] if measured_column else nee).notna()
    per_day = RECORDS_PER_DAY[str(resolution)]
    need = math.ceil(min_valid_fraction * per_day - 1e-9)
    day = start.normalize().rename("time")
    good = (measured & nee.notna()).groupby(day).sum() / per_day
    out = pd.DataFrame(
        {
            "nee_obs": daily_mean(nee, day, need) * UMOL_TO_GC_PER_DAY,
            "nee_qc_fraction": good,
            "nee_measured_fraction": good,
        }
    )
    nan = pd.Series(np.nan, index=out.index)
    out["tair"] = daily_mean(frame[meteo["tair"]], day, need) if "tair" in meteo else nan
    out["sw_in"] = (
        daily_mean(frame[meteo["sw_in"]], day, need) * W_TO_MJ_PER_DAY if "sw_in" in meteo else nan
    )
    out["vpd"] = daily_mean(frame[meteo["vpd"]], day, need) if "vpd" in meteo else nan
    # P is mm per record; the day's total is the mean per record × records per day.
    out["precip"] = (
        daily_mean(frame[meteo["precip"]], day, need) * per_day if "precip" in meteo else nan
    )
    out = out[list(DAILY_COLUMNS)]
    out.attrs["nee_column"] = nee_column
    out.attrs["columns"] = {"nee_obs": nee_column, **meteo}
    log.debug("%s: NEE from %s, meteorology from %s", path.name, nee_column, meteo)
    return out


def read_base_file(path: str | Path, *, min_valid_fraction: float = 1.0) -> pd.DataFrame:
    """Daily NEE (gC m-2 d-1, positive = source), QC fractions and meteorology of a BASE file.

    The same frame as :func:`fluxbridge.data.fluxnet.read_site_file` (contiguous
    days, NaN gaps; a file without one valid NEE day is a SchemaError).
    """
    from fluxbridge.data.fluxnet import read_site_file

    path = Path(path)
    if parse_file_name(path).product != "BASE":
        raise SchemaError(
            path, None, "not an AmeriFlux BASE name (AMF_<site>_BASE_<HH|HR>_<v>.csv)"
        )
    return read_site_file(path, min_valid_fraction=min_valid_fraction)
