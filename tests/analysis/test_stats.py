"""Ensemble statistics against numpy computed by hand."""

from __future__ import annotations

import numpy as np
import xarray as xr

from fluxbridge.analysis.stats import group_stats, mean_pairwise_correlation, pearson


def _ensemble() -> xr.DataArray:
    rng = np.random.default_rng(0)
    values = rng.standard_normal((5, 4, 3))
    values[1, 0, 0] = np.nan
    return xr.DataArray(
        values,
        dims=("product", "region", "time"),
        coords={"product": list("abcde"), "product_group": ("product", ["s", "s", "s", "i", "b"])},
    )


def test_group_median_and_std_match_numpy() -> None:
    da = _ensemble()
    stats = group_stats(da)
    s = da.values[:3]
    np.testing.assert_allclose(stats["median"].sel(group="s").values, np.nanmedian(s, axis=0))
    np.testing.assert_allclose(stats["std"].sel(group="s").values, np.nanstd(s, axis=0, ddof=1))
    assert int(stats["n"].sel(group="s")[0, 0]) == 2
    # One member: the median is the member itself and the spread is undefined.
    np.testing.assert_array_equal(stats["median"].sel(group="i").values, da.values[3])
    assert np.isnan(stats["std"].sel(group="b").values).all()
    assert list(stats["group"].values) == ["s", "i", "b"]


def test_pearson_and_pairwise_against_corrcoef() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 12))
    c = np.corrcoef(x)
    assert np.isclose(pearson(x[0], x[1]), c[0, 1])
    assert np.isclose(mean_pairwise_correlation(x), c[np.triu_indices(4, 1)].mean())
    assert np.isnan(pearson(np.ones(12), x[0]))
    assert np.isnan(mean_pairwise_correlation(x[:1]))
