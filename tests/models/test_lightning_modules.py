"""EC and EC-ATM LightningModules: what EC-ATM adds, the NaN guard."""

import pytest
import torch

from fluxbridge.models.modules import ECATMModule, ECModule, NonFiniteLossError
from fluxbridge.models.network import NEENetwork


def test_ec_atm_adds_only_two_log_variances():
    net = NEENetwork()
    ec, ecatm = ECModule(net), ECATMModule(NEENetwork())
    ec_names = {n for n, _ in ec.named_parameters()}
    extra = {n for n, _ in ecatm.named_parameters()} - ec_names
    assert extra == {"log_var"}
    assert ecatm.log_var.shape == (2,) and ecatm.log_var.abs().sum() == 0
    assert ec.hparams["lr"] == 0.003


def test_nan_loss_names_term_and_batch():
    module = ECModule(NEENetwork())
    batch = {"x": torch.zeros(4, 10), "y": torch.tensor([0.0, float("nan"), 1.0, 2.0])}
    with pytest.raises(NonFiniteLossError, match=r"ec loss is nan .*batch 7"):
        module.training_step(batch, 7)


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_uncertainty_weights_get_their_own_learning_rate(scale):
    module = ECATMModule(NEENetwork(), lr=0.003, uncertainty_lr_scale=scale)
    optimizer = module.configure_optimizers()
    net_group, sigma_group = optimizer.param_groups
    assert net_group["lr"] == 0.003 and sigma_group["lr"] == pytest.approx(0.003 * scale)
    assert len(sigma_group["params"]) == 1 and sigma_group["params"][0] is module.log_var
    n_net = sum(p.numel() for p in module.net.parameters())
    assert sum(p.numel() for p in net_group["params"]) == n_net
