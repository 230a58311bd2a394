"""`invoke demo`: the whole pipeline on a twin world, skipping steps whose inputs did not change.

Each step records a content hash of its inputs (files and settings) in
``RUN/.steps/<step>.json``; a rerun skips a step whose hash and outputs are
unchanged, and ``force`` redoes everything. A *resumable* step (training, the
forward run) that was killed keeps its outputs when rerun on the same inputs, and
continues them (finished folds and forward parts are kept). Timings per stage go to
``RUN/timings.json`` and the report.

Two profiles: ``demo`` (minutes on 2 cores) and ``paper`` (Upton et al.'s scale:
``configs/twin/full.yaml``, every site fold, the Table B1 budget; docs/scaling.md).
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
from fluxbridge.data.twin.scenario import load_scenario
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
    #: a killed run of this step continues on the same inputs (its action resumes its
    #: outputs) instead of starting over
    resumable: bool = False


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
        record = json.loads(stamp.read_text()) if stamp.exists() else {}
        same = record.get("hash") == digest
        # stamps written before the "state" key existed were written on success only
        state = record.get("state", "done")
        if same and state == "done" and not self.force and all(p.exists() for p in step.outputs):
            log.info(f"[demo] {step.name}: inputs unchanged, skipped")
            self.timings[step.name] = 0.0
            return
        if same and state == "started" and step.resumable and not self.force:
            log.info(f"[demo] {step.name}: resuming the interrupted run on the same inputs")
        else:
            for out in step.outputs:
                if out.is_dir():
                    shutil.rmtree(out)
                elif out.exists():
                    out.unlink()
        self._stamp(stamp, digest, "started")
        log.debug(f"[demo] {step.name} ...")
        t0 = time.perf_counter()
        step.action()
        self.timings[step.name] = time.perf_counter() - t0
        log.info(f"[demo] {step.name}: {self.timings[step.name]:.1f} s")
        self._stamp(stamp, digest, "done")

    @staticmethod
    def _stamp(stamp: Path, digest: str, state: str) -> None:
        with atomic_path(stamp, overwrite=True) as tmp:
            tmp.write_text(json.dumps({"hash": digest, "state": state}))


DEMO_FOLDS = 3
DEMO_EPOCHS = 30
DEMO_BRIDGES = "configs/bridges/default.yaml"
DEMO_TRAIN = "configs/train/demo.yaml"
# Refit a region's bridge on the model's own output when it decouples (Upton §3.5 suggests it;
# on the twin world the published `warn` lets the full integral drift: docs/training.md).
DEMO_ON_DECOUPLING = "refit"
DEMO_SCENARIO = "configs/twin/demo.yaml"

# The paper profile (Upton et al.): the 0.5° 2001–2017 twin, every site fold (None = all
# the dataset has: 10 in the paper and the twin), the Table B1 training config. Table B1
# gives no epoch count: 100 epochs ≈ 5 000 steps of 10 000 site-days at 200 towers
# (estimated), several times the ~1 000 Adam steps the uncertainty weights need to
# balance at lr 0.003; the best validation epoch is kept (docs/scaling.md, "Paper profile").
PAPER_SCENARIO = "configs/twin/full.yaml"
PAPER_FOLDS: int | None = None
PAPER_EPOCHS = 100
PAPER_BRIDGES = "configs/bridges/default.yaml"
PAPER_TRAIN = "configs/train/default.yaml"
PROFILES = ("demo", "paper")


@dataclass(frozen=True)
class Profile:
    """The scale of one `demo` run: scenario, members and epoch budget, configs."""

    name: str
    scenario: str
    folds: int | None  # None: every site fold of the dataset
    epochs: int
    bridges: str | Path
    train: str | Path


def profile_settings(name: str) -> Profile:
    """The settings of profile ``name``, read from this module's constants at call time."""
    if name not in PROFILES:
        raise ConfigError(f"profile={name!r}: expected one of {', '.join(PROFILES)}")
    if name == "paper":
        return Profile(name, PAPER_SCENARIO, PAPER_FOLDS, PAPER_EPOCHS, PAPER_BRIDGES, PAPER_TRAIN)
    return Profile(name, DEMO_SCENARIO, DEMO_FOLDS, DEMO_EPOCHS, DEMO_BRIDGES, DEMO_TRAIN)


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


