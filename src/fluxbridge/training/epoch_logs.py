"""Per-epoch CSV logs that survive ``train --resume`` after a kill (docs/training.md).

A fold's ``metrics.csv`` (Lightning's CSVLogger) and ``decoupling_epochs.csv``
(:class:`~fluxbridge.training.callbacks.BridgeDecoupling`) are append-only logs
with an ``epoch`` column. One rule keeps them consistent with the checkpoint a
fit starts from: when training starts, each log keeps the rows of the epochs
before the one Lightning starts at (all of them for a resumed fit, none for a
fresh one) and the fit appends the rest. Rows a killed run wrote for an epoch
its checkpoint does not hold are dropped, since that epoch runs again.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.loggers import CSVLogger
from pytorch_lightning.loggers.csv_logs import ExperimentWriter
from pytorch_lightning.loggers.logger import rank_zero_experiment

from fluxbridge.outputs import atomic_path


def keep_epochs_before(path: Path, epoch: int) -> None:
    """Drop the rows of ``path`` (a CSV with an ``epoch`` column) from ``epoch`` on.

    With ``epoch`` 0 nothing is kept and the file is removed. A kill in the middle of
    a write leaves a last line without its newline; that line is dropped too.
    """
    lines = []
    if path.exists():
        # newline="": rows are kept byte for byte (Lightning's csv writer ends them in \r\n)
        with path.open(newline="") as fh:
            lines = fh.read().splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines.pop()
    if epoch == 0 or not lines:
        path.unlink(missing_ok=True)
        return
    column = next(csv.reader(lines[:1])).index("epoch")
    rows = zip(lines[1:], csv.reader(lines[1:]), strict=True)  # one line per row
    kept = [line for line, row in rows if int(row[column]) < epoch]
    with atomic_path(path, overwrite=True) as tmp, tmp.open("w", newline="") as fh:
        fh.write(lines[0] + "".join(kept))


class KeepEarlierEpochs(pl.Callback):
    """At the start of training, apply :func:`keep_epochs_before` to each log.

    ``on_train_start`` runs after Lightning has restored the checkpoint's loop state,
    so ``trainer.current_epoch`` is the epoch Lightning really starts at.
    """

    def __init__(self, *paths: Path) -> None:
        self.paths = paths

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.is_global_zero:
            for path in self.paths:
                keep_epochs_before(path, trainer.current_epoch)


class _AppendingWriter(ExperimentWriter):
    """Lightning's writer deletes an existing metrics.csv when it starts; this one keeps it.

    It starts from the file's header, so rows of new epochs are appended under the same
    columns (Lightning rewrites the file only when a new metric appears).
    """

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as fh:
                self.metrics_keys = next(csv.reader(fh), [])


class AppendingCSVLogger(CSVLogger):
    """CSVLogger whose metrics.csv outlives the logger: :class:`KeepEarlierEpochs` trims it."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment
