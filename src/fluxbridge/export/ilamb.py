"""Forward runs as ILAMB model output; the twin world's truth as an ILAMB reference.

``invoke export --run RUN --format ilamb`` writes, under ``OUT`` (default
``RUN/export/ilamb/``; docs/ilamb.md)::

    <MODEL>/nee_mon_<MODEL>_gn.nc        nee(time, lat, lon)  kg m-2 s-1, positive up (source)
    <MODEL>/nbp_mon_<MODEL>_gn.nc        nbp(time, lat, lon)  kg m-2 s-1, positive down (sink)
    <MODEL>/areacella_fx_<MODEL>_gn.nc   cell area (m2)
    <MODEL>/sftlf_fx_<MODEL>_gn.nc       land area fraction (%)
    models.csv                           ilamb3 model database (source_id, ..., path)
    reference/{nee,nbp}/TwinTruth/*.nc   the twin truth as a reference (twin runs only)

One folder per model is the model layout of ILAMB 2 (``--model_root``); ilamb3
finds the same files through ``models.csv``. Each model is exported as its
ensemble mean (``nee_mean`` of the forward file), monthly means on the
CMOR time axis (mid-month time stamps with ``time_bnds``).

Conventions (sources in docs/ilamb.md):

* ``nbp`` as in the CMIP6 ``Lmon`` table: kg m-2 s-1 of carbon, positive into
  the land (``positive: down``), ``area: mean where land time: mean``.
  Here ``nbp = −nee``: the fluxes of fire, harvest and land-use change are in
  the forward NEE only as far as the network learned them.
* ``nee`` as ILAMB uses it (FLUXNET2015 reference, ``nee = ra + rh − gpp``):
  positive upward, release to the atmosphere; the same sign as fluxbridge.
  CMIP6 has no ``nee`` entry; its units and cell methods follow ``nbp``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge import __version__, logs
from fluxbridge.data.canonical import CanonicalDataset
from fluxbridge.data.units import SECONDS_PER_DAY, to_canonical
from fluxbridge.errors import FluxbridgeError
from fluxbridge.io import open_netcdf, write_netcdf
from fluxbridge.outputs import atomic_path, tree_digest

log = logs.get(__name__)

FORMATS: tuple[str, ...] = ("ilamb",)

G_PER_KG = 1000.0
#: 1 g m-2 d-1 in kg m-2 s-1: 1e-3 kg / 86 400 s = 1.1574e-8.
KG_M2_S_PER_G_M2_D = 1.0 / (G_PER_KG * SECONDS_PER_DAY)
#: CMOR units of carbon fluxes (mass of carbon; the species is in long_name).
CMOR_FLUX_UNITS = "kg m-2 s-1"
#: Units of the truth reference: those of ILAMB's FLUXNET2015 ``nee`` reference.
REFERENCE_UNITS = "g m-2 d-1"
GRID_LABEL = "gn"
MEMBER_ID = "ensmean"
TRUTH_SOURCE = "TwinTruth"
TIME_EPOCH = "1850-01-01"
TIME_UNITS = f"days since {TIME_EPOCH} 00:00:00"
LAND_CELL_METHODS = "area: mean where land time: mean"

NEE_ATTRS = {
    "long_name": "Net Ecosystem Exchange of CO2 expressed as carbon, positive upward "
    "(release to the atmosphere) [kgC m-2 s-1]",
    "positive": "up",
    "comment": "mass of carbon; ILAMB's nee (= ra + rh - gpp): positive = source to the "
    "atmosphere; fluxbridge ensemble mean",
}
NBP_ATTRS = {
    "standard_name": "surface_net_downward_mass_flux_of_carbon_dioxide_expressed_as_carbon_"
    "due_to_all_land_processes",
    "long_name": "Carbon Mass Flux out of Atmosphere Due to Net Biospheric Production on Land "
    "[kgC m-2 s-1]",
    "positive": "down",
    "comment": "CMIP6 Lmon nbp: positive = into the land; here nbp = -nee of the fluxbridge "
    "ensemble mean (fire, harvest and land-use fluxes only as far as NEE contains them)",
}


# ---------------------------------------------------------------- pure conversions


def g_m2_d_to_kg_m2_s(flux: xr.DataArray) -> xr.DataArray:
    """Carbon flux in gC m-2 d-1 → kgC m-2 s-1 (× 1e-3 / 86 400); the sign is kept."""
    return flux * KG_M2_S_PER_G_M2_D


def nee_to_nbp(nee: xr.DataArray) -> xr.DataArray:
    """NEE (positive = source, upward) → NBP (positive = sink, into the land): ``-nee``.

    Units are kept; NBP here is the land–atmosphere exchange only (no lateral fluxes).
    """
    return -nee


def land_area_percent(land_fraction: xr.DataArray) -> xr.DataArray:
    """Land fraction (1) → ``sftlf`` (%), as CMIP's fx table stores it; NaN counts as 0 %."""
    return land_fraction.fillna(0.0) * 100.0


