"""Benchmark: truth scores of the pipeline on the twin's own dataset vs twin → raw → prepare.

For a scenario (default the tiny one; ``--scenario configs/twin/demo.yaml`` for the
demo) this builds the canonical twin (``twin``), the raw twin (``twin --format raw``)
and prepares it with the config written beside it (``prepare.yaml``), copies the
twin's ``truth.nc`` into the prepared dataset (it has no raw counterpart: evaluation
needs it), then runs on both datasets: bridges (``--bridge-runs`` runs), EC and EC-ATM
(``--folds`` folds × ``--epochs`` epochs, the demo's training config and
``on_decoupling``), forward and evaluate, and prints the global NEE of truth, EC and
EC-ATM on each, and the differences. ``--isolate`` adds datasets that undo one
difference each (:func:`_isolating_variants`); ``--train-seeds 1 2`` trains on the twin
again with other training seeds (how far the training alone moves the result). Usage::

    .venv/bin/python benchmarks/bench_twin_raw.py                      # tiny, 1 fold × 2 epochs
    .venv/bin/python benchmarks/bench_twin_raw.py --isolate --train-seeds 1 2  # tiny, causes
    .venv/bin/python benchmarks/bench_twin_raw.py --scenario configs/twin/demo.yaml --out W
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from fluxbridge import logs, pipeline
from fluxbridge.bridge.build import run_bridges
from fluxbridge.config import find_config
from fluxbridge.data.canonical import DRIVER_NAMES
from fluxbridge.data.prepare import run_prepare
from fluxbridge.data.twin import run_twin
from fluxbridge.evaluation.run import evaluate_run
from fluxbridge.inference.forward import run_forward
from fluxbridge.io import write_netcdf
from fluxbridge.training.run import run_train

TOLERANCE_PGC_YR = 0.1  # issue 12: EC-ATM global NEE of the two datasets


def _max_rel(found: np.ndarray, expected: np.ndarray) -> float:
    found, expected = np.asarray(found, np.float64), np.asarray(expected, np.float64)
    return float(np.nanmax(np.abs(found - expected)) / np.nanmax(np.abs(expected)))


def file_differences(twin: Path, prepared: Path) -> list[tuple[str, str, float]]:
    """(file, variable, max |prepared − twin| / max |twin|) of every round-tripped field;
    region_fraction as the max absolute difference of the shares. sites.nc's drivers are
    the towers' own (the twin's cell drivers plus its tower noise): only Tair (TA_F) has
    a raw carrier, the others are the cell's in the prepared dataset."""
    rows = []
    fields = {
        "grid.nc": ("cell_area", "land_fraction", "pft_fraction", "region_fraction"),
        "drivers.nc": DRIVER_NAMES,
        "sites.nc": ("nee_obs", "site_lat", "site_lon", "fold", "site_cell", *DRIVER_NAMES),
        "inversions.nc": ("nee",),
        "reference.nc": ("nee",),
        "residual_sink.nc": ("nee_global", "nee_global_sigma"),
    }
    for name, variables in fields.items():
        with (
            xr.open_dataset(twin / name, engine="h5netcdf") as a,
            xr.open_dataset(prepared / name, engine="h5netcdf") as b,
        ):
            for var in variables:
                if var == "region_fraction":
                    diff = float(np.abs(b[var].values - a[var].values).max())
                else:
                    diff = _max_rel(b[var].values, a[var].values)
                rows.append((name, var, diff))
    rows.append(("grid.nc", "region land area", _region_area_difference(twin, prepared)))
    return rows


def _region_area_difference(twin: Path, prepared: Path) -> float:
    """max over regions of |prepared − twin| / twin land area of the region (the twin's
    cell areas and land fractions, each dataset's region shares)."""
    with (
        xr.open_dataset(twin / "grid.nc", engine="h5netcdf") as a,
        xr.open_dataset(prepared / "grid.nc", engine="h5netcdf") as b,
    ):
        land = (a["cell_area"] * a["land_fraction"]).values
        area_a = (a["region_fraction"].values * land).sum(axis=(1, 2))
        area_b = (b["region_fraction"].values * land).sum(axis=(1, 2))
    return float(np.max(np.abs(area_b - area_a) / area_a))


