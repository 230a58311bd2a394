"""Conversion of carbon flux fields to the canonical NEE units (g m-2 d-1 of carbon, + = source).

Units strings are parsed with pint after two rewrites pint cannot do itself:

* the chemical species written after a mass or amount unit (``gC``, ``kg C``,
  ``umolCO2``, ``µmol CO2``) is taken out and remembered, so that a mass of CO2
  is converted to a mass of carbon (× M_C / M_CO2) and an amount of CO2 to a
  mass of carbon (× M_C; one mole of CO2 holds one mole of C);
* ``month`` and ``yr``/``year`` become *calendar* units whose length comes from
  the time axis of the data (days in that month or year of the data's own
  calendar), never pint's mean month (30.44 d) or Julian year (365.25 d).

A per-grid-cell total (``PgC cell-1 month-1``) is divided by the exact cell area.
A bare mass (``kg m-2 s-1``) is refused: it does not say whether it is carbon or
CO2; write ``kgC m-2 s-1`` or ``kgCO2 m-2 s-1`` in the product mapping instead.
The one exception is the project's own on-disk spellings (``g m-2 d-1``,
``Pg month-1``, ... :data:`~fluxbridge.data.canonical.CARBON_UNITS`), which are
carbon by the canonical schema; so a canonical file reads back as what it is.

Molar masses (g mol-1): C 12.011, CO2 44.009 (12.011 + 2 × 15.999), standard
atomic weights (IUPAC conventional values). Hence 1 µmol CO2 m-2 s-1 =
12.011e-6 × 86400 = 1.0377504 gC m-2 d-1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd
import pint
import xarray as xr

from fluxbridge.data.canonical import CARBON_UNITS, NEE_UNITS
from fluxbridge.errors import ConfigError

MOLAR_MASS_C = 12.011  # g mol-1
MOLAR_MASS_CO2 = 44.009  # g mol-1
SECONDS_PER_DAY = 86_400.0

Sign = Literal["source_positive", "sink_positive"]
SIGNS: tuple[str, ...] = ("source_positive", "sink_positive")

ACCEPTED = (
    "a carbon flux per area or per grid cell and per time: mass of carbon or CO2 "
    "(gC, kgC, PgC, gCO2, kgCO2, ...) or amount of CO2/C (mol, umol, µmol, umolCO2, ...), "
    "per m-2 / m2 / ha or per cell (cell-1), per s / d / day / month / yr; e.g. "
    "'gC m-2 d-1', 'kgC m-2 s-1', 'umol CO2 m-2 s-1', 'mol m-2 s-1', 'kgCO2 m-2 s-1', "
    "'gC m-2 month-1', 'PgC cell-1 month-1', 'gC cell-1 yr-1', and the canonical "
    "'g m-2 d-1' (carbon)"
)

#: Attributes that describe the old values and would be wrong after conversion.
_STALE_ATTRS = ("units", "valid_range", "valid_min", "valid_max", "actual_range")
_SPECIES = re.compile(
    r"(?<![A-Za-z])(?P<unit>[PTGMkcmunµμ]?(?:g|t|mol))\s*\(?(?P<species>CO2|C)\)?(?![A-Za-z0-9])"
)
_WORD = re.compile(r"[A-Za-zµμ_]+")
_EXPONENT = re.compile(r"(?P<unit>[A-Za-zµμ_]+)\^?(?P<exp>[-+]?\d+)")
_CALENDAR_WORDS = {
    "month": "calmonth",
    "months": "calmonth",
    "mon": "calmonth",
    "yr": "calyear",
    "year": "calyear",
    "years": "calyear",
    "a": "calyear",
    "cell": "cell",
    "cells": "cell",
    "gridcell": "cell",
    "pixel": "cell",
}


@lru_cache(maxsize=1)
def _registry() -> pint.UnitRegistry:
    ureg = pint.UnitRegistry()
    # Dimensions of their own, so that pint never mixes them with seconds or m².
    ureg.define("cell = [cell]")
    ureg.define("calmonth = [calmonth]")
    ureg.define("calyear = [calyear]")
    return ureg


@dataclass(frozen=True)
class FluxUnits:
    """A parsed flux unit.

    ``factor`` converts a value in ``text`` to gC per ``area`` per ``per``:
    gC m-2 d-1 when ``area == "m2"`` and ``per == "day"``; the remaining
    division by cell area (m²) or days in the month/year is done by
    :func:`to_canonical`, which knows the grid and the time axis.
    """

    text: str
    factor: float
    species: Literal["C", "CO2"] | None
    area: Literal["m2", "cell"]
    per: Literal["day", "month", "year"]


def _rewrite(units: str) -> tuple[str, str | None]:
    """Strip the species and turn the string into pint syntax; return (expression, species)."""
    species = {m.group("species") for m in _SPECIES.finditer(units)}
    if len(species) > 1:
        raise ConfigError(f"units {units!r}: mixes species {sorted(species)}; expected one")
    expr = _SPECIES.sub(lambda m: m.group("unit"), units)
    expr = expr.replace("per ", "/ ")
    expr = _WORD.sub(lambda m: _CALENDAR_WORDS.get(m.group(0), m.group(0)), expr)
    expr = _EXPONENT.sub(lambda m: f"{m.group('unit')}**{m.group('exp')}", expr)
    return expr, (species.pop() if species else None)


@lru_cache(maxsize=256)
def parse_flux_units(units: str) -> FluxUnits:
    """Parse a carbon-flux units string (see the module docstring for the grammar).

    Raises :class:`~fluxbridge.errors.ConfigError` naming the string and what
    is accepted when it is not a carbon flux per area (or cell) and time.
    """
    if not isinstance(units, str) or not units.strip():
        raise ConfigError(f"units {units!r}: empty; expected {ACCEPTED}")
    expr, species = _rewrite(units.strip())
    if species is None and units.strip() in CARBON_UNITS:
        species = "C"
    ureg = _registry()
    try:
        quantity = ureg.parse_expression(expr)
    except Exception as exc:  # pint raises several unrelated types for bad strings
        raise ConfigError(f"units {units!r}: cannot parse ({exc}); expected {ACCEPTED}") from exc
    if not isinstance(quantity, pint.Quantity):
        raise ConfigError(f"units {units!r}: a plain number, not a unit; expected {ACCEPTED}")
    for amount in ("g", "mol"):
        for area, area_expr in (("m2", "m**-2"), ("cell", "cell**-1")):
            for per, per_expr in (("day", "day"), ("month", "calmonth"), ("year", "calyear")):
                target = ureg.parse_expression(f"{amount} * {area_expr} / {per_expr}")
                if quantity.dimensionality != target.dimensionality:
                    continue
                value = float(quantity.to(target.units).magnitude)
                return FluxUnits(
                    units, value * _to_carbon(units, amount, species), species, area, per
                )
    raise ConfigError(
        f"units {units!r}: dimensionality {quantity.dimensionality} is not a carbon flux; "
        f"expected {ACCEPTED}"
    )


def _to_carbon(units: str, amount: str, species: str | None) -> float:
    """Factor from grams (of ``species``) or moles to grams of carbon."""
    if amount == "mol":
        return MOLAR_MASS_C
    if species == "C":
        return 1.0
    if species == "CO2":
        return MOLAR_MASS_C / MOLAR_MASS_CO2
    raise ConfigError(
        f"units {units!r}: a mass without species is ambiguous (carbon or CO2?); "
        "write e.g. 'kgC m-2 s-1' or 'kgCO2 m-2 s-1' (override the units in the product mapping)"
    )


def check_sign(sign: str) -> Sign:
    """Validate a sign convention name."""
    if sign not in SIGNS:
        raise ConfigError(f"sign {sign!r}: expected one of {list(SIGNS)}")
    return sign  # type: ignore[return-value]


def apply_sign(da: xr.DataArray, sign: str) -> xr.DataArray:
    """Return ``da`` as source-positive: flip the sign of a sink-positive (NBP-like) field."""
    return -da if check_sign(sign) == "sink_positive" else da


def days_in_month(time: xr.DataArray) -> xr.DataArray:
    """Days in the month of each time stamp, in the time axis' own calendar."""
    return time.dt.days_in_month.astype(np.float64)


