"""``invoke prepare``: the canonical dataset from fetched real products.

Order: check the config and every input (one error listing all missing
entries) → grid.nc → drivers (one part per year) → sites.nc → inversion
members, fire → inversions.nc → reference.nc → residual_sink.nc →
drivers.nc → canonical.json → validate → rename into place. Every step is
resumable (:mod:`fluxbridge.data.prepare.resume`).

The independent parts (the yearly ``drivers_<year>.nc``, one ``inversion_<member>.nc``
per member, ``fire.nc``) are built as tasks of :func:`fluxbridge.parallel.run_tasks`:
one after the other in this process, or with ``dask`` on a Dask cluster, with bitwise
the same files. The public drivers' yearly base parts stay in this process, in order:
each carries the water bucket of the year before.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import xarray as xr

from fluxbridge import __version__
from fluxbridge.config import to_mapping
from fluxbridge.data.canonical import SCHEMA_VERSION, open_canonical
from fluxbridge.data.prepare import budget, drivers, gridfile, inversions, sites
from fluxbridge.data.prepare.config import LoadedConfig, load_prepare_config
from fluxbridge.data.prepare.inputs import Input, input_checksums, resolve_inputs
from fluxbridge.data.prepare.mappings import (
    BudgetTable,
    GriddedProduct,
    RegionMask,
    load_mapping,
)
from fluxbridge.data.prepare.resume import Workspace
from fluxbridge.errors import ConfigError
from fluxbridge.outputs import atomic_path, fingerprint
from fluxbridge.parallel import run_tasks

log = logging.getLogger(__name__)


def run_prepare(
    config: Path,
    out: Path,
    data_dir: Path,
    allow_implausible: bool = False,
    dask: str | None = None,
) -> int:
    """Write the canonical dataset ``out`` from the inputs in ``data_dir`` named by ``config``.

    A product that leaves most land without values is refused unless
    ``allow_implausible`` (:mod:`fluxbridge.plausibility`). ``dask``: ``"local"`` or a
    scheduler address to build the yearly driver and inversion-member parts as Dask
    tasks (the work directory next to ``out`` must be on a file system every worker
    sees); the dataset is bitwise that of the in-process run.

    Refuses to overwrite ``out``. Missing inputs raise one error listing every
    missing manifest entry. An interrupted run resumes where it stopped.
    """
    config, out, data_dir = Path(config), Path(out), Path(data_dir)
    if out.exists():
        raise ConfigError(f"{out} exists; refusing to overwrite it")
    loaded = load_prepare_config(config, data_dir)
    inputs = resolve_inputs(loaded, data_dir)
    mappings = _mappings(loaded)
    stats = {
        role: [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in item.files()]
        for role, item in inputs.items()
    }
    work = Workspace(
        out,
        fingerprint(
            {
                "version": __version__,
                "config": to_mapping(loaded.config),
                "mappings": {n: to_mapping(m) for n, m in mappings.items()},
                "inputs": stats,
            }
        ),
    )
    checksums = input_checksums(inputs, work.root / "checksums.json")
    work.attrs = _provenance(loaded, inputs, checksums)
    _build(loaded, inputs, mappings, work, allow_implausible, dask)
    _write_meta(work.dataset, loaded, inputs, checksums)
    open_canonical(work.dataset)
    work.finish()
    log.info("wrote %s", out)
    return 0


def _mappings(loaded: LoadedConfig) -> dict[str, object]:
    cfg = loaded.config
    found: dict[str, object] = {
        "drivers": drivers.driver_mapping(loaded),
        "reference": load_mapping(GriddedProduct, loaded.mapping_path(cfg.reference.mapping)),
        "inversions": load_mapping(GriddedProduct, loaded.mapping_path(cfg.inversions.mapping)),
        "residual_sink": load_mapping(BudgetTable, loaded.mapping_path(cfg.residual_sink.mapping)),
    }
    if cfg.fire is not None:
        found["fire"] = load_mapping(GriddedProduct, loaded.mapping_path(cfg.fire.mapping))
    if cfg.regions.mapping is not None:
        found["regions"] = load_mapping(RegionMask, loaded.mapping_path(cfg.regions.mapping))
    return found


class _TaskParts:
    """A part writer that defers the chosen parts, to build them later as tasks.

    Called like ``work.part`` (name, build) → path; a part ``defer(name)`` picks is only
    planned (its path returned, nothing built) until :meth:`run` builds every planned
    part through :func:`run_tasks`. Each task is ``work.part`` itself, so a finished
    part is reused and a new one written atomically, wherever the task runs.
    """

    def __init__(
        self, work: Workspace, action: str, defer: Callable[[str], bool], dask: str | None
    ) -> None:
        self.work, self.action, self.defer, self.dask = work, action, defer, dask
        self.planned: list[tuple[str, Callable[[], xr.Dataset]]] = []

    def __call__(self, name: str, build: Callable[[], xr.Dataset]) -> Path:
        if not self.defer(name):
            return self.work.part(name, build, self.action)
        self.planned.append((name, build))
        return self.work.parts / name

    def run(self, desc: str) -> None:
        """Build the planned parts (before anything reads them)."""
        work, action = self.work, self.action
        run_tasks(
            lambda item: work.part(item[0], item[1], action),
            self.planned,
            self.dask,
            desc=desc,
            unit="part",
            progress=False,
        )
        self.planned = []


def _build(
    loaded: LoadedConfig,
    inputs: dict[str, Input],
    mappings: dict[str, object],
    work: Workspace,
    allow_implausible: bool = False,
    dask: str | None = None,
) -> None:
    cfg = loaded.config
    grid = cfg.grid
    action = f"invoke prepare --config {loaded.path}"
    driver_map = mappings["drivers"]  # a FLUXCOM DriverSet or, for public drivers, an Era5Mapping
    land, pft = drivers.static_fields(inputs, driver_map, grid, cfg.drivers)  # type: ignore[arg-type]
    region_input = inputs.get("regions")

    def build_grid() -> xr.Dataset:
        region_set = gridfile.regions(
            grid, land, region_input.path if region_input else None, mappings.get("regions")
        )  # type: ignore[arg-type]
        return gridfile.grid_dataset(grid, land, pft, region_set)

    grid_path = work.file("grid.nc", build_grid, action)
    grid_ds = xr.open_dataset(grid_path, engine="h5netcdf").load()
    land = grid_ds["land_fraction"]
    cells = drivers.land_cells(land)

    # only the yearly driver parts are independent (public base parts form a chain)
    yearly = _TaskParts(work, action, lambda name: name.startswith("drivers_"), dask)
    parts = drivers.year_parts(
        cfg,
        inputs,
        driver_map,  # type: ignore[arg-type]
        grid,
        pft,
        cells,
        yearly,
    )
    yearly.run("driver years")

    days = pd.date_range(f"{cfg.years[0]}-01-01", f"{cfg.years[1]}-12-31", freq="D")
    top_down = cfg.top_down_range
    months = pd.date_range(f"{top_down[0]}-01-01", f"{top_down[-1]}-12-01", freq="MS")

    def build_sites() -> xr.Dataset:
        towers = sites.read_towers(inputs["sites"].path, cfg.sites)
        towers = sites.keep_observed(towers, days)
        site_cells = sites.tower_cells(
            towers["site_lat"].values, towers["site_lon"].values, grid, land.values
        )
        names = [str(s) for s in towers["site"].values]
        if cfg.sites.folds_csv is not None:
            folds = sites.published_folds(loaded.resolve(cfg.sites.folds_csv), names)
        else:
            folds = sites.grouped_folds(site_cells, cfg.sites.n_folds, cfg.sites.seed)
        ds = sites.sites_dataset(towers, days, site_cells, folds, parts, cfg.sites.tower_tair)
        return drivers.tower_drivers(cfg, ds, towers, parts, inputs)

    work.file("sites.nc", build_sites, action)
    _build_inversions(cfg, inputs, mappings, work, grid_ds, months, action, allow_implausible, dask)
    ref_map: GriddedProduct = mappings["reference"]  # type: ignore[assignment]
    work.file(
        "reference.nc",
        lambda: inversions.reference(
            inputs["reference"], ref_map, months, grid, land, allow_implausible
        ),
        action,
    )
    budget_map: BudgetTable = mappings["residual_sink"]  # type: ignore[assignment]
    work.file(
        "residual_sink.nc",
        lambda: budget.residual_sink(inputs["residual_sink"].path, budget_map, cfg.top_down_range),
        action,
    )
    work.file("drivers.nc", lambda: drivers.assemble(parts), action)


def _build_inversions(
    cfg,
    inputs,
    mappings,
    work: Workspace,
    grid_ds: xr.Dataset,
    months: pd.DatetimeIndex,
    action: str,
    allow_implausible: bool,
    dask: str | None = None,
) -> None:
    grid = cfg.grid
    land = grid_ds["land_fraction"]
    inv_map: GriddedProduct = mappings["inversions"]
    members = {}
    tasks = _TaskParts(work, action, lambda name: True, dask)  # members and fire: independent
    for name, product_name in cfg.inversions.members.items():
        members[name] = tasks(
            f"inversion_{name}.nc",
            lambda p=product_name: inversions.member_nee(
                inputs["inversions"],
                inv_map,
                p,
                months,
                grid,
                land,
                work.parts / "extracted",
                allow_implausible,
            ),
        )
    fire = None
    if cfg.fire is not None:
        fire = tasks(
            "fire.nc",
            lambda: inversions.fire_field(
                inputs["fire"], mappings["fire"], cfg.fire, months, grid, land, allow_implausible
            ),
        )
    tasks.run("inversion members")
    lateral = None
    if cfg.lateral_fluxes is not None:
        lateral = inversions.lateral_field(
            cfg.lateral_fluxes, months, grid, land, grid_ds["region_fraction"]
        )
    work.file("inversions.nc", lambda: inversions.ensemble(members, fire, lateral, land), action)


def _provenance(
    loaded: LoadedConfig, inputs: dict[str, Input], checksums: dict[str, dict[str, str]]
) -> dict[str, str]:
    """Global attributes: config, and per input its version and a digest of its file digests."""
    lines = []
    for item in inputs.values():
        digests = checksums[item.entry.name]
        combined = fingerprint(digests)
        lines.append(
            f"{item.entry.name} ({item.entry.version}, doi:{item.entry.citation}): "
            f"{len(digests)} file(s), sha256 of digests {combined}"
        )
    return {
        "source": "fluxbridge prepare from real products",
        "prepare_config": json.dumps(to_mapping(loaded.config), sort_keys=True),
        "inputs": "\n".join(lines),
    }


def _write_meta(
    root: Path,
    loaded: LoadedConfig,
    inputs: dict[str, Input],
    checksums: dict[str, dict[str, str]],
) -> None:
    cfg = loaded.config
    meta = {
        "schema_version": SCHEMA_VERSION,
        "source": "real",
        "name": cfg.name,
        "years": list(cfg.years),
        "resolution_deg": cfg.resolution_deg,
        "fluxbridge_version": __version__,
        "config": to_mapping(cfg),
        "inputs": {
            item.entry.name: {
                "role": role,
                "version": item.entry.version,
                "citation": item.entry.citation,
                "sha256": checksums[item.entry.name],
            }
            for role, item in inputs.items()
        },
    }
    with atomic_path(root / "canonical.json", overwrite=True) as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
