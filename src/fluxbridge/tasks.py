"""The pipeline's tasks, shared by the ``fluxbridge`` command and the checkout's ``invoke``.

    twin      → canonical dataset + truth from a twin-world scenario
    bridges   → per-region Lasso bridge models
    train     → EC and EC-ATM members over site folds
    forward   → members over every land pixel and day
    evaluate  → metrics.json + report
    export    → forward runs as ILAMB model output
    analyze   → inversion-ensemble analysis (He et al.)
    demo      → all of the above on the demo twin world

Each task is a thin wrapper over one package function. Config paths that do not
exist where the task runs are looked up among the configs shipped with the
package (``fluxbridge.config.find_config``), so ``fluxbridge demo`` works from
any directory. ``fluxbridge TASK --help`` documents every option.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import Context, Exit, task

from fluxbridge.config import find_config


def _stage(module: str, func: str) -> Callable[..., Any]:
    """Import ``module.func``; a stage whose module does not exist yet exits clearly."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            raise Exit(f"not built yet: this task needs {module}.{func}", code=3) from exc
        raise
    return getattr(mod, func)


def _run(module: str, func: str, **kwargs: Any) -> None:
    from fluxbridge.errors import FluxbridgeError

    try:
        code = _stage(module, func)(**kwargs)
    except FluxbridgeError as exc:
        raise Exit(f"error: {exc}", code=2) from exc
    if code:
        raise Exit(code=int(code))


def _int(value: int | str | None) -> int | None:
    # invoke passes options whose default is None as strings
    return None if value is None else int(value)


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@task(
    help={
        "manifest": "manifest YAML (default: data_manifest.yaml)",
        "data_dir": "where downloads go (default: data/raw)",
        "only": "comma-separated entry names to fetch (default: all)",
        "check": "only verify what is present (checksums); download nothing",
    }
)
def fetch(
    c: Context,
    manifest: str = "data_manifest.yaml",
    data_dir: str = "data/raw",
    only: str | None = None,
    check: bool = False,
) -> None:
    """Download open inputs of the manifest and verify them; explain the others."""
    _run(
        "fluxbridge.data.fetch",
        "run_fetch",
        manifest=Path(manifest),
        data_dir=Path(data_dir),
        only=_split(only),
        check=check,
    )


@task(
    help={
        "config": "prepare config YAML (configs/prepare/*.yaml)",
        "out": "output canonical dataset directory",
        "data_dir": "where fetched inputs are (default: data/raw)",
    }
)
def prepare(c: Context, config: str, out: str, data_dir: str = "data/raw") -> None:
    """Build the canonical dataset from fetched real products."""
    _run(
        "fluxbridge.data.prepare",
        "run_prepare",
        config=find_config(config),
        out=Path(out),
        data_dir=Path(data_dir),
    )


@task(
    help={
        "fluxnet": "folder of FLUXNET2015/ONEFlux FULLSET CSV files (HH or DD)",
        "site_info": "optional CSV with SITE_ID, LOCATION_LAT, LOCATION_LONG, IGBP",
        "out": "output site file (NetCDF)",
    }
)
def sites(c: Context, fluxnet: str, out: str, site_info: str | None = None) -> None:
    """Convert FLUXNET site files into the canonical daily site file."""
    _run(
        "fluxbridge.data.fluxnet",
        "run_sites",
        fluxnet=Path(fluxnet),
        site_info=Path(site_info) if site_info else None,
        out=Path(out),
    )


@task(
    help={
        "scenario": "twin-world scenario YAML (default: configs/twin/demo.yaml)",
        "out": "output canonical dataset directory",
        "force": "overwrite an existing output directory",
    }
)
def twin(
    c: Context, out: str, scenario: str = "configs/twin/demo.yaml", force: bool = False
) -> None:
    """Write a twin-world canonical dataset (with its truth in truth.nc)."""
    _run(
        "fluxbridge.data.twin",
        "run_twin",
        scenario=find_config(scenario),
        out=Path(out),
        force=force,
    )


@task(
    help={
        "input": "NetCDF file with a (time, lat, lon) field in gC m-2 d-1",
        "variable": "variable name in the input",
        "regions": "'reccap2' or a mask NetCDF/vector file",
        "out": "output NetCDF with (region, time) integrals in PgC month-1",
    }
)
def integrate(c: Context, input: str, variable: str, out: str, regions: str = "reccap2") -> None:
    """Regional monthly integrals (PgC month-1) of a gridded NEE field."""
    _run(
        "fluxbridge.geo.integrate",
        "run_integrate",
        input=Path(input),
        variable=variable,
        regions=regions,
        out=Path(out),
    )


@task(
    help={
        "data": "canonical dataset directory",
        "run": "run directory (bridges.nc and figures/ are written there)",
        "config": "optional bridge config YAML",
    }
)
def bridges(c: Context, data: str, run: str, config: str | None = None) -> None:
    """Build the per-region sparse Lasso bridge models (DTW + spectral clustering)."""
    _run(
        "fluxbridge.bridge.build",
        "run_bridges",
        data=Path(data),
        run=Path(run),
        config=find_config(config) if config else None,
    )


