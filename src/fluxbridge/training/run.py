"""``invoke train``: EC or EC-ATM members, one per held-out site fold (Upton §3.4).

Layout under the run directory (see docs/training.md)::

    RUN/train/<model>/config.yaml            resolved config
    RUN/train/<model>/fold_<k>/best.ckpt     member k: best validation epoch
    RUN/train/<model>/fold_<k>/last.ckpt     for resume
    RUN/train/<model>/fold_<k>/metrics.csv   CSVLogger, one row set per epoch
    RUN/train/<model>/fold_<k>/decoupling_epochs.csv   bridge decoupling of every epoch
    RUN/train/<model>/fold_<k>/atm_years.json   inversion years trained on / held out
    RUN/train/<model>/fold_<k>/decoupling.csv   post-hoc bridge decoupling of best.ckpt
    RUN/train/<model>/fold_<k>/finished.json    written last: the member is complete
    RUN/train/<model>/decoupling.csv         the members' fold_<k>/decoupling.csv together
"""

from __future__ import annotations

import copy
import json
import warnings
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.accelerators import AcceleratorRegistry
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.strategies import StrategyRegistry
from pytorch_lightning.utilities import rank_zero_only

from fluxbridge import logs
from fluxbridge.bridge.bridgeset import BridgeSet, bridge_inputs
from fluxbridge.config import from_mapping, load_yaml
from fluxbridge.data.canonical import DRIVER_NAMES, open_canonical
from fluxbridge.errors import ConfigError
from fluxbridge.models.modules import MODULES
from fluxbridge.models.network import BridgeLike, NEENetwork
from fluxbridge.outputs import (
    INPUTS_ATTR,
    atomic_path,
    check_inputs,
    file_digest,
    recorded_inputs,
    stage_lock,
    tree_digest,
)
from fluxbridge.plausibility import check_dataset
from fluxbridge.training.callbacks import ACTIONS, BridgeDecoupling, EpochLog
from fluxbridge.training.checkpoint import (
    FINISHED_FILE,
    check_identity,
    load_member,
    read_checkpoint,
)
from fluxbridge.training.datamodules import ATMSpec, FluxDataModule
from fluxbridge.training.epoch_logs import AppendingCSVLogger, KeepEarlierEpochs
from fluxbridge.training.folds import folds_to_train
from fluxbridge.training.run_config import (
    RUN_CONFIG_FILE,
    TrainConfig,
    TrainerOptions,
    TrainRunConfig,
    check_choice,
)

INTEGRALS = ("bridge", "exact")
#: per fold: {"train": [years], "val": [years]} of the inversion years (ATM term)
ATM_YEARS_FILE = "atm_years.json"
#: Every validation epoch's bridge-decoupling table, per fold (the log shows a summary).
DECOUPLING_EPOCHS_FILE = "decoupling_epochs.csv"
#: The post-hoc decoupling table of a member's best checkpoint (and, in the model folder,
#: of all members).
DECOUPLING_FILE = "decoupling.csv"

log = logs.get(__name__)


def model_dir_name(model: str, integral: str, inversions: list[str] | None) -> str:
    """``ec``, ``ec-atm``, ``ec-atm-exact``, ``ec-atm-inv-A+B`` ... (one folder per setup)."""
    name = model
    if model == "ec-atm" and integral == "exact":
        name += "-exact"
    if model == "ec-atm" and inversions:
        name += "-inv-" + "+".join(inversions)
    return name


def load_bridges(path: Path) -> BridgeSet:
    return BridgeSet.load(path)


def _member_seed(seed: int, fold: int) -> int:
    return int(np.random.SeedSequence([seed, fold]).generate_state(1)[0])


def _devices(devices: Any) -> Any:
    return int(devices) if isinstance(devices, str) and devices.isdigit() else devices


