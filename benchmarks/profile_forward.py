"""Profile of one forward run on a measured scaling run folder (issue 14, forward goal).

Runs ``forward_run`` on a run folder left by ``bench_scaling.py --keep`` under
cProfile, with the run's trained member repeated ``--members`` times (the same
network, so the cost is that of K members; the values are not used), into a scratch
file that is removed afterwards. Prints the wall time, the cumulative time of the
parts that matter (reading the drivers, the network, writing the parts, the merge)
and the top functions by own time.

With ``--seed`` an untrained network of the same shape is used instead, so the
profile can run before training has (the cost depends on the shapes only).

Usage::

    .venv/bin/python benchmarks/profile_forward.py build/scaling/res_0.5_2003-2005 --members 1
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import resource
import shutil
import tempfile
import time
from pathlib import Path

#: Profile entries (file fragment, function) whose cumulative time is reported as a part.
PARTS = {
    "compute_year (read drivers + checks + network)": ("forward.py", "compute_year"),
    "read drivers (DriverReader.read)": ("drivers.py", "read"),
    "driver statistics (column_summary)": ("plausibility.py", "column_summary"),
    "network (FoldedMember calls)": ("forward.py", "run_members_on_block"),
    "write year parts": ("forward.py", "_write_part"),
    "driver range checks": ("forward.py", "_check_drivers"),
    "merge parts": ("forward.py", "_merge_parts"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("work", type=Path, help="a bench_scaling work folder (with run/)")
    parser.add_argument("--members", type=int, default=1, help="copies of the trained member")
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="use an untrained network (Table B1 shape) made with this seed instead of the "
        "run's trained member: the cost depends on the shapes only",
    )
    args = parser.parse_args()

    import torch

    from fluxbridge.data.canonical import CanonicalDataset
    from fluxbridge.inference.fast import FoldedMember
    from fluxbridge.inference.forward import forward_run
    from fluxbridge.inference.members import load_members
    from fluxbridge.models.network import NEENetwork

    run = args.work / "run"
    data = CanonicalDataset(run / "data")
    if args.seed is None:
        nets = list(load_members(run, "ec-atm").values())
    else:
        torch.manual_seed(args.seed)
        nets = [NEENetwork()]
    members = [FoldedMember(nets[k % len(nets)]) for k in range(args.members)]
    names = [f"copy_{k}" for k in range(args.members)]
    scratch = Path(tempfile.mkdtemp(prefix="profile_forward_", dir=args.work))
    profile = cProfile.Profile()
    try:
        start = time.perf_counter()
        profile.enable()
        forward_run(
            members,
            names,
            data,
            scratch / "forward.nc",
            model_name="profile",
            device=torch.device("cpu"),
            progress=False,
        )
        profile.disable()
        wall = time.perf_counter() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    stats = pstats.Stats(profile)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"forward_run, {args.members} member(s): {wall:.2f} s wall, peak RSS {rss:.0f} MB")
    for label, (fragment, func) in PARTS.items():
        cum = sum(
            entry[3]  # cumulative time
            for (path, _, name), entry in stats.stats.items()  # type: ignore[attr-defined]
            if name == func and path.endswith(fragment)
        )
        print(f"  {label}: {cum:.2f} s cumulative")
    stats.sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
