"""Run by test_ddp.py as a script: Lightning's "ddp" launcher re-runs this file per process."""

import sys
from pathlib import Path

import torch

from fluxbridge.training.run import run_train

if __name__ == "__main__":
    torch.set_num_threads(1)
    data, run, config = (Path(a) for a in sys.argv[1:4])
    run_train(
        "ec-atm",
        data,
        run,
        folds=1,
        integral="exact",
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        config=config,
    )
