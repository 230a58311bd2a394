"""kill -9 at a detected point, then the same command again: the uninterrupted result, bitwise.

Each test starts the installed ``fluxbridge`` command in a subprocess on the tiny
scenario, polls for a file that marks the kill point (a part, a checkpoint, a
staging folder with a file), sends SIGKILL, reruns the same command to the end,
and compares the result with an uninterrupted one: every NetCDF variable
bitwise (``xr.testing.assert_identical`` without attributes, which hold paths and
times) and, for training, every tensor of the members' checkpoints. No hidden
temporary (``.tmp-``) or staging folder may be left.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import xarray as xr

from tests.bad_inputs.harness import LEFTOVER, Inputs

COMMAND = Path(sys.executable).with_name("fluxbridge")
ROOT = Path(__file__).resolve().parents[2]


def start(cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(COMMAND), *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float) -> None:
    """SIGKILL ``proc`` as soon as ``ready()``; fail if it ends or times out first."""
    end = time.monotonic() + timeout
    while not ready():
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"the command ended (code {proc.returncode}) before the kill point:\n{err}")
        if time.monotonic() > end:
            proc.kill()
            pytest.fail("the kill point never came")
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def finish(cwd: Path, *args: str) -> None:
    proc = subprocess.run(
        [str(COMMAND), *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr


def same_netcdf(a: Path, b: Path) -> None:
    with (
        xr.open_dataset(a, engine="h5netcdf") as da,
        xr.open_dataset(b, engine="h5netcdf") as db,
    ):
        xr.testing.assert_identical(da.drop_attrs(), db.drop_attrs())


def same_tree_netcdf(a: Path, b: Path) -> None:
    names = sorted(p.relative_to(a).as_posix() for p in a.rglob("*.nc"))
    assert names == sorted(p.relative_to(b).as_posix() for p in b.rglob("*.nc"))
    assert names
    for name in names:
        same_netcdf(a / name, b / name)


def leftovers(root: Path) -> list[str]:
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*") if LEFTOVER.search(p.name)
    )


def any_file(folder_glob: str, root: Path, pattern: str = "*.nc") -> Callable[[], bool]:
    def ready() -> bool:
        return any(any(d.glob(pattern)) for d in root.glob(folder_glob) if d.is_dir())

    return ready


def test_twin_killed_then_rerun(tmp_path: Path, inputs: Inputs) -> None:
    args = ("twin", "--scenario", "configs/twin/tiny.yaml", "--out", "world")
    proc = start(tmp_path, *args)
    kill_when(proc, any_file(".world.tmp-*", tmp_path), timeout=60)
    assert list(tmp_path.glob(".world.tmp-*")), "the kill came before the staging folder"
    assert not (tmp_path / "world").exists()
    finish(tmp_path, *args)
    same_tree_netcdf(tmp_path / "world", inputs.world)
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["world"]


TRAIN_YAML = "max_epochs: 2\nprogress_bar: false\n"


def _train_args(run: str) -> tuple[str, ...]:
    return ("train", "--model", "ec", "--data", "world", "--run", run, "--folds", "2",
            "--config", "t.yaml")  # fmt: skip


def _checkpoint_tensors(path: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    return ckpt["state_dict"]


def test_train_killed_mid_fold_then_resumed(tmp_path: Path, inputs: Inputs) -> None:
    shutil.copytree(inputs.world, tmp_path / "world")
    (tmp_path / "t.yaml").write_text(TRAIN_YAML)
    finish(tmp_path, *_train_args("whole"))
    proc = start(tmp_path, *_train_args("killed"))
    fold1 = tmp_path / "killed/train/ec/fold_1"
    # mid-fold: fold 0 finished, fold 1 has its first epoch's checkpoint but is not finished
    kill_when(proc, lambda: (fold1 / "last.ckpt").exists(), timeout=120)
    assert (tmp_path / "killed/train/ec/fold_0/finished.json").exists()
    assert not (fold1 / "finished.json").exists()
    finished_log = (tmp_path / "killed/train/ec/fold_0/metrics.csv").read_bytes()
    finish(tmp_path, *_train_args("killed"), "--resume")
    assert (tmp_path / "killed/train/ec/fold_0/metrics.csv").read_bytes() == finished_log
    for fold in (0, 1):
        for name in ("best.ckpt", "last.ckpt"):
            a = _checkpoint_tensors(tmp_path / f"whole/train/ec/fold_{fold}/{name}")
            b = _checkpoint_tensors(tmp_path / f"killed/train/ec/fold_{fold}/{name}")
            assert a.keys() == b.keys()
            for key in a:
                assert torch.equal(a[key], b[key]), f"fold {fold} {name} {key}"
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("damage", [False, True], ids=["killed", "killed-and-part-damaged"])
def test_forward_killed_then_rerun(tmp_path: Path, inputs: Inputs, damage: bool) -> None:
    run = tmp_path / "run"
    shutil.copytree(inputs.run, run)
    (run / "forward" / "EC.nc").unlink()
    args = ("forward", "--run", "run", "--data", "run/data", "--model", "EC")
    parts = run / "forward" / "EC.nc.parts"
    proc = start(tmp_path, *args)
    kill_when(proc, lambda: parts.is_dir() and any(parts.glob("*.nc")), timeout=120)
    done = sorted(parts.glob("*.nc"))
    if damage:  # a part cut short (a disk that filled up, a copy that failed)
        raw = done[0].read_bytes()
        done[0].write_bytes(raw[: len(raw) // 3])
    finish(tmp_path, *args)
    same_netcdf(run / "forward" / "EC.nc", inputs.run / "forward" / "EC.nc")
    assert not parts.exists()
    assert leftovers(run) == []


def _prepare_world(root: Path) -> None:
    from tests.data.prepare import world

    world.write_world(root / "raw")
    world.write_manifest(root / "manifest.yaml")
    world.write_config(root / "prepare.yaml", root / "manifest.yaml")


def test_prepare_killed_then_rerun(tmp_path: Path) -> None:
    _prepare_world(tmp_path)
    args = ("prepare", "--config", "prepare.yaml", "--data-dir", "raw", "--out")
    finish(tmp_path, *args, "whole")
    proc = start(tmp_path, *args, "killed")
    kill_when(proc, any_file(".killed.prepare/parts", tmp_path), timeout=120)
    assert not (tmp_path / "killed").exists()
    finish(tmp_path, *args, "killed")
    same_tree_netcdf(tmp_path / "killed", tmp_path / "whole")
    assert leftovers(tmp_path / "killed") == []
    assert not (tmp_path / ".killed.prepare").exists()
