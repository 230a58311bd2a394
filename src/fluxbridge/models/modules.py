"""LightningModules: EC (towers only) and EC-ATM (towers + inversions), Upton §3.4.

Following torchgeo's BaseTask, each module fills three hooks —
:meth:`configure_models`, :meth:`configure_losses`, :meth:`configure_metrics`.
Following lightning-hydra-template, a module receives its network instead of
building it, so EC and EC-ATM of one fold start from the same initial weights.
``ECATMModule`` adds only the atmospheric term and the two learned log σ².

Batches (built by :mod:`fluxbridge.training.datamodules`):

* EC: ``{"x": (n, driver), "y": (n,), "tropical": (n,)}`` drivers, tower NEE (gC m-2 d-1)
  and 1.0 for a tower in the tropics (|lat| < 23.44°), else 0.0.
* ATM: one year, ``{"x": (day, cell, driver), "month_mean": (month, day),
  "days_in_month": (month,), "target": (member, region, month) PgC month-1,
  "land_weight": (region,), "year": int}``.
* EC-ATM training: ``{"ec": EC batch, "atm": ATM batch}``.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, MeanSquaredError

from fluxbridge.errors import FluxbridgeError
from fluxbridge.models import losses
from fluxbridge.models.network import NEENetwork, monthly_means

CHECKPOINT_KEY = "fluxbridge"


class NonFiniteLossError(FluxbridgeError, FloatingPointError):
    """A loss term became NaN or infinite during training."""


class ECModule(pl.LightningModule):
    """EC: the flux network trained on tower NEE with MSE (Eq. 4–5).

    ``regional`` (optional) maps monthly cell NEE to regional NEE; when given and the
    data module provides ATM validation years, ``val/loss_atm`` is logged too, so EC
    and EC-ATM can be compared on the same atmospheric score.
    """

    model_name = "ec"

    def __init__(
        self,
        net: NEENetwork,
        lr: float = 0.003,
        regional: nn.Module | None = None,
        uncertainty_lr_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "regional"])
        self.net = net
        self.regional = regional
        self.configure_models()
        self.configure_losses()
        self.configure_metrics()

    # -- the three hooks -------------------------------------------------------------
    def configure_models(self) -> None:
        """The network is given; EC adds no parameters of its own."""

    def configure_losses(self) -> None:
        self.loss_ec = losses.mse
        self.loss_atm = losses.atm_loss

    def configure_metrics(self) -> None:
        self.val_mse_sites = MeanSquaredError()
        self.val_loss_atm = MeanMetric()

    # -- steps -----------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """Drivers (..., driver) → NEE (...) in gC m-2 d-1."""
        return self.net(x)

    def regional_nee(self, atm: dict[str, Any]) -> Tensor:
        """Eq. 6–7: a year of drivers at the integration cells → (region, month) PgC month-1."""
        if self.regional is None:
            raise FluxbridgeError(f"{type(self).__name__} was built without a regional integral")
        monthly = monthly_means(self.net(atm["x"]), atm["month_mean"])
        return self.regional(monthly, atm["days_in_month"])

    def atm_term(self, atm: dict[str, Any]) -> Tensor:
        """Eq. 8–11 for one year of all regions, PgC month-1."""
        return self.loss_atm(self.regional_nee(atm), atm["target"], atm["land_weight"])

    def tower_nee(self, ec: dict[str, Tensor]) -> Tensor:
        """What the towers would measure, gC m-2 d-1: the network's NEE (EC has no tower term)."""
        return self.net(ec["x"])

    def ec_term(self, ec: dict[str, Tensor]) -> Tensor:
        return self.loss_ec(self.tower_nee(ec), ec["y"])

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss_ec = self._finite("ec", self.ec_term(batch), batch_idx)
        n = batch["y"].shape[0]
        self._log_train({"train/loss_ec": loss_ec, "train/loss": loss_ec}, n)
        return loss_ec

    def validation_step(
        self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        if dataloader_idx == 0:
            self.val_mse_sites.update(self.tower_nee(batch), batch["y"])
        elif self.regional is not None:
            self.val_loss_atm.update(self.atm_term(batch))

    def on_validation_epoch_end(self) -> None:
        mse = self.val_mse_sites.compute()
        values = {"val/rmse_sites": torch.sqrt(mse)}
        atm = self.val_loss_atm.compute() if self.val_loss_atm.update_count else None
        if atm is not None:
            values["val/loss_atm"] = atm
        values.update(self.validation_objective(mse, atm))
        self.log_dict(values, prog_bar=True, sync_dist=True)
        self.val_mse_sites.reset()
        self.val_loss_atm.reset()

    def validation_objective(self, mse: Tensor, atm: Tensor | None) -> dict[str, Tensor]:
        """``val/loss``, the best-epoch score: EC's own loss on the held-out sites."""
        del atm
        return {"val/loss": mse}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams["lr"])

    # -- checkpoints -----------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """Plain-typed identity of this model, stored in and checked against checkpoints."""
        return {
            "model": self.model_name,
            "drivers": list(self.net.driver_names),
            "latent": self.net.latent,
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[CHECKPOINT_KEY] = self.describe()

    # -- helpers ---------------------------------------------------------------------
    def _finite(self, term: str, value: Tensor, batch_idx: int) -> Tensor:
        if not torch.isfinite(value):
            raise NonFiniteLossError(
                f"{self.model_name}: the {term} loss is {value.item()} at epoch "
                f"{self.current_epoch}, batch {batch_idx}; training stopped "
                "(check the drivers and targets of this batch for NaN/inf, or lower the lr)"
            )
        return value

    def _log_train(self, values: dict[str, Tensor], batch_size: int) -> None:
        self.log_dict(values, on_step=False, on_epoch=True, batch_size=batch_size, sync_dist=True)


SELECTIONS = ("skill", "eq14")


class ECATMModule(ECModule):
    """EC-ATM: EC plus the atmospheric term, weighted by learned uncertainties (Eq. 12–14).

    Two options beyond the paper (docs/training.md, "Departures"):

    * ``tower_offset``: a learned constant (gC m-2 d-1) added to the network's NEE at
      tropical towers only, the observation bias of night-time respiration lost to low
      turbulence; the map (forward runs) never sees it. False = the paper.
    * ``selection``: what ``val/loss`` (the best-epoch score) is. ``"skill"``: held-out
      site MSE and held-out-year ATM loss, each divided by its value after the first
      epoch, summed with ``selection_weights`` — it does not move with the learned σ².
      ``"eq14"`` = the paper: Eq. 14 with the current learned weights.
    """

    model_name = "ec-atm"

    def __init__(
        self,
        net: NEENetwork,
        lr: float = 0.003,
        regional: nn.Module | None = None,
        uncertainty_lr_scale: float = 1.0,
        tower_offset: bool = False,
        tower_offset_lr_scale: float = 10.0,
        selection: str = "skill",
        selection_weights: tuple[float, float] = (1.0, 1.0),
    ) -> None:
        if selection not in SELECTIONS:
            raise FluxbridgeError(f"selection={selection!r} is not one of {list(SELECTIONS)}")
        if len(selection_weights) != 2 or min(selection_weights) < 0:
            raise FluxbridgeError(
                f"selection_weights={list(selection_weights)}: expected two weights >= 0"
            )
        self.tower_offset_enabled = tower_offset
        super().__init__(net, lr, regional, uncertainty_lr_scale)

    def configure_models(self) -> None:
        # log σ² of (EC, ATM); zero → both weights start at 1/2 (equal).
        self.log_var = nn.Parameter(torch.zeros(2))
        if self.tower_offset_enabled:
            self.tower_offset = nn.Parameter(torch.zeros(()))
        # (site MSE, ATM loss) after the first epoch: the units of the skill score.
        # A buffer, so a resumed run keeps the same yardstick.
        self.register_buffer("skill_scale", torch.full((2,), float("nan")))

    def tower_nee(self, ec: dict[str, Tensor]) -> Tensor:
        nee = self.net(ec["x"])
        if self.tower_offset_enabled:
            nee = nee + self.tower_offset * ec["tropical"]
        return nee

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> Tensor:
        loss_ec = self._finite("ec", self.ec_term(batch["ec"]), batch_idx)
        loss_atm = self._finite("atm", self.atm_term(batch["atm"]), batch_idx)
        total, weights = losses.uncertainty_weighted(torch.stack([loss_ec, loss_atm]), self.log_var)
        logged = {
            "train/loss_ec": loss_ec,
            "train/loss_atm": loss_atm,
            "train/loss": total,
            "train/w_ec": weights[0].detach(),
            "train/w_atm": weights[1].detach(),
        }
        if self.tower_offset_enabled:
            logged["train/tower_offset"] = self.tower_offset.detach()
        self._log_train(logged, batch["ec"]["y"].shape[0])
        return total

    def validation_objective(self, mse: Tensor, atm: Tensor | None) -> dict[str, Tensor]:
        """``val/eq14`` (Eq. 14, current weights), ``val/skill``; ``val/loss`` = the selected."""
        if atm is None:
            raise FluxbridgeError("EC-ATM validation needs the held-out inversion years")
        terms = torch.stack([mse, atm]).detach()
        eq14, _ = losses.uncertainty_weighted(terms, self.log_var.detach())
        sanity = self._trainer is not None and self._trainer.sanity_checking
        if torch.isnan(self.skill_scale).any() and not sanity:
            self.skill_scale.copy_(terms)
        scale = torch.where(torch.isnan(self.skill_scale), terms, self.skill_scale)
        skill = losses.skill_score(terms, scale, torch.tensor(self.hparams["selection_weights"]))
        chosen = skill if self.hparams["selection"] == "skill" else eq14
        return {"val/eq14": eq14, "val/skill": skill, "val/loss": chosen}

    def configure_optimizers(self) -> torch.optim.Optimizer:
        # Adam moves log σ² by about lr per step, so at lr 0.003 the weights need ~1000 steps
        # to reach their balance; ``uncertainty_lr_scale`` (default 1 = the paper) speeds that up.
        # The tower offset is one scalar of order 1 gC m-2 d-1: at the network's lr it would
        # need hundreds of steps, so it gets its own scale too.
        lr = self.hparams["lr"]
        scalars = {"log_var", "tower_offset"}
        net = [p for name, p in self.named_parameters() if name not in scalars]
        groups = [
            {"params": net},
            {"params": [self.log_var], "lr": lr * self.hparams["uncertainty_lr_scale"]},
        ]
        if self.tower_offset_enabled:
            scale = self.hparams["tower_offset_lr_scale"]
            groups.append({"params": [self.tower_offset], "lr": lr * scale})
        return torch.optim.Adam(groups, lr=lr)


MODULES: dict[str, type[ECModule]] = {"ec": ECModule, "ec-atm": ECATMModule}
