"""run_tasks in-process and on a 2-worker LocalCluster on loopback; an unreachable scheduler."""

from __future__ import annotations

import os
import socket
import time
import warnings
from collections.abc import Iterator

import pytest

from fluxbridge.errors import ConfigError, FluxbridgeError
from fluxbridge.parallel import dask_client, run_tasks

distributed = pytest.importorskip("distributed")


class TaskWarning(UserWarning):
    """Raised by the test task so the test can see it come back."""


def slow_square(n: int) -> tuple[int, int]:
    """n² and the worker's process id; early items sleep longest, so they finish last."""
    time.sleep(0.05 * (4 - n))
    if n == 2:
        warnings.warn(f"item {n} is even", TaskWarning, stacklevel=1)
    return n * n, os.getpid()


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """The address of a 2-process LocalCluster on 127.0.0.1."""
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        yield cluster.scheduler_address


def test_in_process_keeps_order_and_warnings() -> None:
    with pytest.warns(TaskWarning, match="item 2 is even"):
        out = run_tasks(slow_square, [0, 1, 2, 3], None, desc="test", unit="item")
    assert [v for v, _ in out] == [0, 1, 4, 9]
    assert {pid for _, pid in out} == {os.getpid()}


def test_cluster_gives_the_same_results_in_item_order(scheduler: str) -> None:
    with pytest.warns(TaskWarning, match="item 2 is even"):
        out = run_tasks(slow_square, [0, 1, 2, 3], scheduler, desc="test", unit="item")
    assert [v for v, _ in out] == [0, 1, 4, 9]
    assert os.getpid() not in {pid for _, pid in out}  # they really ran on the workers


def test_task_errors_reach_the_caller(scheduler: str) -> None:
    def fail(n: int) -> int:
        raise FluxbridgeError(f"item {n}: bad")

    with pytest.raises(FluxbridgeError, match="item 0: bad"):
        run_tasks(fail, [0], scheduler, desc="test", unit="item")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_one_line_within_the_timeout() -> None:
    address = f"tcp://127.0.0.1:{_closed_port()}"
    start = time.perf_counter()
    with pytest.raises(FluxbridgeError) as err, dask_client(address, timeout_s=2.0):
        pass
    elapsed = time.perf_counter() - start
    message = str(err.value)
    assert address in message and "\n" not in message
    assert "no Dask scheduler reachable" in message
    assert elapsed < 2.0 + 8.0  # the timeout plus distributed's start-up, not minutes


def test_a_malformed_address_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"--dask nope://x: not a scheduler address"):
        with dask_client("nope://x", timeout_s=2.0):
            pass


def test_a_failed_client_does_not_become_the_process_default():
    """A bad --dask once left a broken default client behind, and every later NetCDF write
    in the process (xarray takes a distributed lock then) failed with its address."""
    from distributed import default_client

    from fluxbridge.parallel import dask_client

    with pytest.raises(FluxbridgeError), dask_client("nope://127.0.0.1:1"):
        pass
    with pytest.raises(ValueError, match="No clients found"):
        default_client()
