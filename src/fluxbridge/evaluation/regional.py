"""Regional monthly series of every source of a run, in PgC month-1.

Sources are named: ``<model>`` (ensemble mean), ``<model>:m<k>`` (member k),
``inversion:<name>`` (each inversion), ``inversion_mean``, ``reference``
(FLUXCOM-like field) and, on the twin world, ``truth``. Regions are the
dataset's regions, ``GLOBAL`` = the sum of those regions (what the inversions
constrain) and ``NO_REGION`` = land in no region (land_fraction × (1 − Σ_r
region_fraction), clipped at 0: ice sheets and unassigned islands), so that
GLOBAL + NO_REGION is all land.
"""

from __future__ import annotations

from pathlib import Path

import dask
import numpy as np
import xarray as xr

from fluxbridge.data.canonical import (
    ANNUAL_FLUX_UNITS,
    ANNUAL_INTEGRAL_UNITS,
    MONTHLY_INTEGRAL_UNITS,
    CanonicalDataset,
    carbon_long_name,
)
from fluxbridge.geo.integrate import regional_integral_pgc
from fluxbridge.io import ENGINE, write_netcdf
from fluxbridge.parallel import run_tasks

GLOBAL = "GLOBAL"
NO_REGION = "NO_REGION"
AGGREGATES = (GLOBAL, NO_REGION)  # the rows of the regional series that are not one region
DAYS_PER_YEAR = 365.25


def region_weights(data: CanonicalDataset) -> xr.DataArray:
    """(region, lat, lon) land shares per region with the dataset's abbreviations, then GLOBAL
    (Σ of the regions' shares) and NO_REGION (the land share no region claims, ≥ 0)."""
    grid = data.grid_ds
    frac = grid["region_fraction"].fillna(0.0).assign_coords(region=data.region_abbrs)
    total = frac.sum("region")
    aggregates = [
        total.expand_dims(region=[GLOBAL]),
        (1.0 - total).clip(min=0.0).expand_dims(region=[NO_REGION]),
    ]
    return xr.concat([frac, *aggregates], dim="region")


def land_area_weights(data: CanonicalDataset) -> xr.DataArray:
    """(region, lat, lon) land area of each cell in each row of :func:`region_weights` (m²)."""
    grid = data.grid_ds
    return grid["cell_area"] * grid["land_fraction"].fillna(0.0) * region_weights(data)


def integrate_field(nee: xr.DataArray, data: CanonicalDataset) -> xr.DataArray:
    """(…, time, lat, lon) monthly gC m-2 d-1 → (…, region, time) PgC month-1, with GLOBAL and
    NO_REGION."""
    grid = data.grid_ds
    return regional_integral_pgc(
        nee, grid["cell_area"], grid["land_fraction"], region_weights(data)
    ).compute()


def _labelled(series: xr.DataArray, name: str) -> xr.DataArray:
    return series.expand_dims(source=[name])


def source_series(root: Path, source: str, path: Path | None = None) -> list[xr.DataArray]:
    """Labelled (region, time) PgC month-1 series of one source of dataset ``root``.

    ``source`` is a model (its forward file ``path``: the ensemble mean, then each
    member), ``"inversions"`` (each inversion, then their mean), ``"reference"`` or
    ``"truth"``. One call is one unit of work of :func:`regional_monthly`; it reads
    its own files, so it runs in this process or on a Dask worker alike.
    """
    # the threaded scheduler here and on a worker alike: a Dask worker would otherwise
    # send these chunks back to its cluster and wait on them from inside a task
    with dask.config.set(scheduler="threads"):
        return _source_series(CanonicalDataset(root), source, path)


def _source_series(data: CanonicalDataset, source: str, path: Path | None) -> list[xr.DataArray]:
    pieces: list[xr.DataArray] = []
    if path is not None:
        with xr.open_dataset(path, engine=ENGINE, chunks={}) as ds:  # the file's own chunks
            pieces.append(_labelled(integrate_field(ds["nee_mean"], data), source))
            members = integrate_field(ds["nee"], data)
            for member in members["member"].values:
                pieces.append(
                    _labelled(members.sel(member=member, drop=True), f"{source}:{member}")
                )
    elif source == "inversions":
        inversions = data.open("inversions")
        inv = integrate_field(inversions["nee"].chunk({"time": 12}), data)
        for member in inv["member"].values:
            pieces.append(_labelled(inv.sel(member=member, drop=True), f"inversion:{member}"))
        pieces.append(_labelled(inv.mean("member"), "inversion_mean"))
    else:
        pieces.append(_labelled(integrate_field(data.open(source)["nee"], data), source))
    return pieces


def regional_monthly(
    data: CanonicalDataset,
    forward_files: dict[str, Path],
    out: Path | None = None,
    dask: str | None = None,
) -> xr.DataArray:
    """nee(source, region, time) in PgC month-1 for models, inversions, reference and truth.

    ``dask`` (``"local"`` or a scheduler address) integrates each source as a Dask
    task (:mod:`fluxbridge.parallel`); the numbers are bitwise those of the in-process run.
    """
    sources: list[tuple[str, Path | None]] = [(m, p.resolve()) for m, p in forward_files.items()]
    sources += [("inversions", None), ("reference", None)]
    if data.has("truth"):
        sources.append(("truth", None))
    root = data.root.resolve()  # the tasks get a path, not the open dataset

    def one(item: tuple[str, Path | None]) -> list[xr.DataArray]:
        return source_series(root, *item)

    groups = run_tasks(one, sources, dask, desc="regional series", unit="source", progress=False)
    pieces = [piece for group in groups for piece in group]
    times = pieces[0]["time"]
    result = xr.concat([p.sel(time=times) for p in pieces], dim="source", join="exact")
    result = result.transpose("source", "region", "time").astype(np.float64)
    result.name = "nee"
    result.attrs = {
        "units": MONTHLY_INTEGRAL_UNITS,
        "long_name": carbon_long_name("regional calendar-month total of NEE (positive = source)"),
        "cell_methods": "area: sum time: sum",
    }
    if out is not None:
        ds = result.to_dataset()
        ds["source"] = ds["source"].astype(str)
        ds["region"] = ds["region"].astype(str)
        write_netcdf(ds, out, action="regional monthly series", overwrite=True)
    return result


def annual_totals(monthly: xr.DataArray) -> xr.DataArray:
    """Sum of monthly integrals per calendar year (PgC yr-1); incomplete years are dropped."""
    counts = monthly["time"].dt.year.to_series().value_counts()
    full_years = sorted(int(y) for y, n in counts.items() if n == 12)
    annual = monthly.groupby("time.year").sum("time", skipna=False)
    return annual.sel(year=full_years).assign_attrs(units=ANNUAL_INTEGRAL_UNITS)


def annual_maps(nee: xr.DataArray) -> xr.DataArray:
    """(…, time, lat, lon) monthly means in gC m-2 d-1 → (…, year, lat, lon) gC m-2 yr-1.

    The mean of the months of each year times 365.25 d (months weigh alike, as the
    report's maps always have; the spread of month lengths moves it by < 1 %).
    """
    annual = nee.groupby("time.year").mean("time") * DAYS_PER_YEAR
    return annual.assign_attrs(units=ANNUAL_FLUX_UNITS)
