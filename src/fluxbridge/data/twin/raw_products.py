"""Raw gridded products of the twin: FLUXCOM NEE, GCB2022 inversions, GFAS fire, the GCB
budget sheet and the RECCAP2 mask, in the layouts of ``configs/prepare/mappings``.

Signs and bases (what ``prepare`` undoes): inversions are net land fluxes *including
fire*, per m² of grid cell, + = source; GFAS co2fire is kg CO2 per m² of cell and
second, + = emission; FLUXCOM NEE is per m² of land in gC m-2 d-1. The twin has no
fire of its own, so a synthetic fire field (:func:`synthetic_fire`) is added to the
inversions and written as GFAS: ``prepare`` must subtract exactly what was added.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.config import SHIPPED_CONFIGS
from fluxbridge.data.canonical import RECCAP2_REGIONS
from fluxbridge.data.prepare.mappings import BudgetTable, GriddedProduct, RegionMask, load_mapping
from fluxbridge.data.units import parse_flux_units
from fluxbridge.geo.grid import Grid
from fluxbridge.io import atomic_path, write_netcdf

from .fields import stream_rng
from .geography import Geography

T = TypeVar("T")
ACTION = "twin world as raw products (fluxbridge.data.twin.raw)"
INVERSIONS_FILE = "inversions/GCB2022_inversions_twin.nc"
BUDGET_FILE = "gcb/Global_Carbon_Budget_twin.csv"
MASK_FILE = "reccap2/RECCAP2_region_masks_twin.nc"
#: Units written in the inversion file (the mapping takes them from the file).
INVERSION_UNITS = "kgC m-2 s-1"
#: GFAS's own units attribute; the mapping overrides it to kg CO2 m-2 s-1.
GFAS_FILE_UNITS = "kg m**-2 s**-1"
#: Synthetic fire: peak monthly emission (gC m-2 d-1 per m² of land) and its shape.
FIRE_PEAK_GC_M2_D = 0.15
FIRE_LAT_CENTRE, FIRE_LAT_WIDTH = 12.0, 12.0  # degrees: savanna belts of both hemispheres
_STREAM_FIRE = 60
#: Nominal budget terms (PgC yr-1, GCB2022-like magnitudes); fossil and land-use change
#: are solved so that the sheet gives the twin's residual sink and its 1 sigma.
NOMINAL_TERMS = {"atmospheric_growth": 5.0, "ocean_sink": 2.9, "cement_carbonation": 0.2}
BALANCE_TERM = "land_use_change"


MAPPINGS = SHIPPED_CONFIGS / "prepare" / "mappings"


def shipped_mapping(kind: type[T], name: str) -> T:
    """A shipped product mapping (``configs/prepare/mappings/<name>.yaml``) as ``kind``."""
    return load_mapping(kind, MAPPINGS / f"{name}.yaml")


def _time_days(months: pd.DatetimeIndex, since: str = "2000-01-01") -> np.ndarray:
    """Mid-month stamps in days since ``since`` (what monthly products carry)."""
    mid = months + (months + pd.offsets.MonthBegin(1) - months) / 2
    return ((mid - pd.Timestamp(since)) / pd.Timedelta(days=1)).to_numpy(np.float64)


def _gc_per(units: str) -> float:
    """gC m-2 d-1 per 1 ``units`` (the readers' own conversion, inverted by the writers)."""
    return float(parse_flux_units(units).factor)


def write_reference(reference_nc: Path, folder: Path) -> None:
    """FLUXCOM RS+METEO NEE layout: ``NEE`` gC m-2 d-1 per land, one file per year."""
    layout: GriddedProduct = shipped_mapping(GriddedProduct, "fluxcom_rs_meteo_era5_nee")
    m = layout.read
    with xr.open_dataset(reference_nc, engine="h5netcdf") as ds:
        nee = ds["nee"].load()
    months = pd.DatetimeIndex(nee["time"].values)
    nlat, nlon = nee.sizes["lat"], nee.sizes["lon"]
    folder.mkdir(parents=True)
    for year in np.unique(months.year):
        sel = np.flatnonzero(months.year == year)
        out = xr.Dataset(
            {m.variable: ((m.time_name, m.lat_name, m.lon_name), nee.values[sel],
                          {"units": m.units, "long_name": "net ecosystem exchange"})},
            coords={
                m.time_name: (m.time_name, _time_days(months[sel]),
                              {"units": "days since 2000-01-01", "calendar": "standard"}),
                m.lat_name: nee["lat"].values,
                m.lon_name: nee["lon"].values,
            },
        )  # fmt: skip
        name = layout.files.replace("*", f"FP-ALL.MLM-ALL.METEO-ERA5.{nlon}_{nlat}", 1)
        write_netcdf(out, folder / name.replace("*", str(int(year))), action=ACTION)


def synthetic_fire(grid_ds: xr.Dataset, seed: int, inversions_nc: Path) -> xr.DataArray:
    """Monthly fire emission per m² of land (gC m-2 d-1, ≥ 0), (time, lat, lon), 0 off land.

    Two savanna belts (Gaussian in latitude around ±12°), a dry-season peak (northern
    belt in January, southern in July) and a seeded cell factor in [0.5, 1.5).
    """
    with xr.open_dataset(inversions_nc, engine="h5netcdf") as ds:
        months = pd.DatetimeIndex(ds["time"].values)
    lat = grid_ds["lat"].values[:, None]
    land = grid_ds["land_fraction"].values > 0
    rng = stream_rng(seed, _STREAM_FIRE)
    factor = 0.5 + rng.random(land.shape)
    phase = 2 * np.pi * (months.month.to_numpy() - 1) / 12.0
    north = np.exp(-0.5 * ((lat - FIRE_LAT_CENTRE) / FIRE_LAT_WIDTH) ** 2)
    south = np.exp(-0.5 * ((lat + FIRE_LAT_CENTRE) / FIRE_LAT_WIDTH) ** 2)
    season_n = 0.5 * (1 + np.cos(phase))[:, None, None]
    season_s = 0.5 * (1 - np.cos(phase))[:, None, None]
    fire = FIRE_PEAK_GC_M2_D * (season_n * north + season_s * south) * factor * land
    return xr.DataArray(
        fire, dims=("time", "lat", "lon"),
        coords={"time": months, "lat": grid_ds["lat"].values, "lon": grid_ds["lon"].values},
    )  # fmt: skip


def write_inversions(
    inversions_nc: Path, fire: xr.DataArray, grid_ds: xr.Dataset, path: Path
) -> list[str]:
    """GCB2022 layout: members in one file, net land flux incl. fire per m² of cell, + = source.

    Values are float64 (lossless); ocean cells are 0 (no land flux). Returns the members.
    """
    layout: GriddedProduct = shipped_mapping(GriddedProduct, "gcb2022_inversions")
    m = layout.read
    land = grid_ds["land_fraction"].values
    with xr.open_dataset(inversions_nc, engine="h5netcdf") as ds:
        nee = ds["nee"].load()
    members = [str(v) for v in nee["member"].values]
    months = pd.DatetimeIndex(nee["time"].values)
    per_cell = (np.nan_to_num(nee.values.astype(np.float64)) + fire.values[None]) * land
    values = per_cell / _gc_per(INVERSION_UNITS)
    dims = (layout.member_dim, m.time_name, m.lat_name, m.lon_name)
    out = xr.Dataset(
        {
            m.variable: (dims, values, {"units": INVERSION_UNITS, "long_name":
                         "land flux incl. fire, fossil/cement adjusted (+ = source)"}),
            layout.member_names_variable: (layout.member_dim, np.array(members, dtype=object)),
        },
        coords={
            m.time_name: (m.time_name, _time_days(months),
                          {"units": "days since 2000-01-01", "calendar": "standard"}),
            m.lat_name: nee["lat"].values,
            m.lon_name: nee["lon"].values,
        },
    )  # fmt: skip
    write_netcdf(out, path, action=ACTION)
    return members


def write_fire(fire: xr.DataArray, grid_ds: xr.Dataset, folder: Path) -> None:
    """CAMS GFAS layout: daily co2fire per m² of cell, lat descending, lon 0..360, a file a year.

    Each day holds its month's emission (so the monthly mean is exact), float32 as GFAS.
    """
    layout: GriddedProduct = shipped_mapping(GriddedProduct, "cams_gfas")
    m = layout.read
    land = grid_ds["land_fraction"].values
    kg_co2 = (fire * land) / _gc_per(str(m.units))  # per m² of cell
    lon360 = np.mod(fire["lon"].values, 360.0)
    order = np.argsort(lon360)
    kg_co2 = kg_co2.isel(lat=slice(None, None, -1), lon=order)
    months = pd.DatetimeIndex(fire["time"].values)
    folder.mkdir(parents=True)
    for year in np.unique(months.year):
        days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
        index = [int(np.flatnonzero(months == d.replace(day=1))[0]) for d in days]
        hours = ((days - pd.Timestamp("1900-01-01")) / pd.Timedelta(hours=1)).to_numpy()
        out = xr.Dataset(
            {m.variable: ((m.time_name, m.lat_name, m.lon_name),
                          kg_co2.values[index].astype(np.float32),
                          {"units": GFAS_FILE_UNITS, "long_name": "Wildfire flux of CO2"})},
            coords={
                m.time_name: (m.time_name, hours, {"units": "hours since 1900-01-01 00:00:00.0",
                                                   "calendar": "gregorian"}),
                m.lat_name: kg_co2["lat"].values,
                m.lon_name: lon360[order],
            },
        )  # fmt: skip
        write_netcdf(out, folder / f"cams_gfas_co2fire_{year}.nc", action=ACTION)


def budget_terms(nee_global: np.ndarray, sigma: np.ndarray, layout: BudgetTable) -> pd.DataFrame:
    """Budget columns (PgC yr-1) whose residual sink is −nee_global and whose 1σ is ``sigma``.

    The relative-σ term (fossil) is solved from σ² = (rel·F)² + Σ absolute σ²; where σ
    is below the absolute terms' quadrature it cannot be met and fossil takes 10 PgC yr-1.
    The balance term (land-use change) closes S = Σ sign × term.
    """
    absolute = sum(t.sigma**2 for t in layout.terms.values() if not t.sigma_relative)
    columns: dict[str, np.ndarray] = {}
    for name, term in layout.terms.items():
        if term.sigma_relative:
            excess = sigma**2 - absolute
            columns[name] = np.where(
                excess > 0, np.sqrt(np.maximum(excess, 0.0)) / term.sigma, 10.0
            )
        elif name in NOMINAL_TERMS:
            columns[name] = np.full(nee_global.shape, NOMINAL_TERMS[name])
    sink = -nee_global
    balance = layout.terms[BALANCE_TERM]
    rest = sum(layout.terms[n].sign * v for n, v in columns.items())
    columns[BALANCE_TERM] = (sink - rest) / balance.sign
    return pd.DataFrame({layout.terms[n].column: v for n, v in columns.items()})


def write_budget(residual_nc: Path, path: Path) -> None:
    """The GCB budget sheet as CSV: ``header_row`` preamble lines, then Year and the terms."""
    layout: BudgetTable = shipped_mapping(BudgetTable, "gcb2022_budget")
    with xr.open_dataset(residual_nc, engine="h5netcdf") as ds:
        years = ds["year"].values.astype(int)
        nee, sigma = ds["nee_global"].values, ds["nee_global_sigma"].values
    table = budget_terms(nee.astype(np.float64), sigma.astype(np.float64), layout)
    table.insert(0, layout.year_column, years)
    preamble = [f"# twin world: {layout.sheet} (synthetic terms, PgC/yr)"] + [
        "#" for _ in range(layout.header_row - 1)
    ]
    with atomic_path(path) as tmp:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        with tmp.open("w") as fh:
            fh.write("\n".join(preamble) + "\n")
            table.to_csv(fh, index=False, float_format="%.12g")


def mask_subcells(resolution_deg: float) -> int:
    """Mask sub-cells per twin cell side: min(16, ⌈16 × resolution⌉) (10°, 4° → 16; 0.5° → 8)."""
    return max(2, min(16, int(np.ceil(resolution_deg * 16))))


def write_region_mask(geo: Geography, path: Path) -> None:
    """RECCAP2 mask layout: integer ids 1..18 (0 = none) on sub-cells of the twin's cells.

    An integer mask cannot hold a cell shared by regions, so each twin cell's n × n
    sub-cells are dealt to its regions by area quantile: sub-cell k (row-major) goes to
    the region whose cumulative share holds the midpoint of k's cumulative area. The
    area-weighted aggregation of prepare then gives back the twin's shares to within
    one sub-cell's area share (≈ 1/n²) per region boundary.
    """
    layout: RegionMask = shipped_mapping(RegionMask, "reccap2_mask")
    assert layout.ids is not None
    file_id = {abbr: int(i) for i, abbr in layout.ids.items()}
    ids_in_order = np.array([file_id[a] for _, a, _ in RECCAP2_REGIONS], dtype=np.int32)
    grid = geo.grid
    n = mask_subcells(max(grid.resolution))
    fine = Grid.global_regular(grid.resolution[0] / n, grid.resolution[1] / n)
    area = fine.cell_area().values  # (lat, lon) m²; equal along a row
    ids = np.zeros(fine.shape, dtype=np.int32)
    shares = geo.region_fraction  # (region, lat, lon) share of the cell's land
    for ilat, ilon in zip(*np.nonzero(shares.sum(axis=0) > 0), strict=True):
        rows, cols = slice(ilat * n, (ilat + 1) * n), slice(ilon * n, (ilon + 1) * n)
        sub = area[rows, cols].ravel()
        mid = (np.cumsum(sub) - 0.5 * sub) / sub.sum()
        bounds = np.cumsum(shares[:, ilat, ilon])
        which = np.minimum(np.searchsorted(bounds / bounds[-1], mid), len(bounds) - 1)
        ids[rows, cols] = ids_in_order[which].reshape(n, n)
    out = xr.Dataset(
        {"region_id": (("lat", "lon"), ids, {"long_name": "RECCAP2 land region (0 = none)"})},
        coords={"lat": fine.lat, "lon": fine.lon},
    )
    write_netcdf(out, path, action=ACTION)
