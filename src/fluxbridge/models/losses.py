"""The objective of EC and EC-ATM (Upton et al. §3.4, Eq. 5 and 8–14), as pure functions.

EC minimises :func:`mse` at the towers. EC-ATM adds :func:`atm_loss`, the
land-area-weighted, range-normalised ℓ3 distance of its regional monthly NEE to
an inversion ensemble, and combines both with :func:`uncertainty_weighted`.
"""

from __future__ import annotations

import torch
from torch import Tensor


def mse(pred: Tensor, obs: Tensor) -> Tensor:
    """Eq. 5: mean squared error of tower NEE; inputs gC m-2 d-1, result (gC m-2 d-1)²."""
    return torch.mean((pred - obs) ** 2)


def l3_ensemble(pred: Tensor, members: Tensor) -> Tensor:
    """Eq. 8: ℓ3 distance of a regional estimate to each inversion member, per region and month.

    ``pred`` (region, month) and ``members`` (member, region, month) in PgC month-1;
    returns (region, month) in PgC month-1: (mean over members of |a − pred|³)^(1/3).
    """
    mean_cube = torch.mean(torch.abs(members - pred.unsqueeze(0)) ** 3, dim=0)
    # The cube root's gradient is infinite at 0; a tiny floor keeps a perfect fit finite.
    return (mean_cube + 1e-30) ** (1.0 / 3.0)


def ensemble_range(members: Tensor) -> Tensor:
    """Eq. 9: max − min over inversion members; (member, region, month) → (region, month), PgC."""
    return members.amax(dim=0) - members.amin(dim=0)


def atm_loss(pred: Tensor, members: Tensor, land_weight: Tensor) -> Tensor:
    """Eq. 8–11: the atmospheric term of EC-ATM, in PgC month-1.

    ``pred`` (region, month) regional monthly NEE of the model, ``members``
    (member, region, month) the inversions' regional integrals (both PgC month-1,
    positive = source), ``land_weight`` (region,) = land area of the region / land
    area of the globe (dimensionless). Each monthly ℓ3 distance is divided by
    1 + the ensemble range of that month (Eq. 10, the 1 is in PgC month-1), averaged
    over months and summed over regions with the land weights (Eq. 11).
    """
    per_month = l3_ensemble(pred, members) / (1.0 + ensemble_range(members))
    return torch.sum(per_month.mean(dim=1) * land_weight)


def uncertainty_weighted(losses: Tensor, log_var: Tensor) -> tuple[Tensor, Tensor]:
    """Eq. 12–14 (Kendall et al., 2018, in Upton's form): learned weighting of loss terms.

    ``losses`` (k,) the terms, ``log_var`` (k,) the learnable log σ² of each term.
    Returns ``(total, weights)`` with w = 1 / (2σ²) (Eq. 12), s = log σ = log_var / 2
    (Eq. 13) and total = Σ w × loss + Σ s (Eq. 14). With log_var = 0 every term starts
    with w = 0.5.
    """
    weights = 0.5 * torch.exp(-log_var)
    total = torch.sum(weights * losses) + torch.sum(0.5 * log_var)
    return total, weights


def skill_score(terms: Tensor, scale: Tensor, weights: Tensor) -> Tensor:
    """Best-epoch score that ignores the learned σ²: Σ_k weights_k × terms_k / scale_k.

    ``terms`` (k,) held-out losses in their own units, ``scale`` (k,) the same losses at a
    fixed reference epoch (so each ratio is dimensionless, 1 at that epoch), ``weights``
    (k,) fixed. Lower is better.
    """
    return torch.sum(weights.to(terms) * terms / scale)