def complete_monthly_means(daily: xr.DataArray, time: str = "time") -> xr.DataArray:
    """Daily values → calendar-month means (each day weighs the same); units and sign kept.

    Only complete months are returned (every day of the month present), so a
    run that starts or ends mid-month never yields a mean over part of a
    month. The result's ``time`` is the first day of each month.
    """
    month = pd.DatetimeIndex(daily[time].values).to_period("M").to_timestamp()
    starts = xr.DataArray(month, dims=time, coords={time: daily[time]}, name="month")
    means = daily.groupby(starts).mean(time)
    counts = starts.groupby(starts).count()
    complete = counts.values == means["month"].dt.days_in_month.values
    means = means.isel(month=np.nonzero(complete)[0]).rename(month=time)
    means.attrs = dict(daily.attrs)
    return means


def month_axis(month_starts: pd.DatetimeIndex) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """CMOR monthly time axis: mid-month time stamps and (start, next start) bounds."""
    starts = pd.DatetimeIndex(month_starts)
    ends = starts + pd.offsets.MonthBegin(1)
    bounds = np.stack([starts.values, ends.values], axis=-1)
    return starts + (ends - starts) / 2, bounds


# ---------------------------------------------------------------- reading a run


@dataclass(frozen=True)
class ForwardFile:
    """One forward run to export: model name and file (monthly, or daily when no monthly)."""

    model: str
    path: Path


def forward_files(run: Path) -> list[ForwardFile]:
    """The forward runs of ``run``: ``<MODEL>.nc``, or ``<MODEL>_daily.nc`` when alone."""
    folder = run / "forward"
    files = sorted(p for p in folder.glob("*.nc") if not p.name.startswith("."))
    monthly = {p.stem: p for p in files if not p.stem.endswith("_daily")}
    daily = {p.stem.removesuffix("_daily"): p for p in files if p.stem.endswith("_daily")}
    chosen = {**daily, **monthly}
    if not chosen:
        raise FluxbridgeError(
            f"{folder}: no forward runs (<MODEL>.nc); run `invoke forward --run {run}` first"
        )
    return [ForwardFile(model, chosen[model]) for model in sorted(chosen)]


def _dataset_root(run: Path) -> Path:
    """The canonical dataset of the run (training configs), else ``RUN/data``."""
    from fluxbridge.inference.members import run_dataset

    try:
        return run_dataset(run)
    except FluxbridgeError:
        if (run / "data" / "canonical.json").exists():
            return run / "data"
        raise


def _check_provenance(run: Path, data: CanonicalDataset, forwards: list[ForwardFile]) -> None:
    """Refuse forward files made from another dataset or, for trained models, other members."""
    from fluxbridge.inference.forward import check_current, forward_inputs
    from fluxbridge.inference.members import model_dirs

    digest = tree_digest(data.root)
    try:
        trained = model_dirs(run)
    except FluxbridgeError:  # a run folder holding forward output only
        trained = {}
    for fwd in forwards:
        expected = (
            forward_inputs(run, fwd.model, digest) if fwd.model in trained else {"dataset": digest}
        )
        check_current(fwd.path, expected, run)


def monthly_nee(path: Path, ds: xr.Dataset, variable: str = "nee_mean") -> xr.DataArray:
    """Monthly-mean NEE (gC m-2 d-1, positive = source) of a forward or truth file.

    The units are read from the file through :mod:`fluxbridge.data.units`;
    time must be contiguous days or contiguous month starts.
    """
    if variable not in ds:
        raise FluxbridgeError(f"{path}: no variable '{variable}'")
    nee = to_canonical(ds[variable])
    times = pd.DatetimeIndex(ds["time"].values)
    if len(times) > 1 and (np.diff(times.values) == np.timedelta64(1, "D")).all():
        nee = complete_monthly_means(nee)
        if nee.sizes["time"] == 0:
            raise FluxbridgeError(f"{path}: daily '{variable}' holds no complete month")
        return nee
    expected = pd.date_range(times[0], periods=len(times), freq="MS")
    if len(times) != len(expected) or not (times == expected).all():
        raise FluxbridgeError(
            f"{path}: time of '{variable}' is neither contiguous days nor contiguous "
            f"month starts ({times[0]} .. {times[-1]}, {len(times)} steps)"
        )
    return nee


