"""TrainRunConfig: the dataset path in RUN/train/<model>/config.yaml survives moving the run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fluxbridge.training.run_config import TrainConfig, TrainerOptions, TrainRunConfig


def _config(data: Path) -> TrainRunConfig:
    return TrainRunConfig(
        model="ec",
        data=str(data),
        folds=[0, 1],
        integral="bridge",
        on_decoupling="warn",
        trainer=TrainerOptions(),
        train=TrainConfig(),
        inputs={"dataset": "0" * 64},
    )


def _stored(directory: Path) -> str:
    return yaml.safe_load((directory / "config.yaml").read_text())["data"]


def test_dataset_inside_the_run_is_written_relative_to_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    model = run / "train" / "ec"
    model.mkdir(parents=True)
    _config(run / "data").write(model)
    assert _stored(model) == "data"
    assert Path(TrainRunConfig.read(model).data) == (run / "data").resolve()

    # the same folder moved: the config names the new place, never the old one
    moved = tmp_path / "archive" / "run-2026"
    moved.parent.mkdir()
    run.rename(moved)
    assert Path(TrainRunConfig.read(moved / "train" / "ec").data) == (moved / "data").resolve()

    # a model folder linked in from another run names the dataset of the run it lies in
    other = tmp_path / "other"
    (other / "train").mkdir(parents=True)
    (other / "train" / "ec").symlink_to(moved / "train" / "ec")
    assert Path(TrainRunConfig.read(other / "train" / "ec").data) == (moved / "data").resolve()


def test_paths_given_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`train --data runs/demo/data --run runs/demo` (relative to the shell's folder):
    stored relative to the run; a dataset outside the run is stored absolute."""
    monkeypatch.chdir(tmp_path)
    inside, outside = Path("runs/demo/train/ec"), Path("runs/demo/train/ec-atm")
    inside.mkdir(parents=True)
    outside.mkdir(parents=True)
    _config(Path("runs/demo/data")).write(inside)
    _config(Path("worlds/tiny")).write(outside)
    assert _stored(inside) == "data"
    assert _stored(outside) == str(tmp_path / "worlds" / "tiny")
    monkeypatch.chdir(tmp_path / "runs")  # read from elsewhere: the same folders
    assert Path(TrainRunConfig.read(Path("demo/train/ec")).data) == tmp_path / "runs/demo/data"
    assert Path(TrainRunConfig.read(Path("demo/train/ec-atm")).data) == tmp_path / "worlds/tiny"


def test_dataset_reached_through_a_link_to_the_run_is_relative(tmp_path: Path) -> None:
    """The run named through a symbolic link, the dataset through its real path."""
    real = tmp_path / "disk" / "run"
    (real / "train" / "ec").mkdir(parents=True)
    (tmp_path / "runs").symlink_to(tmp_path / "disk")
    _config(real / "data").write(tmp_path / "runs" / "run" / "train" / "ec")
    assert _stored(real / "train" / "ec") == "data"
