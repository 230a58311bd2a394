"""Benchmark: issue 14's forward goal measured directly (10 members × every land cell-day).

Goal: forward at 0.5° for 10 members × 17 years (2001–2017) in ≤ 15 min on 2 cores.
This runs ``fluxbridge.inference.forward.forward_run`` over every land cell and month of
a canonical dataset ``DATA`` (e.g. the 0.5° 2001–2017 twin of ``bench_scaling.py
--years 2001 2017 --keep``: ``WORK/res_0.5_2001-2017/run/data``), once per member count
in ``--members`` (the first count is the named baseline, default 1), in-process and,
with ``--dask``, on that Dask scheduler too (``local``: a LocalCluster of one worker per
core). Each run is its own child process, started from scratch (no parts of an earlier
run are reused).

Members are untrained networks of the Table B1 shape (``NEENetwork()``), member k
seeded with ``--seed`` + k, wrapped in ``FoldedMember`` exactly as ``run_forward``
wraps the members it loads from checkpoints: the cost depends on the shapes only, not
on the weights. The forward code is ``forward.py`` as last committed (read from git),
not the working tree's, unless ``--working-tree``: another session may be editing it,
and a measurement should name the code it ran.

Per run it prints the wall time of the ``forward_run`` call, its CPU time (user + sys
of the child and of its children that ended, e.g. Dask workers), the peak RSS (the
largest single process, ``ru_maxrss``, and the largest sum over the child's process
tree, sampled every second from /proc), the 1-minute load before and after, and the
output's size; then the wall time against the goal (900 s) and against the baseline
run of the same results file (same mode; a Dask run also against the in-process run
with as many members). Runs are appended to ``--results`` (JSON
lines) as they finish; a run already there for the same data, members, mode and
forward code is skipped, so a stopped benchmark resumes. Usage::

    .venv/bin/python benchmarks/bench_forward_paper.py DATA --members 1 10
    .venv/bin/python benchmarks/bench_forward_paper.py DATA --members 1 10 --dask local
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from forward_variants import FORWARD_SOURCE, ROOT, committed_forward, result_of, timed_run

GOAL_S = 15 * 60.0
"""Issue 14: forward, 10 members × 17 years at 0.5°, ≤ 15 min on 2 cores (wall)."""
IN_PROCESS = "in-process"


def forward_code(working_tree: bool) -> str:
    """The last commit of forward.py; with ``working_tree``, ``+<digest>`` when the file
    in the working tree differs from it (someone's uncommitted edits)."""
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%h", "--", FORWARD_SOURCE],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "diff", "--quiet", "HEAD", "--", FORWARD_SOURCE]
    ).returncode
    if working_tree and dirty:
        digest = hashlib.sha256((ROOT / FORWARD_SOURCE).read_bytes()).hexdigest()[:8]
        return f"{commit}+{digest}"
    return commit


# -- the child: one forward run ---------------------------------------------------------------


def child(
    data: Path, members: int, out: Path, seed: int, dask: str | None, code: str | None
) -> None:
    """One forward run in this process (forward.py of commit ``code``, or the working
    tree's with None); prints a RESULT line of JSON."""
    from fluxbridge.inference import forward

    module = forward if code is None else committed_forward(code, out.parent)
    result = timed_run(module, data, members, out, seed, dask)
    print("RESULT " + json.dumps(result), flush=True)


# -- the driver -------------------------------------------------------------------------------


