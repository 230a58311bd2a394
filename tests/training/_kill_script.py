"""Run by test_run_train.py as a script: trains, then SIGKILLs itself in the middle of a fold.

The kill comes at the end of validation of epoch ``kill_epoch`` of the fold ``kill_fold``:
that epoch's rows are in metrics.csv and decoupling_epochs.csv, but its checkpoint
is not written yet, so a resume has to run that epoch again.
"""

import os
import signal
import sys
from pathlib import Path

import torch

from fluxbridge.training.callbacks import EpochLog
from fluxbridge.training.run import run_train


def _kill_at(label: str, epoch: int):
    def on_validation_end(self, trainer, pl_module):
        if self.label == label and trainer.current_epoch == epoch and not trainer.sanity_checking:
            os.kill(os.getpid(), signal.SIGKILL)

    return on_validation_end


if __name__ == "__main__":
    torch.set_num_threads(1)
    data, run, config = (Path(a) for a in sys.argv[1:4])
    kill_fold, kill_epoch = int(sys.argv[4]), int(sys.argv[5])
    EpochLog.on_validation_end = _kill_at(f"ec-atm fold {kill_fold}", kill_epoch)
    run_train("ec-atm", data, run, folds=2, accelerator="cpu", devices=1, config=config)
