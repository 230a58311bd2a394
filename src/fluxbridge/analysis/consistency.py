"""Inter-model consistency of mean seasonal cycles (He et al. Figs. S9–S10).

For each region and product group:

* ``msc_spread``: mean over the 12 calendar months of the across-product sample std
  (ddof = 1) of the NBP MSC, PgC month-1 (lower = more consistent);
* ``msc_pairwise_r``: mean Pearson correlation over all pairs of products' MSCs.

For each product and region: Pearson correlation of its NBP MSC with the MSC of
the regional (land-area-weighted) mean SIF and LAI.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from fluxbridge.analysis.stats import PRODUCT_DIM, mean_pairwise_correlation, pearson
from fluxbridge.data.canonical import MONTHLY_INTEGRAL_UNITS, carbon_long_name


def msc_consistency(msc: xr.DataArray) -> xr.Dataset:
    """``msc`` (product, region, month) (with ``product_group``) → (group, region) table."""
    groups = list(dict.fromkeys(str(g) for g in msc["product_group"].values))
    regions = list(msc["region"].values)
    spread = np.full((len(groups), len(regions)), np.nan)
    pair_r = np.full_like(spread, np.nan)
    for i, g in enumerate(groups):
        members = msc.isel({PRODUCT_DIM: np.flatnonzero(msc["product_group"].values == g)})
        for j, r in enumerate(regions):
            block = members.sel(region=r).transpose(PRODUCT_DIM, "month").values
            if block.shape[0] >= 2:
                spread[i, j] = float(np.mean(np.std(block, axis=0, ddof=1)))
            pair_r[i, j] = mean_pairwise_correlation(block)
    coords = {"group": groups, "region": regions}
    return xr.Dataset(
        {
            "msc_spread": (
                ("group", "region"),
                spread,
                {
                    "units": MONTHLY_INTEGRAL_UNITS,
                    "long_name": carbon_long_name("mean across-product std of the NBP MSC"),
                },
            ),
            "msc_pairwise_r": (
                ("group", "region"),
                pair_r,
                {"units": "1", "long_name": "mean pairwise Pearson r of products' NBP MSCs"},
            ),
        },
        coords=coords,
    )


def msc_correlation(msc: xr.DataArray, reference: xr.DataArray) -> xr.DataArray:
    """Pearson r of each (product, region) MSC with ``reference`` (region, month)."""
    out = np.full((msc.sizes[PRODUCT_DIM], msc.sizes["region"]), np.nan)
    for i in range(msc.sizes[PRODUCT_DIM]):
        for j, r in enumerate(msc["region"].values):
            out[i, j] = pearson(
                msc.isel({PRODUCT_DIM: i}).sel(region=r).values, reference.sel(region=r).values
            )
    return xr.DataArray(
        out,
        dims=(PRODUCT_DIM, "region"),
        coords={PRODUCT_DIM: msc[PRODUCT_DIM].values, "region": msc["region"].values},
        attrs={"units": "1"},
    )
