"""The EC-ATM objective against hand-computed values (Upton Eq. 5, 8–14)."""

import math

import pytest
import torch

from fluxbridge.models import losses


def test_mse_by_hand():
    pred = torch.tensor([1.0, 2.0, 4.0])
    obs = torch.tensor([0.0, 2.0, 1.0])
    assert losses.mse(pred, obs).item() == pytest.approx((1 + 0 + 9) / 3)


def test_l3_and_range_by_hand():
    pred = torch.tensor([[1.0]])  # (region, month)
    members = torch.tensor([0.0, 2.0, 4.0]).reshape(3, 1, 1)
    # |a - pred| = 1, 1, 3 → (mean of cubes)^(1/3) = (29/3)^(1/3)
    assert losses.l3_ensemble(pred, members).item() == pytest.approx((29 / 3) ** (1 / 3))
    assert losses.ensemble_range(members).item() == 4.0


def test_atm_loss_by_hand():
    # 2 regions × 2 months, 2 members.
    pred = torch.tensor([[0.0, 1.0], [2.0, 2.0]])
    members = torch.tensor([[[1.0, 1.0], [2.0, 3.0]], [[-1.0, 3.0], [2.0, 1.0]]])
    land_weight = torch.tensor([0.25, 0.5])
    # region 0, month 0: |1|,|−1| → l3 = 1, range 2 → 1/3
    # region 0, month 1: |0|,|2| → l3 = (8/2)^(1/3) = 4^(1/3), range 2 → 4^(1/3)/3
    # region 1, month 0: |0|,|0| → 0
    # region 1, month 1: |1|,|−1| → 1, range 2 → 1/3
    r0 = (1 / 3 + 4 ** (1 / 3) / 3) / 2
    r1 = (0 + 1 / 3) / 2
    expected = 0.25 * r0 + 0.5 * r1
    assert losses.atm_loss(pred, members, land_weight).item() == pytest.approx(expected, rel=1e-6)


def test_uncertainty_weights_start_equal_and_match_eq_14():
    terms = torch.tensor([2.0, 0.3])
    total, w = losses.uncertainty_weighted(terms, torch.zeros(2))
    assert w.tolist() == [0.5, 0.5]
    assert total.item() == pytest.approx(0.5 * 2.0 + 0.5 * 0.3)
    log_var = torch.tensor([math.log(4.0), math.log(0.25)])
    total, w = losses.uncertainty_weighted(terms, log_var)
    # w = 1/(2σ²); s = log σ = ½ log σ²
    assert w.tolist() == pytest.approx([1 / 8, 2.0])
    s = 0.5 * math.log(4) + 0.5 * math.log(0.25)
    assert total.item() == pytest.approx(2.0 / 8 + 0.3 * 2 + s)


def test_uncertainty_gradient_on_log_var():
    terms = torch.tensor([2.0, 0.3])
    log_var = torch.tensor([0.1, -0.7], requires_grad=True)
    total, _ = losses.uncertainty_weighted(terms, log_var)
    total.backward()
    # d/ds (½ e^{-s} L + ½ s) = −½ e^{-s} L + ½ ; zero at s = log L (σ² = L)
    expected = [-0.5 * math.exp(-s) * L + 0.5 for s, L in zip([0.1, -0.7], [2.0, 0.3], strict=True)]
    assert log_var.grad.tolist() == pytest.approx(expected, rel=1e-6)
    at_optimum = torch.log(terms).requires_grad_(True)
    losses.uncertainty_weighted(terms, at_optimum)[0].backward()
    assert at_optimum.grad.abs().max().item() < 1e-7