def run_train(
    model: str,
    data: Path,
    run: Path,
    folds: int | None = None,
    max_epochs: int | None = None,
    integral: str = "bridge",
    inversions: list[str] | None = None,
    on_decoupling: str = "warn",
    accelerator: str = "auto",
    devices: Any = "auto",
    strategy: str = "auto",
    num_nodes: int = 1,
    resume: bool = False,
    config: Path | None = None,
    allow_implausible: bool = False,
) -> int:
    """Train one member per held-out site fold; returns 0.

    ``allow_implausible`` turns the plausibility errors on the towers' drivers and the
    inversions' global totals (:mod:`fluxbridge.plausibility`) into warnings.
    """
    check_choice("model", model, tuple(MODULES))
    check_choice("integral", integral, INTEGRALS)
    check_choice("on_decoupling", on_decoupling, ACTIONS)
    cfg = from_mapping(TrainConfig, load_yaml(config) if config else {}, str(config or ""))
    if max_epochs is not None:
        cfg = replace(cfg, max_epochs=max_epochs)  # checked like the config's
    if num_nodes < 1:
        raise ConfigError(f"num_nodes={num_nodes} must be >= 1")
    accelerators = ("auto", "gpu", *sorted(AcceleratorRegistry.available_accelerators()))
    check_choice("accelerator", accelerator, accelerators)
    check_choice("strategy", strategy, ("auto", *StrategyRegistry.available_strategies()))
    if accelerator in ("gpu", "cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"accelerator={accelerator!r}: no CUDA device on this machine; use 'cpu' or 'auto'"
        )
    data, run = Path(data), Path(run)
    canonical = open_canonical(data)
    bridges_path = run / "bridges.nc"
    bridges = load_bridges(bridges_path) if bridges_path.exists() else None
    if bridges is not None and INPUTS_ATTR in bridges.attrs:
        # bridges written by `bridges` record the grid and reference they were fitted on
        check_inputs(
            bridges_path,
            recorded_inputs(bridges.attrs),
            bridge_inputs(data),
            f"rerun `fluxbridge bridges --data {data} --run {run}`",
        )
    if model == "ec-atm" and integral == "bridge" and bridges is None:
        raise ConfigError(
            f"{bridges_path} not found: integral='bridge' needs the bridge models; run "
            f"`invoke bridges --data {data} --run {run}` first (or use --integral exact)"
        )
    # EC-ATM trains on the inversions, and EC is scored on them when bridges exist
    if inversions is not None:
        available = canonical.inversion_members()
        unknown = [m for m in inversions if m not in available]
        if unknown or not inversions:
            raise ConfigError(
                f"inversions={inversions}: unknown member(s) {unknown} in "
                f"{canonical.path('inversions')}; available: {available}"
            )
    check_dataset(
        canonical, top_down=model == "ec-atm" or bridges is not None, allow=allow_implausible
    )
    out = run / "train" / model_dir_name(model, integral, inversions)
    # DDP ranks are one training: only rank 0 takes the lock
    with stage_lock(run, f"train-{out.name}") if rank_zero_only.rank == 0 else nullcontext():
        fold_ids = folds_to_train(
            canonical.open("sites")["fold"].values, folds, canonical.path("sites")
        )
        if not resume:
            done = sorted(str(p) for k in fold_ids for p in (out / f"fold_{k}").glob("*.ckpt"))
            if done:
                raise ConfigError(
                    f"{out} already holds checkpoints ({done[0]} ...); pass resume=True to "
                    "continue them or remove the folder"
                )
        inputs = {"dataset": tree_digest(data)}
        if bridges is not None:  # EC-ATM trains on them; EC is scored and refit through them
            inputs["bridges"] = file_digest(bridges_path)
        resolved = TrainRunConfig(
            model=model,
            data=str(data),
            folds=fold_ids,
            integral=integral,
            inversions=inversions,
            on_decoupling=on_decoupling,
            trainer=TrainerOptions(accelerator, devices, strategy, num_nodes),
            train=cfg,
            inputs=inputs,
        )
        if resume and (out / RUN_CONFIG_FILE).exists():
            check_inputs(
                out,
                TrainRunConfig.read(out).inputs,
                inputs,
                "its members cannot be resumed on other inputs: train into a new run folder",
            )
        if rank_zero_only.rank == 0:
            resolved.write(out)
        setup = MemberSetup(
            model=model,
            data=data,
            out=out,
            cfg=cfg,
            integral=integral,
            inversions=inversions,
            on_decoupling=on_decoupling,
            trainer_kwargs={
                "accelerator": accelerator,
                "devices": _devices(devices),
                "strategy": strategy,
                "num_nodes": num_nodes,
            },
            resume=resume,
            inputs=inputs,
        )
        for k in fold_ids:
            finished = out / f"fold_{k}" / FINISHED_FILE
            if resume and finished.exists():
                # retraining would rewrite its logs and checkpoints; its files are final
                log.info(f"{model} fold {k}: finished ({finished}); not trained again")
                continue
            # Each member gets its own copy: a refit must not leak into the next fold.
            train_member(setup, k, copy.deepcopy(bridges))
        # read back from each fold, so that members finished before a resume are included;
        # only empty cells are NaN (a region may be abbreviated "NA")
        tables = [
            pd.read_csv(path, keep_default_na=False, na_values=[""])
            for k in fold_ids
            if (path := out / f"fold_{k}" / DECOUPLING_FILE).exists()
        ]
        if tables and rank_zero_only.rank == 0:
            with atomic_path(out / DECOUPLING_FILE, overwrite=True) as tmp:
                pd.concat(tables, ignore_index=True).to_csv(tmp, index=False, float_format="%.6g")
    return 0


@dataclass(frozen=True)
class MemberSetup:
    """Everything a member's fit needs besides its fold and its bridges."""

    model: str
    data: Path
    out: Path
    cfg: TrainConfig
    integral: str
    inversions: list[str] | None
    on_decoupling: str
    trainer_kwargs: dict[str, Any]
    resume: bool
    inputs: dict[str, str]

    def atm_spec(self, bridges: BridgeLike | None) -> ATMSpec | None:
        """EC-ATM trains on the inversions; EC only scores them when it can."""
        if self.model == "ec" and self.integral == "bridge" and bridges is None:
            return None
        return ATMSpec(
            self.integral,  # type: ignore[arg-type]
            bridges,
            self.inversions,
            self.cfg.atm_val_years,
            train=self.model == "ec-atm",
        )


