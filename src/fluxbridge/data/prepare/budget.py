"""residual_sink.nc: the global residual land sink of the carbon budget table, as NEE.

Residual land sink S = Σ sign_i × term_i (e.g. E_FF + E_LUC − G_ATM − S_OCEAN −
S_CEMENT, Upton et al. Sect. 3.3), in PgC yr-1 (GtC = PgC), positive = uptake.
Its 1σ is the quadrature sum of the terms' 1σ (absolute, or relative to the
term's value), assuming independent terms. Stored as NEE: ``nee_global = −S``
(negative = sink). The table is the budget workbook's sheet (needs the
``openpyxl`` package) or a CSV export of that sheet.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.data.canonical import ANNUAL_INTEGRAL_UNITS, carbon_long_name
from fluxbridge.data.prepare.mappings import BudgetTable
from fluxbridge.errors import ConfigError, SchemaError


def read_table(path: Path, mapping: BudgetTable) -> pd.DataFrame:
    """The budget sheet with its column header at ``header_row`` (0-based spreadsheet row)."""
    excel = path.suffix.lower() != ".csv"
    if excel:
        try:
            import openpyxl  # noqa: F401  (pandas needs it for .xlsx)
        except ModuleNotFoundError as exc:
            raise ConfigError(
                f"{path}: reading .xlsx needs the openpyxl package (pip install openpyxl), "
                f"or export the sheet {mapping.sheet!r} to CSV beside it"
            ) from exc
    try:
        if excel:
            table = pd.read_excel(path, sheet_name=mapping.sheet, skiprows=mapping.header_row)
        else:
            table = pd.read_csv(path, skiprows=mapping.header_row)
    except (
        ValueError,
        OSError,
        zipfile.BadZipFile,
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
    ) as exc:
        raise SchemaError(path, mapping.sheet, f"cannot read the budget table ({exc})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    wanted = [mapping.year_column, *(t.column for t in mapping.terms.values())]
    missing = [c for c in wanted if c not in table.columns]
    if missing:
        raise SchemaError(
            path,
            missing[0],
            f"missing column(s) {missing} at header row "
            f"{mapping.header_row}; the row has {list(table.columns)}",
        )
    table = table[wanted]
    years = pd.to_numeric(table[mapping.year_column], errors="coerce")
    return table[years.notna()].assign(**{mapping.year_column: years.dropna().astype(int)})


def residual_sink(path: Path, mapping: BudgetTable, years: range) -> xr.Dataset:
    """residual_sink.nc for ``years`` (every year must be in the table)."""
    table = read_table(path, mapping).set_index(mapping.year_column)
    absent = [y for y in years if y not in table.index]
    if absent:
        raise SchemaError(path, mapping.year_column, f"no row for year(s) {absent}")
    rows = table.loc[list(years)]
    sink = np.zeros(len(years))
    variance = np.zeros(len(years))
    for name, term in mapping.terms.items():
        values = pd.to_numeric(rows[term.column], errors="coerce").to_numpy(np.float64)
        if np.isnan(values).any():
            bad = [y for y, v in zip(years, values, strict=True) if np.isnan(v)]
            raise SchemaError(path, term.column, f"{name}: no number for year(s) {bad}")
        sink += term.sign * values
        sigma = term.sigma * np.abs(values) if term.sigma_relative else term.sigma
        variance += np.broadcast_to(sigma, values.shape) ** 2
    attrs = {"units": ANNUAL_INTEGRAL_UNITS, "comment": "negative = land sink"}
    return xr.Dataset(
        {
            "nee_global": (
                "year",
                -sink,
                {
                    **attrs,
                    "long_name": carbon_long_name(f"residual land sink as NEE ({mapping.product})"),
                },
            ),
            "nee_global_sigma": (
                "year",
                np.sqrt(variance),
                {
                    "units": ANNUAL_INTEGRAL_UNITS,
                    "long_name": carbon_long_name(
                        "1 sigma of the residual land sink (quadrature of the terms)"
                    ),
                },
            ),
        },
        coords={"year": ("year", np.array(list(years), dtype=np.int32))},
    )
