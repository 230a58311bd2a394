"""The bridge-decoupling callback: its table, the warning and the refit action."""

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from fluxbridge.bridge.bridgeset import BridgeSet
from fluxbridge.geo.integrate import region_land_area_m2
from fluxbridge.inference.fast import FoldedMember
from fluxbridge.io import open_netcdf
from fluxbridge.models.network import NEENetwork
from fluxbridge.schema import DRIVER_NAMES
from fluxbridge.training.callbacks import (
    BridgeDecoupling,
    BridgeDecouplingWarning,
    _monthly_nee,
)
from fluxbridge.training.datamodules import ATMSpec, FluxDataModule


def _setup(data, bridges_path, seed):
    """Bridges, the fold-0 data module with the bridge integral, an untrained network."""
    bridges = BridgeSet.load(bridges_path)
    dm = FluxDataModule(data, 0, atm=ATMSpec("bridge", bridges))
    dm.setup()
    torch.manual_seed(seed)
    net = NEENetwork()
    net.set_standardisation(dm.input_mean, dm.input_std)
    return bridges, dm, net


def test_warns_and_refits_on_the_models_own_output(tiny_data, tiny_bridges, tmp_path):
    bridges, dm, net = _setup(tiny_data, tiny_bridges, seed=0)
    table_path = tmp_path / "decoupling_epochs.csv"
    callback = BridgeDecoupling(
        dm, bridges, max_rel_error=-1.0, action="refit", table_path=table_path
    )
    before = callback.table(net, dm.years)
    logged = {}
    module = SimpleNamespace(net=net, log=lambda k, v: logged.__setitem__(k, v))
    trainer = SimpleNamespace(sanity_checking=False, current_epoch=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an epoch logs and writes its table; it does not warn
        callback.on_validation_epoch_end(trainer, module)
    table = pd.read_csv(table_path)
    assert list(table["epoch"]) == [3] * len(bridges.regions)
    assert list(table["region"]) == list(bridges.regions) and table["decoupled"].all()
    # one warning per fit sums it up
    with pytest.warns(
        BridgeDecouplingWarning, match=r"bridge decoupling in 1 epochs \(first: epoch 3"
    ):
        callback.on_fit_end(trainer, module)
    assert {f"decoupling/{r}/rel_error" for r in bridges.regions} <= set(logged)
    assert callback.refits == [(3, r) for r in bridges.regions]
    assert all(bridges[r].fallback == "refit_ols" for r in bridges.regions)
    # the refit keeps per-day weights without intercept, summing to the region's land area
    grid = open_netcdf(tiny_data / "grid.nc")
    area = region_land_area_m2(grid["cell_area"], grid["land_fraction"], grid["region_fraction"])
    abbrs = [str(a) for a in grid["region_abbr"].values]
    for r in bridges.regions:
        assert bridges[r].bias == 0.0
        assert bridges[r].weights.sum() == pytest.approx(
            float(area[abbrs.index(r)]) * 1e-15, rel=1e-9
        )
    after = callback.table(net, dm.years)
    assert set(after.columns) >= {"annual_bias_pgc_yr", "monthly_r2", "rel_error", "corr"}
    assert (after.rel_error.to_numpy() <= before.rel_error.to_numpy() + 1e-12).all()


def test_monthly_nee_is_the_networks_monthly_mean(tiny_data, tiny_bridges):
    """The check's monthly NEE (fast inference path) against the plain network run on the
    drivers file and averaged per calendar month with pandas."""
    _, dm, net = _setup(tiny_data, tiny_bridges, seed=1)
    year = dm.years[0]
    got = _monthly_nee(FoldedMember(net), dm.year_batch(year), torch.device("cpu"))

    drivers = open_netcdf(tiny_data / "drivers.nc")
    drivers = drivers.sel(time=drivers["time"].dt.year == year)
    x = np.stack([drivers[n].transpose("time", "cell").values for n in DRIVER_NAMES], -1)
    with torch.no_grad():
        nee = net(torch.from_numpy(x.astype(np.float32))).double().numpy()
    months = pd.DatetimeIndex(drivers["time"].values).month
    expected = pd.DataFrame(nee).groupby(months).mean().to_numpy()
    assert got.shape == expected.shape == (12, drivers.sizes["cell"])
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)
