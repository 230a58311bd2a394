"""Finding and loading the trained members of a run (RUN/train/<model dir>/fold_<k>/best.ckpt)."""

from __future__ import annotations

import re
from pathlib import Path

from fluxbridge import logs
from fluxbridge.errors import FluxbridgeError
from fluxbridge.models.network import NEENetwork
from fluxbridge.outputs import file_digest, tree_digest
from fluxbridge.training.checkpoint import FINISHED_FILE, load_member
from fluxbridge.training.run_config import RUN_CONFIG_FILE, TrainRunConfig

_FOLD = re.compile(r"fold_(\d+)$")
#: The run's own dataset folder (RUN/data, where the demo writes its twin world).
OWN_DATASET = "data"
#: The file every canonical dataset holds (its index).
CANONICAL_INDEX = "canonical.json"

log = logs.get(__name__)


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
    """The canonical dataset the run was trained on (from the training configs).

    The one folder the configs name, when it exists and is not another folder than the
    run's own ``RUN/data``. Otherwise (configs disagree, the folder is gone, or an old
    config names the original of a copied run) ``RUN/data`` is used when every config
    records the same dataset digest and ``RUN/data`` has it; only then is the dataset
    hashed. A folder whose content differs from what the members were trained on is
    never chosen.
    """
    run = Path(run)
    configs = {
        d.name: TrainRunConfig.read(d)
        for d in model_dirs(run).values()
        if (d / RUN_CONFIG_FILE).exists()
    }
    paths = sorted({c.data for c in configs.values()})
    own = run / OWN_DATASET
    if len({Path(p).resolve() for p in paths}) == 1:
        named = Path(paths[0])
        if named.exists() and (not own.exists() or named.resolve() == own.resolve()):
            return named
    return _own_dataset_by_digest(run, configs, paths)


def _own_dataset_by_digest(run: Path, configs: dict[str, TrainRunConfig], paths: list[str]) -> Path:
    """``RUN/data`` when it holds the dataset every member was trained on; else one line."""
    own = run / OWN_DATASET
    if not configs:
        raise FluxbridgeError(
            f"{run}: no training config (train/<model>/{RUN_CONFIG_FILE}) names the dataset; "
            "pass --data explicitly"
        )
    missing = [p for p in paths if not Path(p).exists()]
    named = f"training configs name {', '.join(paths)}" + (
        f" ({', '.join(missing)} not found)" if missing else ""
    )
    digests = {c.inputs.get("dataset") for c in configs.values()}
    if len(digests) != 1 or None in digests:
        recorded = ", ".join(f"{m} {str(c.inputs.get('dataset'))[:12]}" for m, c in configs.items())
        raise FluxbridgeError(
            f"{run}: {named}, and its members were trained on different datasets (digests "
            f"{recorded}); evaluate them from separate run folders (`forward` takes --data)"
        )
    digest = str(digests.pop())
    if not (own / CANONICAL_INDEX).exists():
        raise FluxbridgeError(
            f"{run}: {named}, and {own} holds no dataset; put the one the members were trained "
            f"on (digest {digest[:12]}) there (`forward` also takes --data)"
        )
    found = tree_digest(own)
    if found != digest:
        raise FluxbridgeError(
            f"{run}: {named}; {own} holds another dataset (digest {found[:12]}) than the "
            f"members were trained on ({digest[:12]}); put that one there (`forward` also "
            "takes --data)"
        )
    log.info(
        f"{run}: {named}; using {own}, which holds the dataset the members were trained on "
        f"(digest {digest[:12]})"
    )
    return own
