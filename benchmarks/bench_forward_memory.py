"""Benchmark: peak memory (RSS) of a forward run on a domain 4× larger than the baseline.

Builds two twin worlds from ``configs/twin/tiny.yaml`` that differ only in
resolution: the baseline at ``--resolution`` degrees and one at half of it
(about 4× the land cells, same days). Each forward run (2 seeded random members
through :class:`~fluxbridge.inference.fast.FoldedMember`, in-process, a fixed
``--cell-block``) runs in its own subprocess, which reports its peak RSS from
``resource.getrusage`` and its RSS just before the run (imports and data opened).
The figures of merit are the ratios 4× / 1× of the peak RSS and of the growth
above that starting RSS. The forward output itself, (member, month, lat, lon)
float32 plus mean and std, is domain-sized by nature and printed alongside. Run:

    .venv/bin/python benchmarks/bench_forward_memory.py [--resolution 2.5] [--cell-block 512]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "configs" / "twin" / "tiny.yaml"


def _rss_mib(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024.0  # ru_maxrss is in KiB on Linux


def _current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return float(line.split()[1]) / 1024.0
    return float("nan")


def child(data: Path, out: Path, cell_block: int) -> None:
    """One forward run; prints a JSON line with cells, RSS before the run and peak RSS (MiB)."""
    import torch

    from fluxbridge.data.canonical import CanonicalDataset
    from fluxbridge.inference.fast import FoldedMember
    from fluxbridge.inference.forward import forward_run
    from fluxbridge.models.network import NEENetwork

    torch.manual_seed(0)
    members = []
    for _ in range(2):
        net = NEENetwork().eval()
        net.set_standardisation(torch.randn(10) * 10, torch.rand(10) * 5 + 0.1)
        members.append(FoldedMember(net))
    dataset = CanonicalDataset(data)
    cells = dataset.open("drivers").sizes["cell"]
    before = _current_rss_mib()
    forward_run(
        members,
        ["m0", "m1"],
        dataset,
        out,
        model_name="bench",
        cell_block=cell_block,
        device=torch.device("cpu"),
        progress=False,
    )
    peak = _rss_mib(resource.RUSAGE_SELF)
    print(json.dumps({"cells": cells, "before_mib": before, "peak_mib": peak}))


def _twin(root: Path, resolution: float) -> Path:
    from fluxbridge.data.twin.build import run_twin

    scenario = yaml.safe_load(SCENARIO.read_text())
    scenario["resolution_deg"] = resolution
    path = root / f"twin_{resolution:g}.yaml"
    path.write_text(yaml.safe_dump(scenario))
    data = root / f"data_{resolution:g}"
    run_twin(path, data)
    return data


def _measure(data: Path, out: Path, cell_block: int) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", str(data), str(out), "--cell-block", str(cell_block)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["output_mib"] = out.stat().st_size / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=float, default=2.5, help="baseline grid (degrees)")
    parser.add_argument("--cell-block", type=int, default=512, help="cells per block")
    parser.add_argument(
        "--child", nargs=2, type=Path, metavar=("DATA", "OUT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.cell_block)
        return

    with tempfile.TemporaryDirectory(prefix="bench_forward_memory_") as tmp:
        root = Path(tmp)
        runs = {}
        for label, resolution in (("1x", args.resolution), ("4x", args.resolution / 2)):
            data = _twin(root, resolution)
            runs[label] = _measure(data, root / f"forward_{label}.nc", args.cell_block)
            r = runs[label]
            print(
                f"{label}: {resolution:g}°, {r['cells']} land cells, RSS before run "
                f"{r['before_mib']:.0f} MiB, peak {r['peak_mib']:.0f} MiB "
                f"(+{r['peak_mib'] - r['before_mib']:.0f}), output file {r['output_mib']:.1f} MiB"
            )
    small, large = runs["1x"], runs["4x"]
    print(
        f"cell_block {args.cell_block}; land cells 4x / 1x: {large['cells'] / small['cells']:.2f}"
    )
    print(f"ratio peak RSS 4x / 1x: {large['peak_mib'] / small['peak_mib']:.2f}")
    growth = (large["peak_mib"] - large["before_mib"]) / (small["peak_mib"] - small["before_mib"])
    print(f"ratio RSS growth during the run 4x / 1x: {growth:.2f}")


if __name__ == "__main__":
    main()
