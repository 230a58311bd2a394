"""Run independent tasks in-process or on a Dask cluster, with the same results.

One home for the ``--dask`` option of ``forward``, ``bridges`` and ``evaluate``:

* ``None``: the tasks run one after the other in this process;
* ``"local"``: a :class:`distributed.LocalCluster` on this machine, one single-threaded
  worker process per core (started and closed here);
* ``"tcp://HOST:PORT"`` (any scheduler address): a client of that running scheduler.

A task must not depend on where or in which order it runs; callers seed every random
choice per task (not per worker), so both paths give bitwise the same numbers. Warnings
a task raises are recorded where it runs and re-raised here, in task order, so a
worker's warning reaches the user (and the log) as it does in-process. The workers
read and write the paths they are given: on a cluster these must be on a file system
every worker sees.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from fluxbridge import logs
from fluxbridge.errors import ConfigError, FluxbridgeError

log = logs.get(__name__)

T = TypeVar("T")
R = TypeVar("R")

CONNECT_TIMEOUT_S = 10.0
"""How long to wait for a scheduler before giving up with a one-line error."""


def local_workers() -> int:
    """Cores this process may use: the worker count of ``--dask local``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def dask_client(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[object]:
    """A :class:`distributed.Client` for ``address`` (``"local"`` or a scheduler address).

    An unreachable scheduler raises :class:`FluxbridgeError` naming the address after
    ``timeout_s`` seconds, instead of a traceback from the network layer.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as err:  # pragma: no cover - distributed is a core dependency
        raise FluxbridgeError(f"--dask {address}: the 'distributed' package is missing") from err

    cluster = None
    if address == "local":
        # no dashboard: several runs on one machine would fight over its port
        cluster = LocalCluster(
            n_workers=local_workers(),
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
        )
        address = cluster.scheduler_address
    try:
        try:
            # not the process-wide default: a client that failed to connect would stay the
            # default, and xarray's file locks would then try to reach its scheduler
            client = Client(address, timeout=f"{timeout_s}s", set_as_default=False)
        except ValueError as err:  # not an address at all (an unknown scheme, no port ...)
            raise ConfigError(
                f"--dask {address}: not a scheduler address ({err}); expected 'local' or "
                "an address such as tcp://HOST:PORT"
            ) from None
        except (OSError, TimeoutError) as err:
            raise FluxbridgeError(
                f"--dask {address}: no Dask scheduler reachable there within {timeout_s:g} s "
                f"({type(err).__name__}); start one (`dask scheduler`) or use --dask local"
            ) from None
        try:
            yield client
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


def _recording(fn: Callable[[T], R]) -> Callable[[T], tuple[R, list[warnings.WarningMessage]]]:
    """``fn`` that also returns the warnings it raised (picklable by cloudpickle)."""

    def run(item: T) -> tuple[R, list[warnings.WarningMessage]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fn(item)
        return result, list(caught)

    return run


def _reraise(caught: list[warnings.WarningMessage]) -> None:
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def run_tasks(
    fn: Callable[[T], R],
    items: Sequence[T],
    dask: str | None,
    *,
    desc: str,
    unit: str,
    progress: bool = True,
) -> list[R]:
    """``[fn(item) for item in items]``, in-process (``dask=None``) or as Dask tasks.

    Results come back in the order of ``items`` whichever worker finished first.
    ``fn`` and the items are pickled to the workers; large shared inputs are best
    passed as paths the workers read.
    """
    task = _recording(fn)
    results: list[R] = []
    if not dask:
        todo = logs.progress(items, desc, unit) if progress else items
        for item in todo:
            result, caught = task(item)
            _reraise(caught)
            results.append(result)
        return results
    with dask_client(dask) as client:
        log.info(f"{desc}: {len(items)} {unit}s on Dask ({client.scheduler.address})")
        # pure=False: two equal items are still two tasks (each writes its own output)
        futures = client.map(task, list(items), pure=False)
        for future in futures:
            result, caught = future.result()
            _reraise(caught)
            results.append(result)
    return results