@task(
    help={
        "model": "ec or ec-atm",
        "data": "canonical dataset directory",
        "run": "run directory",
        "folds": "number of site folds to train (default: all folds in the dataset)",
        "max_epochs": "maximum epochs per member",
        "integral": "ATM integral mode: bridge (paper) or exact",
        "inversions": "comma-separated subset of inversion members",
        "on_decoupling": "warn (default) or refit",
        "accelerator": "Lightning accelerator (cpu, gpu, auto)",
        "devices": "Lightning devices",
        "strategy": "Lightning strategy (e.g. ddp)",
        "num_nodes": "Lightning num_nodes",
        "resume": "resume from the last checkpoint of each fold",
        "config": "optional training config YAML",
    }
)
def train(
    c: Context,
    model: str,
    data: str,
    run: str,
    folds: int | None = None,
    max_epochs: int | None = None,
    integral: str = "bridge",
    inversions: str | None = None,
    on_decoupling: str = "warn",
    accelerator: str = "auto",
    devices: str = "auto",
    strategy: str = "auto",
    num_nodes: int = 1,
    resume: bool = False,
    config: str | None = None,
) -> None:
    """Train EC or EC-ATM members, one per held-out site fold."""
    _run(
        "fluxbridge.training.run",
        "run_train",
        model=model,
        data=Path(data),
        run=Path(run),
        folds=_int(folds),
        max_epochs=_int(max_epochs),
        integral=integral,
        inversions=_split(inversions),
        on_decoupling=on_decoupling,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        num_nodes=num_nodes,
        resume=resume,
        config=find_config(config) if config else None,
    )


@task(
    help={
        "run": "run directory with trained members",
        "data": "canonical dataset directory (default: the one the run was trained on)",
        "model": "comma-separated models (default: all trained)",
        "daily": "write daily output instead of monthly means",
        "dask": "run chunks on Dask: 'local' or a scheduler address",
    }
)
def forward(
    c: Context,
    run: str,
    data: str | None = None,
    model: str | None = None,
    daily: bool = False,
    dask: str | None = None,
) -> None:
    """Run every member over every land pixel and day (chunked)."""
    _run(
        "fluxbridge.inference.forward",
        "run_forward",
        run=Path(run),
        data=Path(data) if data else None,
        models=_split(model),
        daily=daily,
        dask=dask,
    )


@task(help={"run": "run directory with forward outputs"})
def evaluate(c: Context, run: str) -> None:
    """Metrics (metrics.json), regional series and the report of a run."""
    _run("fluxbridge.evaluation.run", "run_evaluate", run=Path(run))


@task(
    help={
        "run": "run directory",
        "subsets": "comma-separated subset sizes (default: 1,2,3)",
        "seed": "seed for drawing the subsets",
    }
)
def sensitivity(c: Context, run: str, subsets: str = "1,2,3", seed: int = 0) -> None:
    """One-against-many: EC-ATM trained on random inversion subsets (Upton §3.6)."""
    _run(
        "fluxbridge.evaluation.sensitivity",
        "run_sensitivity",
        run=Path(run),
        subsets=[int(s) for s in subsets.split(",")],
        seed=seed,
    )


@task(help={"config": "analysis config YAML (configs/analysis/*.yaml)"})
def analyze(c: Context, config: str) -> None:
    """Inversion-ensemble analysis over a country and its sub-regions (He et al.)."""
    _run("fluxbridge.analysis.run", "run_analyze", config=find_config(config))


@task(
    help={
        "scenario": "twin-world scenario (default: configs/twin/demo.yaml)",
        "out": "run directory (default: runs/demo)",
        "force": "redo every step even if its inputs did not change",
    }
)
def demo(
    c: Context,
    scenario: str = "configs/twin/demo.yaml",
    out: str = "runs/demo",
    force: bool = False,
) -> None:
    """Twin world → bridges → EC and EC-ATM → forward → evaluate → report."""
    _run(
        "fluxbridge.pipeline",
        "run_demo",
        scenario=find_config(scenario),
        out=Path(out),
        force=force,
    )


@task(
    help={
        "scenarios": "comma-separated twin scenario files (configs/twin/*.yaml)",
        "out": "folder for one run per scenario, scorecard.csv and scorecard.md",
        "exact_folds": "EC-ATM members trained with the exact integral per scenario (default 1)",
        "force": "redo every step even if its inputs did not change",
    }
)
def scorecard(
    c: Context, scenarios: str, out: str, exact_folds: int = 1, force: bool = False
) -> None:
    """The demo pipeline on each scenario, scored against the truth (docs/training.md)."""
    _run(
        "fluxbridge.scorecard",
        "run_scorecard",
        scenarios=[find_config(s) for s in _split(scenarios) or []],
        out=Path(out),
        exact_folds=exact_folds,
        force=force,
    )


@task(
    help={
        "run": "run directory with forward outputs",
        "format": "export format: ilamb",
        "out": "output folder (default: RUN/export/ilamb)",
        "force": "replace a previous export of this run",
    }
)
def export(
    c: Context, run: str, format: str = "ilamb", out: str | None = None, force: bool = False
) -> None:
    """Write a run's forward NEE as model output for other tools (ILAMB: docs/ilamb.md)."""
    _run(
        "fluxbridge.export.ilamb",
        "run_export",
        run=Path(run),
        format=format,
        out=Path(out) if out else None,
        force=force,
    )
