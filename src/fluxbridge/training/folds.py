"""Grouped k-fold split of the towers by site (Upton §3.4: 10 folds, one member per fold).

The split is the ``fold`` variable of sites.nc: a whole site is in exactly one
fold, so no tower's days are both trained on and validated against. Two
records at the same position are the same tower and must share a fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fluxbridge.errors import ConfigError, SchemaError


@dataclass(frozen=True)
class SiteSplit:
    """Indices into the ``site`` dim of sites.nc for one held-out fold."""

    held_out: int
    train: np.ndarray
    val: np.ndarray


def check_no_leakage(fold: np.ndarray, lat: np.ndarray, lon: np.ndarray, path: Path) -> None:
    """Refuse co-located site records that sit in different folds (they would leak)."""
    seen: dict[tuple[float, float], int] = {}
    for i, key in enumerate(zip(np.round(lat, 6), np.round(lon, 6), strict=True)):
        j = seen.setdefault((float(key[0]), float(key[1])), i)
        if fold[j] != fold[i]:
            raise SchemaError(
                path,
                "fold",
                f"sites {j} and {i} share the position {key} but are in folds {fold[j]} and "
                f"{fold[i]}; a tower must be in one fold (grouped split)",
            )


def folds_to_train(fold: np.ndarray, n_folds: int | None, path: Path) -> list[int]:
    """The held-out folds to train, one member each: the first ``n_folds`` ids (all if None)."""
    ids = sorted(int(f) for f in np.unique(fold))
    if n_folds is None:
        return ids
    if not 1 <= n_folds <= len(ids):
        raise ConfigError(
            f"folds={n_folds}: {path} has {len(ids)} site folds {ids}; choose 1..{len(ids)}"
        )
    return ids[:n_folds]


def split_sites(fold: np.ndarray, held_out: int, n_valid: np.ndarray, path: Path) -> SiteSplit:
    """Train = every site outside ``held_out``; validation = the sites of ``held_out``.

    ``n_valid`` (site,) counts each site's usable days; a fold without any is refused.
    """
    val = np.flatnonzero(fold == held_out)
    train = np.flatnonzero(fold != held_out)
    for name, idx in (("validation", val), ("training", train)):
        if n_valid[idx].sum() == 0:
            raise ConfigError(
                f"{path}: fold {held_out} leaves no {name} data (sites {idx.tolist()} have no "
                "finite nee_obs with finite drivers); fix the fold assignment"
            )
    return SiteSplit(held_out, train, val)
