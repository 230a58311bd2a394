"""Fast inference path for :class:`~fluxbridge.models.network.NEENetwork` in forward runs.

:class:`FoldedMember` folds the input standardisation into the first layer,
exactly up to float32 rounding::

    W1' = W1 / std  (column-wise),   b1' = b1 − W1' @ mean,

so ``W1 ((x − mean) / std) + b1 = W1' x + b1'``; the fold itself is done in
float64. The three layers then run as ``torch.addmm`` (bias fused) followed by
in-place ReLU on pre-allocated hidden buffers.

On CPU the rows are processed in tiles whose two hidden buffers (tile × latent
× 4 B each) stay in cache, so the (N, latent) intermediates never go to main
memory. The tiles are not parallelised op by op (one OpenMP barrier per op and
tile: on a loaded machine every barrier waits for a descheduled thread, which
made the tiled path 20–60× slower than serial) but row range by row range: with
``torch.get_num_threads()`` = k > 1 the rows are split into k contiguous parts,
each run on a worker thread whose own torch/OpenMP/MKL thread count is 1 (those
settings are per thread). On other devices (CUDA) the whole input is one tile
run on the calling thread, because there kernel launches, not memory traffic,
are what small tiles would add.
"""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import torch
from torch import Tensor

from fluxbridge.models.network import NEENetwork

CPU_TILE_ROWS = 16384
"""Default CPU tile per worker thread: 2 × 16384 × 32 × 4 B = 4 MiB of hidden buffers
(fastest measured on a 2-core EPYC, 1 MiB L2 per core, 32 MiB L3; see docs/forward.md)."""


@functools.cache
def _worker_pool(n_workers: int) -> ThreadPoolExecutor:
    """Shared single-threaded-torch workers (the callers' thread counts are untouched)."""
    return ThreadPoolExecutor(
        n_workers,
        thread_name_prefix="fluxbridge-fast",
        initializer=torch.set_num_threads,
        initargs=(1,),
    )


# A forked child inherits the cached pool but not its threads: it must make its own.
os.register_at_fork(after_in_child=_worker_pool.cache_clear)


class _Weights(NamedTuple):
    """Folded layers, transposed so that every layer is ``addmm(bias, h, weight_t)``."""

    w1t: Tensor  # (n_drivers, latent), standardisation folded in
    b1: Tensor  # (latent,)
    w2t: Tensor  # (latent, latent)
    b2: Tensor  # (latent,)
    w3t: Tensor  # (latent, 1)
    b3: Tensor  # (1,)

    def to(self, device: torch.device) -> _Weights:
        return _Weights(*(t.to(device) for t in self))


def _float32_copy(t: Tensor) -> Tensor:
    # Always a copy: .contiguous() alone would return a view for a (1, 32) → (32, 1)
    # transpose, and the member must not follow later changes of the network.
    return t.detach().to(torch.float32).clone(memory_format=torch.contiguous_format)


def _fold(net: NEENetwork) -> _Weights:
    first, second, third = net.layers[0], net.layers[2], net.layers[4]
    with torch.no_grad():
        # float64 so that the folded weights are the exact quotient rounded once to float32.
        std = net.input_std.detach().double()
        mean = net.input_mean.detach().double()
        w1 = first.weight.detach().double() / std
        b1 = first.bias.detach().double() - w1 @ mean
        return _Weights(
            w1t=_float32_copy(w1.t()),
            b1=_float32_copy(b1),
            w2t=_float32_copy(second.weight.t()),
            b2=_float32_copy(second.bias),
            w3t=_float32_copy(third.weight.t()),
            b3=_float32_copy(third.bias),
        )