# ---------------------------------------------------------------- building files


def _grid_coords(grid: xr.Dataset) -> xr.Dataset:
    """lat/lon with their bounds from the canonical grid (CF attributes kept)."""
    return grid[["lat_bnds", "lon_bnds"]].reset_coords(drop=False)


def _days_since_epoch(times: np.ndarray) -> np.ndarray:
    """datetime64 → float64 days since :data:`TIME_EPOCH` (the CF numeric time axis)."""
    return (times - np.datetime64(TIME_EPOCH)) / np.timedelta64(1, "D")


def _monthly_dataset(
    name: str, values: xr.DataArray, attrs: dict[str, str], grid: xr.Dataset
) -> xr.Dataset:
    """A (time, lat, lon) float32 variable on the CMOR month axis with bounds.

    Time is written as float days since 1850 (numeric, as CF checkers and
    UDUNITS tools expect); it is encoded here because ``write_netcdf`` sets
    each variable's encoding itself.
    """
    mid, bounds = month_axis(pd.DatetimeIndex(values["time"].values))
    time = xr.Variable(
        "time",
        _days_since_epoch(mid.values),
        {
            "standard_name": "time",
            "axis": "T",
            "bounds": "time_bnds",
            "units": TIME_UNITS,
            "calendar": "standard",
        },
    )
    da = values.transpose("time", "lat", "lon").astype(np.float32)
    da = da.assign_coords(time=time, lat=grid["lat"], lon=grid["lon"])
    da.attrs = attrs
    ds = xr.Dataset({name: da, "time_bnds": (("time", "bnds"), _days_since_epoch(bounds))})
    return ds.merge(_grid_coords(grid))


def _global_attrs(variable: str, model: str, frequency: str, title: str) -> dict[str, str]:
    return {
        "title": title,
        "source": f"fluxbridge {__version__}",
        "source_id": model,
        "variable_id": variable,
        "frequency": frequency,
        "grid_label": GRID_LABEL,
        "realm": "land",
        "member_id": MEMBER_ID,
    }


def model_datasets(nee_gc: xr.DataArray, grid: xr.Dataset, model: str) -> dict[str, xr.Dataset]:
    """ILAMB files of one model from its monthly NEE (gC m-2 d-1, positive = source)."""
    nee = g_m2_d_to_kg_m2_s(nee_gc)
    land = {
        "units": CMOR_FLUX_UNITS,
        "cell_methods": LAND_CELL_METHODS,
        "cell_measures": "area: areacella",
    }
    out: dict[str, xr.Dataset] = {}
    for name, values, attrs in (
        ("nee", nee, NEE_ATTRS),
        ("nbp", nee_to_nbp(nee), NBP_ATTRS),
    ):
        ds = _monthly_dataset(name, values, {**land, **attrs}, grid)
        ds.attrs = _global_attrs(name, model, "mon", f"fluxbridge {model}: {name} (ILAMB export)")
        # areacella lives in its own fx file, as in CMIP (CF: external_variables).
        ds.attrs["external_variables"] = "areacella"
        out[name] = ds
    area = grid["cell_area"].astype(np.float64)
    fx = {
        "areacella": area.assign_attrs(
            standard_name="cell_area", long_name="Grid-Cell Area", units="m2"
        ),
        "sftlf": land_area_percent(grid["land_fraction"]).assign_attrs(
            standard_name="land_area_fraction",
            long_name="Percentage of the Grid Cell Occupied by Land",
            units="%",
        ),
    }
    for name, da in fx.items():
        ds = xr.Dataset({name: da}).merge(_grid_coords(grid))
        ds.attrs = _global_attrs(name, model, "fx", f"fluxbridge {model}: {name} (ILAMB export)")
        out[name] = ds
    return out


