"""EC and EC-ATM LightningModules: what EC-ATM adds, the NaN guard."""

import math

import pytest
import torch

from fluxbridge.errors import FluxbridgeError
from fluxbridge.models import losses
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


def test_skill_score_by_hand():
    terms, scale = torch.tensor([2.0, 0.5]), torch.tensor([4.0, 0.25])
    # 1 × 2/4 + 3 × 0.5/0.25 = 0.5 + 6
    assert losses.skill_score(terms, scale, torch.tensor([1.0, 3.0])).item() == pytest.approx(6.5)


def test_skill_selection_ignores_the_learned_weights():
    module = ECATMModule(NEENetwork())
    first = module.validation_objective(torch.tensor(0.8), torch.tensor(0.2))
    # the first epoch sets the yardstick: each ratio is 1
    assert first["val/skill"].item() == pytest.approx(2.0)
    assert module.skill_scale.tolist() == pytest.approx([0.8, 0.2])
    halved = module.validation_objective(torch.tensor(0.4), torch.tensor(0.1))
    with torch.no_grad():
        module.log_var.copy_(torch.tensor([1.0, -3.0]))
    moved = module.validation_objective(torch.tensor(0.4), torch.tensor(0.1))
    assert halved["val/loss"].item() == pytest.approx(1.0) == moved["val/loss"].item()
    # Eq. 14 (the paper's choice) does move: 0.5 e^-1 0.4 + 0.5 e^3 0.1 + (1 - 3) / 2
    expected = 0.5 * math.exp(-1) * 0.4 + 0.5 * math.exp(3) * 0.1 - 1.0
    assert moved["val/eq14"].item() == pytest.approx(expected, rel=1e-6)
    assert "skill_scale" in module.state_dict()  # a resumed run keeps the yardstick


def test_eq14_selection_is_the_papers():
    module = ECATMModule(NEENetwork(), selection="eq14")
    out = module.validation_objective(torch.tensor(0.8), torch.tensor(0.2))
    assert out["val/loss"].item() == pytest.approx(0.5 * 0.8 + 0.5 * 0.2)
    with pytest.raises(FluxbridgeError, match="selection='best'"):
        ECATMModule(NEENetwork(), selection="best")


def test_tower_offset_only_at_tropical_towers():
    module = ECATMModule(NEENetwork(), tower_offset=True)
    with torch.no_grad():
        module.tower_offset.fill_(-1.5)
    x = torch.randn(4, 10)
    batch = {"x": x, "y": torch.zeros(4), "tropical": torch.tensor([1.0, 0.0, 1.0, 0.0])}
    diff = module.tower_nee(batch) - module(x)
    assert diff.tolist() == pytest.approx([-1.5, 0.0, -1.5, 0.0])
    module.ec_term(batch).backward()
    assert module.tower_offset.grad is not None and module.tower_offset.grad != 0
    assert not hasattr(ECATMModule(NEENetwork()), "tower_offset")  # the paper: no such term


def test_tower_offset_gets_its_own_learning_rate():
    module = ECATMModule(NEENetwork(), lr=0.003, tower_offset=True, tower_offset_lr_scale=20.0)
    net_group, _, offset_group = module.configure_optimizers().param_groups
    assert offset_group["params"] == [module.tower_offset]
    assert offset_group["lr"] == pytest.approx(0.06)
    assert all(p is not module.tower_offset for p in net_group["params"])
