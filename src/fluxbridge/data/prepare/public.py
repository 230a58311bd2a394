"""drivers.nc and the land fraction from public products (``drivers.source: public``).

Steps, each a resumable part file in the prepare work directory:

1. ``public_base_<year>.nc`` per year, in order: ERA5 daily Tair, Rg, precipitation
   at the land cells (:mod:`fluxbridge.data.public.era5`), Rpot
   (:mod:`~fluxbridge.data.public.solar`), WAI (:mod:`~fluxbridge.data.public.water`;
   the bucket state at the end of the year is stored in the part and carried to the
   next year; the first year is spun up), MODIS (:func:`~fluxbridge.data.public.modis.modis_daily`)
   and their products (:func:`~fluxbridge.data.public.drivers.base_year`);
2. ``public_msc.nc``: the mean seasonal cycles over ``drivers.msc_years``, one
   variable at a time from the base parts;
3. ``drivers_<year>.nc`` per year: the 10 Table A2 drivers, the same layout as the
   FLUXCOM path's parts (sites.nc and drivers.nc are built from them).

The land fraction is the ERA5 land-sea mask regridded conservatively, with one
pseudo plant functional type (``all``, fraction 1) whose MODIS fields are cell means
over all land cover; or, with ``drivers.modis.landcover`` (MCD12C1), land and PFT
fractions from MCD12C1 and the MODIS-based parts per (PFT, cell) pair, recombined
as Σ_pft fraction × driver in ``drivers_<year>.nc`` (:mod:`fluxbridge.data.public.modis_pft`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.data.prepare.config import DriversConfig
from fluxbridge.data.prepare.inputs import Input
from fluxbridge.data.prepare.mappings import Era5Mapping
from fluxbridge.data.public import modis, modis_pft, modis_sites
from fluxbridge.data.public.day_blocks import by_day_blocks
from fluxbridge.data.public.drivers import MSC_INPUTS, base_year, compose_year, mean_seasonal_cycle
from fluxbridge.data.public.era5 import era5_daily
from fluxbridge.data.public.modis_landcover import PftPairs
from fluxbridge.data.public.solar import potential_radiation
from fluxbridge.data.public.water import (
    BucketState,
    priestley_taylor_pet,
    run_bucket,
    spin_up,
)
from fluxbridge.errors import SchemaError
from fluxbridge.geo.grid import Grid
from fluxbridge.geo.regrid import regrid_conservative

log = logging.getLogger(__name__)

#: Builds (or reuses) one part file: (name, build) → path.
PartWriter = Callable[[str, Callable[[], xr.Dataset]], Path]


def land_sea_mask(
    era5: Input, mapping: Era5Mapping, grid: Grid
) -> tuple[xr.DataArray, xr.DataArray]:
    """Land fraction (lat, lon) from the ERA5 land-sea mask, and PFT fractions (one ``all``)."""
    spec = mapping.land_sea_mask
    found = sorted(era5.path.glob(spec.files))
    if len(found) != 1:
        raise SchemaError(
            era5.path / spec.files,
            spec.variable,
            f"expected one land-sea mask file, found {len(found)} (request ERA5 "
            "'land_sea_mask' once, see docs/real_data.md)",
        )
    path = found[0]
    grib = {"engine": "cfgrib", "backend_kwargs": {"indexpath": ""}} if _is_grib(path) else {}
    with xr.open_dataset(path, **grib) as ds:  # no index file beside GRIB data
        if spec.variable not in ds.variables:
            raise SchemaError(path, spec.variable, f"missing; the file has {sorted(map(str, ds))}")
        lsm = ds[spec.variable].load()
    names = {"latitude": "lat", "longitude": "lon"}
    lsm = lsm.rename({k: v for k, v in names.items() if k in lsm.dims}).squeeze(drop=True)
    if set(lsm.dims) != {"lat", "lon"}:
        raise SchemaError(path, spec.variable, f"expected one (lat, lon) field, dims {lsm.dims}")
    if float(lsm.min()) < 0 or float(lsm.max()) > 1 + 1e-6:
        raise SchemaError(path, spec.variable, "values outside [0, 1]: not a land fraction")
    land = regrid_conservative(lsm.reset_coords(drop=True), grid).fillna(0.0).clip(0.0, 1.0)
    land = land.where(land >= spec.min_land_fraction, 0.0)
    pft = (land > 0).astype(np.float64).expand_dims(pft=np.array(["all"], dtype=object))
    return land.assign_attrs(units="1"), pft.assign_attrs(units="1")


def _is_grib(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"GRIB"


def era5_files(era5: Input, mapping: Era5Mapping, year: int) -> list[Path]:
    """The ERA5 files of ``year`` (error when there is none)."""
    found = sorted(p for p in era5.path.glob(mapping.files.format(year=year)) if p.is_file())
    if not found:
        raise SchemaError(
            era5.path / mapping.files.format(year=year),
            None,
            f"no ERA5 file for {year} (pattern {mapping.files!r} in {era5.path})",
        )
    return found


def modis_files(inputs: dict[str, Input]) -> modis.ModisFiles:
    """Every file of the three MODIS entries (modis_daily reads only the dates it needs)."""

    def data_files(item: Input) -> tuple[Path, ...]:
        return tuple(p for p in item.files() if p.suffix.lower() in (".hdf", ".nc", ".nc4", ".h5"))

    return modis.ModisFiles(
        nbar=data_files(inputs["modis_nbar"]),
        lst=data_files(inputs["modis_lst"]),
        fpar=data_files(inputs["modis_fpar"]),
    )


def _base_part(
    year: int,
    years: range,
    config: DriversConfig,
    inputs: dict[str, Input],
    mapping: Era5Mapping,
    grid: Grid,
    cells: tuple[np.ndarray, np.ndarray],
    previous: Path | None,
    per_pft: modis.PerPft | None = None,
) -> xr.Dataset:
    days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
    paths = era5_files(inputs["era5"], mapping, year)
    has_next = year + 1 in years or any(
        inputs["era5"].path.glob(mapping.files.format(year=year + 1))
    )
    if has_next and mapping.read.layout == "hourly":
        paths += era5_files(inputs["era5"], mapping, year + 1)  # 00 UTC of 1 January
    era5 = era5_daily(paths, mapping.read, days, grid, cells, last_day_short=not has_next)
    params = config.wai
    pet = priestley_taylor_pet(era5["rg"].values, era5["tair"].values, params)
    precip, tair = era5["precip"].values, era5["tair"].values
    if previous is None:
        log.info("WAI: spinning up the bucket on %d (%d passes)", year, params.spinup_years)
        state = spin_up(precip, pet, tair, params)
    else:
        with xr.open_dataset(previous, engine="h5netcdf") as prev:
            state = BucketState(prev["wai_end_water"].values, prev["wai_end_snow"].values)
    wai, end = run_bucket(precip, pet, tair, state, params)
    # float32 now, as base_year stores them (the same values), and no PET past the bucket:
    # (time, cell) float64 arrays are 0.28 GB each at 0.5°
    del pet
    wai = wai.astype(np.float32)
    lat = grid.lat[cells[0]][None, :]
    rpot = potential_radiation(lat, days.day_of_year.to_numpy()[:, None]).astype(np.float32)
    fields = modis.modis_daily(modis_files(inputs), grid, year, per_pft=per_pft)

    def build(t: slice) -> xr.Dataset:
        era5_t, fields_t = era5.isel(time=t), fields.isel(time=t)
        if per_pft is None:
            return base_year(era5_t, fields_t, rpot[t], wai[t], cells)
        return modis_pft.base_year_per_pft(era5_t, fields_t, rpot[t], wai[t], per_pft.pairs)

    # dask arrays written block by block of days: the year's daily (time, cell) and, per
    # PFT, (time, pair) float32 fields are never all in memory (docs/real_data.md "Memory",
    # docs/modis.md "Per-PFT fields and drivers")
    base = by_day_blocks(build, days, label=f"public_base_{year}")
    # The bucket state carries the WAI into the next year's part (resumable year by year).
    base["wai_end_water"] = ("cell", end.water, {"units": "mm", "long_name": "WAI bucket water"})
    base["wai_end_snow"] = ("cell", end.snow, {"units": "mm", "long_name": "WAI snow store"})
    return base


def year_parts(
    config: DriversConfig,
    years: range,
    inputs: dict[str, Input],
    mapping: Era5Mapping,
    grid: Grid,
    cells: tuple[np.ndarray, np.ndarray],
    part: PartWriter,
    pft: xr.DataArray | None = None,
) -> list[Path]:
    """Build the base, MSC and driver parts; return the ``drivers_<year>.nc`` parts in order.

    ``pft``: grid.nc's PFT fractions, used with ``config.modis.landcover`` (per-PFT drivers).
    """
    per_pft = None
    if config.modis is not None and config.modis.landcover is not None:
        assert pft is not None, "per-PFT drivers need grid.nc's PFT fractions"
        per_pft = modis.PerPft(
            modis_pft.landcover_file(inputs["modis_landcover"].path, landcover_year(config)),
            PftPairs.from_fractions(pft.values, cells),
        )
    base: dict[int, Path] = {}
    previous: Path | None = None
    for year in years:
        base[year] = part(
            f"public_base_{year}.nc",
            lambda y=year, prev=previous: _base_part(
                y, years, config, inputs, mapping, grid, cells, prev, per_pft
            ),
        )
        previous = base[year]
    first, last = config.msc_years

    def build_msc() -> xr.Dataset:
        cycles = {}
        for name in MSC_INPUTS:
            arrays = [
                xr.open_dataset(base[y], engine="h5netcdf")[name] for y in range(first, last + 1)
            ]
            cycles[name] = (
                ("slot", arrays[0].dims[1]),  # "pair" for per-PFT quantities
                mean_seasonal_cycle(arrays, config.msc_window_days, name),
            )
        return xr.Dataset(cycles, attrs={"msc_years": f"{first}-{last}"})

    msc = part("public_msc.nc", build_msc)
    ilat, ilon = cells

    def build_year(year: int) -> xr.Dataset:
        # cache=False: each cycle is read when its driver is made, not all held at once.
        with (
            xr.open_dataset(msc, engine="h5netcdf", cache=False) as m,
            xr.open_dataset(base[year], engine="h5netcdf") as b,
        ):
            daily = b[["WAI", "Tair", "Band4"]].load()  # the daily inputs compose_year uses
            cycles = {name: m[name].variable for name in MSC_INPUTS}
            if per_pft is None:
                out = compose_year(daily, cycles)
            else:
                out = modis_pft.compose_year_per_pft(daily, cycles, per_pft.pairs)
        return out.assign(
            cell_ilat=("cell", ilat.astype(np.int32), {"long_name": "lat index"}),
            cell_ilon=("cell", ilon.astype(np.int32), {"long_name": "lon index"}),
        )

    return [part(f"drivers_{year}.nc", lambda y=year: build_year(y)) for year in years]


def landcover_year(config: DriversConfig) -> int:
    """The MCD12C1 year used for every year: ``modis.landcover_year``, else the last MSC year."""
    assert config.modis is not None
    return config.modis.landcover_year or config.msc_years[1]


def tower_wai(
    sites: xr.Dataset,
    towers: xr.Dataset,
    driver_parts: list[Path],
    config: DriversConfig,
) -> xr.Dataset:
    """``sites`` with WAI2 and AMP_MSC_WAI from each tower's own meteorology.

    The bucket of :mod:`fluxbridge.data.public.water` is fed per day with the tower's
    ``precip`` (P_F, mm d-1), ``sw_in`` (SW_IN_F, MJ m-2 d-1) and ``tair`` (TA_F, °C)
    where the tower has them, and with ERA5 at the tower's cell (the base parts beside
    ``driver_parts``) where it has not; spun up on the first year, as the gridded WAI.
    """
    days = pd.DatetimeIndex(sites["time"].values)
    towers = towers.reindex(time=days)
    cells = sites["site_cell"].values
    era5 = xr.concat(
        [
            xr.open_dataset(
                p.parent / p.name.replace("drivers_", "public_base_"), engine="h5netcdf"
            )[["Tair", "Rg", "Precip"]]
            .isel(cell=cells)
            .load()
            for p in driver_parts
        ],
        dim="time",
    ).reindex(time=days)

    def merged(tower: str, gridded: str) -> np.ndarray:
        own = towers[tower].values.T  # (time, site)
        return np.where(np.isfinite(own), own, era5[gridded].values)

    tair, rg, precip = merged("tair", "Tair"), merged("sw_in", "Rg"), merged("precip", "Precip")
    params = config.wai
    pet = priestley_taylor_pet(rg, tair, params)
    first = days.year == days.year[0]
    state = spin_up(precip[first], pet[first], tair[first], params)
    wai, _ = run_bucket(precip, pet, tair, state, params)
    lo, hi = config.msc_years
    in_msc = (days.year >= lo) & (days.year <= hi)
    cycle = mean_seasonal_cycle(
        [xr.DataArray(wai[in_msc], dims=("time", "cell"), coords={"time": days[in_msc]})],
        config.msc_window_days,
        "tower WAI",
    )
    amp = np.broadcast_to(cycle.max(axis=0) - cycle.min(axis=0), wai.shape)
    share = float(np.isfinite(towers["precip"].values).mean())
    log.info("WAI at towers: %.0f%% of tower-days with the tower's own P_F", 100 * share)
    out = sites.copy()
    out["WAI2"] = sites["WAI2"].copy(data=wai.T.astype(np.float32))
    out["AMP_MSC_WAI"] = sites["AMP_MSC_WAI"].copy(data=amp.T.astype(np.float32))
    return out


def _era5_at_cells(
    driver_parts: list[Path], name: str, cells: np.ndarray, days: pd.DatetimeIndex
) -> np.ndarray:
    """(day, cell) ``name`` of the base parts beside ``driver_parts`` (NaN on other days)."""
    years = []
    for p in driver_parts:
        base = p.parent / p.name.replace("drivers_", "public_base_")
        with xr.open_dataset(base, engine="h5netcdf") as ds:
            years.append(ds[name].isel(cell=cells).load())
    return xr.concat(years, dim="time").reindex(time=days).values


#: Table A2 drivers made from MODIS (the rest: ERA5 and the WAI bucket).
MODIS_DRIVERS = (
    "MSC_EVIRpot",
    "MSC_FparLST",
    "MIN_MSC_NDWI",
    "AMP_Band4",
    "MSC_LST_Night",
    "Rg_VIMSC",
    "AMP_MSC_NDVI",
)


def tower_modis(
    sites: xr.Dataset, driver_parts: list[Path], config: DriversConfig, folder: Path
) -> xr.Dataset:
    """``sites`` with the MODIS drivers of towers that have ORNL DAAC site subsets.

    Each tower with subsets of all three products (:mod:`fluxbridge.data.public.modis_sites`,
    matched by site id or position) gets its daily EVI, NDVI, NDWI, Band4, LST and fAPAR
    from the window around its pixel; the MSC inputs of :func:`base_year` are formed with
    ERA5 Rg at the tower's cell (the base parts beside ``driver_parts``) and Rpot at the
    tower's latitude, and the drivers by :func:`mean_seasonal_cycle` over
    ``config.msc_years`` and :func:`compose_year`, as for the grid. Towers without
    subsets, or with an MSC input never valid in the MSC years, keep their cell's drivers
    (logged with the count).
    """
    days = pd.DatetimeIndex(sites["time"].values)
    names = [str(s) for s in sites["site"].values]
    matched = modis_sites.match_towers(
        modis_sites.read_subset_folder(folder),
        names,
        sites["site_lat"].values,
        sites["site_lon"].values,
    )
    fields: dict[int, dict[str, np.ndarray]] = {}
    fallback: dict[str, str] = {}
    for i, name in enumerate(names):
        have = {s.product.names[0] for s in matched.get(name, [])}
        lacking = [p.names[0] for p in modis_sites.PRODUCTS if p.names[0] not in have]
        if lacking:
            fallback[name] = f"no {'/'.join(lacking)} subset"
            continue
        fields[i] = modis_sites.site_daily(matched[name], days)
    out = sites.copy()
    if fields:
        index = np.fromiter(fields, dtype=np.int64)
        lat = sites["site_lat"].values[index]
        cells = sites["site_cell"].values[index]
        rg = _era5_at_cells(driver_parts, "Rg", cells, days)
        rpot = potential_radiation(lat[None, :], days.day_of_year.to_numpy()[:, None])
        m = {v: np.stack([fields[i][v] for i in index], axis=1) for v in modis.VARIABLES}
        base = {
            "EVI_Rg": m["EVI"] * rg,
            "FPAR_LST_Day": m["FPAR"] * m["LST_Day"],
            "NDWI": m["NDWI"],
            "LST_Night": m["LST_Night"],
            "NDVI_Rpot": m["NDVI"] * rpot,
            "NDVI": m["NDVI"],
            # WAI and Tair: placeholders for compose_year; their drivers are not taken here.
            "WAI": np.zeros_like(rg),
            "Band4": m["Band4"],
        }
        lo, hi = config.msc_years
        in_msc = (days.year >= lo) & (days.year <= hi)
        never = np.zeros(index.size, dtype=bool)
        for name in MSC_INPUTS:
            never |= ~np.isfinite(base[name][in_msc]).any(axis=0)
        for k in np.flatnonzero(never):
            fallback[names[index[k]]] = f"no valid subset value in {lo}-{hi} for an MSC input"
        keep = ~never
        index, base = index[keep], {k: v[:, keep] for k, v in base.items()}
        if index.size:
            cycles = {
                name: mean_seasonal_cycle(
                    [
                        xr.DataArray(
                            base[name][in_msc], dims=("time", "cell"), coords={"time": days[in_msc]}
                        )
                    ],
                    config.msc_window_days,
                    f"tower {name}",
                )
                for name in MSC_INPUTS
            }
            composed = []
            for year in sorted(set(days.year)):
                sel = days.year == year
                year_base = xr.Dataset(
                    {k: (("time", "cell"), base[k][sel]) for k in ("WAI", "Band4")}
                    | {"Tair": (("time", "cell"), np.zeros((int(sel.sum()), index.size)))},
                    coords={"time": days[sel]},
                )
                composed.append(compose_year(year_base, cycles)[list(MODIS_DRIVERS)])
            drivers = xr.concat(composed, dim="time")
            for driver in MODIS_DRIVERS:
                values = out[driver].values.copy()
                values[index] = drivers[driver].values.T
                out[driver] = out[driver].copy(data=values.astype(np.float32))
    used = [names[i] for i in fields if names[i] not in fallback]
    log.info(
        "MODIS at towers: %d of %d tower(s) from ORNL DAAC site subsets in %s; %d keep "
        "their cell's MODIS drivers%s",
        len(used),
        len(names),
        folder,
        len(fallback),
        "".join(f"\n  {k}: {v}" for k, v in sorted(fallback.items())),
    )
    out.attrs["modis_at_towers"] = (
        f"ORNL DAAC site subsets: {', '.join(used) or 'none'}; "
        f"cell: {', '.join(sorted(fallback)) or 'none'}"
    )
    return out
