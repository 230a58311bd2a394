"""Benchmark: a whole forward run, today's code against the code before the driver-path work.

Issue 14's forward goal (0.5°, 10 members × 17 years ≤ 15 min on 2 cores). The old
``fluxbridge.inference.forward`` is taken from git (``--baseline``, default the commit
before the change) into a temporary module, so both paths run in the same session on
the same world: a twin world built by ``fluxbridge twin`` (``WORLD/data``, e.g. the 1°
``configs/twin/full.yaml`` world, or a ``bench_scaling.py --keep`` run folder's
``run/data``). Each (variant, member count) runs in its own child process, so that
its peak RSS is its own; the variants alternate so that outside load falls on both.
Members are untrained networks of the Table B1 shape, member k seeded ``--seed`` + k
(the cost depends on the shapes only).

Prints per run the wall time, CPU time (user + sys of the child), peak RSS and the
load average; per member count the ratio old / new of wall and CPU time; and checks
that both outputs are bitwise identical (every variable and the attributes but the
file's history), failing otherwise, except ``nee_mean``/``nee_std``, whose last bits
changed with the merge without dask (86e705f, after the driver-path work): their
largest difference is printed. Usage::

    .venv/bin/python benchmarks/bench_forward_drivers.py /tmp/h1/data --members 1 10
"""

from __future__ import annotations

import json
from pathlib import Path

from forward_variants import committed_forward, compare, old_new_runs, parse_old_new, timed_run

#: The last commit before the driver-path work (issue 14, forward goal).
DEFAULT_BASELINE = "89f8b6d"


def child(variant: str, data: Path, members: int, out: Path, seed: int, baseline: str) -> None:
    """One forward run in this process; prints a RESULT line of JSON."""
    from fluxbridge.inference import forward

    module = forward if variant == "new" else committed_forward(baseline, out.parent)
    print("RESULT " + json.dumps(timed_run(module, data, members, out, seed)))


def _describe(r: dict) -> str:
    return (
        f"{r['wall_s']:7.2f} s wall, {r['cpu_s']:7.2f} s CPU, peak RSS {r['rss_mb']:6.0f} MB, "
        f"load {r['load'][0]:.2f}"
    )


def main() -> None:
    args = parse_old_new(__doc__, DEFAULT_BASELINE, child)
    if args is None:
        return
    for members, results, old_out, new_out in old_new_runs(__file__, args, _describe):
        differences = compare(old_out, new_out)
        old, new = results["old"], results["new"]
        print(
            f"{members:2d} member(s): old / new = {old['wall_s'] / new['wall_s']:.2f} (wall), "
            f"{old['cpu_s'] / new['cpu_s']:.2f} (CPU); nee and all other variables bitwise "
            "identical; "
            + "; ".join(
                f"max |{n} old − new| = {a:.3g} ({r:.2g} relative)"
                for n, (a, r) in differences.items()
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
