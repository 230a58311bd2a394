"""Ensemble statistics across products, per product group.

The spread of an ensemble is the sample standard deviation across its products
(``ddof = 1``); a group of one product has no spread (NaN). The centre is the
median across products. Both skip products that are NaN at a point.
"""

from __future__ import annotations

import itertools

import numpy as np
import xarray as xr

PRODUCT_DIM = "product"


def group_stats(da: xr.DataArray, groups: xr.DataArray | None = None) -> xr.Dataset:
    """Median, std (ddof=1) and member count across ``product`` within each group.

    ``groups`` is a (product,) array of group names; by default the ``product_group``
    coordinate of ``da``. Returns a Dataset with ``median``, ``std``, ``n`` over
    dims (group, *other dims of da).
    """
    groups = da["product_group"] if groups is None else groups
    names = list(dict.fromkeys(str(g) for g in groups.values))
    medians, stds, counts = [], [], []
    for name in names:
        members = da.isel({PRODUCT_DIM: np.flatnonzero(groups.values == name)})
        medians.append(members.median(PRODUCT_DIM, skipna=True))
        stds.append(_std(members))
        counts.append(members.notnull().sum(PRODUCT_DIM))
    dim = xr.DataArray(names, dims="group", name="group")
    out = xr.Dataset(
        {
            "median": xr.concat(medians, dim),
            "std": xr.concat(stds, dim),
            "n": xr.concat(counts, dim),
        }
    )
    # CF cell_methods may only name the variable's own dimensions; ``product`` is
    # reduced away here, so the long_name says which statistic this is.
    what = da.attrs.get("long_name", da.name or "value")
    for v, stat in (("median", "median"), ("std", "standard deviation (ddof=1)")):
        out[v].attrs.update(da.attrs)
        out[v].attrs["long_name"] = f"{what}: {stat} over the group's products"
    out["n"].attrs = {"long_name": "number of products with a value", "units": "1"}
    return out.drop_vars([c for c in out.coords if c not in out.dims and c != "group"])


def _std(members: xr.DataArray) -> xr.DataArray:
    n = members.notnull().sum(PRODUCT_DIM)
    # Below two members there is no sample spread; say so with NaN, not 0.
    return members.std(PRODUCT_DIM, ddof=1, skipna=True).where(n >= 2)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two equally long series (NaN if either is constant or has NaN)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if np.isnan(a).any() or np.isnan(b).any():
        return float("nan")
    da, db = a - a.mean(), b - b.mean()
    denom = np.sqrt((da * da).sum() * (db * db).sum())
    return float((da * db).sum() / denom) if denom > 0 else float("nan")


def mean_pairwise_correlation(series: np.ndarray) -> float:
    """Mean Pearson r over all pairs of rows of ``series`` (member, step); NaN below 2 rows."""
    rows = [r for r in np.asarray(series, dtype=np.float64) if not np.isnan(r).any()]
    pairs = [pearson(a, b) for a, b in itertools.combinations(rows, 2)]
    pairs = [r for r in pairs if not np.isnan(r)]
    return float(np.mean(pairs)) if pairs else float("nan")
