"""A year of (time, …) fields built block by block of days, as dask arrays.

:func:`by_day_blocks` turns a function that builds the dataset of any slice of
days into the dataset of all days whose variables are dask arrays, one chunk per
block: nothing is computed until the dataset is written (``to_netcdf`` stores
chunk by chunk), so a part file of 0.5° daily fields is never held whole in
memory. The values are those of one call on all days whenever the build is
elementwise in time (no variable of a day depends on another day), which the
caller guarantees. The number of blocks is logged (INFO), with the caller's ``label``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

log = logging.getLogger(__name__)

#: Bytes of one block's variables (all of them together) held at once, per dask thread.
BLOCK_BYTES = 64 * 2**20


def by_day_blocks(
    build: Callable[[slice], xr.Dataset],
    days: pd.DatetimeIndex,
    block_bytes: int | None = None,
    label: str = "by_day_blocks",
) -> xr.Dataset:
    """``build(slice(0, len(days)))`` as dask arrays computed ``build(block)`` by block.

    ``build`` must return, for every slice of ``days``, the same variables (each with
    ``time`` first), attributes and non-time coordinates, with ``time`` = those days.
    The first day is built at once, to learn the variables and the bytes per day; the
    block length follows from ``block_bytes`` (default :data:`BLOCK_BYTES`, read at the
    call). ``label`` names the dataset in the logged block count.
    """
    if block_bytes is None:
        block_bytes = BLOCK_BYTES
    n_days = days.size
    first = build(slice(0, 1))
    for name, var in first.data_vars.items():
        if var.dims[:1] != ("time",):
            raise ValueError(f"by_day_blocks: variable {name!r} has dims {var.dims}; time first")
    per_day = max(1, sum(int(v.nbytes) for v in first.data_vars.values()))
    step = max(1, block_bytes // per_day)
    names = list(first.data_vars)
    n_blocks = 1 + -(-(n_days - 1) // step)  # the first day, then ceil((n − 1) / step)
    log.info(
        "%s: %d day(s) in %d block(s) of at most %d day(s) (%.1f MiB a day)",
        label,
        n_days,
        n_blocks,
        step,
        per_day / 2**20,
    )

    def values(sl: slice) -> dict[str, np.ndarray]:
        ds = build(sl)
        return {name: np.asarray(ds[name].values) for name in names}

    blocks: dict[str, list[da.Array]] = {name: [] for name in names}
    for name in names:
        blocks[name].append(da.from_array(first[name].values, chunks=first[name].shape))
    for start in range(1, n_days, step):
        sl = slice(start, min(start + step, n_days))
        block = dask.delayed(values)(sl)  # one call per block, shared by its variables
        for name in names:
            var = first[name]
            shape = (sl.stop - sl.start, *var.shape[1:])
            blocks[name].append(da.from_delayed(block[name], shape=shape, dtype=var.dtype))
    return xr.Dataset(
        {
            name: xr.Variable(
                first[name].dims, da.concatenate(blocks[name], axis=0), first[name].attrs
            )
            for name in names
        },
        coords={"time": days, **{k: v for k, v in first.coords.items() if k != "time"}},
        attrs=first.attrs,
    )
