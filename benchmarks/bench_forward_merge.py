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

import json
import os
import time
from pathlib import Path

from forward_variants import committed_forward, compare, old_new_runs, parse_old_new, timed_run

#: The last commit of forward.py with the dask merge (issue 14, merge step).
DEFAULT_BASELINE = "9aa8040"


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
    from fluxbridge.inference import forward

    module = forward if variant == "new" else committed_forward(baseline, out.parent)
    totals: dict[str, list[float]] = {}
    _timed(module, "_write_part", totals)
    _timed(module, "_merge_parts", totals)
    result = timed_run(module, data, members, out, seed)
    result["size_mb"] = out.stat().st_size / 1e6
    result["parts_wall_s"], result["parts_cpu_s"] = totals["_write_part"]
    result["merge_wall_s"], result["merge_cpu_s"] = totals["_merge_parts"]
    print("RESULT " + json.dumps(result))


def _describe(r: dict) -> str:
    return (
        f"run {r['wall_s']:7.2f} s wall {r['cpu_s']:7.2f} s CPU; parts {r['parts_wall_s']:6.2f} "
        f"s wall {r['parts_cpu_s']:6.2f} s CPU; merge {r['merge_wall_s']:6.2f} s wall "
        f"{r['merge_cpu_s']:6.2f} s CPU; peak RSS {r['rss_mb']:5.0f} MB; "
        f"file {r['size_mb']:6.1f} MB; load {r['load'][0]:.2f} → {r['load'][1]:.2f}"
    )


def main() -> None:
    args = parse_old_new(__doc__, DEFAULT_BASELINE, child)
    if args is None:
        return
    for members, results, old_out, new_out in old_new_runs(__file__, args, _describe):
        differences = compare(old_out, new_out)
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


if __name__ == "__main__":
    main()
