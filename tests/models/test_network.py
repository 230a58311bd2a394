"""The flux network and the regional integral heads (bridge, exact)."""

import numpy as np
import pytest
import torch

from fluxbridge.bridge.bridgeset import BridgeSet, RegionBridge
from fluxbridge.data.canonical import DRIVER_NAMES
from fluxbridge.models import losses
from fluxbridge.models.network import BridgeIntegral, ExactIntegral, NEENetwork, monthly_means


def test_three_relu_layers_latent_and_buffers():
    net = NEENetwork(latent=32)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(10, 32), (32, 32), (32, 1)]
    assert sum(isinstance(m, torch.nn.ReLU) for m in net.modules()) == 2
    assert {"input_mean", "input_std"} <= set(net.state_dict())


def test_standardisation_is_applied_inside():
    torch.manual_seed(0)
    net = NEENetwork()
    x = torch.randn(5, 10) * 3 + 7
    mean, std = torch.full((10,), 7.0), torch.full((10,), 3.0)
    expected = net.layers((x - 7.0) / 3.0).squeeze(-1)
    net.set_standardisation(mean, std)
    assert torch.allclose(net(x), expected)


def _two_region_bridges(n_cells: int) -> BridgeSet:
    def region(name, cells, weights, bias):
        cells = np.array(cells)
        return RegionBridge(
            name,
            cells,
            cells * 0,
            cells,
            cells * 0.0,
            cells * 1.0,
            np.array(weights),
            bias,
            0.0,
            1.0,
            1.0,
            1e12,
        )

    return BridgeSet(
        [region("A", [0, 2], [0.5, -1.0], 0.1), region("B", [1, 2], [2.0, 1.0], 0.0)],
        np.array([0.0]),
        np.arange(n_cells) * 1.0,
        n_cells,
    )


def test_bridge_head_by_hand():
    bridges = _two_region_bridges(3)
    monthly = torch.tensor([[1.0, 2.0, 3.0], [0.0, 1.0, -1.0]])  # (month, cell)
    out = BridgeIntegral(bridges)(monthly, torch.tensor([31.0, 28.0]))
    # per-day bridges × days; A: 0.5 c0 − c2 + 0.1 ; B: 2 c1 + c2
    expected = torch.tensor([[0.5 - 3 + 0.1, 0 + 1 + 0.1], [4 + 3, 2 - 1]])
    assert torch.allclose(out, expected * torch.tensor([31.0, 28.0]))


def test_exact_head_by_hand():
    weight = torch.tensor([[1.0, 0.0], [0.5, 2.0]])  # (region, cell) Pg m2 g-1
    monthly = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # (month, cell) gC m-2 d-1
    out = ExactIntegral(weight)(monthly, torch.tensor([31.0, 30.0]))
    expected = torch.tensor([[1 * 31, 3 * 30], [(0.5 + 4) * 31, (1.5 + 8) * 30]])
    assert torch.allclose(out, expected)


def test_monthly_means_by_hand():
    daily = torch.tensor([[1.0], [3.0], [10.0]])  # days 0,1 in month 0; day 2 in month 1
    month_mean = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    assert monthly_means(daily, month_mean).flatten().tolist() == [2.0, 10.0]


def test_bridge_path_is_differentiable_gradcheck():
    torch.manual_seed(1)
    net = NEENetwork(DRIVER_NAMES, latent=4).double()
    head = BridgeIntegral(_two_region_bridges(3))
    month_mean = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    target = torch.randn(3, 2, 2, dtype=torch.float64)
    land_weight = torch.tensor([0.3, 0.7], dtype=torch.float64)
    x = torch.randn(3, 3, 10, dtype=torch.float64, requires_grad=True)  # (day, cell, driver)

    def objective(x, w0):
        # the first layer's weights are an explicit input so gradcheck checks them too
        h = torch.nn.functional.linear(x, w0, net.layers[0].bias)
        nee = net.layers[1:](h).squeeze(-1)
        regional = head(monthly_means(nee, month_mean), torch.tensor([2.0, 1.0]))
        return losses.atm_loss(regional, target, land_weight)

    w0 = net.layers[0].weight.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(objective, (x, w0))
    objective(x, w0).backward()
    assert w0.grad.abs().sum() > 0


@pytest.mark.parametrize("latent", [8, 32])
def test_latent_is_configurable(latent):
    assert NEENetwork(latent=latent).layers[0].out_features == latent