def _tree_rss_mb(root: int) -> float:
    """Sum of VmRSS (MiB) of ``root`` and all its descendants, read from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                # the command name may hold spaces: the fields after its ')' are fixed
                fields = fh.read().rsplit(")", 1)[1].split()
            parents[int(entry)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    tree, frontier = {root}, [root]
    while frontier:
        pid = frontier.pop()
        for kid, parent in parents.items():
            if parent == pid and kid not in tree:
                tree.add(kid)
                frontier.append(kid)
    total_kib = 0
    for pid in tree:
        try:
            with open(f"/proc/{pid}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total_kib += int(line.split()[1])
        except OSError:
            continue
    return total_kib / 1024


def run_child(args: argparse.Namespace, members: int, dask: str | None, out: Path) -> dict:
    """Start one forward run as a child; its RESULT plus load, tree RSS and output size."""
    for stale in (out, out.with_name(out.name + ".parts")):  # from scratch, never resumed
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    cmd = [sys.executable, str(Path(__file__).resolve()), str(args.data), "--child"]
    cmd += ["--members", str(members), "--out", str(out), "--seed", str(args.seed)]
    if dask:
        cmd += ["--dask", dask]
    if not args.working_tree:
        cmd += ["--code", args.code]
    load_before = os.getloadavg()[0]
    peak_tree = 0.0
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, text=True)
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak_tree
            while not stop.is_set():
                peak_tree = max(peak_tree, _tree_rss_mb(proc.pid))
                stop.wait(1.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        stop.set()
        sampler.join()
        log.seek(0)
        text = log.read()
    if code != 0:
        sys.stderr.write(text[-4000:])
        raise SystemExit(f"forward run with {members} member(s) ({dask or IN_PROCESS}) failed")
    result = result_of(text)
    result.update(
        load_before=load_before,
        load_after=os.getloadavg()[0],
        tree_rss_mb=peak_tree,
        output_mb=out.stat().st_size / 2**20,
    )
    return result


def read_results(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def append_result(path: Path, row: dict) -> None:
    # one line per finished run, flushed at once: a kill loses at most the run under way
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def describe(row: dict, baseline: dict | None, in_process: dict | None = None) -> str:
    text = (
        f"{row['members']:2d} member(s), {row['mode']}: {row['wall_s']:8.1f} s wall "
        f"({row['wall_s'] / 60:.1f} min; load {row['load_before']:.2f} → {row['load_after']:.2f}), "
        f"{row['cpu_s']:8.1f} s CPU, peak RSS {row['rss_mb']:.0f} MB (largest process), "
        f"{row['tree_rss_mb']:.0f} MB (process tree), output {row['output_mb']:.0f} MB; "
        f"wall / goal (900 s) = {row['wall_s'] / GOAL_S:.2f}"
    )
    if baseline is not None and baseline is not row:
        text += (
            f"; / {baseline['members']} member(s) same mode: "
            f"{row['wall_s'] / baseline['wall_s']:.2f} (wall), "
            f"{row['cpu_s'] / baseline['cpu_s']:.2f} (CPU)"
        )
    if in_process is not None and row["mode"] != IN_PROCESS:
        text += (
            f"; / in-process, same members: {row['wall_s'] / in_process['wall_s']:.2f} (wall), "
            f"{row['cpu_s'] / in_process['cpu_s']:.2f} (CPU)"
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", type=Path, help="a canonical dataset folder")
    parser.add_argument("--members", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--dask", help="also run on this scheduler ('local' or tcp://HOST:PORT)")
    parser.add_argument(
        "--no-in-process", action="store_true", help="only the --dask runs (with --dask)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="where the outputs go (default: a temp dir)")
    parser.add_argument(
        "--results", type=Path, help="JSON lines of finished runs (default: WORK/results.jsonl)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the forward outputs")
    parser.add_argument(
        "--working-tree",
        action="store_true",
        help="run the working tree's forward.py (default: as last committed, from git)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.data, args.members[0], args.out, args.seed, args.dask, args.code)
        return
    if not (args.data / "drivers.nc").exists():
        raise SystemExit(f"{args.data}: no drivers.nc; expected a canonical dataset folder")

    import xarray as xr

    with xr.open_dataset(args.data / "drivers.nc", engine="h5netcdf") as ds:
        cells, days = ds.sizes["cell"], ds.sizes["time"]
        first, last = str(ds["time"].values[0])[:10], str(ds["time"].values[-1])[:10]
    code = args.code = forward_code(args.working_tree)
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_forward_paper_"))
    work.mkdir(parents=True, exist_ok=True)
    results = args.results or work / "results.jsonl"
    print(
        f"world {args.data}: {cells} land cells × {days} days ({first} … {last}) = "
        f"{cells * days:,} cell-days; {os.cpu_count()} cores; forward.py at {code}",
        flush=True,
    )
    modes = ([] if args.no_in_process else [None]) + ([args.dask] if args.dask else [])
    key = {"data": str(args.data.resolve()), "forward_code": code, "seed": args.seed}

    def done(members: int, mode: str) -> dict | None:
        found = [
            r
            for r in read_results(results)
            if all(r.get(k) == v for k, v in key.items())
            and r["members"] == members
            and r["mode"] == mode
        ]
        return found[-1] if found else None

    for dask in modes:
        mode = dask or IN_PROCESS
        baseline = None
        for members in args.members:
            row = done(members, mode)
            if row is not None:
                print(
                    f"(from {results}) " + describe(row, baseline, done(members, IN_PROCESS)),
                    flush=True,
                )
            else:
                out = work / f"forward_{members}_{mode.replace('/', '_').replace(':', '_')}.nc"
                measured = run_child(args, members, dask, out)
                row = {
                    **key,
                    "members": members,
                    "mode": mode,
                    "cells": cells,
                    "days": days,
                    "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    **measured,
                }
                append_result(results, row)
                if not args.keep:
                    out.unlink()
                print(describe(row, baseline, done(members, IN_PROCESS)), flush=True)
            baseline = baseline or row


if __name__ == "__main__":
    main()
