"""Site folds (grouped, no leakage), NaN masking, batching, ATM year samples."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.data.canonical import CanonicalDataset
from fluxbridge.errors import ConfigError, SchemaError
from fluxbridge.io import open_netcdf
from fluxbridge.plausibility import ImplausibleError, check_dataset
from fluxbridge.training.datamodules import ATMSpec, EpochBatches, FluxDataModule
from fluxbridge.training.folds import check_no_leakage, split_sites


def _sites(data):
    return open_netcdf(data / "sites.nc")


def test_fold_split_has_no_site_leakage_and_masks_nan(tiny_data):
    sites = _sites(tiny_data)
    dm = FluxDataModule(tiny_data, held_out=3, batch_size=512)
    dm.setup()
    fold = sites["fold"].values
    train, val = set(dm.split.train), set(dm.split.val)
    assert not train & val and train | val == set(range(sites.sizes["site"]))
    assert all(fold[i] == 3 for i in val) and all(fold[i] != 3 for i in train)
    obs = sites["nee_obs"].values
    finite = np.isfinite(obs)
    assert len(dm.train_sites) == finite[sorted(train)].sum()
    assert len(dm.val_sites) == finite[sorted(val)].sum()
    assert not dm.train_sites.y.isnan().any() and not dm.val_sites.y.isnan().any()
    # standardisation from the training folds only
    train_tair = sites["Tair"].values[sorted(train)][finite[sorted(train)]]
    assert dm.input_mean[8].item() == pytest.approx(train_tair.mean(), rel=1e-5)


def _sites_in(lat, lon, fold) -> xr.Dataset:
    names = [f"S{i}" for i in range(len(fold))]
    return xr.Dataset(
        {"fold": ("site", np.array(fold)), "site_lat": ("site", np.array(lat)),
         "site_lon": ("site", np.array(lon))},
        coords={"site": names},
    )  # fmt: skip


def test_two_towers_of_one_grid_cell_in_two_folds_are_refused():
    grid = xr.Dataset(
        coords={"lat": np.arange(-85.0, 90.0, 10.0), "lon": np.arange(-175.0, 180, 10)}
    )
    # 10.2 N 5.1 E and 19.9 N 0.1 E both lie in the cell 10..20 N, 0..10 E (centre 15 N, 5 E).
    split = _sites_in([10.2, 19.9, -40.0], [5.1, 0.1, 5.0], [0, 1, 1])
    with pytest.raises(SchemaError, match=r"S0 and S1 share the grid cell centred at \(15 N, 5 E\)"
                       r" but are in folds 0 and 1"):  # fmt: skip
        check_no_leakage(split, grid, "s.nc")
    check_no_leakage(_sites_in([10.2, 19.9, -40.0], [5.1, 0.1, 5.0], [1, 1, 0]), grid, "s.nc")
    check_no_leakage(_sites_in([10.2, 20.1], [5.1, 5.1], [0, 1]), grid, "s.nc")  # two cells


def test_empty_fold_is_a_clear_error():
    fold = np.array([0, 0, 1, 1])
    with pytest.raises(ConfigError, match="fold 1 leaves no validation data"):
        split_sites(fold, 1, np.array([5, 3, 0, 0]), "sites.nc")


def test_ddp_shares_make_up_the_single_process_batches():
    single = list(EpochBatches(103, 20, seed=4))
    shares = [list(EpochBatches(103, 20, seed=4, rank=r, world_size=2)) for r in (0, 1)]
    assert len(single) == 5 and all(len(b) == 20 for b in single)  # remainder 3 dropped
    for batch, a, b in zip(single, *shares, strict=True):
        assert sorted(a + b) == sorted(batch) and len(a) == len(b) == 10


def test_batch_order_depends_on_seed_and_epoch_only():
    s = EpochBatches(50, 10, seed=1)
    first = list(s)
    s.set_epoch(1)
    second = list(s)
    again = EpochBatches(50, 10, seed=1)
    again.set_epoch(1)
    assert second == list(again) and first != second
    with pytest.raises(ConfigError, match="multiple of the 2 processes"):
        EpochBatches(50, 11, seed=1, world_size=2)


def test_atm_year_targets_are_inversion_integrals(tiny_data):
    dm = FluxDataModule(
        tiny_data, held_out=0, seed=3, atm=ATMSpec("exact", inversions=["invC", "invA"])
    )
    dm.setup()
    assert len(dm.val_years) == 2 and set(dm.val_years) <= set(dm.years)
    assert set(dm.train_years).isdisjoint(dm.val_years)
    year = dm.train_years[0]
    batch = dm.train_atm.items[0]
    assert batch["year"] == year and batch["x"].shape[0] in (365, 366)
    grid = open_netcdf(tiny_data / "grid.nc")
    inv = open_netcdf(tiny_data / "inversions.nc")["nee"].sel(member=["invC", "invA"])
    inv = inv.sel(time=inv.time.dt.year == year)
    # independent integral: Σ nee · area · land · region_fraction · days · 1e-15
    w = (grid.cell_area * grid.land_fraction * grid.region_fraction).transpose("region", ...)
    days = xr.DataArray(pd.DatetimeIndex(inv.time.values).days_in_month.to_numpy(), dims="time")
    expected = (inv * w * days).sum(("lat", "lon")).transpose("member", "region", "time") * 1e-15
    assert np.allclose(batch["target"].numpy(), expected.values, rtol=1e-5)
    assert batch["month_mean"].sum(dim=1).allclose(batch["month_mean"].new_ones(12))


def test_unknown_inversion_member_lists_available(tiny_data):
    dm = FluxDataModule(tiny_data, held_out=0, atm=ATMSpec("exact", inversions=["nope"]))
    with pytest.raises(ConfigError, match=r"available: \['invA', 'invB', 'invC'\]"):
        dm.setup()


def test_tiny_fixture_is_a_valid_canonical_dataset(tiny_data):
    from fluxbridge.data.canonical import open_canonical

    keys = open_canonical(tiny_data).validate()
    assert keys == ["grid", "drivers", "sites", "inversions", "reference", "residual_sink"]


def _with_inversions(tiny_data, tmp_path, change):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    ds = xr.load_dataset(data / "inversions.nc", engine="h5netcdf")
    ds["nee"] = change(ds["nee"])
    (data / "inversions.nc").unlink()
    ds.to_netcdf(data / "inversions.nc", engine="h5netcdf")
    return data


def _global_annual_pgc(data) -> np.ndarray:
    """Independent: Σ nee · cell area · land · Σ_r region_fraction · days, per member, mean year."""
    grid = open_netcdf(data / "grid.nc")
    inv = open_netcdf(data / "inversions.nc")["nee"]
    w = grid.cell_area * grid.land_fraction * grid.region_fraction.sum("region")
    days = xr.DataArray(pd.DatetimeIndex(inv.time.values).days_in_month.to_numpy(), dims="time")
    monthly = (inv * w * days).sum(("lat", "lon")) * 1e-15
    return monthly.groupby("time.year").sum().mean("year").values


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda nee: -0.5 * nee, r"member invA: global NEE \+.* has the opposite sign"),
        (lambda nee: nee * 1000, r"member invA: global NEE .* outside the plausible -15\.\.5"),
        (lambda nee: nee * np.nan, r"member invA: global NEE has no value"),
    ],
    ids=["sign-flipped", "x1000", "all-NaN"],
)
def test_implausible_inversions_are_refused_by_the_dataset_check(
    tiny_data, tmp_path, change, message
):
    data = _with_inversions(tiny_data, tmp_path, change)
    totals = _global_annual_pgc(tiny_data)
    assert (totals < -0.5).all() and (totals > -15).all()  # the fixture itself is plausible
    with pytest.raises(ImplausibleError, match=message) as err:
        check_dataset(CanonicalDataset(data), top_down=True)
    assert "--allow-implausible" in str(err.value)
    check_dataset(CanonicalDataset(data), top_down=True, allow=True)
    check_dataset(CanonicalDataset(data), top_down=False)  # EC without bridges: not checked


def test_tower_days_left_out_for_nan_drivers_are_logged(tiny_data, tmp_path, caplog):
    import logging
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    ds = xr.load_dataset(data / "sites.nc", engine="h5netcdf")
    observed = np.isfinite(ds["nee_obs"].values)
    ds["WAI2"][:, ::4] = np.nan  # every 4th day of every tower
    expected = int((observed & ~np.isfinite(ds["WAI2"].values)).sum())
    (data / "sites.nc").unlink()
    ds.to_netcdf(data / "sites.nc", engine="h5netcdf")
    with caplog.at_level(logging.WARNING):
        FluxDataModule(data, held_out=0).setup()
    assert f"{expected:,} of {int(observed.sum()):,} tower-days with NEE in sites.nc" in caplog.text


def test_inversion_months_of_incomplete_years_are_logged(tiny_data, tmp_path, caplog):
    import logging
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    ds = xr.load_dataset(data / "inversions.nc", engine="h5netcdf")
    ds = ds.isel(time=slice(0, -1))  # 2001-2003 without December 2003
    (data / "inversions.nc").unlink()
    ds.to_netcdf(data / "inversions.nc", engine="h5netcdf")
    with caplog.at_level(logging.WARNING):
        dm = FluxDataModule(data, held_out=0, atm=ATMSpec("exact", val_years=1))
        dm.setup()
    assert dm.years == [2001, 2002]
    assert "11 of 35 inversion months (31.4 %) left out: year(s) [2003]" in caplog.text


def test_towers_with_no_usable_day_are_refused(tiny_data, tmp_path):
    import shutil

    from fluxbridge.errors import FluxbridgeError

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    ds = xr.load_dataset(data / "sites.nc", engine="h5netcdf")
    ds["WAI2"][:] = np.nan
    (data / "sites.nc").unlink()
    ds.to_netcdf(data / "sites.nc", engine="h5netcdf")
    with pytest.raises(FluxbridgeError, match=r"sites\.nc: every tower-day .*never finite: WAI2"):
        check_dataset(CanonicalDataset(data), top_down=False)


def test_tower_kelvin_is_refused_by_the_dataset_check(tiny_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    ds = xr.load_dataset(data / "sites.nc", engine="h5netcdf")
    ds["Tair"] = ds["Tair"] + 273.15
    (data / "sites.nc").unlink()
    ds.to_netcdf(data / "sites.nc", engine="h5netcdf")
    with pytest.raises(ImplausibleError, match=r"sites\.nc, variable 'Tair'.*kelvin"):
        check_dataset(CanonicalDataset(data), top_down=False)


def test_year_batch_is_the_drivers_of_the_year_with_one_copy(tiny_data):
    """``year_batch`` holds the file's values (time, cell, driver) and, while it reads, not
    much more than its result: a stack of ten loaded arrays plus a cast would need ~3×."""
    import tracemalloc

    from fluxbridge.schema import DRIVER_NAMES

    dm = FluxDataModule(tiny_data, held_out=0, atm=ATMSpec("exact"))
    dm.setup()
    year = dm.years[1]
    drivers = open_netcdf(tiny_data / "drivers.nc")
    drivers = drivers.sel(time=drivers["time"].dt.year == year)
    expected = np.stack([drivers[n].transpose("time", "cell").values for n in DRIVER_NAMES], -1)
    cells = np.array([0, 3, 5])
    np.testing.assert_array_equal(dm.year_batch(year, cells)["x"].numpy(), expected[:, cells])

    dm.year_batch(year)  # warm: xarray's indexes and caches are not what is measured
    tracemalloc.start()
    x = dm.year_batch(year)["x"]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_array_equal(x.numpy(), expected)
    assert peak < 1.5 * x.numpy().nbytes, (peak, x.numpy().nbytes)
