"""Twin → raw → prepare → pipeline: what tests/data/twin/test_raw_pipeline.py and
benchmarks/bench_twin_raw.py both run (one copy, so the test checks what the benchmark
measures).

:func:`build_round_trip` writes, under one work folder, the scenario's canonical twin
(``twin``), its raw products (``raw``) and the canonical dataset ``prepare`` makes of
them (``prepared``, with a copy of the twin's ``truth.nc``); :func:`pipeline_scores`
runs bridges, EC, EC-ATM, forward and evaluate on one dataset and returns the global
annual NEE (PgC yr-1, + = source) of truth, EC and EC-ATM.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from fluxbridge import pipeline
from fluxbridge.bridge.build import run_bridges
from fluxbridge.config import find_config
from fluxbridge.data.prepare import run_prepare
from fluxbridge.data.twin import run_twin
from fluxbridge.evaluation.run import evaluate_run
from fluxbridge.inference.forward import run_forward
from fluxbridge.training.run import run_train

#: issue 12: the EC-ATM global NEE of the prepared dataset within this of the direct run.
TOLERANCE_PGC_YR = 0.1
#: Sources of metrics.json "global" that :func:`pipeline_scores` returns.
SOURCES = ("truth", "EC", "EC-ATM")


@dataclass(frozen=True)
class PipelineSettings:
    """How much pipeline: ``folds`` × ``epochs`` of EC and EC-ATM (the demo's training
    config and ``on_decoupling``), bridges with ``bridge_runs`` seeded runs."""

    folds: int = 1
    epochs: int = 2
    bridge_runs: int = 4


def scenario_with_driver_noise(scenario: Path, driver_noise: float, out: Path) -> Path:
    """Write ``scenario`` (YAML) with ``sites.driver_noise`` replaced to ``out``; return ``out``.

    ``driver_noise`` is the one knob of the twin's per-tower driver noise (all 10 drivers,
    :func:`fluxbridge.data.twin.towers.tower_drivers`); 0 gives every tower its cell's
    drivers, which is all the raw layouts carry apart from Tair (``TA_F``).
    """
    settings = yaml.safe_load(Path(scenario).read_text())
    settings.setdefault("sites", {})["driver_noise"] = driver_noise
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(settings, sort_keys=False))
    return out


def build_round_trip(
    scenario: Path, work: Path, prepare_config: Path | None = None
) -> dict[str, float]:
    """``work/twin`` (canonical), ``work/raw`` (``twin --format raw``) and ``work/prepared``
    (``prepare`` with ``prepare_config``; default the ``prepare.yaml`` written beside the
    raw twin: the shipped configs/prepare/twin_raw.yaml with the scenario's years, grid
    and members); return the wall time (s) of the twins and of prepare."""
    times = {}
    started = time.perf_counter()
    run_twin(scenario, work / "twin")
    run_twin(scenario, work / "raw", format="raw")
    times["twin, raw twin"] = time.perf_counter() - started
    started = time.perf_counter()
    config = prepare_config or work / "raw" / "prepare.yaml"
    run_prepare(config, work / "prepared", work / "raw")
    times["prepare"] = time.perf_counter() - started
    # truth.nc has no raw product: the prepared dataset borrows the twin's for scoring.
    shutil.copy2(work / "twin" / "truth.nc", work / "prepared" / "truth.nc")
    return times


def pipeline_scores(
    data: Path, run: Path, settings: PipelineSettings, train_seed: int | None = None
) -> dict[str, float]:
    """Global mean annual NEE (PgC yr-1) of :data:`SOURCES` on dataset ``data``, run in
    the new folder ``run``; ``train_seed`` replaces the training config's seed (the
    bridges keep theirs)."""
    run.mkdir(parents=True)
    bridges = run / "bridges.yaml"
    bridges.write_text(f"n_runs: {settings.bridge_runs}\nn_jobs: 1\n")
    train_settings = yaml.safe_load(find_config(pipeline.DEMO_TRAIN).read_text())
    train_settings["progress_bar"] = False
    if train_seed is not None:
        train_settings["seed"] = train_seed
    train = run / "train.yaml"
    train.write_text(yaml.safe_dump(train_settings))
    run_bridges(data, run, bridges)
    common = {"data": data, "run": run, "config": train, "folds": settings.folds}
    run_train(model="ec", max_epochs=settings.epochs, **common)
    run_train(
        model="ec-atm",
        max_epochs=settings.epochs,
        on_decoupling=pipeline.DEMO_ON_DECOUPLING,
        **common,
    )
    run_forward(run, data)
    found = evaluate_run(run)["global"]
    return {name: float(found[name]["annual_mean_pgc_yr"]) for name in SOURCES}