class FoldedMember:
    """A forward-run member: raw drivers (N, n_drivers) float32 → NEE (N,) in gC m-2 d-1.

    Gives the same values as ``net(x)`` (positive = source) to float32 rounding;
    the source network is copied, never modified. Hidden buffers are kept
    between calls and reused for any input size; each call returns a new output
    tensor. A lock serialises concurrent calls on one instance because they would
    share those buffers. Pickling keeps only the folded weights, so members can
    be shipped to Dask workers.

    Args:
        net: the trained network (any device).
        tile_rows: rows per tile; ``None`` = :data:`CPU_TILE_ROWS` on CPU and the
            whole input on other devices.
    """

    def __init__(self, net: NEENetwork, tile_rows: int | None = None) -> None:
        if tile_rows is not None and tile_rows < 1:
            raise ValueError(f"tile_rows must be a positive number of rows, got {tile_rows}")
        self.n_drivers = len(net.driver_names)
        self.latent = net.latent
        self.tile_rows = tile_rows
        self._source = _fold(net)
        self._init_caches()

    def _init_caches(self) -> None:
        self._weights: dict[torch.device, _Weights] = {self._source.w1t.device: self._source}
        # One (h1, h2) pair per device and worker.
        self._hidden: dict[tuple[torch.device, int], tuple[Tensor, Tensor]] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        return {
            "n_drivers": self.n_drivers,
            "latent": self.latent,
            "tile_rows": self.tile_rows,
            "_source": self._source.to(torch.device("cpu")),
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_caches()

    def tile_rows_for(self, device: torch.device, n_rows: int) -> int:
        """Rows per tile used for an input of ``n_rows`` rows on ``device``."""
        if self.tile_rows is not None:
            return min(self.tile_rows, n_rows)
        return min(CPU_TILE_ROWS, n_rows) if device.type == "cpu" else n_rows

    def _buffers(self, device: torch.device, worker: int, rows: int) -> tuple[Tensor, Tensor]:
        """Two (rows, latent) hidden buffers of one worker, grown only when too small."""
        hidden = self._hidden.get((device, worker))
        if hidden is None or hidden[0].shape[0] < rows:
            shape = (rows, self.latent)
            hidden = (
                torch.empty(shape, dtype=torch.float32, device=device),
                torch.empty(shape, dtype=torch.float32, device=device),
            )
            self._hidden[(device, worker)] = hidden
        return hidden

    def __call__(self, x: Tensor) -> Tensor:
        if x.ndim != 2 or x.shape[1] != self.n_drivers or x.dtype != torch.float32:
            raise ValueError(
                f"FoldedMember expects drivers as a float32 tensor (N, {self.n_drivers}), "
                f"got {x.dtype} {tuple(x.shape)}"
            )
        device = x.device
        n_rows = x.shape[0]
        out = torch.empty(n_rows, dtype=torch.float32, device=device)
        if n_rows == 0:
            return out
        tile = self.tile_rows_for(device, n_rows)
        threads = torch.get_num_threads()
        n_tiles = -(-n_rows // tile)
        with self._lock:
            w = self._weights.get(device)
            if w is None:
                w = self._weights[device] = self._source.to(device)
            if device.type != "cpu" or threads == 1 or n_tiles == 1:
                self._run_rows(w, x, out, 0, n_rows, tile, 0)
                return out
            # Contiguous row ranges of whole tiles (the last one may end short).
            per_worker = -(-n_tiles // threads) * tile
            starts = range(0, n_rows, per_worker)
            pool = _worker_pool(threads)
            futures = [
                pool.submit(
                    self._run_rows, w, x, out, start, min(start + per_worker, n_rows), tile, k
                )
                for k, start in enumerate(starts)
            ]
            for future in futures:
                future.result()
        return out

    def _run_rows(
        self, w: _Weights, x: Tensor, out: Tensor, begin: int, end: int, tile: int, worker: int
    ) -> None:
        """out[begin:end] = MLP(x[begin:end]), tile by tile, with ``worker``'s buffers."""
        # inference_mode is per thread, hence entered here rather than by the caller.
        with torch.inference_mode():
            h1_buf, h2_buf = self._buffers(x.device, worker, min(tile, end - begin))
            for start in range(begin, end, tile):
                stop = min(start + tile, end)
                rows = stop - start
                h1 = torch.addmm(w.b1, x[start:stop], w.w1t, out=h1_buf[:rows]).relu_()
                h2 = torch.addmm(w.b2, h1, w.w2t, out=h2_buf[:rows]).relu_()
                torch.addmm(w.b3, h2, w.w3t, out=out[start:stop].view(rows, 1))
