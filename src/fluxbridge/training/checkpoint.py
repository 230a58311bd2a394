"""Reading member checkpoints safely: plain tensors and types only, identity checked.

Checkpoints are loaded with ``torch.load(weights_only=True)``, which refuses
arbitrary pickled objects. Each checkpoint carries a ``fluxbridge`` entry
(model name, driver names, latent size) written by the LightningModule; a
checkpoint of another model or another driver set is refused by name.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from fluxbridge.data.canonical import DRIVER_NAMES
from fluxbridge.errors import SchemaError
from fluxbridge.models.modules import CHECKPOINT_KEY
from fluxbridge.models.network import NEENetwork

#: Written after everything else of a member: its training completed. ``train --resume``
#: skips a fold that has it, and ``forward`` uses only folds that have it; a killed fit
#: never writes it.
FINISHED_FILE = "finished.json"


def read_checkpoint(path: Path) -> dict[str, Any]:
    """Load a checkpoint's plain contents (CPU), refusing pickled objects."""
    path = Path(path)
    if not path.exists():
        raise SchemaError(path, None, "checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        raise SchemaError(
            path, None, f"not a plain-tensor checkpoint; refusing to load it ({exc})"
        ) from exc
    if not isinstance(ckpt, dict) or CHECKPOINT_KEY not in ckpt:
        raise SchemaError(path, CHECKPOINT_KEY, "missing; not a fluxbridge member checkpoint")
    return ckpt


def check_identity(
    ckpt: dict[str, Any], path: Path, model: str | None, drivers: tuple[str, ...] = DRIVER_NAMES
) -> dict[str, Any]:
    """Refuse a checkpoint of another model (if ``model`` is given) or driver set."""
    meta = ckpt[CHECKPOINT_KEY]
    if model is not None and meta.get("model") != model:
        raise SchemaError(
            path,
            f"{CHECKPOINT_KEY}.model",
            f"checkpoint of model {meta.get('model')!r}, expected {model!r}",
        )
    if tuple(meta.get("drivers", ())) != tuple(drivers):
        raise SchemaError(
            path,
            f"{CHECKPOINT_KEY}.drivers",
            f"trained on drivers {meta.get('drivers')}, expected {list(drivers)}",
        )
    return meta


def load_member(
    path: Path, model: str | None = None, drivers: tuple[str, ...] = DRIVER_NAMES
) -> NEENetwork:
    """The trained network of a member checkpoint, with its input standardisation."""
    ckpt = read_checkpoint(path)
    meta = check_identity(ckpt, path, model, drivers)
    net = NEENetwork(tuple(meta["drivers"]), int(meta["latent"]))
    state = {k[4:]: v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    net.load_state_dict(state)
    return net.eval()
