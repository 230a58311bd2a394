"""Build a twin-world canonical dataset: ``run_twin(scenario, out, force)``.

The dataset is written into a temporary sibling directory and renamed at the end,
so ``out`` is never half written. The drivers stream to disk block by block; what is
kept in memory is monthly (month × land cells) and the towers' daily series.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import xarray as xr
import yaml

from fluxbridge import logs
from fluxbridge.config import to_mapping
from fluxbridge.data.canonical import (
    ANNUAL_INTEGRAL_UNITS,
    DRIVER_NAMES,
    SCHEMA_VERSION,
    carbon_long_name,
)
from fluxbridge.errors import ConfigError
from fluxbridge.io import write_netcdf
from fluxbridge.outputs import require_space, staged_directory

from .geography import Geography, build_geography
from .inversions import PG_PER_G, RegionalOperator, inversion_members
from .products import product_families, reference, residual_sink
from .raw import write_raw
from .scenario import Scenario, load_scenario
from .seasonal import Calendar
from .towers import observe, place_towers, record_mask, tower_drivers
from .world import World
from .write import (
    ACTION,
    create_drivers,
    create_ensemble,
    gridded,
    nee_attrs,
    write_grid,
    write_monthly,
    write_sites,
)

log = logs.get(__name__)

_STREAM_INVERSIONS = 50
FORMATS = ("canonical", "raw")
MONTHLY_KEPT = ("nee", "gpp", "reco", "unexplained", "soil_moisture", "lai", "sif")


def run_twin(scenario: Path, out: Path, force: bool = False, format: str = "canonical") -> int:
    """Write the twin world of ``scenario`` (YAML) into ``out``.

    ``format``: ``canonical`` (the canonical dataset, with truth.nc) or ``raw`` (the raw
    provider layouts ``invoke prepare`` reads, :mod:`fluxbridge.data.twin.raw`).
    """
    if format not in FORMATS:
        raise ConfigError(f"twin --format {format!r}: expected one of {', '.join(FORMATS)}")
    scn = load_scenario(scenario)
    out = Path(out)
    started = time.perf_counter()
    with staged_directory(out, "twin", [scenario], replace=force) as tmp:
        if format == "raw":
            canonical = tmp / ".canonical"
            canonical.mkdir()
            summary = build(scn, canonical)
            write_raw(scn, build_geography(scn.grid, scn.geography), canonical, tmp)
            shutil.rmtree(canonical)
        else:
            summary = build(scn, tmp)
    log.info(
        f"twin world {scenario} ({format}) → {out}: {summary['cells']} land cells, "
        f"{summary['sites']} towers, truth global NEE "
        f"{summary['truth_global_nee_pgc_yr']:.2f} PgC/yr (mean), "
        f"built in {time.perf_counter() - started:.1f} s"
    )
    return 0


def build(scn: Scenario, root: Path) -> dict[str, object]:
    """Write every file of the dataset into the existing directory ``root``."""
    calendar = Calendar.for_years(scn.years[0], scn.years[1], scn.base_years)
    geo = build_geography(scn.grid, scn.geography)
    write_grid(geo, root / "grid.nc")
    towers = place_towers(geo, scn.sites, scn.seed)
    world = World(scn, geo, calendar)

    n_months, n_days = len(calendar.months), len(calendar.days)
    monthly = {k: np.empty((n_months, geo.n_cells)) for k in MONTHLY_KEPT}
    site_truth = np.empty((towers.n, n_days))
    site_pixel = {name: np.empty((towers.n, n_days), np.float32) for name in DRIVER_NAMES}
    # drivers.nc is most of the dataset: twice its size bounds the whole (float32, uncompressed)
    require_space(root.parent, 2 * 4 * len(DRIVER_NAMES) * geo.n_cells * n_days, "the twin dataset")
    handle = create_drivers(geo, calendar.days, root / "drivers.nc")
    try:
        for index in logs.progress(range(world.n_blocks), "twin world", "block"):
            block = world.block(index)
            for name, values in block.drivers.items():
                handle.variables[name][:, block.start : block.stop] = values
            for name, values in block.monthly.items():
                monthly[name][:, block.start : block.stop] = values
            here = (towers.cell >= block.start) & (towers.cell < block.stop)
            local = towers.cell[here] - block.start
            site_truth[here] = block.nee[:, local].T
            for name in DRIVER_NAMES:
                site_pixel[name][here] = block.drivers[name][:, local].T
    finally:
        handle.close()

    mask = record_mask(towers, calendar.days.year.to_numpy(), scn.sites, scn.seed)
    nee_obs = observe(site_truth, towers, mask, scn)
    write_sites(towers, calendar.days, nee_obs, tower_drivers(site_pixel, scn), root / "sites.nc")
    operator = RegionalOperator.of(geo)
    _write_truth(geo, calendar, monthly, towers, site_truth, root)
    global_annual, no_region = annual_totals(monthly["nee"], geo, operator, calendar)
    _write_inversions(geo, operator, calendar, monthly["nee"], scn, root)
    _write_derived(geo, operator, calendar, monthly, global_annual, scn, root)
    _write_metadata(scn, root, geo, towers.n, global_annual, no_region)
    return {
        "cells": geo.n_cells,
        "sites": towers.n,
        "truth_global_nee_pgc_yr": float(global_annual.mean()),
    }


def annual_totals(
    nee: np.ndarray, geo: Geography, operator: RegionalOperator, calendar: Calendar
) -> tuple[np.ndarray, np.ndarray]:
    """(global, no_region), each (year,) PgC yr-1 of a (month, cell) flux in gC m-2 d-1.

    Global is the sum of the 18 regional integrals (what inversions constrain); no_region
    integrates the land share that no region covers (Antarctica, Greenland, small islands).
    """
    days = calendar.days_in_month
    regions = operator.integrate(nee, days).sum(axis=1)
    area = geo.on_cells(geo.cell_area * geo.land_fraction)
    uncovered = area * np.clip(1.0 - operator.fraction.sum(axis=0), 0.0, 1.0)
    outside = (nee @ uncovered) * days * PG_PER_G
    return (
        np.bincount(calendar.year_of_month, weights=regions),
        np.bincount(calendar.year_of_month, weights=outside),
    )


def _write_truth(geo, calendar, monthly, towers, site_truth, root: Path) -> None:
    extra = xr.Dataset(
        {"site_nee": (("site", "time_daily"), site_truth.astype(np.float32), nee_attrs(
            "true NEE at the tower pixel (no bias, no noise)", "time_daily: mean"))},
        coords={
            "site": ("site", np.array(towers.ids, dtype=object)),
            "time_daily": ("time_daily", calendar.days),
        },
    )  # fmt: skip
    write_monthly(
        {
            "nee": (monthly["nee"], nee_attrs("true net ecosystem exchange")),
            "gpp": (
                monthly["gpp"],
                nee_attrs("true gross primary production (positive)")
                | {"standard_name": "gross_primary_productivity_of_biomass_expressed_as_carbon"},
            ),
            "reco": (monthly["reco"], nee_attrs("true ecosystem respiration (positive)")),
            "nee_unexplained": (
                monthly["unexplained"],
                nee_attrs("part of the true NEE that no driver explains"),
            ),
        },
        geo,
        calendar.months,
        root / "truth.nc",
        {"title": "twin-world truth: hide this file from any model"},
        extra,
    )


def _write_inversions(geo, operator, calendar, truth: np.ndarray, scn: Scenario, root) -> None:
    cfg = scn.inversions
    names = [f"INV{m + 1}" for m in range(cfg.members)]
    groups = [
        "in-situ-inversion" if m % 2 == 0 else "satellite-inversion" for m in range(len(names))
    ]
    handle = create_ensemble(geo, calendar.months, names, groups, root / "inversions.nc")
    try:
        fields = inversion_members(
            truth,
            geo,
            operator,
            calendar.months,
            cfg,
            members=cfg.members,
            seed=scn.seed,
            stream=_STREAM_INVERSIONS,
        )
        for m, nee in enumerate(fields):
            handle.variables["nee"][m] = gridded(nee, geo)
    finally:
        handle.close()


def _write_derived(geo, operator, calendar, monthly, global_annual, scn, root: Path) -> None:
    months = calendar.months
    ref = reference(monthly["nee"], monthly["unexplained"], geo, operator, months, scn)
    write_monthly(
        {"nee": (ref, nee_attrs("FLUXCOM-like reference NEE (EC-only upscaling)"))},
        geo,
        months,
        root / "reference.nc",
    )
    sink, sigma = residual_sink(global_annual, scn)
    years = calendar.years.astype(np.int32)
    sink_name = carbon_long_name("global residual land sink as NEE (negative = sink)")
    ds = xr.Dataset(
        {
            "nee_global": (
                "year",
                sink,
                {
                    "units": ANNUAL_INTEGRAL_UNITS,
                    "long_name": sink_name,
                    "cell_methods": "year: sum",
                },
            ),
            "nee_global_sigma": (
                "year",
                sigma,
                {"units": ANNUAL_INTEGRAL_UNITS, "long_name": f"1 sigma of the {sink_name}"},
            ),
        },
        coords={"year": ("year", years, {"long_name": "calendar year"})},
    )
    write_netcdf(ds, root / "residual_sink.nc", action=ACTION)
    ancillary = {
        "soil_moisture": ("m3 m-3", "volumetric soil moisture"),
        "sif": ("mW m-2 nm-1 sr-1", "SIF-like fluorescence"),
        "lai": ("m2 m-2", "leaf area index"),
    }
    write_monthly(
        {
            name: (monthly[name], {"units": u, "long_name": ln, "cell_methods": "time: mean"})
            for name, (u, ln) in ancillary.items()
        },
        geo,
        months,
        root / "ancillary.nc",
    )
    _write_products(geo, operator, calendar, monthly["nee"], scn, root)


def _write_products(geo, operator, calendar, truth, scn: Scenario, root: Path) -> None:
    folder = root / "products"
    folder.mkdir()
    listing = []
    for product in product_families(truth, geo, operator, calendar.months, scn):
        name = f"{product.name}.nc"
        write_monthly(
            {"nee": (product.nee, nee_attrs())},
            geo,
            calendar.months,
            folder / name,
            {"group": product.group, "title": f"twin-world product {product.name}"},
        )
        listing.append({"name": product.name, "file": name, "group": product.group})
    (folder / "products.yaml").write_text(yaml.safe_dump({"products": listing}, sort_keys=False))


def _write_metadata(scn: Scenario, root: Path, geo, n_sites: int, global_annual, no_region):
    (root / "scenario.yaml").write_text(scn.to_yaml())
    meta = {
        "schema_version": SCHEMA_VERSION,
        "source": "twin",
        "years": list(scn.years),
        "resolution_deg": scn.resolution_deg,
        "scenario": to_mapping(scn),
        "scenario_sha256": scn.sha256(),
        "geography": scn.geography,
        "regions_source": geo.regions_source,
        "land_cells": geo.n_cells,
        "sites": n_sites,
        "truth_global_nee_pgc_yr": [round(float(v), 4) for v in global_annual],
        "truth_no_region_nee_pgc_yr": [round(float(v), 4) for v in no_region],
        "files": sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()),
    }
    (root / "canonical.json").write_text(json.dumps(meta, indent=2) + "\n")