#: Tower drivers of the twin (``towers.tower_drivers``) by the noise it adds to them: daily
#: noise on the daily water index (Tair's is carried by TA_F), one offset per tower on the
#: seasonal-cycle drivers (7 from MODIS, AMP_MSC_WAI from the water bucket).
SITE_DRIVER_GROUPS: dict[str, tuple[str, ...]] = {
    "prepared_site_wai2": ("WAI2",),
    "prepared_site_modis": (
        "MSC_EVIRpot", "MSC_FparLST", "MIN_MSC_NDWI", "AMP_Band4", "MSC_LST_Night",
        "Rg_VIMSC", "AMP_MSC_NDVI",
    ),
    "prepared_site_amp_wai": ("AMP_MSC_WAI",),
}  # fmt: skip


def _isolating_variants(work: Path) -> list[str]:
    """Datasets that undo one known difference each (docs/twin_world.md "Raw format"):
    ``twin_again`` (a copy of the twin: is the pipeline repeatable?), ``prepared_regions``
    (the prepared dataset with the twin's grid.nc: its region shares),
    ``prepared_site_drivers`` (with the twin's sites.nc: its per-tower driver noise) and,
    per :data:`SITE_DRIVER_GROUPS`, the prepared dataset whose sites.nc takes only that
    group of drivers from the twin's sites.nc (towers in the same order)."""
    variants = {
        "twin_again": ("twin", None),
        "prepared_regions": ("prepared", "grid.nc"),
        "prepared_site_drivers": ("prepared", "sites.nc"),
    }
    for name, (base, borrowed) in variants.items():
        shutil.copytree(work / base, work / name)
        if borrowed is not None:
            shutil.copy2(work / "twin" / borrowed, work / name / borrowed)
    for name, drivers in SITE_DRIVER_GROUPS.items():
        shutil.copytree(work / "prepared", work / name)
        with (
            xr.open_dataset(work / "prepared" / "sites.nc", engine="h5netcdf") as prep,
            xr.open_dataset(work / "twin" / "sites.nc", engine="h5netcdf") as twin,
        ):
            mixed = prep.load()
            for driver in drivers:
                mixed[driver] = mixed[driver].copy(data=twin[driver].values)
        write_netcdf(mixed, work / name / "sites.nc", action="bench_twin_raw", overwrite=True)
    return [*variants, *SITE_DRIVER_GROUPS]


