"""Bridge decoupling (Upton §3.5): does the bridge still tell the truth about the model?

The bridges were fitted to a reference field. If training moves the network's
spatial pattern far from it, the bridge estimate of a regional integral (from a
few contributing cells) and the model's full integral (over every land cell)
part ways: the ATM loss falls while the real integral drifts. At each validation
epoch this callback compares both, per region over the months of the held-out
years, logs ``decoupling/<region>/rel_error`` and ``decoupling/<region>/corr``,
appends the table to ``table_path`` (every epoch, every region), and with
``action="refit"`` refits the regions beyond the thresholds on the model's own
output and continues. One warning at the end of the fit sums up the epochs with
decoupling, so a 30-epoch log is not 30 tables long.

relative error = mean_m |bridge − exact| / mean_m |exact|; corr = Pearson r over months
(:func:`fluxbridge.bridge.fidelity.compare_integrals`, the same computation as the
bridge fidelity table).
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch

from fluxbridge import logs
from fluxbridge.bridge.fidelity import compare_integrals
from fluxbridge.inference.fast import FoldedMember
from fluxbridge.models.network import BridgeLike, NEENetwork
from fluxbridge.training.datamodules import FluxDataModule

log = logs.get(__name__)

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
        table_path: Path | None = None,
    ) -> None:
        self.dm, self.bridges = datamodule, bridges
        self.max_rel_error, self.min_corr, self.action = max_rel_error, min_corr, action
        self.table_path = table_path
        self._cache: dict[int, dict[str, Any]] = {}
        self.refits: list[tuple[int, str]] = []
        self.decoupled: list[tuple[int, list[str]]] = []
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
        member = FoldedMember(net)  # the forward run's path: the check sees what forward writes
        exact, at_cells, days = [], [], []
        for year in years:
            b = self._batch(year, cache)
            monthly = _monthly_nee(member, b, device)
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
        self._append(table.assign(decoupled=table["region"].isin(bad["region"])), trainer)
        if bad.empty:
            return
        epoch = trainer.current_epoch
        self.decoupled.append((epoch, list(bad.region)))
        log.debug(f"epoch {epoch}: bridge decoupling in {', '.join(bad.region)}")
        if self.action == "refit":
            self._refit(net, list(bad.region), epoch)

    def _append(self, table: pd.DataFrame, trainer: pl.Trainer) -> None:
        """Append this epoch's rows to the table file (an append-only log, like metrics.csv;
        run_train's KeepEarlierEpochs trims both to the epoch a fit starts at)."""
        if self.table_path is None:
            return
        rows = table.assign(epoch=trainer.current_epoch)[["epoch", *table.columns]]
        new = not self.table_path.exists()
        with self.table_path.open("a") as fh:
            rows.to_csv(fh, header=new, index=False, float_format="%.6g")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.decoupled:
            return
        counts = Counter(r for _, regions in self.decoupled for r in regions)
        first, regions = self.decoupled[0]
        where = f"; per-epoch tables in {self.table_path}" if self.table_path else ""
        refits = f", {len(self.refits)} refits" if self.action == "refit" else ""
        warnings.warn(
            f"bridge decoupling in {len(self.decoupled)} epochs (first: epoch {first}, "
            f"{', '.join(regions)}; most often: "
            + ", ".join(f"{r} {n}×" for r, n in counts.most_common(3))
            + f"; rel_error > {self.max_rel_error} or corr < {self.min_corr}{refits}){where}",
            BridgeDecouplingWarning,
            stacklevel=1,  # the caller is Lightning's hook runner: name this file instead
        )

    def _refit(self, net: NEENetwork, regions: list[str], epoch: int) -> None:
        """Refit the decoupled regions on the model's own output over every ATM year."""
        exact, _, nee_cells, days = self.integrals(net, self.dm.years)
        for region in regions:
            self.bridges.refit_region(
                region, nee_cells, exact[list(self.bridges.regions).index(region)], days
            )
            self.refits.append((epoch, region))


class EpochLog(pl.Callback):
    """A DEBUG line per epoch (the metrics) and an INFO line per fit (epochs, best, time).

    Epochs count from 0, as in Lightning's metrics.csv.
    """

    def __init__(self, label: str, monitor: str = "val/loss") -> None:
        self.label, self.monitor = label, monitor
        self.scores: list[tuple[int, float]] = []
        self.started = time.perf_counter()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = {
            k: float(v)
            for k, v in trainer.callback_metrics.items()
            if k.count("/") == 1 and not k.startswith("decoupling/")
        }
        if self.monitor in metrics:
            self.scores.append((trainer.current_epoch, metrics[self.monitor]))
        shown = ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items()))
        log.debug(f"{self.label} epoch {trainer.current_epoch}: {shown}")

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        best = ""
        if self.scores:
            epoch, score = min(self.scores, key=lambda es: es[1])
            best = f", best: epoch {epoch} ({self.monitor} {score:.4g})"
        log.info(
            f"{self.label}: {trainer.current_epoch} epochs{best}, "
            f"{time.perf_counter() - self.started:.0f} s"
        )


def _monthly_nee(member: FoldedMember, batch: dict[str, Any], device: torch.device) -> torch.Tensor:
    """(month, cell) monthly-mean NEE in gC m-2 d-1, one month of days at a time to bound
    memory. Through the fast inference path: 3–7× the plain network's speed on a 1° year,
    equal to it within float32 rounding (docs/scaling.md, "Training: where an EC-ATM epoch
    goes")."""
    rows = []
    for m in range(batch["month_mean"].shape[0]):
        days = batch["month_mean"][m].nonzero().squeeze(1)
        block = batch["x"][days].to(device)
        nee = member(block.reshape(-1, block.shape[-1])).reshape(block.shape[:-1])
        rows.append(nee.double().mean(dim=0))
    return torch.stack(rows)
