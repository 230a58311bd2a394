"""The bridge-decoupling callback: its table, the warning and the refit action."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from fluxbridge.bridge.bridgeset import BridgeSet
from fluxbridge.models.network import NEENetwork
from fluxbridge.training.callbacks import (
    BridgeDecoupling,
    BridgeDecouplingWarning,
    decoupling_table,
)
from fluxbridge.training.datamodules import ATMSpec, FluxDataModule


def test_table_by_hand():
    exact = np.array([[1.0, 2.0, 3.0]])
    bridge = np.array([[1.5, 2.0, 2.5]])
    row = decoupling_table(["EU"], exact, bridge, n_years=1).iloc[0]
    assert row.rel_error == pytest.approx((0.5 + 0 + 0.5) / 3 / 2)
    assert row["corr"] == pytest.approx(np.corrcoef(exact[0], bridge[0])[0, 1])
    assert row.exact_pgc_yr == 6.0 and row.bridge_pgc_yr == 6.0


def test_warns_and_refits_on_the_models_own_output(tiny_data, tiny_bridges):
    bridges = BridgeSet.load(tiny_bridges)
    dm = FluxDataModule(tiny_data, 0, atm=ATMSpec("bridge", bridges))
    dm.setup()
    torch.manual_seed(0)
    net = NEENetwork()
    net.set_standardisation(dm.input_mean, dm.input_std)
    callback = BridgeDecoupling(dm, bridges, max_rel_error=-1.0, action="refit")
    before = callback.table(net, dm.years)
    logged = {}
    module = SimpleNamespace(net=net, log=lambda k, v: logged.__setitem__(k, v))
    trainer = SimpleNamespace(sanity_checking=False, current_epoch=3)
    with pytest.warns(BridgeDecouplingWarning, match="epoch 3: bridge decoupling"):
        callback.on_validation_epoch_end(trainer, module)
    assert {f"decoupling/{r}/rel_error" for r in bridges.regions} <= set(logged)
    assert callback.refits == [(3, r) for r in bridges.regions]
    assert all(bridges[r].fallback == "refit_ols" for r in bridges.regions)
    after = callback.table(net, dm.years)
    # OLS with an intercept reproduces the total over the refit months exactly
    assert np.allclose(after.exact_pgc_yr, after.bridge_pgc_yr, rtol=1e-6)
    assert (after.rel_error.to_numpy() <= before.rel_error.to_numpy() + 1e-12).all()
