"""Reading the drivers of a forward run into (days, cells, driver) blocks, fast.

A 0.5° forward run spent ~79 % of its time getting the drivers into memory
(docs/scaling.md): xarray indexing, ``np.stack`` of ten arrays, the statistics on
the stacked copy, and gunzipping the same chunks twice. Here each driver is read
with one HDF5 call into a reused contiguous buffer, summarised there (min, max,
cell-days outside the towers' range: :func:`fluxbridge.plausibility.column_summary`)
and copied once into its slot of a preallocated block.

Chunks and years: the drivers' chunks span 366 days, so most chunks hold the end
of one year and the start of the next, and reading year by year gunzips them
twice. When a year's last chunk reaches into the next year by at most
:data:`MAX_CARRY_DAYS` days, the read goes on to the chunk's end (no extra gunzip:
the chunk is decompressed anyway) and those days are kept for the next year's
block in the same process (:class:`Carry`). The values are the same bytes either
way; a year read without a carry (Dask, a resumed run) reads them from the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import xarray as xr

from fluxbridge.io import ENGINE
from fluxbridge.plausibility import column_summary

#: Longest tail of a chunk (days) kept for the next year: at 17 years the tails are
#: ≤ 17 days, ≈ 64 MB at 0.5° (94 284 cells × 10 drivers × 4 B per day).
MAX_CARRY_DAYS = 31

#: Attributes whose presence means the stored numbers are not the values (CF packing
#: or a fill value other than NaN): such a file is read through xarray instead.
_PACKING_ATTRS = ("scale_factor", "add_offset", "missing_value")


@dataclass
class Carry:
    """Days read past the end of a year, kept for the next year's block.

    Keyed by (driver index, first cell, last cell + 1, first day); process-local:
    pickling (to a Dask worker) gives an empty carry.
    """

    _store: dict[tuple[int, int, int, int], np.ndarray] = field(default_factory=dict)

    def take(self, k: int, cells: slice, day: int) -> np.ndarray | None:
        """The days from ``day`` on of driver ``k`` at ``cells``, if kept (then forgotten)."""
        # years run forward: what starts before ``day`` can no longer be used
        for key in [key for key in self._store if key[3] < day]:
            del self._store[key]
        return self._store.pop((k, cells.start, cells.stop, day), None)

    def put(self, k: int, cells: slice, day: int, values: np.ndarray) -> None:
        self._store[(k, cells.start, cells.stop, day)] = values

    @property
    def nbytes(self) -> int:
        return sum(v.nbytes for v in self._store.values())

    def __getstate__(self) -> dict[str, Any]:
        return {"_store": {}}


def _dims(path: Path, names: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """Each driver's dimension names, as xarray reads them (cheap: nothing is loaded)."""
    with xr.open_dataset(path, engine=ENGINE) as ds:
        return {name: tuple(str(d) for d in ds[name].dims) for name in names}


def direct_readable(var: h5py.Dataset, dims: tuple[str, ...]) -> bool:
    """Whether ``var``'s stored numbers are its float32 values laid out (time, cell):
    no packing, NaN or no fill value."""
    if dims != ("time", "cell") or var.dtype.kind != "f" or var.dtype.itemsize != 4:
        return False
    if any(name in var.attrs for name in _PACKING_ATTRS):
        return False
    fill = var.attrs.get("_FillValue")
    return fill is None or bool(np.isnan(np.asarray(fill, dtype=np.float64)).all())


