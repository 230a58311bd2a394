"""Benchmark: how each pipeline stage grows with the number of land cells (issue 14, item 3).

For each resolution the paper scenario (configs/twin/full.yaml: real geography,
200 towers) is built with the given years, then every stage runs once as in the
pipeline, each in its own child process:

* ``twin``: the canonical dataset (run_twin);
* ``bridges``: the 18 regions' bridges, default config (run_bridges);
* ``train``: one site fold of EC-ATM (bridge integral) for ``--epochs`` epochs, default
  training config otherwise: the number of steps per epoch depends on the towers and
  years only, so it is the same at every resolution (the decoupling check at the end of
  each epoch is the part that grows with the cells);
* ``forward``: that member over every land cell and month (run_forward);
* ``evaluate``: metrics.json and the report (evaluate_run).

Each row of the CSV holds the stage's wall time (the stage call only, not the child's
imports), the child's peak RSS (``ru_maxrss`` of the child, or of its largest own child
— joblib/Dask workers — when larger) and the run folder's size on disk after the stage.
The exponent of each stage is the least-squares slope of log(time) and log(peak RSS)
against log(land cells) over the measured resolutions.

Resumable: a (resolution, years) whose five stages are in the CSV is skipped; a stage
already measured is skipped too when its outputs are still in the work folder.
Usage::

    .venv/bin/python benchmarks/bench_scaling.py --resolutions 4 2 --years 2003 2005
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("twin", "bridges", "train", "forward", "evaluate")
FIELDS = (
    "resolution_deg",
    "years",
    "land_cells",
    "stage",
    "wall_s",
    "peak_rss_mb",
    "disk_mb",
    "cores",
    "load_1min",
)
MODEL = "ec-atm"


# -- one stage, in a child process ----------------------------------------------------------


def _stage_outputs(stage: str, work: Path) -> list[Path]:
    """What a stage writes (removed before it runs, so a killed stage never counts)."""
    run = work / "run"
    return {
        "twin": [run / "data"],
        "bridges": [run / "bridges.nc", run / "bridges_summary.csv", run / "figures"],
        "train": [run / "train"],
        "forward": [run / "forward"],
        "evaluate": [run / "evaluation", run / "report"],
    }[stage]


def run_stage(stage: str, work: Path, epochs: int) -> float:
    """Run one stage in this process; seconds of the stage call."""
    from fluxbridge.bridge.build import run_bridges
    from fluxbridge.data.twin import run_twin
    from fluxbridge.evaluation.run import evaluate_run
    from fluxbridge.inference.forward import run_forward
    from fluxbridge.training.run import run_train

    run, data = work / "run", work / "run" / "data"
    train_cfg = work / "train.yaml"
    train_cfg.write_text(yaml.safe_dump({"max_epochs": epochs, "progress_bar": False}))
    calls = {
        "twin": lambda: run_twin(work / "scenario.yaml", data, force=True),
        "bridges": lambda: run_bridges(data, run, None),
        "train": lambda: run_train(MODEL, data, run, folds=1, config=train_cfg),
        "forward": lambda: run_forward(run, data),
        "evaluate": lambda: evaluate_run(run),
    }
    start = time.perf_counter()
    calls[stage]()
    return time.perf_counter() - start


def child_main(stage: str, work: Path, epochs: int) -> None:
    seconds = run_stage(stage, work, epochs)
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print("STAGE_RESULT " + json.dumps({"wall_s": seconds, "peak_rss_kib": max(own, kids)}))


# -- the driver -------------------------------------------------------------------------------


def _size_mb(path: Path) -> float:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0
    return total / 2**20


def _land_cells(work: Path) -> int:
    import xarray as xr

    with xr.open_dataset(work / "run" / "data" / "grid.nc", engine="h5netcdf") as grid:
        return int((grid["land_fraction"].values > 0).sum())


def write_scenario(work: Path, resolution: float, years: tuple[int, int]) -> None:
    scenario = yaml.safe_load((ROOT / "configs" / "twin" / "full.yaml").read_text())
    scenario["resolution_deg"] = resolution
    scenario["years"] = list(years)
    scenario["msc_base_years"] = list(years)
    if scenario.get("drought"):
        scenario["drought"]["year"] = years[0] + (years[1] - years[0]) // 2
    work.mkdir(parents=True, exist_ok=True)
    (work / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)  # atomic: a kill never leaves half a CSV


def measure_stage(stage: str, work: Path, epochs: int) -> dict[str, float]:
    for path in _stage_outputs(stage, work):
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    cmd = [sys.executable, str(Path(__file__).resolve()), "--stage", stage, "--work", str(work)]
    cmd += ["--epochs", str(epochs)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"stage {stage} failed in {work} (exit {proc.returncode})")
    line = next(x for x in proc.stdout.splitlines()[::-1] if x.startswith("STAGE_RESULT "))
    result = json.loads(line.removeprefix("STAGE_RESULT "))
    return {"wall_s": result["wall_s"], "peak_rss_mb": result["peak_rss_kib"] / 1024}


def measure_resolution(
    resolution: float,
    years: tuple[int, int],
    work: Path,
    out: Path,
    epochs: int,
    keep: bool,
) -> None:
    key = {"resolution_deg": f"{resolution:g}", "years": f"{years[0]}-{years[1]}"}
    work = work / f"res_{resolution:g}_{key['years']}"
    rows = read_rows(out)
    mine = {r["stage"]: r for r in rows if all(r[k] == v for k, v in key.items())}
    if set(mine) >= set(STAGES):
        print(f"{resolution:g} deg, {key['years']}: measured already ({out}); skipped")
        return
    if not (work / "scenario.yaml").exists():
        write_scenario(work, resolution, years)
    broken = False  # once a stage reruns, every later stage reruns on its new outputs
    for stage in STAGES:
        outputs_there = all(p.exists() for p in _stage_outputs(stage, work)[:1])
        if stage in mine and outputs_there and not broken:
            print(f"{resolution:g} deg {stage}: measured already; skipped")
            continue
        broken = True
        measured = measure_stage(stage, work, epochs)
        row = {
            **key,
            "land_cells": _land_cells(work),
            "stage": stage,
            "wall_s": f"{measured['wall_s']:.2f}",
            "peak_rss_mb": f"{measured['peak_rss_mb']:.0f}",
            "disk_mb": f"{_size_mb(work / 'run'):.1f}",
            "cores": os.cpu_count(),
            "load_1min": f"{os.getloadavg()[0]:.2f}",
        }
        rows = [
            r
            for r in read_rows(out)
            if not (all(r[k] == v for k, v in key.items()) and r["stage"] == stage)
        ]
        write_rows(out, [*rows, row])
        print(
            f"{resolution:g} deg ({row['land_cells']} land cells) {stage}: {row['wall_s']} s, "
            f"peak RSS {row['peak_rss_mb']} MB, run folder {row['disk_mb']} MB",
            flush=True,
        )
    if not keep:
        shutil.rmtree(work)


def exponents(rows: list[dict[str, str]], years: str) -> dict[str, tuple[float, float]]:
    """Per stage: slopes of log(wall_s) and log(peak_rss_mb) vs log(land_cells)."""
    out = {}
    for stage in STAGES:
        sel = [r for r in rows if r["stage"] == stage and r["years"] == years]
        if len({r["land_cells"] for r in sel}) < 2:
            continue
        cells = np.log([float(r["land_cells"]) for r in sel])
        time_slope = np.polyfit(cells, np.log([float(r["wall_s"]) for r in sel]), 1)[0]
        rss_slope = np.polyfit(cells, np.log([float(r["peak_rss_mb"]) for r in sel]), 1)[0]
        out[stage] = (float(time_slope), float(rss_slope))
    return out


def markdown_table(rows: list[dict[str, str]], years: str) -> str:
    sel = sorted(
        (r for r in rows if r["years"] == years),
        key=lambda r: (-float(r["resolution_deg"]), STAGES.index(r["stage"])),
    )
    lines = [
        "| resolution | land cells | stage | wall s | peak RSS MB | run folder MB | load |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sel:
        lines.append(
            f"| {r['resolution_deg']}° | {r['land_cells']} | {r['stage']} | {r['wall_s']} | "
            f"{r['peak_rss_mb']} | {r['disk_mb']} | {r['load_1min']} |"
        )
    slopes = exponents(rows, years)
    if slopes:
        lines += ["", "| stage | time exponent | peak RSS exponent |", "|---|---|---|"]
        for stage, (t, m) in slopes.items():
            lines.append(f"| {stage} | {t:.2f} | {m:.2f} |")
    return "\n".join(lines)


def plot(rows: list[dict[str, str]], years: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for stage in STAGES:
        sel = sorted(
            (r for r in rows if r["stage"] == stage and r["years"] == years),
            key=lambda r: int(r["land_cells"]),
        )
        if not sel:
            continue
        cells = [int(r["land_cells"]) for r in sel]
        axes[0].loglog(cells, [float(r["wall_s"]) for r in sel], "o-", label=stage)
        axes[1].loglog(cells, [float(r["peak_rss_mb"]) for r in sel], "o-", label=stage)
    axes[0].set(xlabel="land cells", ylabel="wall time (s)", title=f"time per stage, {years}")
    axes[1].set(xlabel="land cells", ylabel="peak RSS (MB)", title="peak memory per stage")
    axes[0].legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolutions", type=float, nargs="+", default=[4.0, 2.0, 1.0, 0.5])
    parser.add_argument(
        "--years", type=int, nargs=2, default=[2003, 2005], metavar=("FIRST", "LAST")
    )
    parser.add_argument("--epochs", type=int, default=1, help="training epochs (same steps each)")
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "scaling")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "scaling.csv")
    parser.add_argument("--figure", type=Path, default=ROOT / "docs" / "figures" / "scaling.png")
    parser.add_argument("--keep", action="store_true", help="keep each resolution's run folder")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)  # child process
    args = parser.parse_args()
    if args.stage:
        child_main(args.stage, args.work, args.epochs)
        return
    years = (args.years[0], args.years[1])
    for resolution in args.resolutions:
        measure_resolution(resolution, years, args.work, args.out, args.epochs, args.keep)
    rows = read_rows(args.out)
    label = f"{years[0]}-{years[1]}"
    plot(rows, label, args.figure)
    print(f"wrote {args.out} and {args.figure}")
    print(markdown_table(rows, label))


if __name__ == "__main__":
    main()
