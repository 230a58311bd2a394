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

import errno
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from invoke import Context, Exit, task

from fluxbridge.config import find_config

VERBOSE = "also print per-epoch and per-step lines and the libraries' messages"
ALLOW = "warn instead of refusing values outside their physical bounds (units or sign errors)"


def _stage(module: str, func: str) -> Callable[..., Any]:
    """Import ``module.func``; a stage whose module does not exist yet exits clearly."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            raise Exit(f"not built yet: this task needs {module}.{func}", code=3) from exc
        raise
    return getattr(mod, func)


def _run(verbose: bool, module: str, func: str, log_dir: Path | None = None, **kwargs: Any) -> None:
    """Call ``module.func(**kwargs)`` with the logs set up; ``log_dir`` gets ``fluxbridge.log``."""
    from fluxbridge import logs
    from fluxbridge.errors import FluxbridgeError

    try:
        with logs.session(log_dir, verbose):
            code = _stage(module, func)(**kwargs)
    except FluxbridgeError as exc:
        raise Exit(f"error: {exc}", code=2) from exc
    except OSError as exc:
        # disk full, read-only, permissions: the system's reason and the path, on one line
        raise Exit(f"error: {os_error_line(exc)}", code=2) from exc
    if code:
        raise Exit(code=int(code))


def os_error_line(exc: OSError) -> str:
    """``<path>: <reason>`` of an operating-system error (the path whose write or read failed)."""
    where = exc.filename if exc.filename is not None else "a file"
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        reason += "; free some space and run the same command again (finished parts are reused)"
    return f"{where}: {reason}".replace("\n", " ")


def _int(value: int | str | None, option: str) -> int | None:
    """An integer option; invoke passes options whose default is None as strings."""
    if value is None or isinstance(value, int):
        return value
    try:
        return int(value)
    except ValueError:
        raise Exit(f"error: --{option} {value!r}: expected an integer", code=2) from None


def _split(value: str | None) -> list[str] | None:
    return [v.strip() for v in value.split(",") if v.strip()] if value else None


@task(
    help={
        "manifest": "manifest YAML (default: data_manifest.yaml)",
        "data_dir": "where downloads go (default: data/raw)",
        "only": "comma-separated entry names to fetch (default: all)",
        "check": "only verify what is present (checksums); download nothing",
        "verbose": VERBOSE,
    }
)
def fetch(
    c: Context,
    manifest: str = "data_manifest.yaml",
    data_dir: str = "data/raw",
    only: str | None = None,
    check: bool = False,
    verbose: bool = False,
) -> None:
    """Download open inputs of the manifest and verify them; explain the others."""
    _run(
        verbose,
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
        "allow_implausible": ALLOW,
        "dask": "build the yearly driver and inversion-member parts on Dask: 'local' or an address",
        "verbose": VERBOSE,
    }
)
def prepare(
    c: Context,
    config: str,
    out: str,
    data_dir: str = "data/raw",
    allow_implausible: bool = False,
    dask: str | None = None,
    verbose: bool = False,
) -> None:
    """Build the canonical dataset from fetched real products."""
    _run(
        verbose,
        "fluxbridge.data.prepare",
        "run_prepare",
        config=find_config(config),
        out=Path(out),
        data_dir=Path(data_dir),
        allow_implausible=allow_implausible,
        dask=dask,
    )


@task(
    help={
        "fluxnet": "folder of FLUXNET2015/ONEFlux FULLSET CSV files (HH or DD)",
        "site_info": "optional CSV with SITE_ID, LOCATION_LAT, LOCATION_LONG, IGBP",
        "out": "output site file (NetCDF)",
        "verbose": VERBOSE,
    }
)
def sites(
    c: Context, fluxnet: str, out: str, site_info: str | None = None, verbose: bool = False
) -> None:
    """Convert FLUXNET site files into the canonical daily site file."""
    _run(
        verbose,
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
        "format": "canonical (default) or raw: the provider layouts `prepare` reads "
        "(configs/prepare/twin_raw.yaml)",
        "verbose": VERBOSE,
    }
)
def twin(
    c: Context,
    out: str,
    scenario: str = "configs/twin/demo.yaml",
    force: bool = False,
    format: str = "canonical",
    verbose: bool = False,
) -> None:
    """Write a twin-world canonical dataset (truth in truth.nc), or its raw products."""
    _run(
        verbose,
        "fluxbridge.data.twin",
        "run_twin",
        scenario=find_config(scenario),
        out=Path(out),
        force=force,
        format=format,
    )


@task(
    help={
        "input": "NetCDF file with a (time, lat, lon) field in gC m-2 d-1",
        "variable": "variable name in the input",
        "regions": "'reccap2' or a mask NetCDF/vector file",
        "out": "output NetCDF with (region, time) integrals in PgC month-1",
        "verbose": VERBOSE,
    }
)
def integrate(
    c: Context, input: str, variable: str, out: str, regions: str = "reccap2", verbose: bool = False
) -> None:
    """Regional monthly integrals (PgC month-1) of a gridded NEE field."""
    _run(
        verbose,
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
        "dask": "fit the regions on Dask: 'local' or a scheduler address",
        "verbose": VERBOSE,
    }
)
def bridges(
    c: Context,
    data: str,
    run: str,
    config: str | None = None,
    dask: str | None = None,
    verbose: bool = False,
) -> None:
    """Build the per-region sparse Lasso bridge models (DTW + spectral clustering)."""
    _run(
        verbose,
        "fluxbridge.bridge.build",
        "run_bridges",
        log_dir=Path(run),
        data=Path(data),
        run=Path(run),
        config=find_config(config) if config else None,
        dask=dask,
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
        "allow_implausible": ALLOW,
        "config": "optional training config YAML",
        "verbose": VERBOSE,
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
    allow_implausible: bool = False,
    config: str | None = None,
    verbose: bool = False,
) -> None:
    """Train EC or EC-ATM members, one per held-out site fold."""
    _run(
        verbose,
        "fluxbridge.training.run",
        "run_train",
        log_dir=Path(run),
        model=model,
        data=Path(data),
        run=Path(run),
        folds=_int(folds, "folds"),
        max_epochs=_int(max_epochs, "max-epochs"),
        integral=integral,
        inversions=_split(inversions),
        on_decoupling=on_decoupling,
        accelerator=accelerator,
        devices=devices,
        strategy=strategy,
        num_nodes=num_nodes,
        resume=resume,
        allow_implausible=allow_implausible,
        config=find_config(config) if config else None,
    )


@task(
    help={
        "run": "run directory with trained members",
        "data": "canonical dataset directory (default: the one the run was trained on)",
        "model": "comma-separated models (default: all trained)",
        "daily": "write daily output instead of monthly means",
        "dask": "run chunks on Dask: 'local' or a scheduler address",
        "force": "recompute outputs made from another dataset or other checkpoints (stale)",
        "allow_implausible": ALLOW,
        "verbose": VERBOSE,
    }
)
def forward(
    c: Context,
    run: str,
    data: str | None = None,
    model: str | None = None,
    daily: bool = False,
    dask: str | None = None,
    force: bool = False,
    allow_implausible: bool = False,
    verbose: bool = False,
) -> None:
    """Run every member over every land pixel and day (chunked)."""
    _run(
        verbose,
        "fluxbridge.inference.forward",
        "run_forward",
        log_dir=Path(run),
        run=Path(run),
        data=Path(data) if data else None,
        models=_split(model),
        daily=daily,
        dask=dask,
        force=force,
        allow_implausible=allow_implausible,
    )


@task(
    help={
        "run": "run directory with forward outputs",
        "dask": "score the models on Dask: 'local' or a scheduler address",
        "force": "first (re)run forward for models whose output is missing or stale",
        "allow_implausible": ALLOW,
        "verbose": VERBOSE,
    }
)
def evaluate(
    c: Context,
    run: str,
    dask: str | None = None,
    force: bool = False,
    allow_implausible: bool = False,
    verbose: bool = False,
) -> None:
    """Metrics (metrics.json), regional series and the report of a run."""
    _run(
        verbose,
        "fluxbridge.evaluation.run",
        "run_evaluate",
        log_dir=Path(run),
        run=Path(run),
        dask=dask,
        force=force,
        allow_implausible=allow_implausible,
    )


@task(
    help={
        "run": "run directory",
        "subsets": "comma-separated subset sizes (default: 1,2,3)",
        "seed": "seed for drawing the subsets",
        "verbose": VERBOSE,
    }
)
def sensitivity(
    c: Context, run: str, subsets: str = "1,2,3", seed: int = 0, verbose: bool = False
) -> None:
    """One-against-many: EC-ATM trained on random inversion subsets (Upton §3.6)."""
    _run(
        verbose,
        "fluxbridge.evaluation.sensitivity",
        "run_sensitivity",
        log_dir=Path(run),
        run=Path(run),
        subsets=[_int(v, "subsets") for v in subsets.split(",")],
        seed=seed,
    )


@task(help={"config": "analysis config YAML (configs/analysis/*.yaml)", "verbose": VERBOSE})
def analyze(c: Context, config: str, verbose: bool = False) -> None:
    """Inversion-ensemble analysis over a country and its sub-regions (He et al.)."""
    _run(verbose, "fluxbridge.analysis.run", "run_analyze", config=find_config(config))


@task(
    help={
        "scenario": "twin-world scenario (default: the profile's, configs/twin/demo.yaml "
        "or configs/twin/full.yaml)",
        "out": "run directory (default: runs/<profile>)",
        "profile": "demo (minutes) or paper (0.5°, 2001-2017, all folds, Table B1 budget: hours)",
        "dask": "run bridges, forward and evaluate on Dask: 'local' or a scheduler address",
        "force": "redo every step even if its inputs did not change",
        "verbose": VERBOSE,
    }
)
def demo(
    c: Context,
    scenario: str | None = None,
    out: str | None = None,
    profile: str = "demo",
    dask: str | None = None,
    force: bool = False,
    verbose: bool = False,
) -> None:
    """Twin world → bridges → EC and EC-ATM → forward → evaluate → report."""
    from fluxbridge.pipeline import PROFILES

    if profile not in PROFILES:  # before runs/<profile> is made for the log
        raise Exit(f"error: --profile {profile!r}: expected one of {', '.join(PROFILES)}", code=2)
    run = Path(out or f"runs/{profile}")
    _run(
        verbose,
        "fluxbridge.pipeline",
        "run_demo",
        log_dir=run,
        scenario=find_config(scenario) if scenario else None,
        out=run,
        force=force,
        profile=profile,
        dask=dask,
    )


@task(
    help={
        "scenarios": "comma-separated twin scenario files (configs/twin/*.yaml)",
        "out": "folder for one run per scenario, scorecard.csv and scorecard.md",
        "exact_folds": "EC-ATM members trained with the exact integral per scenario (default 1)",
        "force": "redo every step even if its inputs did not change",
        "verbose": VERBOSE,
    }
)
def scorecard(
    c: Context,
    scenarios: str,
    out: str,
    exact_folds: int = 1,
    force: bool = False,
    verbose: bool = False,
) -> None:
    """The demo pipeline on each scenario, scored against the truth (docs/training.md)."""
    _run(
        verbose,
        "fluxbridge.scorecard",
        "run_scorecard",
        log_dir=Path(out),
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
        "verbose": VERBOSE,
    }
)
def export(
    c: Context,
    run: str,
    format: str = "ilamb",
    out: str | None = None,
    force: bool = False,
    verbose: bool = False,
) -> None:
    """Write a run's forward NEE as model output for other tools (ILAMB: docs/ilamb.md)."""
    _run(
        verbose,
        "fluxbridge.export.ilamb",
        "run_export",
        log_dir=Path(run),
        run=Path(run),
        format=format,
        out=Path(out) if out else None,
        force=force,
    )