def truth_references(truth_gc: xr.DataArray, grid: xr.Dataset) -> dict[str, xr.Dataset]:
    """The twin truth as ILAMB references: ``nee`` (up) and ``nbp`` (down) in g m-2 d-1.

    ``truth_gc`` is monthly NEE in gC m-2 d-1, positive = source. The units are
    those of ILAMB's FLUXNET2015 ``nee`` reference, so ILAMB converts the model
    files (kg m-2 s-1) on reading.
    """
    out: dict[str, xr.Dataset] = {}
    for name, values, positive, sign in (
        ("nee", truth_gc, "up", "positive = release to the atmosphere"),
        ("nbp", nee_to_nbp(truth_gc), "down", "positive = into the land"),
    ):
        attrs = {
            "units": REFERENCE_UNITS,
            "long_name": f"twin-world true {name} (mass of carbon), {sign}",
            "positive": positive,
            "cell_methods": LAND_CELL_METHODS,
        }
        if name == "nbp":
            attrs["standard_name"] = NBP_ATTRS["standard_name"]
        ds = _monthly_dataset(name, values, attrs, grid)
        ds.attrs = {
            "title": f"fluxbridge twin-world truth: {name}",
            "source": f"fluxbridge {__version__} twin world (truth.nc)",
            "source_id": TRUTH_SOURCE,
            "variable_id": name,
            "frequency": "mon",
            "institution": "fluxbridge twin world (synthetic)",
        }
        out[name] = ds
    return out


def _file_name(variable: str, model: str) -> str:
    frequency = "fx" if variable in ("areacella", "sftlf") else "mon"
    return f"{variable}_{frequency}_{model}_{GRID_LABEL}.nc"


def _check_grid(path: Path, ds: xr.Dataset, grid: xr.Dataset, grid_path: Path) -> None:
    for axis in ("lat", "lon"):
        if ds.sizes.get(axis) != grid.sizes[axis] or not np.allclose(
            ds[axis].values, grid[axis].values
        ):
            raise FluxbridgeError(f"{path}: '{axis}' differs from the run's grid {grid_path}")


def _write_models_csv(path: Path, rows: list[dict[str, str]], overwrite: bool) -> None:
    with atomic_path(path, overwrite=overwrite) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(
            fh, fieldnames=["source_id", "member_id", "grid_label", "variable_id", "path"]
        )
        writer.writeheader()
        writer.writerows(rows)


def export_ilamb(run: Path, out: Path, force: bool = False) -> list[Path]:
    """Write the ILAMB export of ``run`` to ``out``; return the files written."""
    forwards = forward_files(run)
    data = CanonicalDataset(_dataset_root(run))
    _check_provenance(run, data, forwards)
    grid = data.grid_ds
    truth_path = data.path("truth")
    planned: dict[Path, xr.Dataset] = {}
    rows: list[dict[str, str]] = []
    for fwd in forwards:
        with open_netcdf(fwd.path) as ds:
            _check_grid(fwd.path, ds, grid, data.path("grid"))
            nee = monthly_nee(fwd.path, ds).load()
        for variable, ds_out in model_datasets(nee, grid, fwd.model).items():
            target = out / fwd.model / _file_name(variable, fwd.model)
            planned[target] = ds_out
            rows.append(
                {
                    "source_id": fwd.model,
                    "member_id": MEMBER_ID,
                    "grid_label": GRID_LABEL,
                    "variable_id": variable,
                    "path": str(target.resolve()),
                }
            )
    if truth_path.exists():
        with open_netcdf(truth_path) as ds:
            truth = monthly_nee(truth_path, ds, "nee").load()
        for variable, ds_out in truth_references(truth, grid).items():
            planned[out / "reference" / variable / TRUTH_SOURCE / f"{variable}.nc"] = ds_out
    models_csv = out / "models.csv"
    if not force:
        existing = [p for p in [*planned, models_csv] if p.exists()]
        if existing:
            raise FluxbridgeError(f"{existing[0]} exists; pass --force to overwrite the export")
    for target, ds_out in planned.items():
        write_netcdf(ds_out, target, action=f"ILAMB export of {run}", overwrite=force)
    _write_models_csv(models_csv, rows, overwrite=force)
    return [*planned, models_csv]


def run_export(
    run: Path, format: str = "ilamb", out: Path | None = None, force: bool = False
) -> int:
    """Entry point of ``invoke export``: the forward runs of ``run`` in ``format``.

    ``out`` defaults to ``RUN/export/<format>/``; existing files are only
    replaced with ``force``.
    """
    run = Path(run)
    if format not in FORMATS:
        raise FluxbridgeError(f"export format {format!r}: expected one of {list(FORMATS)}")
    if not run.is_dir():
        raise FluxbridgeError(f"{run}: run directory not found")
    out = Path(out) if out is not None else run / "export" / format
    written = export_ilamb(run, out, force=force)
    log.info(f"wrote {len(written)} files to {out} (ILAMB model database: {out / 'models.csv'})")
    return 0
