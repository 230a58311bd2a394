"""Benchmark: a whole forward run, today's code against the code before the driver-path work.

Issue 14's forward goal (0.5°, 10 members × 17 years ≤ 15 min on 2 cores). The old
``fluxbridge.inference.forward`` is taken from git (``--baseline``, default the commit
before the change) into a temporary module, so both paths run in the same session on
the same world: a twin world built by ``fluxbridge twin`` (``WORLD/data``, e.g. the 1°
``configs/twin/full.yaml`` world, or a ``bench_scaling.py --keep`` run folder's
``run/data``). Each (variant, member count) runs in its own child process, so that
its peak RSS is its own; the variants alternate so that outside load falls on both.
Members are untrained networks of the Table B1 shape made with ``--seed`` (the cost
depends on the shapes only), K copies of one network for K members.

Prints per run the wall time, CPU time (user + sys of the child), peak RSS and the
load average; per member count the ratio old / new of wall and CPU time; and checks
that both outputs are bitwise identical (every variable and the attributes but the
file's history), failing otherwise. Usage::

    .venv/bin/python benchmarks/bench_forward_drivers.py /tmp/h1/data --members 1 10
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OLD_SOURCE = "src/fluxbridge/inference/forward.py"
#: The last commit before the driver-path work (issue 14, forward goal).
DEFAULT_BASELINE = "89f8b6d"


def _old_module(baseline: str, folder: Path) -> object:
    """The forward module as it was at ``baseline``, imported from a temporary file."""
    text = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{baseline}:{OLD_SOURCE}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    path = folder / "forward_baseline.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location("forward_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def child(variant: str, data: Path, members: int, out: Path, seed: int, baseline: str) -> None:
    """One forward run in this process; prints a RESULT line of JSON."""
    import torch

    from fluxbridge.data.canonical import CanonicalDataset
    from fluxbridge.inference import forward
    from fluxbridge.inference.fast import FoldedMember
    from fluxbridge.models.network import NEENetwork

    module = forward if variant == "new" else _old_module(baseline, out.parent)
    torch.manual_seed(seed)
    net = NEENetwork()
    nets = [FoldedMember(net) for _ in range(members)]
    names = [f"copy_{k}" for k in range(members)]
    before = os.times()
    start = time.perf_counter()
    module.forward_run(  # type: ignore[attr-defined]
        nets,
        names,
        CanonicalDataset(data),
        out,
        model_name="bench",
        device=torch.device("cpu"),
        progress=False,
    )
    wall = time.perf_counter() - start
    after = os.times()
    cpu = (after.user - before.user) + (after.system - before.system)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps({"wall_s": wall, "cpu_s": cpu, "rss_mb": rss}))


def _run_child(variant: str, args: argparse.Namespace, members: int, out: Path) -> dict:
    load = os.getloadavg()[0]
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            str(args.data),
            "--child",
            variant,
            "--members",
            str(members),
            "--out",
            str(out),
            "--seed",
            str(args.seed),
            "--baseline",
            args.baseline,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    result = json.loads(line.removeprefix("RESULT "))
    result["load"] = load
    return result


def assert_identical(a: Path, b: Path) -> None:
    """Every variable bitwise equal (NaN = NaN), the same attributes but ``history``."""
    import numpy as np
    import xarray as xr

    with xr.open_dataset(a, engine="h5netcdf") as x, xr.open_dataset(b, engine="h5netcdf") as y:
        assert sorted(x.variables) == sorted(y.variables), (list(x.variables), list(y.variables))
        for name in x.variables:
            u, v = x[name].values, y[name].values
            assert u.dtype == v.dtype and u.shape == v.shape, name
            if u.dtype.kind == "f":
                assert np.array_equal(u.view(f"u{u.itemsize}"), v.view(f"u{v.itemsize}")), name
            else:
                assert np.array_equal(u, v), name
            assert x[name].attrs == y[name].attrs, name
        drop = {"history"}
        ax = {k: v for k, v in x.attrs.items() if k not in drop}
        ay = {k: v for k, v in y.attrs.items() if k not in drop}
        assert ax == ay, (ax, ay)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="a canonical dataset (twin world) folder")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="git commit of the old code")
    parser.add_argument("--child", choices=("old", "new"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.data, args.members[0], args.out, args.seed, args.baseline)
        return

    import xarray as xr

    with xr.open_dataset(args.data / "drivers.nc", engine="h5netcdf") as ds:
        cells, days = ds.sizes["cell"], ds.sizes["time"]
    print(
        f"world {args.data}: {cells} land cells × {days} days = {cells * days:,} cell-days; "
        f"{os.cpu_count()} cores; baseline {args.baseline}"
    )
    scratch = Path(tempfile.mkdtemp(prefix="bench_forward_drivers_"))
    try:
        for members in args.members:
            results = {}
            for variant in ("old", "new"):
                out = scratch / variant / f"forward_{members}.nc"
                out.parent.mkdir(exist_ok=True)
                results[variant] = r = _run_child(variant, args, members, out)
                print(
                    f"{members:2d} member(s) {variant}: {r['wall_s']:7.2f} s wall, "
                    f"{r['cpu_s']:7.2f} s CPU, peak RSS {r['rss_mb']:6.0f} MB, "
                    f"load {r['load']:.2f}",
                    flush=True,
                )
            assert_identical(scratch / "old" / f"forward_{members}.nc", out)
            old, new = results["old"], results["new"]
            print(
                f"{members:2d} member(s): old / new = {old['wall_s'] / new['wall_s']:.2f} (wall), "
                f"{old['cpu_s'] / new['cpu_s']:.2f} (CPU); outputs bitwise identical",
                flush=True,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