def aligned_block(path: Path, names: tuple[str, ...], cell_block: int) -> int:
    """``cell_block`` rounded up to a whole number of the drivers' cell chunks, so that no
    chunk is gunzipped by two blocks; unchanged for unchunked or other-layout files."""
    dims = _dims(path, names)
    with h5py.File(path, "r") as f:
        chunks = {
            f[name].chunks[1]
            for name in names
            if f[name].chunks is not None and direct_readable(f[name], dims[name])
        }
    if len(chunks) != 1:
        return cell_block
    width = chunks.pop()
    return -(-cell_block // width) * width


class DriverReader:
    """Blocks of the drivers of one file: ``read(days, cells, out)`` fills ``out``.

    Args:
        path: the canonical drivers.nc, (time, cell) variables.
        names: the drivers, in the order of the block's last axis.
        carry: where days read past a year's end are kept (see the module docstring).
    """

    def __init__(self, path: Path, names: tuple[str, ...], carry: Carry | None = None) -> None:
        self.path = path
        self.names = names
        self.carry = carry if carry is not None else Carry()
        self._file = h5py.File(path, "r")
        self._vars = [self._file[name] for name in names]
        dims = _dims(path, names)
        self._direct = [direct_readable(v, dims[n]) for v, n in zip(self._vars, names, strict=True)]
        self._buffer = np.empty(0, dtype=np.float32)
        self._xarray: Any = None  # opened for the first driver not read directly

    def close(self) -> None:
        self._file.close()
        if self._xarray is not None:
            self._xarray.close()

    def __enter__(self) -> DriverReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _tail(self, k: int, stop: int) -> int:
        """Days after ``stop`` in the chunk holding day ``stop - 1`` (0: none or too many)."""
        var = self._vars[k]
        if var.chunks is None or not self._direct[k]:
            return 0
        length = var.shape[0]
        chunk_days = var.chunks[0]
        end = min(-(-stop // chunk_days) * chunk_days, length)
        tail = end - stop
        return tail if 0 < tail <= MAX_CARRY_DAYS else 0

    def _read(self, k: int, days: slice, cells: slice) -> np.ndarray:
        """Driver ``k`` at ``days`` × ``cells`` as a contiguous float32 array (a view of a
        buffer reused by the next call)."""
        shape = (days.stop - days.start, cells.stop - cells.start)
        size = shape[0] * shape[1]
        if self._buffer.size < size:
            self._buffer = np.empty(size, dtype=np.float32)
        values = self._buffer[:size].reshape(shape)
        var = self._vars[k]
        if self._direct[k]:
            var.read_direct(values, np.s_[days, cells])
        else:
            if self._xarray is None:
                self._xarray = xr.open_dataset(self.path, engine=ENGINE)
            selected = self._xarray[self.names[k]].isel(time=days, cell=cells)
            values[...] = selected.transpose("time", "cell").values
        return values

    def read(
        self,
        days: slice,
        cells: slice,
        out: np.ndarray,
        bounds: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Fill ``out`` (days, cells, driver) float32; per driver its min, max and count
        of values outside ``bounds`` = (low, high) (zeros without bounds). Does not check
        finiteness: a NaN or inf shows as a non-finite min or max."""
        n_days = days.stop - days.start
        n_cells = cells.stop - cells.start
        if out.shape != (n_days, n_cells, len(self.names)) or out.dtype != np.float32:
            raise ValueError(f"out must be float32 {(n_days, n_cells, len(self.names))}")
        k_all = len(self.names)
        minimum = np.empty(k_all, dtype=np.float64)
        maximum = np.empty(k_all, dtype=np.float64)
        outside = np.zeros(k_all, dtype=np.int64)
        for k in range(k_all):
            low = bounds[0][k] if bounds is not None else -np.inf
            high = bounds[1][k] if bounds is not None else np.inf
            pieces = []
            first = 0
            carried = self.carry.take(k, cells, days.start)
            if carried is not None and carried.shape[0] <= n_days:
                first = carried.shape[0]
                out[:first, :, k] = carried
                pieces.append(carried)
            tail = self._tail(k, days.stop)
            if first < n_days or tail:  # else a short last year came whole from the carry
                values = self._read(k, slice(days.start + first, days.stop + tail), cells)
                mine = values[: n_days - first]
                out[first:, :, k] = mine
                pieces.append(mine)
                if tail:
                    self.carry.put(k, cells, days.stop, values[n_days - first :].copy())
            summaries = np.array([column_summary(p, low, high) for p in pieces if p.size])
            # np.min/np.max propagate NaN, so a NaN anywhere shows in the result
            minimum[k] = np.min(summaries[:, 0])
            maximum[k] = np.max(summaries[:, 1])
            outside[k] = int(summaries[:, 2].sum())
        return minimum, maximum, outside
