"""`invoke demo`: the whole pipeline on a twin world, skipping steps whose inputs did not change.

Each step records a content hash of its inputs (files and settings) in
``RUN/.steps/<step>.json``; a rerun skips a step whose hash and outputs are
unchanged, and ``force`` redoes everything. Timings per stage go to
``RUN/timings.json`` and the report.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fluxbridge import logs
from fluxbridge.config import find_config
from fluxbridge.errors import ConfigError
from fluxbridge.outputs import atomic_path, content_hash

log = logs.get(__name__)


@dataclass
class Step:
    name: str
    inputs: list[Path]
    settings: dict[str, object]
    outputs: list[Path]
    action: Callable[[], None]


class StepRunner:
    """Runs steps in order, skipping those whose inputs are unchanged since their last success."""

    def __init__(self, run: Path, force: bool) -> None:
        self.run = run
        self.force = force
        self.timings: dict[str, float] = {}
        (run / ".steps").mkdir(parents=True, exist_ok=True)

    def __call__(self, step: Step) -> None:
        stamp = self.run / ".steps" / f"{step.name}.json"
        digest = content_hash([p for p in step.inputs if p.exists()], step.settings)
        done = stamp.exists() and json.loads(stamp.read_text()).get("hash") == digest
        if done and not self.force and all(p.exists() for p in step.outputs):
            log.info(f"[demo] {step.name}: inputs unchanged, skipped")
            self.timings[step.name] = 0.0
            return
        for out in step.outputs:
            if out.is_dir():
                shutil.rmtree(out)
            elif out.exists():
                out.unlink()
        log.debug(f"[demo] {step.name} ...")
        t0 = time.perf_counter()
        step.action()
        self.timings[step.name] = time.perf_counter() - t0
        log.info(f"[demo] {step.name}: {self.timings[step.name]:.1f} s")
        with atomic_path(stamp, overwrite=True) as tmp:
            tmp.write_text(json.dumps({"hash": digest}))


DEMO_FOLDS = 3
DEMO_EPOCHS = 30
DEMO_BRIDGES = "configs/bridges/default.yaml"
DEMO_TRAIN = "configs/train/demo.yaml"
# Refit a region's bridge on the model's own output when it decouples (Upton §3.5 suggests it;
# on the twin world the published `warn` lets the full integral drift: docs/training.md).
DEMO_ON_DECOUPLING = "refit"


def _analysis_config(run: Path, scenario: Path) -> Path:
    """The twin China analysis config, pointed at this run's dataset, years and drought."""
    import yaml

    cfg = yaml.safe_load(find_config("configs/analysis/twin_china.yaml").read_text())
    cfg["base_dir"] = str((run / "data").resolve())
    cfg["output"] = str((run / "analysis_china").resolve())
    first, last = json.loads((run / "data" / "canonical.json").read_text())["years"]
    cfg["period"].update(start=int(first), end=int(last))
    drought = (yaml.safe_load(scenario.read_text()) or {}).get("drought")
    if drought:
        year = int(drought["year"])
        cfg["anomalies"]["event_year"] = year
        cfg["anomalies"]["windows"] = [
            {"label": f"drought {year}", "start": f"{year}-06", "end": f"{year}-11"}
        ]
    path = run / "analysis_china.yaml"
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_demo(scenario: Path, out: Path, force: bool = False, exact_folds: int = 0) -> int:
    """Entry point of `invoke demo`: twin → bridges → EC, EC-ATM → forward → evaluate → analyze.

    ``exact_folds`` > 0 also trains that many EC-ATM members with the exact integral
    (``ec-atm-exact``: the yardstick of the bridges, and slow), for the scorecard.
    """
    if exact_folds < 0 or exact_folds > DEMO_FOLDS:
        raise ConfigError(f"exact_folds={exact_folds} must lie in [0, {DEMO_FOLDS}]")
    from fluxbridge.analysis.run import run_analyze
    from fluxbridge.bridge.build import run_bridges
    from fluxbridge.data.twin import run_twin
    from fluxbridge.evaluation.run import evaluate_run
    from fluxbridge.inference.forward import run_forward
    from fluxbridge.training.run import run_train

    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    train_cfg = find_config(DEMO_TRAIN)
    bridge_cfg = find_config(DEMO_BRIDGES)
    step = StepRunner(out, force)
    step(Step("twin", [scenario], {}, [data], lambda: run_twin(scenario, data, True)))
    step(
        Step(
            "bridges",
            [data / "grid.nc", data / "reference.nc", bridge_cfg],
            {},
            [out / "bridges.nc"],
            lambda: run_bridges(data, out, bridge_cfg),
        )
    )
    train = {"folds": DEMO_FOLDS, "max_epochs": DEMO_EPOCHS}
    setups: list[tuple[str, str, list[Path], dict[str, object]]] = [
        ("ec", "ec", [], {}),
        ("ec-atm", "ec-atm", [out / "bridges.nc"], {"on_decoupling": DEMO_ON_DECOUPLING}),
    ]
    if exact_folds:
        setups.append(("ec-atm-exact", "ec-atm", [], {"integral": "exact", "folds": exact_folds}))
    for folder, model, extra, options in setups:
        settings = {**train, **options}
        step(
            Step(
                f"train-{folder}",
                [data, train_cfg, *extra],
                settings,
                [out / "train" / folder],
                lambda model=model, settings=settings: run_train(
                    model=model, data=data, run=out, config=train_cfg, **settings
                ),
            )
        )
    step(Step("forward", [out / "train"], {}, [out / "forward"], lambda: run_forward(out, data)))
    notes = (
        f"Demo run on the twin world `{scenario}`: {DEMO_FOLDS} of the 10 site folds trained "
        f"per model, at most {DEMO_EPOCHS} epochs each (reduced from the paper's 10 members "
        "to fit the demo in minutes on 2 CPU cores), training config "
        f"`{Path(DEMO_TRAIN).name}`, EC-ATM with bridges and `on_decoupling={DEMO_ON_DECOUPLING}`. "
        "Numbers below are for these members."
    )
    (out / "notes.md").write_text(notes)
    metrics: dict[str, object] = {}
    step(
        Step(
            "evaluate",
            [out / "forward", out / "notes.md"],
            {},
            [out / "evaluation", out / "report"],
            lambda: metrics.update(evaluate_run(out)),
        )
    )
    step(
        Step(
            "analyze",
            [data, find_config("configs/analysis/twin_china.yaml")],
            {},
            [out / "analysis_china"],
            lambda: run_analyze(_analysis_config(out, scenario)),
        )
    )
    with atomic_path(out / "timings.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(step.timings, indent=1))
    _headline(out, step.timings)
    return 0


def _headline(out: Path, timings: dict[str, float]) -> None:
    metrics = json.loads((out / "evaluation" / "metrics.json").read_text())
    g = metrics["global"]
    log.info(f"report: {out / 'report' / 'index.html'}")
    log.info(f"ensemble analysis: {out / 'analysis_china' / 'index.html'}")
    for name in ("truth", *metrics["models"]):
        if name in g:
            log.info(f"  global NEE {name:>8}: {g[name]['annual_mean_pgc_yr']:+.2f} PgC/yr")
    if "truth" in metrics and "EC" in metrics["truth"]:
        ec = abs(metrics["truth"]["EC"]["global_annual_bias_pgc_yr"])
        for name in metrics["models"][1:]:
            atm = abs(metrics["truth"][name]["global_annual_bias_pgc_yr"])
            log.info(f"  global error vs truth cut by {100 * (1 - atm / ec):.0f} % ({name} vs EC)")
    log.info("stage times (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
