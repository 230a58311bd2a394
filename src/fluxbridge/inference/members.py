"""Finding and loading the trained members of a run (RUN/train/<model dir>/fold_<k>/best.ckpt)."""

from __future__ import annotations

import re
from pathlib import Path

from fluxbridge.errors import FluxbridgeError
from fluxbridge.models.network import NEENetwork
from fluxbridge.outputs import file_digest
from fluxbridge.training.checkpoint import FINISHED_FILE, load_member
from fluxbridge.training.run_config import RUN_CONFIG_FILE, TrainRunConfig

_FOLD = re.compile(r"fold_(\d+)$")


def display_name(model_dir: str) -> str:
    """Folder name → model name used in outputs: ec → EC, ec-atm-exact → EC-ATM-exact."""
    head, _, tail = model_dir.partition("-atm")
    name = head.upper() + ("-ATM" if _ else "")
    return name + tail


def model_dirs(run: Path) -> dict[str, Path]:
    """Trained models of ``run`` by display name, EC first, then EC-ATM variants."""
    train = run / "train"
    found = {
        display_name(d.name): d
        for d in sorted(train.glob("*"))
        if d.is_dir() and any(d.glob("fold_*/best.ckpt"))
    }
    if not found:
        raise FluxbridgeError(
            f"{train}: no trained members (fold_<k>/best.ckpt); run `invoke train` first"
        )
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != "EC", kv[0])))


def trained_models(run: Path) -> list[str]:
    return list(model_dirs(run))


def member_checkpoints(run: Path, model: str) -> dict[int, Path]:
    """``best.ckpt`` of every finished fold of ``model`` (a display name), by fold id."""
    directory = model_dirs(run).get(model)
    if directory is None:
        raise FluxbridgeError(f"{run}: model {model!r} not trained; have {trained_models(run)}")
    found = {}
    for ckpt in sorted(directory.glob("fold_*/best.ckpt")):
        match = _FOLD.search(ckpt.parent.name)
        if not match:
            continue
        if not (ckpt.parent / FINISHED_FILE).exists():
            raise FluxbridgeError(
                f"{ckpt.parent}: training of this member did not finish (no {FINISHED_FILE}); "
                "finish it with `train --resume` or remove the fold"
            )
        found[int(match.group(1))] = ckpt
    return dict(sorted(found.items()))


def load_members(run: Path, model: str) -> dict[int, NEENetwork]:
    """Best checkpoint of every fold of ``model`` (a display name), by fold id."""
    return {k: load_member(ckpt) for k, ckpt in member_checkpoints(run, model).items()}


def member_digests(run: Path, model: str) -> dict[str, str]:
    """Content digest of each member checkpoint, by its path in the run (provenance)."""
    return {
        ckpt.relative_to(run).as_posix(): file_digest(ckpt)
        for ckpt in member_checkpoints(run, model).values()
    }


def run_dataset(run: Path) -> Path:
    """The canonical dataset the run was trained on (from the training configs)."""
    paths = {
        TrainRunConfig.read(d).data
        for d in model_dirs(run).values()
        if (d / RUN_CONFIG_FILE).exists()
    }
    if len(paths) != 1:
        raise FluxbridgeError(
            f"{run}: training configs name {len(paths)} datasets ({sorted(paths)}); "
            "pass --data explicitly"
        )
    return Path(paths.pop())
