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
again with other training seeds (how far the training alone moves the result);
``--driver-noise 0`` runs the whole round trip again on the scenario with that
``sites.driver_noise`` (0: no per-tower driver noise, which no raw layout carries) and
prints its rows too. The round trip and the pipeline are those of
tests/data/twin/test_raw_pipeline.py (:mod:`tests.data.twin.raw_round_trip`). Usage::

    .venv/bin/python benchmarks/bench_twin_raw.py                      # tiny, 1 fold × 2 epochs
    .venv/bin/python benchmarks/bench_twin_raw.py --driver-noise 0     # and without tower noise
    .venv/bin/python benchmarks/bench_twin_raw.py --isolate --train-seeds 1 2  # tiny, causes
    .venv/bin/python benchmarks/bench_twin_raw.py --scenario configs/twin/demo.yaml --out W
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the round trip the test runs (tests/ is a package)

from tests.data.twin.raw_round_trip import (  # noqa: E402
    SOURCES,
    TOLERANCE_PGC_YR,
    PipelineSettings,
    build_round_trip,
    pipeline_scores,
    scenario_with_driver_noise,
)

from fluxbridge import logs  # noqa: E402
from fluxbridge.config import find_config  # noqa: E402
from fluxbridge.data.canonical import DRIVER_NAMES  # noqa: E402
from fluxbridge.io import write_netcdf  # noqa: E402


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


def _print_pair(label: str, twin: dict[str, float], prepared: dict[str, float]) -> float:
    """Print the global NEE rows of one twin / prepared pair; return |EC-ATM difference|."""
    print(label)
    print(f"{'global NEE (PgC/yr)':<22}{'twin':>10}{'prepared':>10}{'difference':>12}")
    for model in SOURCES:
        a, b = twin[model], prepared[model]
        print(f"{model:<22}{a:>10.4f}{b:>10.4f}{b - a:>+12.4f}")
    diff = abs(prepared["EC-ATM"] - twin["EC-ATM"])
    verdict = "within" if diff <= TOLERANCE_PGC_YR else "OUTSIDE"
    print(f"EC-ATM difference {diff:.4f} PgC/yr: {verdict} {TOLERANCE_PGC_YR} PgC/yr")
    return diff


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
    parser.add_argument(
        "--driver-noise",
        type=float,
        default=None,
        help="also run the round trip with this sites.driver_noise (0: no tower driver noise)",
    )
    args = parser.parse_args()
    settings = PipelineSettings(args.folds, args.epochs, args.bridge_runs)
    scenario = find_config(args.scenario)
    work = args.out or Path(tempfile.mkdtemp(prefix="bench_twin_raw_"))
    work.mkdir(parents=True, exist_ok=True)
    # run-name suffix -> (folder of twin/, raw/, prepared/; scenario file; label)
    pairs = {"": (work, scenario, f"{scenario} as it is")}
    if args.driver_noise is not None:
        folder = work / f"driver_noise_{args.driver_noise:g}"
        variant = scenario_with_driver_noise(scenario, args.driver_noise, folder / "scenario.yaml")
        label = f"{scenario} with sites.driver_noise {args.driver_noise:g}"
        pairs[f"_driver_noise_{args.driver_noise:g}"] = (folder, variant, label)
    times: dict[str, float] = {}
    with logs.session(work / "log"):
        for suffix, (folder, variant, label) in pairs.items():
            built = build_round_trip(variant, folder)
            times.update({f"{step}{suffix}": t for step, t in built.items()})
            print(f"max |prepared - twin| / max |twin|, {label}:")
            for file, var, diff in file_differences(folder / "twin", folder / "prepared"):
                print(f"{file:<18}{var:<18}{diff:.3g}")
        if args.files_only:
            return 0
        data = {f"{kind}{suffix}": folder / kind for suffix, (folder, _, _) in pairs.items()
                for kind in ("twin", "prepared")}  # fmt: skip
        variants = _isolating_variants(work) if args.isolate else []
        seeds = {f"twin_seed{k}": k for k in args.train_seeds}
        data |= {name: work / name for name in variants} | {name: work / "twin" for name in seeds}
        scores = {}
        for name, path in data.items():
            started = time.perf_counter()
            scores[name] = pipeline_scores(path, work / f"run_{name}", settings, seeds.get(name))
            times[f"pipeline on {name}"] = time.perf_counter() - started
    print(f"scenario {scenario}, {args.folds} fold(s) x {args.epochs} epoch(s), work {work}")
    diffs = {
        suffix: _print_pair(label, scores[f"twin{suffix}"], scores[f"prepared{suffix}"])
        for suffix, (_, _, label) in pairs.items()
    }
    for name in [*variants, *seeds]:
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
    print("times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in times.items()))
    (work / "bench_twin_raw.json").write_text(json.dumps({"scores": scores, "times": times}))
    # the goal is the scenario's own round trip; the driver-noise pair explains it
    return 0 if diffs[""] <= TOLERANCE_PGC_YR else 1


if __name__ == "__main__":
    raise SystemExit(main())
