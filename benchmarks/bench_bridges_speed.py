"""`invoke bridges` now against an older commit, same data, same run: time ratio and bitwise check.

Builds the bridges of one canonical dataset twice, each in a child process: once
with this checkout's package and once with the package of ``--base`` (a git
worktree of the commit to compare with, e.g. ``git worktree add /tmp/base
<commit>``), in the order base, new, base, new, ... (``--repeats``). Prints per
build the wall time, the CPU time of the process and its workers (user + sys),
the 1-minute load average before and after, and the best ratio base / new; then
checks that bridges.nc, bridges_summary.csv and bridges_fidelity.csv are bitwise
the same (every variable, every attribute except ``history``) and exits 1 when
they are not.

    .venv/bin/python benchmarks/bench_bridges_speed.py --data /tmp/h2/data \\
        --base /tmp/h2/base [--new CHECKOUT] [--n-runs 50] [--repeats 1] [--out DIR]

``--n-runs`` and ``--no-figures`` override the default config (configs/bridges/
default.yaml otherwise, ``n_jobs`` as there).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time, warnings
from pathlib import Path
warnings.simplefilter("ignore")
from fluxbridge.bridge.build import run_bridges
t0 = time.perf_counter()
run_bridges(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
wall = time.perf_counter() - t0
try:  # join the joblib workers so that their CPU time is counted as our children's
    from joblib.externals.loky import get_reusable_executor
    get_reusable_executor().shutdown(wait=True)
except Exception:
    pass
ru_self = resource.getrusage(resource.RUSAGE_SELF)
ru_kids = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = ru_self.ru_utime + ru_self.ru_stime + ru_kids.ru_utime + ru_kids.ru_stime
import fluxbridge
print(json.dumps({"wall_s": wall, "cpu_s": cpu, "package": fluxbridge.__file__}))
"""


def build(src: Path, data: Path, run: Path, config: Path) -> dict[str, float]:
    """One `run_bridges` in a child process importing fluxbridge from ``src``."""
    env = dict(os.environ, PYTHONPATH=str(src))
    load0 = os.getloadavg()[0]
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), str(run), str(config)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["load"] = (load0, os.getloadavg()[0])
    if not result["package"].startswith(str(src)):
        raise SystemExit(f"child imported {result['package']}, not the package under {src}")
    return result


def same_files(a: Path, b: Path) -> list[str]:
    """Names of what differs between two run directories' bridge outputs."""
    import xarray as xr

    diffs = []
    with xr.open_dataset(a / "bridges.nc") as da, xr.open_dataset(b / "bridges.nc") as db:
        da.load()
        db.load()
        for name in sorted(set(da.variables) | set(db.variables)):
            if name not in da.variables or name not in db.variables:
                diffs.append(f"bridges.nc:{name} (only in one)")
                continue
            va, vb = da[name].values, db[name].values
            if va.dtype.kind in "fc":
                equal = va.shape == vb.shape and np.array_equal(va, vb, equal_nan=True)
            else:
                equal = va.shape == vb.shape and bool((va == vb).all())
            if not equal or da[name].attrs != db[name].attrs:
                diffs.append(f"bridges.nc:{name}")
        skip = {"history"}
        ka = {k: v for k, v in da.attrs.items() if k not in skip}
        kb = {k: v for k, v in db.attrs.items() if k not in skip}
        if set(ka) != set(kb) or any(str(ka[k]) != str(kb[k]) for k in ka):
            diffs.append("bridges.nc attributes")
    for csv in ("bridges_summary.csv", "bridges_fidelity.csv"):
        if (a / csv).read_bytes() != (b / csv).read_bytes():
            diffs.append(csv)
    return diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--base", type=Path, required=True, help="worktree of the old commit")
    parser.add_argument(
        "--new", type=Path, default=ROOT, help="checkout to time against it (default: this one)"
    )
    parser.add_argument("--n-runs", type=int, default=None)
    parser.add_argument("--no-figures", action="store_true")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None, help="keep the runs here")
    args = parser.parse_args()
    cfg = yaml.safe_load((ROOT / "configs" / "bridges" / "default.yaml").read_text()) or {}
    if args.n_runs is not None:
        cfg["n_runs"] = args.n_runs
    if args.no_figures:
        cfg["figures"] = False
    cfg["overwrite"] = "always"
    work = args.out or Path(tempfile.mkdtemp(prefix="bench_bridges_speed_"))
    work.mkdir(parents=True, exist_ok=True)
    config = work / "bridges.yaml"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    print(f"data {args.data}, config {cfg}, {os.cpu_count()} CPUs")
    times: dict[str, list[dict]] = {"base": [], "new": []}
    for rep in range(args.repeats):
        for name, src in (("base", args.base / "src"), ("new", args.new / "src")):
            res = build(src, args.data, work / f"{name}_{rep}", config)
            times[name].append(res)
            print(
                f"  {name:4s} #{rep}: wall {res['wall_s']:7.1f} s, CPU {res['cpu_s']:7.1f} s, "
                f"load {res['load'][0]:.1f} -> {res['load'][1]:.1f}",
                flush=True,
            )
    best = {k: min(r["wall_s"] for r in v) for k, v in times.items()}
    cpu = {k: min(r["cpu_s"] for r in v) for k, v in times.items()}
    print(
        f"bridges: base {best['base']:.1f} s, new {best['new']:.1f} s wall (best of "
        f"{args.repeats}): {best['base'] / best['new']:.2f}x faster; CPU {cpu['base']:.1f} s -> "
        f"{cpu['new']:.1f} s: {cpu['base'] / cpu['new']:.2f}x"
    )
    diffs = [
        d
        for rep in range(args.repeats)
        for d in same_files(work / f"base_{rep}", work / f"new_{rep}")
    ]
    if diffs:
        print("NOT bitwise identical: " + ", ".join(diffs))
        raise SystemExit(1)
    print("bridges.nc, bridges_summary.csv, bridges_fidelity.csv: bitwise identical")


if __name__ == "__main__":
    main()