def run_demo(
    scenario: Path | None,
    out: Path,
    force: bool = False,
    exact_folds: int = 0,
    profile: str = "demo",
    dask: str | None = None,
) -> int:
    """Entry point of `invoke demo`: twin → bridges → EC, EC-ATM → forward → evaluate → analyze.

    ``profile``: ``demo`` (a few folds and epochs at 4°) or ``paper`` (Upton et al.'s
    scale, :func:`profile_settings`); ``scenario`` None takes the profile's. ``exact_folds``
    > 0 also trains that many EC-ATM members with the exact integral (``ec-atm-exact``:
    the yardstick of the bridges, and slow), for the scorecard. ``dask`` (``local`` or a
    scheduler address) runs bridges, forward and evaluate as Dask tasks
    (:mod:`fluxbridge.parallel`); their files are bitwise those of the in-process run.
    """
    prof = profile_settings(profile)
    if exact_folds < 0 or (prof.folds is not None and exact_folds > prof.folds):
        bound = f"lie in [0, {prof.folds}]" if prof.folds is not None else "be >= 0"
        raise ConfigError(f"exact_folds={exact_folds} must {bound}")
    from fluxbridge.analysis.run import run_analyze
    from fluxbridge.bridge.build import run_bridges
    from fluxbridge.data.twin import run_twin
    from fluxbridge.evaluation.run import evaluate_run
    from fluxbridge.inference.forward import run_forward
    from fluxbridge.training.run import run_train

    scenario = Path(scenario) if scenario is not None else find_config(prof.scenario)
    load_scenario(scenario)  # a missing or invalid scenario stops here, before `out` exists
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    train_cfg = find_config(prof.train)
    bridge_cfg = find_config(prof.bridges)
    step = StepRunner(out, force)
    step(Step("twin", [scenario], {}, [data], lambda: run_twin(scenario, data, True)))
    step(
        Step(
            "bridges",
            [data / "grid.nc", data / "reference.nc", bridge_cfg],
            {},
            [out / "bridges.nc"],
            lambda: run_bridges(data, out, bridge_cfg, dask=dask),
        )
    )
    train = {"folds": prof.folds, "max_epochs": prof.epochs}
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
                # resume=True: a member whose fold finished is kept, a killed one continues
                # from last.ckpt; on new inputs StepRunner has removed the folder first
                lambda model=model, settings=settings: run_train(
                    model=model, data=data, run=out, config=train_cfg, resume=True, **settings
                ),
                resumable=True,
            )
        )
    step(
        Step(
            "forward",
            [out / "train"],
            {},
            [out / "forward"],
            lambda: run_forward(out, data, dask=dask),
            resumable=True,
        )
    )
    (out / "notes.md").write_text(_notes(prof, scenario, out))
    metrics: dict[str, object] = {}
    step(
        Step(
            "evaluate",
            [out / "forward", out / "notes.md"],
            {},
            [out / "evaluation", out / "report"],
            lambda: metrics.update(evaluate_run(out, dask=dask)),
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


def _notes(prof: Profile, scenario: Path, out: Path) -> str:
    """The report's description of the run: scenario, members, epochs, configs."""
    config = (
        f"training config `{Path(prof.train).name}`, EC-ATM with bridges and "
        f"`on_decoupling={DEMO_ON_DECOUPLING}`. Numbers below are for these members."
    )
    if prof.name == "paper":
        folds = len(list((out / "train" / "ec").glob("fold_*")))
        return (
            f"Paper-profile run on the twin world `{scenario}`: all {folds} site folds "
            f"trained per model (the paper's ensemble members), at most {prof.epochs} "
            f"epochs each, {config}"
        )
    return (
        f"Demo run on the twin world `{scenario}`: {prof.folds} of the 10 site folds trained "
        f"per model, at most {prof.epochs} epochs each (reduced from the paper's 10 members "
        f"to fit the demo in minutes on 2 CPU cores), {config}"
    )


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
