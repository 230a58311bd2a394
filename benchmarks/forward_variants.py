"""What the forward benchmarks share: forward.py as committed, seeded members, the CLI of
an old-against-new comparison and the child's RESULT line.

``bench_forward_drivers.py``, ``bench_forward_merge.py`` and ``bench_forward_paper.py``
each run ``forward_run`` in child processes, some with the module of an earlier commit
read from git, so that the code before and after a change run in one session.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
FORWARD_SOURCE = "src/fluxbridge/inference/forward.py"
#: The variables whose last bits changed with the merge without dask (86e705f).
STATISTICS = ("nee_mean", "nee_std")


def committed_forward(commit: str, folder: Path) -> ModuleType:
    """forward.py as committed at ``commit``, imported from a file in ``folder``."""
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{commit}:{FORWARD_SOURCE}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = folder / f"forward_{commit}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    # Dask workers cannot import it by name: its functions travel by value
    import cloudpickle

    cloudpickle.register_pickle_by_value(module)
    return module


def seeded_members(seed: int, count: int) -> list:
    """``count`` untrained networks of the Table B1 shape, member k seeded ``seed + k``,
    wrapped as ``run_forward`` wraps the members it loads (the cost depends on the shapes
    only)."""
    import torch

    from fluxbridge.inference.fast import FoldedMember
    from fluxbridge.models.network import NEENetwork

    members = []
    for k in range(count):
        torch.manual_seed(seed + k)
        members.append(FoldedMember(NEENetwork().eval()))
    return members


def timed_run(
    module: ModuleType, data: Path, members: int, out: Path, seed: int, dask: str | None = None
) -> dict:
    """``module.forward_run`` of :func:`seeded_members` over ``data`` into ``out`` on the CPU:
    wall seconds, CPU seconds (user + sys of this process and of its children that ended:
    Dask workers) and the peak RSS (MiB) of this process or of its largest child."""
    import resource
    import time

    import torch

    from fluxbridge.data.canonical import CanonicalDataset

    before, start = os.times(), time.perf_counter()
    module.forward_run(
        seeded_members(seed, members),
        [f"seed_{seed + k}" for k in range(members)],
        CanonicalDataset(data),
        out,
        model_name="bench",
        device=torch.device("cpu"),
        dask=dask,
        progress=False,
    )
    wall, after = time.perf_counter() - start, os.times()
    fields = ("user", "system", "children_user", "children_system")
    cpu = sum(getattr(after, f) - getattr(before, f) for f in fields)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB → MiB
    largest_kid = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"wall_s": wall, "cpu_s": cpu, "rss_mb": max(own, largest_kid)}


def parse_old_new(doc: str, baseline: str, child: Callable[..., None]) -> argparse.Namespace | None:
    """The options of an old-against-new benchmark; in a child process, run ``child`` and
    return None; else print the world's size and return the options."""
    args = old_new_parser(doc.split("\n\n")[0], baseline).parse_args()
    if args.child:
        child(args.child, args.data, args.members[0], args.out, args.seed, args.baseline)
        return None
    print(f"{world_line(args.data)}; baseline {args.baseline}")
    return args


def old_new_runs(
    script: str, args: argparse.Namespace, describe: Callable[[dict], str]
) -> Iterator[tuple[int, dict[str, dict], Path, Path]]:
    """For each member count, the old then the new code in child processes (printing
    ``describe`` of each result); yields the count, both results and both outputs,
    which live in a scratch folder removed at the end."""
    scratch = Path(tempfile.mkdtemp(prefix=f"{Path(script).stem}_"))
    try:
        for members in args.members:
            results, outs = {}, {}
            for variant in ("old", "new"):
                outs[variant] = out = scratch / variant / f"forward_{members}.nc"
                out.parent.mkdir(exist_ok=True)
                results[variant] = run_old_new_child(script, args, variant, members, out)
                print(f"{members:2d} member(s) {variant}: {describe(results[variant])}", flush=True)
            yield members, results, outs["old"], outs["new"]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def result_of(stdout: str) -> dict:
    """The JSON of a child's ``RESULT`` line."""
    line = next(x for x in stdout.splitlines()[::-1] if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def world_line(data: Path) -> str:
    """The dataset's size: land cells × days and the machine's cores."""
    import xarray as xr

    with xr.open_dataset(data / "drivers.nc", engine="h5netcdf") as ds:
        cells, days = ds.sizes["cell"], ds.sizes["time"]
    return (
        f"world {data}: {cells} land cells × {days} days = {cells * days:,} cell-days; "
        f"{os.cpu_count()} cores"
    )


def old_new_parser(description: str, baseline: str) -> argparse.ArgumentParser:
    """The options of a benchmark of forward.py at ``--baseline`` against today's."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("data", type=Path, help="a canonical dataset (twin world) folder")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", default=baseline, help="git commit of the old code")
    parser.add_argument("--child", choices=("old", "new"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    return parser


def run_old_new_child(
    script: str, args: argparse.Namespace, variant: str, members: int, out: Path
) -> dict:
    """One child run of ``script`` (``variant`` old or new); its RESULT with the load
    before and after."""
    load = os.getloadavg()[0]
    cmd = [sys.executable, script, str(args.data), "--child", variant]
    cmd += ["--members", str(members), "--out", str(out), "--seed", str(args.seed)]
    cmd += ["--baseline", args.baseline]
    done = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return result_of(done.stdout) | {"load": (load, os.getloadavg()[0])}


def compare(old: Path, new: Path) -> dict[str, tuple[float, float]]:
    """Fail unless all but the statistics are bitwise equal; largest |old − new| of those
    (absolute and relative to |old|), NaN at the same cells required."""
    import numpy as np
    import xarray as xr

    differences = {}
    with xr.open_dataset(old, engine="h5netcdf") as x, xr.open_dataset(new, engine="h5netcdf") as y:
        assert sorted(x.variables) == sorted(y.variables), (list(x.variables), list(y.variables))
        for name in x.variables:
            u, v = x[name].values, y[name].values
            assert u.dtype == v.dtype and u.shape == v.shape, name
            assert x[name].attrs == y[name].attrs, name
            if name in STATISTICS:
                assert np.array_equal(np.isnan(u), np.isnan(v)), f"{name}: NaN elsewhere"
                diff = np.abs(u.astype(np.float64) - v)
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = np.where(diff > 0, diff / np.abs(u), 0.0)
                differences[name] = (float(np.nanmax(diff)), float(np.nanmax(rel)))
            elif u.dtype.kind == "f":
                assert np.array_equal(u.view(f"u{u.itemsize}"), v.view(f"u{v.itemsize}")), name
            else:
                assert np.array_equal(u, v), name
        drop = {"history"}
        ax = {k: v for k, v in x.attrs.items() if k not in drop}
        ay = {k: v for k, v in y.attrs.items() if k not in drop}
        assert ax == ay, (ax, ay)
    return differences