def days_in_year(time: xr.DataArray) -> xr.DataArray:
    """Days in the year of each time stamp (365/366, 360 for 360_day, ...), own calendar."""
    values = time.values
    if np.issubdtype(values.dtype, np.datetime64):
        days = np.where(pd.DatetimeIndex(values).is_leap_year, 366.0, 365.0)
    else:  # cftime objects: the calendar knows its own year length
        days = np.array(
            [
                (t.replace(year=t.year + 1, month=1, day=1) - t.replace(month=1, day=1)).days
                for t in values
            ],
            dtype=np.float64,
        )
    return xr.DataArray(days, dims=time.dims, coords=time.coords)


def to_canonical(
    da: xr.DataArray,
    units: str | None = None,
    *,
    sign: str = "source_positive",
    cell_area: xr.DataArray | None = None,
    time: str = "time",
) -> xr.DataArray:
    """Convert a carbon flux field to g m-2 d-1 of carbon (:data:`NEE_UNITS`), positive = source.

    Parameters
    ----------
    da : the field; its ``units`` attribute is used unless ``units`` is given.
    units : override of the field's units string.
    sign : ``"source_positive"`` (NEE-like) or ``"sink_positive"`` (NBP-like, flipped).
    cell_area : exact cell areas in m² (lat, lon), needed for per-cell totals.
    time : name of the time coordinate, needed for per-month and per-year units
        (month and year lengths come from its calendar).

    Lazy (dask-backed) inputs stay lazy: the conversion is a broadcast product.
    """
    text = units if units is not None else da.attrs.get("units")
    if text is None:
        raise ConfigError(f"variable {da.name!r} has no units attribute; give units explicitly")
    parsed = parse_flux_units(text)
    out = da * parsed.factor
    if parsed.area == "cell":
        if cell_area is None:
            raise ConfigError(f"units {text!r} are per grid cell; cell_area (m2) is required")
        out = out / cell_area
    if parsed.per != "day":
        if time not in da.coords:
            raise ConfigError(
                f"units {text!r} are per {parsed.per}; the field needs a '{time}' coordinate"
            )
        length = days_in_month if parsed.per == "month" else days_in_year
        out = out / length(da[time])
    out = apply_sign(out, sign)
    out.attrs = {
        **{k: v for k, v in da.attrs.items() if k not in _STALE_ATTRS},
        "units": NEE_UNITS,
        "comment": f"converted from {text!r} ({sign}) to {NEE_UNITS}, positive = source",
    }
    out.name = da.name
    return out
