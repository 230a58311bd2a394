"""Typed training configs: the hyperparameters (``configs/train/*.yaml``) and a trained
model's resolved setup (``RUN/train/<model>/config.yaml``).

The resolved setup is written by ``train`` and read back by :class:`TrainRunConfig`
only (forward, evaluation and the sensitivity analysis read it through this class),
so a key renamed or missing is one error in one place. It also records the content
digests of the inputs the members were trained on (:mod:`fluxbridge.outputs`).

Its ``data`` is written relative to the run folder when the dataset lies inside it
(``RUN/data``, the demo's layout), so that a run folder copied or moved elsewhere names
its own dataset, not the original's; a dataset outside the run is written as an
absolute path. :meth:`TrainRunConfig.read` gives it back as an absolute path.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from fluxbridge.config import from_mapping, to_mapping
from fluxbridge.errors import ConfigError
from fluxbridge.models.modules import SELECTIONS
from fluxbridge.outputs import atomic_path

#: The resolved setup's file name in RUN/train/<model>/.
RUN_CONFIG_FILE = "config.yaml"


@dataclass
class TrainConfig:
    """Hyperparameters (Upton Table B1) and run options; ``configs/train/*.yaml``."""

    latent: int = 32
    lr: float = 0.003
    uncertainty_lr_scale: float = 1.0
    batch_size: int = 10000
    max_epochs: int = 100
    seed: int = 0
    atm_val_years: int = 2
    num_workers: int = 0
    decoupling_max_rel_error: float = 0.1
    decoupling_min_corr: float = 0.9
    progress_bar: bool = True
    # EC-ATM only; the paper's variant is tower_offset: false, selection: eq14 (docs/training.md)
    tower_offset: bool = False
    tower_offset_lr_scale: float = 10.0
    selection: str = "skill"
    selection_weights: list[float] = field(default_factory=lambda: [1.0, 1.0])

    def __post_init__(self) -> None:
        check_choice("selection", self.selection, SELECTIONS)
        for name, low in (("latent", 1), ("batch_size", 1), ("max_epochs", 1)):
            if getattr(self, name) < low:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= {low}")
        for name in ("atm_val_years", "num_workers", "seed"):  # numpy takes no negative seed
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0")
        for name in ("lr", "uncertainty_lr_scale"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be > 0")
        if not -1.0 <= self.decoupling_min_corr <= 1.0:
            raise ConfigError(f"decoupling_min_corr={self.decoupling_min_corr} must lie in [-1, 1]")
        if not self.tower_offset_lr_scale > 0:
            raise ConfigError(f"tower_offset_lr_scale={self.tower_offset_lr_scale} must be > 0")
        if len(self.selection_weights) != 2 or min(self.selection_weights) < 0:
            raise ConfigError(
                f"selection_weights={self.selection_weights}: expected two weights >= 0 "
                "(held-out site MSE, held-out-year ATM loss)"
            )


def check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {list(allowed)}")


@dataclass(frozen=True)
class TrainerOptions:
    """How Lightning places the fit (devices, nodes); not part of the science."""

    accelerator: str = "auto"
    devices: Any = "auto"
    strategy: str = "auto"
    num_nodes: int = 1


@dataclass(frozen=True)
class TrainRunConfig:
    """One trained model's setup, as resolved by ``train``.

    ``inputs`` maps ``dataset`` (and ``bridges`` when the members used them) to the
    content digest they had when training started; a resume on changed inputs is
    refused, and ``finished.json`` of each member records the same digests.

    ``data`` is the dataset folder, absolute in memory; in ``config.yaml`` it is
    relative to the run folder when it lies inside it (:func:`stored_data_path`).
    """

    model: str
    data: str
    folds: list[int]
    integral: str
    on_decoupling: str
    trainer: TrainerOptions
    train: TrainConfig
    inversions: list[str] | None = None
    inputs: dict[str, str] = field(default_factory=dict)

    def write(self, directory: Path) -> Path:
        """Write ``directory/config.yaml``; ``directory`` is ``RUN/train/<model dir>``."""
        path = Path(directory) / RUN_CONFIG_FILE
        stored = replace(self, data=stored_data_path(Path(self.data), run_of(directory)))
        with atomic_path(path, overwrite=True) as tmp:
            tmp.write_text(yaml.safe_dump(to_mapping(stored), sort_keys=False))
        return path

    @classmethod
    def read(cls, directory: Path) -> TrainRunConfig:
        """Read ``directory/config.yaml``; a missing file or key is a one-line error."""
        path = Path(directory) / RUN_CONFIG_FILE
        try:
            data = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: not found; was this model trained by `train`?") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from exc
        config = from_mapping(cls, data, str(path))
        # physically: a model folder linked in from another run names that run's dataset
        return replace(config, data=str(run_of(Path(directory).resolve()) / config.data))


def run_of(directory: Path) -> Path:
    """The run folder of a model's ``directory`` (``RUN/train/<model dir>``)."""
    return Path(directory).parent.parent


def stored_data_path(data: Path, run: Path) -> str:
    """``data`` as ``config.yaml`` records it: relative to ``run`` when it lies inside it
    (compared as written, else with links resolved), else absolute."""
    for inner, outer in (
        (Path(os.path.abspath(data)), Path(os.path.abspath(run))),
        (Path(data).resolve(), Path(run).resolve()),
    ):
        if inner.is_relative_to(outer):
            return inner.relative_to(outer).as_posix()
    return str(Path(os.path.abspath(data)))