def pipeline_scores(
    data: Path, run: Path, args: argparse.Namespace, train_seed: int | None = None
) -> dict[str, float]:
    """Global mean annual NEE (PgC yr-1) of truth, EC and EC-ATM on dataset ``data``;
    ``train_seed`` replaces the training config's seed (the bridges keep theirs)."""
    run.mkdir(parents=True)
    bridges = run / "bridges.yaml"
    bridges.write_text(f"n_runs: {args.bridge_runs}\nn_jobs: 1\n")
    train = find_config(pipeline.DEMO_TRAIN)
    if train_seed is not None:
        settings = yaml.safe_load(train.read_text())
        settings["seed"] = train_seed
        train = run / "train.yaml"
        train.write_text(yaml.safe_dump(settings))
    run_bridges(data, run, bridges)
    common = {"data": data, "run": run, "config": train, "folds": args.folds}
    run_train(model="ec", max_epochs=args.epochs, **common)
    run_train(
        model="ec-atm",
        max_epochs=args.epochs,
        on_decoupling=pipeline.DEMO_ON_DECOUPLING,
        **common,
    )
    run_forward(run, data)
    metrics = evaluate_run(run)
    found = metrics["global"]
    return {name: float(found[name]["annual_mean_pgc_yr"]) for name in ("truth", "EC", "EC-ATM")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="configs/twin/tiny.yaml")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: temp)")
    parser.add_argument("--folds", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--bridge-runs", type=int, default=4)
    parser.add_argument("--files-only", action="store_true", help="file-level comparison only")
    parser.add_argument(
        "--isolate", action="store_true", help="also run the variants that isolate each cause"
    )
    parser.add_argument(
        "--train-seeds",
        type=int,
        nargs="*",
        default=[],
        help="also train on the twin with these training seeds (the training's own spread)",
    )
    args = parser.parse_args()
    scenario = find_config(args.scenario)
    work = args.out or Path(tempfile.mkdtemp(prefix="bench_twin_raw_"))
    work.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    with logs.session(work / "log"):
        started = time.perf_counter()
        run_twin(scenario, work / "twin")
        run_twin(scenario, work / "raw", format="raw")
        times["twin, raw twin"] = time.perf_counter() - started
        started = time.perf_counter()
        run_prepare(work / "raw" / "prepare.yaml", work / "prepared", work / "raw")
        times["prepare"] = time.perf_counter() - started
        # truth.nc has no raw product: the prepared dataset borrows the twin's for scoring.
        shutil.copy2(work / "twin" / "truth.nc", work / "prepared" / "truth.nc")
        for file, var, diff in file_differences(work / "twin", work / "prepared"):
            print(f"{file:<18}{var:<18}{diff:.3g}")
        if args.files_only:
            return 0
        names = ["twin", "prepared"]
        if args.isolate:
            names += _isolating_variants(work)
        seeds = {f"twin_seed{k}": k for k in args.train_seeds}
        names += list(seeds)
        scores = {}
        for name in names:
            started = time.perf_counter()
            data = work / ("twin" if name in seeds else name)
            scores[name] = pipeline_scores(data, work / f"run_{name}", args, seeds.get(name))
            times[f"pipeline on {name}"] = time.perf_counter() - started
    print(f"scenario {scenario}, {args.folds} fold(s) x {args.epochs} epoch(s), work {work}")
    print(f"{'global NEE (PgC/yr)':<22}{'twin':>10}{'prepared':>10}{'difference':>12}")
    for model in ("truth", "EC", "EC-ATM"):
        a, b = scores["twin"][model], scores["prepared"][model]
        print(f"{model:<22}{a:>10.4f}{b:>10.4f}{b - a:>+12.4f}")
    for name in names[2:]:
        print(
            f"{name}: EC {scores[name]['EC']:.4f}, EC-ATM {scores[name]['EC-ATM']:.4f} "
            f"(EC-ATM {scores[name]['EC-ATM'] - scores['twin']['EC-ATM']:+.4f} vs twin, "
            f"{scores[name]['EC-ATM'] - scores['prepared']['EC-ATM']:+.4f} vs prepared)"
        )
    if seeds:
        ec_atm = [scores[n]["EC-ATM"] for n in ["twin", *seeds]]
        print(
            f"EC-ATM on the twin over training seeds 0 and {', '.join(map(str, seeds.values()))}:"
            f" range {max(ec_atm) - min(ec_atm):.4f}, std {np.std(ec_atm, ddof=1):.4f} PgC/yr"
        )
    diff = abs(scores["prepared"]["EC-ATM"] - scores["twin"]["EC-ATM"])
    verdict = "within" if diff <= TOLERANCE_PGC_YR else "OUTSIDE"
    print(f"EC-ATM difference {diff:.4f} PgC/yr: {verdict} {TOLERANCE_PGC_YR} PgC/yr")
    print("times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    (work / "bench_twin_raw.json").write_text(json.dumps({"scores": scores, "times": times}))
    return 0 if diff <= TOLERANCE_PGC_YR else 1


if __name__ == "__main__":
    raise SystemExit(main())