def initial_network(cfg: TrainConfig, fold: int) -> NEENetwork:
    """The member's initial weights: the same for EC and EC-ATM of one fold (Upton §3.3)."""
    torch.manual_seed(_member_seed(cfg.seed, fold))
    return NEENetwork(DRIVER_NAMES, cfg.latent)


def train_member(setup: MemberSetup, fold: int, bridges: BridgeLike | None) -> None:
    """Fit the member of one held-out fold (from ``last.ckpt`` with ``setup.resume``).

    Its post-hoc decoupling table goes to ``fold_<k>/decoupling.csv``, and
    ``finished.json`` is written last.
    """
    cfg, fold_dir = setup.cfg, setup.out / f"fold_{fold}"
    spec = setup.atm_spec(bridges)
    dm = FluxDataModule(
        setup.data,
        fold,
        batch_size=cfg.batch_size,
        seed=cfg.seed,
        num_workers=cfg.num_workers,
        atm=spec,
    )
    dm.setup("fit")
    net = initial_network(cfg, fold)
    net.set_standardisation(dm.input_mean, dm.input_std)
    options = (
        {
            "tower_offset": cfg.tower_offset,
            "tower_offset_lr_scale": cfg.tower_offset_lr_scale,
            "selection": cfg.selection,
            "selection_weights": tuple(cfg.selection_weights),
        }
        if setup.model == "ec-atm"
        else {}
    )
    module = MODULES[setup.model](
        net,
        lr=cfg.lr,
        regional=dm.regional if spec else None,
        uncertainty_lr_scale=cfg.uncertainty_lr_scale,
        **options,
    )
    callbacks: list[pl.Callback] = [
        ModelCheckpoint(
            dirpath=fold_dir,
            filename="best",
            monitor="val/loss",
            mode="min",
            save_last=True,
            enable_version_counter=False,
        ),
        KeepEarlierEpochs(fold_dir / "metrics.csv", fold_dir / DECOUPLING_EPOCHS_FILE),
    ]
    decoupling = None
    if bridges is not None and spec is not None:
        decoupling = BridgeDecoupling(
            dm,
            bridges,
            max_rel_error=cfg.decoupling_max_rel_error,
            min_corr=cfg.decoupling_min_corr,
            action=setup.on_decoupling,  # type: ignore[arg-type]
            table_path=fold_dir / DECOUPLING_EPOCHS_FILE,
        )
        callbacks.append(decoupling)
    callbacks.append(EpochLog(f"{setup.model} fold {fold}"))
    trainer = pl.Trainer(
        **setup.trainer_kwargs,
        max_epochs=cfg.max_epochs,
        deterministic=True,
        use_distributed_sampler=False,
        logger=AppendingCSVLogger(save_dir=setup.out, name=f"fold_{fold}", version=""),
        callbacks=callbacks,
        # a bar on a terminal; in a redirected log, EpochLog's lines instead of redrawn bars
        enable_progress_bar=cfg.progress_bar and logs.is_terminal(),
        enable_model_summary=False,
        log_every_n_steps=1,
        default_root_dir=fold_dir,
    )
    ckpt_path = None
    last = fold_dir / "last.ckpt"
    if setup.resume and last.exists():
        check_identity(read_checkpoint(last), last, setup.model)
        ckpt_path = str(last)
    with warnings.catch_warnings():
        # pytorch-lightning 2.6.6 builds torch's deprecated LeafSpec, and torch 2.13 warns
        # on every fit; nothing here can change that, so only that message is silenced.
        warnings.filterwarnings(
            "ignore", message=r"`isinstance\(treespec, LeafSpec\)`", category=FutureWarning
        )
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path, weights_only=True)
    if spec is not None and rank_zero_only.rank == 0:
        # after fit: a file already in fold_dir makes Lightning warn about a non-empty log dir.
        # Evaluation scores the held-out inversion years on their own (docs/training.md).
        with atomic_path(fold_dir / ATM_YEARS_FILE, overwrite=True) as tmp:
            tmp.write_text(json.dumps({"train": dm.train_years, "val": dm.val_years}))
    if rank_zero_only.rank != 0:
        return
    if decoupling is not None:
        table = decoupling.table(load_member(fold_dir / "best.ckpt", setup.model), dm.years)
        with atomic_path(fold_dir / DECOUPLING_FILE, overwrite=True) as tmp:
            table.assign(fold=fold)[["fold", *table.columns]].to_csv(
                tmp, index=False, float_format="%.6g"
            )
    with atomic_path(fold_dir / FINISHED_FILE, overwrite=True) as tmp:
        tmp.write_text(json.dumps({"epochs": trainer.current_epoch, "inputs": setup.inputs}))
