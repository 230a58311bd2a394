"""DDP on 2 CPU processes (gloo) gives the single-process weights within float tolerance."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from fluxbridge.training.checkpoint import read_checkpoint
from fluxbridge.training.run import run_train

SCRIPT = Path(__file__).with_name("_ddp_script.py")


@pytest.mark.slow
def test_ddp_two_processes_match_one(tiny_data, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("batch_size: 2048\nmax_epochs: 1\nprogress_bar: false\n")
    run_train(
        "ec-atm",
        tiny_data,
        tmp_path / "one",
        folds=1,
        integral="exact",
        accelerator="cpu",
        devices=1,
        config=cfg,
    )
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tiny_data), str(tmp_path / "two"), str(cfg)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ckpt = "train/ec-atm-exact/fold_0/last.ckpt"
    one = read_checkpoint(tmp_path / "one" / ckpt)["state_dict"]
    two = read_checkpoint(tmp_path / "two" / ckpt)["state_dict"]
    assert one.keys() == two.keys()
    for key in one:
        assert torch.allclose(one[key], two[key], rtol=1e-4, atol=1e-5), key
    # the runs did move the weights: equality is not trivially from the shared init
    assert not torch.allclose(one["log_var"], torch.zeros(2))
