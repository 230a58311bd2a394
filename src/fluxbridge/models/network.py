"""The flux network (Upton §3.2, Table B1) and the two ways to take it to regional NEE.

:class:`NEENetwork` maps the 10 drivers to NEE at a location and day. For the
atmospheric term a year of daily NEE at many cells is averaged to months (Eq. 6)
and turned into regional monthly integrals either by the bridge models (Eq. 7,
:class:`BridgeIntegral`) or exactly over every land cell (:class:`ExactIntegral`).
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor, nn

from fluxbridge.data.canonical import DRIVER_NAMES


class NEENetwork(nn.Module):
    """Three fully connected layers with ReLU: drivers → NEE (gC m-2 d-1, positive = source).

    Inputs are standardised inside the network with the training folds' mean and
    standard deviation, kept as buffers so that every checkpoint carries them.
    """

    def __init__(self, driver_names: tuple[str, ...] = DRIVER_NAMES, latent: int = 32) -> None:
        super().__init__()
        self.driver_names = tuple(driver_names)
        self.latent = latent
        n = len(self.driver_names)
        self.layers = nn.Sequential(
            nn.Linear(n, latent),
            nn.ReLU(),
            nn.Linear(latent, latent),
            nn.ReLU(),
            nn.Linear(latent, 1),
        )
        self.register_buffer("input_mean", torch.zeros(n))
        self.register_buffer("input_std", torch.ones(n))

    def set_standardisation(self, mean: Tensor, std: Tensor) -> None:
        """Store the drivers' mean and std (driver units); a zero std is kept at 1."""
        std = torch.where(std > 0, std, torch.ones_like(std))
        self.input_mean.copy_(mean)
        self.input_std.copy_(std)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (..., n_drivers) in driver units → NEE (...) in gC m-2 d-1."""
        return self.layers((x - self.input_mean) / self.input_std).squeeze(-1)


def monthly_means(nee_daily: Tensor, month_mean: Tensor) -> Tensor:
    """Eq. 6: (day, cell) daily NEE → (month, cell) monthly means with a (month, day) matrix.

    ``month_mean[m, d]`` is 1/days_in_month for the days of month m, else 0. A matrix
    product (not a scatter) keeps this deterministic on GPUs.
    """
    return month_mean @ nee_daily


class BridgeLike(Protocol):
    """The part of :class:`fluxbridge.bridge.bridgeset.BridgeSet` that training uses."""

    regions: list[str]
    all_cells: Any

    def apply_cells(self, nee_cells: Tensor, days_in_month: Tensor) -> Tensor: ...

    def refit_region(
        self, region: str, nee_cells_monthly: Any, target: Any, days_in_month: Any
    ) -> Any: ...


class BridgeIntegral(nn.Module):
    """Eq. 7: monthly NEE at the contributing cells → regional monthly NEE via the bridges.

    Input (month, len(bridges.all_cells)) in gC m-2 d-1 and (month,) days; output
    (region, month) in PgC month-1 (per-day bridge weights × days of the month). The
    bridges are fixed: they hold no trainable parameters.
    """

    def __init__(self, bridges: BridgeLike) -> None:
        super().__init__()
        self.bridges = bridges

    def forward(self, nee_monthly: Tensor, days_in_month: Tensor) -> Tensor:
        return self.bridges.apply_cells(nee_monthly, days_in_month).transpose(0, 1)


class ExactIntegral(nn.Module):
    """Full regional integral over every land cell, in PgC month-1.

    ``area_weight`` (region, cell) = cell_area × land_fraction × region_fraction × 1e-15
    (Pg m2 per g); integral[r, m] = Σ_c area_weight[r, c] × nee[m, c] × days_in_month[m].
    """

    def __init__(self, area_weight: Tensor) -> None:
        super().__init__()
        # Not persistent: derived from grid.nc, so checkpoints stay small.
        self.register_buffer("area_weight", area_weight, persistent=False)

    def forward(self, nee_monthly: Tensor, days_in_month: Tensor) -> Tensor:
        return (self.area_weight @ nee_monthly.transpose(0, 1)) * days_in_month
