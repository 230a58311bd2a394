"""Benchmark: a whole forward run and its merge, today's code against the dask merge before.

Issue 14 (forward's merge step). Before, each year was written as a compressed
(member, time, lat, lon) part and the merge re-opened every part with
``open_mfdataset`` and computed ``nee_mean``/``nee_std`` through Dask over
``member``; now each part holds the year's land cells uncompressed with its
ensemble statistics (taken in float64 from the in-memory year), and the merge is a
concatenation with h5py reads. The old ``fluxbridge.inference.forward`` is taken
from git (``--baseline``) into a temporary module, as ``bench_forward_drivers.py``
does, so both run in the same session on the same world (``fluxbridge twin``
output, e.g. the 1° ``configs/twin/full.yaml`` world). Each (variant, member count)
runs in its own child process; the variants alternate so that outside load falls on
both. Members are K untrained Table B1 networks made with seeds ``--seed``,
``--seed`` + 1, … (the cost depends on the shapes only; different networks, so that
the ensemble statistics have a spread to compare).

Prints per run the wall and CPU time (user + sys of the child, all its threads) of
the whole run, of writing the year parts and of the merge, the peak RSS, the output's
size and the load average; per member count the ratios old / new; and compares the
outputs: ``nee`` and every other variable but the two statistics must be bitwise
identical (the script fails otherwise), and the largest |difference| of ``nee_mean``
and ``nee_std`` (absolute, gC m-2 d-1, and relative to the value) is printed. Usage::

    .venv/bin/python benchmarks/bench_forward_merge.py /tmp/h1/data --members 1 10
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_forward_drivers import _old_module

#: The last commit of forward.py with the dask merge (issue 14, merge step).
DEFAULT_BASELINE = "9aa8040"
#: The variables whose last bits may change (ensemble statistics).
STATISTICS = ("nee_mean", "nee_std")


def _timed(module: object, name: str, totals: dict[str, list[float]]) -> None:
    """Wrap ``module.name`` so that its wall and CPU seconds add up in ``totals[name]``."""
    real = getattr(module, name)
    totals[name] = [0.0, 0.0]

    def wrapper(*args: object, **kwargs: object) -> object:
        before, start = os.times(), time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            after = os.times()
            totals[name][0] += time.perf_counter() - start
            totals[name][1] += (after.user - before.user) + (after.system - before.system)

    setattr(module, name, wrapper)


def child(variant: str, data: Path, members: int, out: Path, seed: int, baseline: str) -> None:
    """One forward run in this process; prints a RESULT line of JSON."""
    import torch

    from fluxbridge.data.canonical import CanonicalDataset
    from fluxbridge.inference import forward
    from fluxbridge.inference.fast import FoldedMember
    from fluxbridge.models.network import NEENetwork

    module = forward if variant == "new" else _old_module(baseline, out.parent)
    totals: dict[str, list[float]] = {}
    _timed(module, "_write_part", totals)
    _timed(module, "_merge_parts", totals)
    nets = []
    for k in range(members):
        torch.manual_seed(seed + k)
        nets.append(FoldedMember(NEENetwork()))
    names = [f"seed_{seed + k}" for k in range(members)]
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
    result = {"wall_s": wall, "cpu_s": cpu, "rss_mb": rss, "size_mb": out.stat().st_size / 1e6}
    result["parts_wall_s"], result["parts_cpu_s"] = totals["_write_part"]
    result["merge_wall_s"], result["merge_cpu_s"] = totals["_merge_parts"]
    print("RESULT " + json.dumps(result))


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
    result["load"] = (load, os.getloadavg()[0])
    return result


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
    scratch = Path(tempfile.mkdtemp(prefix="bench_forward_merge_"))
    try:
        for members in args.members:
            results = {}
            for variant in ("old", "new"):
                out = scratch / variant / f"forward_{members}.nc"
                out.parent.mkdir(exist_ok=True)
                results[variant] = r = _run_child(variant, args, members, out)
                print(
                    f"{members:2d} member(s) {variant}: run {r['wall_s']:7.2f} s wall "
                    f"{r['cpu_s']:7.2f} s CPU; parts {r['parts_wall_s']:6.2f} s wall "
                    f"{r['parts_cpu_s']:6.2f} s CPU; merge {r['merge_wall_s']:6.2f} s wall "
                    f"{r['merge_cpu_s']:6.2f} s CPU; peak RSS {r['rss_mb']:5.0f} MB; "
                    f"file {r['size_mb']:6.1f} MB; load {r['load'][0]:.2f} → {r['load'][1]:.2f}",
                    flush=True,
                )
            differences = compare(scratch / "old" / f"forward_{members}.nc", out)
            old, new = results["old"], results["new"]

            def ratio(key: str, old: dict = old, new: dict = new) -> str:
                return f"{old[key] / new[key]:.2f}"

            merge_old = old["parts_cpu_s"] + old["merge_cpu_s"]
            merge_new = new["parts_cpu_s"] + new["merge_cpu_s"]
            print(
                f"{members:2d} member(s): old / new = {ratio('wall_s')} (run wall), "
                f"{ratio('cpu_s')} (run CPU), {ratio('merge_wall_s')} (merge wall), "
                f"{ratio('merge_cpu_s')} (merge CPU), {merge_old / merge_new:.2f} "
                "(parts + merge CPU); nee and all other variables bitwise identical; "
                + "; ".join(
                    f"max |{name} old − new| = {a:.3g} g m-2 d-1 ({r:.2g} relative)"
                    for name, (a, r) in differences.items()
                ),
                flush=True,
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
