"""Schema constants: units on disk, the drivers, the regions, unit factors.

A leaf module (it imports nothing from fluxbridge), so that every layer — data
readers, geometry, training, evaluation — takes its constants from one place
without importing each other. The canonical dataset's file specs and validator
are in :mod:`fluxbridge.data.canonical`.
"""

from __future__ import annotations

from dataclasses import dataclass

#: g → Pg.
GRAMS_PER_PETAGRAM = 1e15

# Units written on disk (docs/canonical_dataset.md, "Units on disk"). UDUNITS, and so
# cf-units, CDO and ILAMB, has no "gC": a unit there is a plain mass, so the carbon
# basis is said in each variable's long_name ("... as carbon") instead. UDUNITS' month
# is 1/12 year; the monthly values are totals over each calendar month all the same.
NEE_UNITS = "g m-2 d-1"
ANNUAL_FLUX_UNITS = "g m-2 yr-1"
MONTHLY_FLUX_UNITS = "g m-2 month-1"
DAILY_INTEGRAL_UNITS = "Pg d-1"
MONTHLY_INTEGRAL_UNITS = "Pg month-1"
ANNUAL_INTEGRAL_UNITS = "Pg yr-1"
#: Every carbon-flux spelling above: a bare mass in one of these is a mass of carbon.
CARBON_UNITS: frozenset[str] = frozenset(
    (
        NEE_UNITS,
        ANNUAL_FLUX_UNITS,
        MONTHLY_FLUX_UNITS,
        DAILY_INTEGRAL_UNITS,
        MONTHLY_INTEGRAL_UNITS,
        ANNUAL_INTEGRAL_UNITS,
    )
)
#: The spellings fluxbridge wrote before its outputs were CF-checked (not UDUNITS-parsable);
#: files that carry them still open and validate.
LEGACY_UNITS: dict[str, str] = {
    "gC m-2 d-1": NEE_UNITS,
    "gC m-2 yr-1": ANNUAL_FLUX_UNITS,
    "gC m-2 month-1": MONTHLY_FLUX_UNITS,
    "PgC d-1": DAILY_INTEGRAL_UNITS,
    "PgC month-1": MONTHLY_INTEGRAL_UNITS,
    "PgC yr-1": ANNUAL_INTEGRAL_UNITS,
}


def carbon_long_name(what: str) -> str:
    """``what`` with the carbon basis that the units cannot carry (UDUNITS has no "gC")."""
    return f"{what}, as carbon"


def units_match(found: object, expected: str) -> bool:
    """True when a ``units`` attribute is ``expected`` or its legacy spelling."""
    return found == expected or (isinstance(found, str) and LEGACY_UNITS.get(found) == expected)


@dataclass(frozen=True)
class Driver:
    """One of the 10 network inputs of Upton et al. Table A2."""

    name: str
    units: str
    long_name: str


#: The 10 drivers of Upton et al. (2024) Table A2, in network input order.
DRIVERS: tuple[Driver, ...] = (
    Driver("WAI2", "mm", "water availability index (daily bucket model)"),
    Driver("MSC_EVIRpot", "MJ m-2 d-1", "mean seasonal cycle of EVI x Rg"),
    Driver("MSC_FparLST", "K", "mean seasonal cycle of fAPAR x daytime LST"),
    Driver("MIN_MSC_NDWI", "1", "minimum of the mean seasonal cycle of NDWI"),
    Driver("AMP_Band4", "1", "amplitude of MIR (band 4) reflectance"),
    Driver("MSC_LST_Night", "K", "mean seasonal cycle of nighttime LST"),
    Driver("Rg_VIMSC", "MJ m-2 d-1", "mean seasonal cycle of NDVI x Rpot"),
    Driver("AMP_MSC_NDVI", "1", "amplitude of the mean seasonal cycle of NDVI"),
    Driver("Tair", "degC", "daily air temperature"),
    Driver("AMP_MSC_WAI", "mm", "amplitude of the mean seasonal cycle of WAI"),
)
DRIVER_NAMES: tuple[str, ...] = tuple(d.name for d in DRIVERS)

#: RECCAP2 regions of Upton et al. Table A1: (id, abbreviation, name).
RECCAP2_REGIONS: tuple[tuple[int, str, str], ...] = (
    (0, "USA", "United States"),
    (1, "CAN", "Canada"),
    (2, "CAM", "Central America"),
    (3, "NSA", "Northern South America"),
    (4, "BRA", "Brazil"),
    (5, "SSA", "Southwest South America"),
    (6, "EU", "Europe"),
    (7, "NAF", "Northern Africa"),
    (8, "EQAF", "Equatorial Africa"),
    (9, "SAF", "Southern Africa"),
    (10, "RUS", "Russia"),
    (11, "CAS", "Central Asia"),
    (12, "MIDE", "Mideast"),
    (13, "CHN", "China"),
    (14, "KAJ", "Korea and Japan"),
    (15, "SAS", "South Asia"),
    (16, "SEAS", "Southeast Asia"),
    (17, "OCE", "Oceania"),
)
TROPICAL_REGIONS: tuple[str, ...] = ("NSA", "BRA", "EQAF", "SEAS")
