"""Grouped k-fold split of the towers (Upton §3.4: 10 folds, one member per fold).

The split is the ``fold`` variable of sites.nc: a whole site is in exactly one
fold, so no tower's days are both trained on and validated against. Towers in
one grid cell share the pixel's drivers and true NEE, so a cell is the unit of
the split: :func:`grouped_folds` deals whole groups (cells) to folds, and
:func:`check_no_leakage` refuses two towers of one cell in different folds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from fluxbridge.errors import ConfigError, SchemaError
from fluxbridge.geo.grid import Grid


@dataclass(frozen=True)
class SiteSplit:
    """Indices into the ``site`` dim of sites.nc for one held-out fold."""

    held_out: int
    train: np.ndarray
    val: np.ndarray


def grid_cell(grid: Grid, lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ilat, ilon) of the cell holding each point (degrees; on an edge: the north/east one)."""
    ilat = np.searchsorted(grid.lat_bounds, lat, side="right") - 1
    ilon = np.searchsorted(grid.lon_bounds, lon, side="right") - 1
    return np.clip(ilat, 0, grid.shape[0] - 1), np.clip(ilon, 0, grid.shape[1] - 1)


def grouped_folds(
    groups: np.ndarray, n_folds: int, seed: int, strata: np.ndarray | None = None
) -> np.ndarray:
    """(site,) fold 0..n_folds-1 of every site, keeping each group (e.g. grid cell) whole.

    Groups are taken in a seeded random order, sorted by the stratum (e.g. region) of
    their first site when ``strata`` (site,) is given, and each goes to the fold with the
    fewest sites, ties to the fold with the fewest sites of that stratum, then the lowest
    id. Fold sizes then differ by at most the largest group, and each stratum is dealt
    across the folds.
    """
    unique, first, sizes = np.unique(groups, return_index=True, return_counts=True)
    if unique.size < n_folds:
        raise SchemaError(
            "sites",
            "fold",
            f"{unique.size} site group(s) cannot fill {n_folds} folds; lower the number of folds",
        )
    stratum = np.zeros(unique.size, dtype=np.int64)
    if strata is not None:
        stratum = np.unique(np.asarray(strata)[first], return_inverse=True)[1]
    order = np.random.default_rng(seed).permutation(unique.size)
    order = order[np.argsort(stratum[order], kind="stable")]
    load = np.zeros(n_folds, dtype=np.int64)
    stratum_load = np.zeros((n_folds, stratum.max() + 1), dtype=np.int64)
    fold_of_group = np.empty(unique.size, dtype=np.int32)
    for k in order:
        target = int(np.lexsort((np.arange(n_folds), stratum_load[:, stratum[k]], load))[0])
        fold_of_group[k] = target
        load[target] += sizes[k]
        stratum_load[target, stratum[k]] += sizes[k]
    return fold_of_group[np.searchsorted(unique, groups)]


def check_no_leakage(sites: xr.Dataset, grid: xr.Dataset, path: Path | str) -> None:
    """Refuse two sites of sites.nc in one cell of grid.nc that sit in different folds.

    Such towers share the pixel's drivers and true NEE, so one would validate the other.
    """
    fold, name = sites["fold"].values, sites["site"].values
    ilat, ilon = grid_cell(
        Grid.from_dataset(grid), sites["site_lat"].values, sites["site_lon"].values
    )
    lat, lon = grid["lat"].values, grid["lon"].values
    seen: dict[tuple[int, int], int] = {}
    for i, key in enumerate(zip(ilat.tolist(), ilon.tolist(), strict=True)):
        j = seen.setdefault(key, i)
        if fold[j] != fold[i]:
            raise SchemaError(
                path,
                "fold",
                f"sites {name[j]} and {name[i]} share the grid cell centred at "
                f"({lat[key[0]]:g} N, {lon[key[1]]:g} E) but are in folds {fold[j]} and "
                f"{fold[i]}; towers in one cell must share a fold (grouped split)",
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
