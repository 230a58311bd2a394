"""Bridge decoupling (Upton §3.5): does the bridge still tell the truth about the model?

The bridges were fitted to a reference field. If training moves the network's
spatial pattern far from it, the bridge estimate of a regional integral (from a
few contributing cells) and the model's full integral (over every land cell)
part ways: the ATM loss falls while the real integral drifts. At each validation
epoch this callback compares both, per region over the months of the held-out
years, logs ``decoupling/<region>/rel_error`` and ``decoupling/<region>/corr``,
warns beyond the thresholds, and with ``action="refit"`` refits the region's
bridge on the model's own output and continues.

relative error = mean_m |bridge − exact| / mean_m |exact|; corr = Pearson r over months
(:func:`fluxbridge.bridge.fidelity.compare_integrals`, the same computation as the
bridge fidelity table).
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch

from fluxbridge.bridge.fidelity import compare_integrals
from fluxbridge.models.network import BridgeLike, NEENetwork
from fluxbridge.training.datamodules import FluxDataModule

ACTIONS = ("warn", "refit")


class BridgeDecouplingWarning(UserWarning):
    """A region's bridge estimate no longer follows the model's full integral."""


class BridgeDecoupling(pl.Callback):
    """Compare bridge estimates with full integrals of the current model, per region."""

    def __init__(
        self,
        datamodule: FluxDataModule,
        bridges: BridgeLike,
        *,
        max_rel_error: float = 0.1,
        min_corr: float = 0.9,
        action: Literal["warn", "refit"] = "warn",
    ) -> None:
        self.dm, self.bridges = datamodule, bridges
        self.max_rel_error, self.min_corr, self.action = max_rel_error, min_corr, action
        self._cache: dict[int, dict[str, Any]] = {}
        self.refits: list[tuple[int, str]] = []
        # rows of the data module's regions in the bridges' order
        self.rows = [datamodule.regions.index(r) for r in bridges.regions]

    def _batch(self, year: int, cache: bool) -> dict[str, Any]:
        if year in self._cache:
            return self._cache[year]
        batch = self.dm.year_batch(year)  # every land cell
        if cache:
            self._cache[year] = batch
        return batch

    @torch.no_grad()
    def integrals(
        self, net: NEENetwork, years: list[int], cache: bool = False
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(exact, bridge) regional NEE (region, month) in PgC month-1, the model's
        monthly NEE at the bridges' cells (month, len(all_cells)) in gC m-2 d-1, and the
        days of each month (month,)."""
        device = next(net.parameters()).device
        cells = torch.as_tensor(np.asarray(self.bridges.all_cells), device=device)
        weight = self.dm.area_weight[self.rows].to(device=device, dtype=torch.float64)
        exact, at_cells, days = [], [], []
        for year in years:
            b = self._batch(year, cache)
            monthly = _monthly_nee(net, b, device)
            days.append(b["days_in_month"].to(device).double())
            exact.append((weight @ monthly.T) * days[-1])
            at_cells.append(monthly[:, cells])
        nee_cells, all_days = torch.cat(at_cells), torch.cat(days)
        bridge = self.bridges.apply_cells(nee_cells, all_days).T
        return (
            torch.cat(exact, dim=1).cpu().numpy(),
            bridge.cpu().numpy(),
            nee_cells.cpu().numpy(),
            all_days.cpu().numpy(),
        )

    def table(self, net: NEENetwork, years: list[int], cache: bool = False) -> pd.DataFrame:
        """Per-region fidelity of the bridges on the model's own output (compare_integrals)."""
        exact, bridge, _, _ = self.integrals(net, years, cache)
        return compare_integrals(list(self.bridges.regions), exact, bridge, len(years))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        net = pl_module.net  # type: ignore[attr-defined]
        table = self.table(net, self.dm.val_years, cache=True)
        for row in table.itertuples():
            pl_module.log(f"decoupling/{row.region}/rel_error", float(row.rel_error))
            pl_module.log(f"decoupling/{row.region}/corr", float(row.corr))
        bad = table[(table["rel_error"] > self.max_rel_error) | (table["corr"] < self.min_corr)]
        if bad.empty:
            return
        warnings.warn(
            f"epoch {trainer.current_epoch}: bridge decoupling in {', '.join(bad.region)} "
            f"(rel_error > {self.max_rel_error} or corr < {self.min_corr}):\n"
            + bad.to_string(index=False),
            BridgeDecouplingWarning,
            stacklevel=2,
        )
        if self.action == "refit":
            self._refit(net, list(bad.region), trainer.current_epoch)

    def _refit(self, net: NEENetwork, regions: list[str], epoch: int) -> None:
        """Refit the decoupled regions on the model's own output over every ATM year."""
        exact, _, nee_cells, days = self.integrals(net, self.dm.years)
        for region in regions:
            self.bridges.refit_region(
                region, nee_cells, exact[list(self.bridges.regions).index(region)], days
            )
            self.refits.append((epoch, region))


def _monthly_nee(net: NEENetwork, batch: dict[str, Any], device: torch.device) -> torch.Tensor:
    """(month, cell) monthly-mean NEE, one month of days at a time to bound memory."""
    rows = []
    for m in range(batch["month_mean"].shape[0]):
        days = batch["month_mean"][m].nonzero().squeeze(1)
        rows.append(net(batch["x"][days].to(device)).double().mean(dim=0))
    return torch.stack(rows)
