"""The canonical validator on a real (tiny) twin-world dataset, broken one way at a time."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from fluxbridge.data.canonical import open_canonical
from fluxbridge.data.twin import run_twin
from fluxbridge.errors import SchemaError
from fluxbridge.io import ENGINE, write_netcdf

TINY = Path(__file__).resolve().parents[2] / "configs" / "twin" / "tiny.yaml"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("canonical") / "tiny"
    run_twin(TINY, out, force=False)
    return out


def _broken(
    tiny: Path, tmp_path: Path, name: str, change: Callable[[xr.Dataset], xr.Dataset]
) -> Path:
    copy = tmp_path / "data"
    shutil.copytree(tiny, copy)
    with xr.open_dataset(copy / name, engine=ENGINE) as ds:
        changed = change(ds.load())
    (copy / name).unlink()
    write_netcdf(changed, copy / name, action="test: break")
    return copy


def test_tiny_twin_world_is_valid(tiny):
    checked = open_canonical(tiny).validate()
    assert {"grid", "drivers", "sites", "inversions", "reference", "residual_sink"} <= set(checked)


def _descending_lat(ds: xr.Dataset) -> xr.Dataset:
    return ds.isel(lat=slice(None, None, -1))


def _nan_lon(ds: xr.Dataset) -> xr.Dataset:
    lon = ds["lon"].values.copy()
    lon[3] = np.nan
    return ds.assign_coords(lon=lon)


def _duplicate_month(ds: xr.Dataset) -> xr.Dataset:
    time = ds["time"].values.copy()
    time[5] = time[4]
    return ds.assign_coords(time=time)


def _gap_month(ds: xr.Dataset) -> xr.Dataset:
    return ds.isel(time=[t for t in range(ds.sizes["time"]) if t != 7])


def _noon_days(ds: xr.Dataset) -> xr.Dataset:
    return ds.assign_coords(time=ds["time"].values + np.timedelta64(12, "h"))


@pytest.mark.parametrize(
    "name, change, variable, expectation",
    [
        ("reference.nc", lambda ds: ds.drop_vars("nee"), "nee", "missing variable"),
        (
            "reference.nc",
            lambda ds: ds.assign(nee=ds["nee"].assign_attrs(units="kgC m-2 s-1")),
            "nee",
            "expected 'g m-2 d-1'",
        ),
        (
            "inversions.nc",
            lambda ds: ds.assign(nee=ds["nee"].transpose("time", "member", "lat", "lon")),
            "nee",
            "expected ('member', 'time', 'lat', 'lon')",
        ),
        ("reference.nc", _descending_lat, "lat", "ascending"),
        ("reference.nc", _nan_lon, "lon", "NaN"),
        ("inversions.nc", _duplicate_month, "time", "duplicate time"),
        ("reference.nc", _gap_month, "time", "contiguous month starts"),
        ("sites.nc", _noon_days, "time", "contiguous days at 00:00"),
        (
            "residual_sink.nc",
            lambda ds: ds.assign(nee_global=ds["nee_global"].assign_attrs(units="PgC")),
            "nee_global",
            "expected 'Pg yr-1'",
        ),
        ("grid.nc", lambda ds: ds.drop_vars("region_fraction"), "region_fraction", "missing"),
    ],
)
def test_each_break_is_named(tiny, tmp_path, name, change, variable, expectation):
    data = _broken(tiny, tmp_path, name, change)
    with pytest.raises(SchemaError) as info:
        open_canonical(data)
    message = str(info.value)
    assert name in message and variable in message and expectation in message


# What fluxbridge wrote before its units were UDUNITS spellings (written out, not imported).
LEGACY = {
    "sites.nc": {"nee_obs": "gC m-2 d-1"},
    "inversions.nc": {"nee": "gC m-2 d-1"},
    "reference.nc": {"nee": "gC m-2 d-1"},
    "truth.nc": {"nee": "gC m-2 d-1", "site_nee": "gC m-2 d-1"},
    "residual_sink.nc": {"nee_global": "PgC yr-1", "nee_global_sigma": "PgC yr-1"},
}


def test_dataset_with_the_old_unit_spellings_still_validates(tiny, tmp_path):
    copy = tmp_path / "data"
    shutil.copytree(tiny, copy)
    for name, units in LEGACY.items():
        with xr.open_dataset(copy / name, engine=ENGINE) as ds:
            old = ds.load()
        for variable, spelling in units.items():
            old[variable].attrs["units"] = spelling
        (copy / name).unlink()
        write_netcdf(old, copy / name, action="test: old unit spellings")
    data = open_canonical(copy)
    assert data.open("reference")["nee"].attrs["units"] == "gC m-2 d-1"  # really the old file
    assert {"sites", "inversions", "reference", "truth", "residual_sink"} <= set(data.validate())


def test_grid_mismatch_between_files_is_named(tiny, tmp_path):
    data = _broken(tiny, tmp_path, "reference.nc", lambda ds: ds.assign_coords(lon=ds["lon"] + 1.0))
    with pytest.raises(SchemaError, match=r"reference.nc.*grid differs from .*grid.nc"):
        open_canonical(data)


def test_360_day_calendar_is_refused(tiny, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny, data)
    months = xr.DataArray(
        np.arange(36) * 30.0,
        dims="time",
        attrs={"units": "days since 2003-01-01", "calendar": "360_day"},
    )
    with xr.open_dataset(data / "reference.nc", engine=ENGINE) as ds:
        raw = ds.load()
    (data / "reference.nc").unlink()
    raw = raw.assign_coords(time=months)
    raw.to_netcdf(data / "reference.nc", engine=ENGINE)
    with pytest.raises(SchemaError, match=r"reference.nc, variable 'time'.*calendar='360_day'"):
        open_canonical(data)


def test_corrupt_file_and_missing_metadata(tiny, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(tiny, data)
    (data / "sites.nc").write_bytes(b"\x89HDF\r\n\x1a\n truncated")
    with pytest.raises(SchemaError, match=r"sites.nc: not a readable NetCDF4"):
        open_canonical(data)
    (data / "canonical.json").unlink()
    with pytest.raises(SchemaError, match=r"canonical.json: missing"):
        open_canonical(data)


def test_drivers_must_cover_exactly_the_land_cells(tiny, tmp_path):
    data = _broken(tiny, tmp_path, "drivers.nc", lambda ds: ds.isel(cell=slice(1, None)))
    with pytest.raises(SchemaError, match=r"drivers.nc, variable 'cell'.*land_fraction > 0"):
        open_canonical(data)
