"""Forward runs of trained members over all land cells and days.

The work is split into (year × cell-block) chunks, so memory stays bounded
whatever the domain size: a chunk holds ``cell_block`` cells × ≤ 366 days × 10
drivers. Each year is written to its own part file as soon as it is done, so a
killed run resumes where it stopped; the parts are merged into the final file,
written atomically, at the end. With Dask, years run as tasks on a cluster and
produce the same part files, hence the same final file.

A part holds the year as computed: land cells only, uncompressed (it is temporary),
with the ensemble mean and standard deviation taken from the in-memory array. The
merge is a concatenation: each part is read once with h5py and scattered onto the
grid into the output, a block of steps at a time (no Dask graph), and only the
output is compressed.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import h5netcdf
import h5py
import numpy as np
import pandas as pd
import torch
import xarray as xr

from fluxbridge import logs
from fluxbridge.data.canonical import (
    DRIVER_NAMES,
    NEE_UNITS,
    CanonicalDataset,
    carbon_long_name,
)
from fluxbridge.errors import FluxbridgeError
from fluxbridge.inference.drivers import Carry, DriverReader, aligned_block
from fluxbridge.io import ENGINE, write_netcdf
from fluxbridge.outputs import (
    INPUTS_ATTR,
    atomic_path,
    check_inputs,
    fingerprint,
    inputs_attr,
    recorded_inputs,
    require_space,
    reuse_part,
    stage_lock,
    tree_digest,
    work_directory,
)
from fluxbridge.parallel import run_tasks
from fluxbridge.plausibility import DriverRange

log = logs.get(__name__)

#: Part-file attribute: the year's driver statistics (JSON of plausibility.DriverRange).
DRIVER_RANGE_ATTR = "driver_range"
#: Output attribute: cell-days per driver outside the towers' range (JSON).
OUTSIDE_ATTR = "drivers_outside_training_range"
#: What a year part holds; part of the work fingerprint, so parts written by code that
#: stored them otherwise (before: compressed (member, time, lat, lon), no statistics)
#: are computed again instead of merged.
PART_LAYOUT = "nee(member, time, cell), nee_mean/nee_std(time, cell); land cells; uncompressed"
#: Output steps per read and write of the merge: its buffer is steps × lat × lon float32
#: (32 MiB at 0.5°), so a daily year is not held on the grid at once.
MERGE_STEPS = 32
#: Elements of (member × column) taken at a time for the ensemble statistics: bounds their
#: float64 working copy to 32 MiB, however many members, steps and cells a year has.
STATS_BLOCK = 1 << 22

Member = Callable[[torch.Tensor], torch.Tensor]
"""A trained member: raw drivers (N, 10) float32 → NEE (N,) in gC m-2 d-1."""


@dataclass(frozen=True)
class ForwardPlan:
    """What one forward run computes: output steps grouped into yearly chunks, and cell blocks."""

    drivers_path: Path
    times: pd.DatetimeIndex  # daily driver times
    n_cells: int
    cell_block: int
    daily: bool
    # days read past a year's end, for the next year (inference.drivers; empty when pickled)
    carry: Carry = field(default_factory=Carry, compare=False, repr=False)

    @property
    def years(self) -> list[int]:
        return sorted(set(self.times.year.tolist()))

    def day_slice(self, year: int) -> slice:
        days = np.nonzero(self.times.year == year)[0]
        return slice(int(days[0]), int(days[-1]) + 1)

    def steps(self, year: int) -> pd.DatetimeIndex:
        """Output time steps of ``year``: its days, or the starts of its months."""
        days = self.times[self.day_slice(year)]
        return days if self.daily else pd.DatetimeIndex(days.to_period("M").unique().to_timestamp())

    def part_shape(self, year: int) -> tuple[int, int]:
        """(step, cell) of ``year``'s NEE, as computed and as stored in its part."""
        return len(self.steps(year)), self.n_cells


def run_members_on_block(
    members: Sequence[Member], x: np.ndarray, device: torch.device
) -> np.ndarray:
    """NEE of every member for a block ``x`` (days, cells, drivers) → (member, days, cells)."""
    days, cells, n_drivers = x.shape
    flat = torch.from_numpy(np.ascontiguousarray(x.reshape(days * cells, n_drivers))).to(device)
    out = np.empty((len(members), days, cells), dtype=np.float32)
    with torch.inference_mode():
        for k, member in enumerate(members):
            out[k] = member(flat).reshape(days, cells).float().cpu().numpy()
    return out


def compute_year(
    plan: ForwardPlan,
    members: Sequence[Member],
    year: int,
    device: torch.device,
    stats: DriverRange | None = None,
) -> np.ndarray:
    """(member, step, cell) NEE of one year (daily or monthly means), streaming over cell blocks.

    ``stats``, when given, accumulates the drivers' range (plausibility checks).
    """
    days = plan.day_slice(year)
    times = plan.times[days]
    n_days = len(times)
    month_starts = np.nonzero(np.r_[True, times.month[1:] != times.month[:-1]])[0]
    n_steps = n_days if plan.daily else month_starts.size
    result = np.empty((len(members), n_steps, plan.n_cells), dtype=np.float32)
    bounds = (stats.low, stats.high) if stats is not None else None
    # one block buffer reused by every block (the last, narrower one is a view of its start):
    # a fresh array per block would be page-faulted in (zeroed by the kernel) each time
    n_drivers = len(DRIVER_NAMES)
    buffer = np.empty(n_days * min(plan.cell_block, plan.n_cells) * n_drivers, np.float32)
    with DriverReader(plan.drivers_path, DRIVER_NAMES, plan.carry) as reader:
        for start in range(0, plan.n_cells, plan.cell_block):
            cells = slice(start, min(start + plan.cell_block, plan.n_cells))
            width = cells.stop - cells.start
            block = buffer[: n_days * width * n_drivers].reshape(n_days, width, n_drivers)
            minimum, maximum, outside = reader.read(days, cells, block, bounds)
            # NaN and ±inf show in the min or max: no separate pass over the block
            finite = np.isfinite(minimum) & np.isfinite(maximum)
            if not finite.all():
                bad = DRIVER_NAMES[int(np.nonzero(~finite)[0][0])]
                raise FluxbridgeError(
                    f"{plan.drivers_path}: driver '{bad}' has NaN/inf in {year}, cells "
                    f"{cells.start}..{cells.stop - 1}; drivers must be gap-free at land cells"
                )
            if stats is not None:
                stats.update_summary(minimum, maximum, outside, n_days * width)
            nee = run_members_on_block(members, block, device)
            if plan.daily:
                result[:, :, cells] = nee
            else:
                lengths = np.diff(np.r_[month_starts, n_days])
                # dtype=float64 casts day by day as it adds: the same sums as adding a float64
                # copy of the block, without that copy (members × days × cells × 8 B)
                sums = np.add.reduceat(nee, month_starts, axis=1, dtype=np.float64)
                result[:, :, cells] = sums / lengths[None, :, None]
    return result


def _part_name(year: int) -> str:
    return f"{year}.nc"


def ensemble_mean_std(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (ddof=0) over ``member`` of (member, step, cell) NEE.

    Same units and sign as ``values`` (gC m-2 d-1, positive = source), shape (step,
    cell), float32. Accumulated in float64 in two passes (the mean, then the mean
    squared deviation from it), so the float32 results are the exact ones rounded
    once, nearly always. NaN propagates (xarray's ``skipna=False``): a member missing
    a cell makes the statistics there NaN instead of those of the other members.
    """
    n_members = values.shape[0]
    flat = values.reshape(n_members, -1)
    mean = np.empty(flat.shape[1], np.float32)
    std = np.empty(flat.shape[1], np.float32)
    width = max(1, STATS_BLOCK // n_members)
    for start in range(0, flat.shape[1], width):
        cols = slice(start, start + width)
        x = flat[:, cols].astype(np.float64)
        centre = x.mean(axis=0)
        mean[cols] = centre
        x -= centre
        np.square(x, out=x)
        std[cols] = np.sqrt(x.mean(axis=0))
    return mean.reshape(values.shape[1:]), std.reshape(values.shape[1:])


def _write_part(
    part_dir: Path,
    year: int,
    steps: pd.DatetimeIndex,
    values: np.ndarray,
    member_names: Sequence[str],
    stats: DriverRange,
) -> None:
    """One year's (member, step, cell) NEE and its ensemble statistics, as computed."""
    mean, std = ensemble_mean_std(values)
    cell_dims = ("time", "cell")
    ds = xr.Dataset(
        {
            "nee": (("member", *cell_dims), values),
            "nee_mean": (cell_dims, mean),
            "nee_std": (cell_dims, std),
        },
        coords={"member": list(member_names), "time": steps},
        attrs={DRIVER_RANGE_ATTR: stats.to_json()},
    )
    # uncompressed: the part is read once by the merge and removed; compressing it would
    # cost a deflate here and an inflate there for bytes that are thrown away
    write_netcdf(
        ds, part_dir / _part_name(year), action="forward part", overwrite=True, compress=False
    )


def forward_run(
    members: Sequence[Member],
    member_names: Sequence[str],
    data: CanonicalDataset,
    out: Path,
    *,
    model_name: str,
    daily: bool = False,
    cell_block: int = 4096,
    device: torch.device | None = None,
    dask: str | None = None,
    progress: bool = True,
    inputs: dict[str, str] | None = None,
    allow_implausible: bool = False,
    replace: bool = False,
) -> Path:
    """Run ``members`` over every land cell; write ``out`` with nee(member, time, lat, lon).

    Also writes the ensemble mean and standard deviation (``nee_mean``,
    ``nee_std``, ddof=0) in gC m-2 d-1. ``inputs`` (the dataset's and each
    checkpoint's content digest) is recorded in the file (provenance). Parts of an
    interrupted run found in ``<out>.parts/`` are reused when they were made for
    the same members, inputs and settings (a fingerprint); a part that cannot be
    read is recomputed; the parts are removed after the merge. Drivers outside their
    physical range stop the run before the merge (unless ``allow_implausible``); the
    cell-days outside the towers' range are counted, logged and recorded in the file.
    """
    if out.exists() and not replace:
        raise FluxbridgeError(f"{out} exists; remove it or use another run directory")
    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    drivers = data.open("drivers")
    grid_ds = data.grid_ds
    plan = ForwardPlan(
        drivers_path=data.path("drivers"),
        times=pd.DatetimeIndex(drivers["time"].values),
        n_cells=drivers.sizes["cell"],
        cell_block=aligned_block(data.path("drivers"), DRIVER_NAMES, cell_block),
        daily=daily,
    )
    cell_ilat = drivers["cell_ilat"].values
    cell_ilon = drivers["cell_ilon"].values
    drivers.close()
    with data.open("sites") as sites:
        towers = np.stack([sites[name].values for name in DRIVER_NAMES], axis=-1)
    empty = DriverRange.of_towers(DRIVER_NAMES, towers)

    part_dir = out.with_name(out.name + ".parts")
    settings = {
        "members": list(member_names),
        "drivers": str(plan.drivers_path.resolve()),
        "n_cells": plan.n_cells,
        "daily": daily,
        "inputs": inputs or {},
        "part_layout": PART_LAYOUT,
    }
    work_directory(part_dir, fingerprint(settings))
    todo = [
        year
        for year in plan.years
        if not reuse_part(
            part_dir / _part_name(year),
            lambda path, year=year: _readable(path, (len(member_names), *plan.part_shape(year))),
        )
    ]

    def one(year: int) -> None:
        stats = copy.deepcopy(empty)
        values = compute_year(plan, members, year, device, stats=stats)
        _write_part(part_dir, year, plan.steps(year), values, member_names, stats)

    try:
        run_tasks(one, todo, dask, desc=f"forward {model_name}", unit="year", progress=progress)
    except BaseException:
        if not list(part_dir.glob("*.nc")):  # nothing to resume: no work folder left behind
            shutil.rmtree(part_dir, ignore_errors=True)
        raise

    outside = _check_drivers(part_dir, plan, allow_implausible)
    _merge_parts(
        part_dir,
        plan,
        out,
        model_name=model_name,
        member_names=member_names,
        cells=(cell_ilat, cell_ilon),
        daily=daily,
        grid_ds=grid_ds,
        inputs=inputs,
        outside=outside,
        replace=replace,
    )
    shutil.rmtree(part_dir)
    return out


def _readable(path: Path, shape: tuple[int, int, int]) -> None:
    """Raise unless ``path`` is a whole part holding (member, time, cell) = ``shape``."""
    with h5py.File(path, "r") as part:
        if DRIVER_RANGE_ATTR not in part.attrs:
            raise ValueError(f"no {DRIVER_RANGE_ATTR} attribute")
        for name, want in (("nee", shape), ("nee_mean", shape[1:]), ("nee_std", shape[1:])):
            if part[name].shape != want:
                raise ValueError(f"{name} has shape {part[name].shape}, expected {want}")


def _check_drivers(part_dir: Path, plan: ForwardPlan, allow: bool) -> dict[str, int]:
    """The parts' driver statistics together: physical bounds, then the training range."""
    total: DriverRange | None = None
    for year in plan.years:
        with xr.open_dataset(part_dir / _part_name(year), engine=ENGINE) as ds:
            stats = DriverRange.from_json(str(ds.attrs[DRIVER_RANGE_ATTR]))
        total = stats if total is None else total.merged(stats)
    assert total is not None  # a forward run has at least one year
    return total.check(str(plan.drivers_path), allow)


def _output_skeleton(
    plan: ForwardPlan,
    member_names: Sequence[str],
    grid_ds: xr.Dataset,
    *,
    model_name: str,
    inputs: dict[str, str] | None,
    outside: dict[str, int],
) -> xr.Dataset:
    """The output's coordinates, cell bounds, land fraction and attributes: all but the NEE."""
    times = pd.DatetimeIndex(np.concatenate([plan.steps(y).values for y in plan.years]))
    result = xr.Dataset(
        coords={
            "member": list(member_names),
            "time": times,
            "lat": grid_ds["lat"],
            "lon": grid_ds["lon"],
        }
    )
    if "lat_bnds" in grid_ds and "lon_bnds" in grid_ds:
        result = result.assign(lat_bnds=grid_ds["lat_bnds"], lon_bnds=grid_ds["lon_bnds"])
    # the file says which cells are land, so `integrate` on it weighs land, not ocean
    result["land_fraction"] = grid_ds["land_fraction"].assign_attrs(
        standard_name="land_area_fraction"
    )
    result.attrs = {"title": f"fluxbridge forward run of {model_name}", "model": model_name}
    if inputs is not None:
        result.attrs[INPUTS_ATTR] = inputs_attr(inputs)
    # cell-days per driver outside the towers' range (plausibility.DriverRange)
    result.attrs[OUTSIDE_ATTR] = json.dumps(outside)
    return result


def _nee_variables(daily: bool) -> dict[str, tuple[tuple[str, ...], dict[str, str]]]:
    """Dimensions and CF attributes of the output's NEE variables."""
    time_method = "time: mean" if not daily else "time: point"
    # CF cell_methods may only name the variable's own dimensions; ``member`` is
    # reduced away in the ensemble statistics, so their long_names say it instead.
    long_names = {
        "nee": "net ecosystem exchange (positive = source to the atmosphere)",
        "nee_mean": "ensemble mean NEE over members",
        "nee_std": "standard deviation of NEE over members (ddof=0)",
    }
    return {
        name: (
            ("member", "time", "lat", "lon") if name == "nee" else ("time", "lat", "lon"),
            {
                "units": NEE_UNITS,
                "long_name": carbon_long_name(long_name),
                "cell_methods": time_method,
            },
        )
        for name, long_name in long_names.items()
    }


def _merge_parts(
    part_dir: Path,
    plan: ForwardPlan,
    out: Path,
    *,
    model_name: str,
    member_names: Sequence[str],
    cells: tuple[np.ndarray, np.ndarray],
    daily: bool,
    grid_ds: xr.Dataset,
    inputs: dict[str, str] | None,
    outside: dict[str, int],
    replace: bool,
) -> None:
    """Concatenate the year parts into ``out``: nee, nee_mean, nee_std on the grid.

    Each part is read once, a block of steps at a time, its land cells scattered onto
    a NaN grid (ocean) and written into the output's compressed variables; written
    under a temporary name and renamed, so an output being replaced stays in place
    until the new one is complete.
    """
    skeleton = _output_skeleton(
        plan, member_names, grid_ds, model_name=model_name, inputs=inputs, outside=outside
    )
    nlat, nlon = grid_ds.sizes["lat"], grid_ds.sizes["lon"]
    n_members, n_times = len(member_names), skeleton.sizes["time"]
    variables = _nee_variables(daily)
    # the uncompressed size, an upper bound of what the compressed variables take
    require_space(out.parent, 4 * nlat * nlon * n_times * (n_members + 2), out.name)
    flat_cells = cells[0].astype(np.int64) * nlon + cells[1]
    # one grid buffer for every block: ocean cells are never written, so they stay NaN
    grid = np.full((min(MERGE_STEPS, n_times), nlat * nlon), np.nan, dtype=np.float32)
    with atomic_path(out, overwrite=replace) as tmp:
        write_netcdf(skeleton, tmp, action=f"forward run of {model_name}", overwrite=True)
        with h5netcdf.File(tmp, "a") as nc:
            target: dict[str, h5netcdf.Variable] = {}
            for name, (dims, attrs) in variables.items():
                # one chunk per map: every block writes whole chunks (no chunk is inflated
                # and deflated twice), and readers that integrate maps read whole chunks
                chunks = (1,) * (len(dims) - 2) + (nlat, nlon)
                target[name] = var = nc.create_variable(
                    name,
                    dims,
                    dtype=np.float32,
                    fillvalue=np.float32(np.nan),
                    chunks=chunks,
                    compression="gzip",
                    compression_opts=1,  # as fluxbridge.io.cf_encoding
                )
                var.attrs.update(attrs)
            offset = 0
            for year in plan.years:
                path = part_dir / _part_name(year)
                n_steps = len(plan.steps(year))
                try:  # checked when the run started; a part changed since must not merge
                    _readable(path, (n_members, *plan.part_shape(year)))
                except (OSError, ValueError, KeyError) as exc:
                    raise FluxbridgeError(f"{path}: {exc}; rerun to compute it again") from exc
                with h5py.File(path, "r") as part:
                    source = {name: part[name] for name in variables}
                    for first in range(0, n_steps, MERGE_STEPS):
                        steps = slice(first, min(first + MERGE_STEPS, n_steps))
                        block = grid[: steps.stop - steps.start]
                        at = slice(offset + steps.start, offset + steps.stop)
                        for k in range(n_members):
                            block[:, flat_cells] = source["nee"][k, steps]
                            target["nee"][k, at] = block.reshape(-1, nlat, nlon)
                        for name in ("nee_mean", "nee_std"):
                            block[:, flat_cells] = source[name][steps]
                            target[name][at] = block.reshape(-1, nlat, nlon)
                offset += n_steps


def forward_inputs(run: Path, model: str, dataset_digest: str) -> dict[str, str]:
    """What a forward output of ``model`` depends on: the dataset and every member checkpoint."""
    from fluxbridge.inference.members import member_digests

    return {"dataset": dataset_digest, **member_digests(run, model)}


def check_current(path: Path, inputs: dict[str, str], run: Path) -> None:
    """Refuse a forward output that is unreadable or was made from other inputs (stale)."""
    fix = f"rerun `fluxbridge forward --run {run} --force`"
    try:
        with xr.open_dataset(path, engine=ENGINE) as ds:
            recorded = recorded_inputs(ds.attrs)
    except Exception as exc:  # h5py raises many types for a truncated file
        raise FluxbridgeError(f"{path} is not a readable NetCDF file (damaged?); {fix}") from exc
    check_inputs(path, recorded, inputs, fix)


def run_forward(
    run: Path,
    data: Path | None = None,
    models: list[str] | None = None,
    daily: bool = False,
    dask: str | None = None,
    force: bool = False,
    allow_implausible: bool = False,
) -> int:
    """Entry point of `invoke forward`: every trained model → RUN/forward/<model>.nc.

    An output made from today's dataset and checkpoints is kept; one made from
    others (stale) is refused, or recomputed with ``force``.
    """
    from fluxbridge.inference.fast import FoldedMember
    from fluxbridge.inference.members import load_members, run_dataset, trained_models

    with stage_lock(run, "forward"):
        dataset = CanonicalDataset(data or run_dataset(run))
        available = trained_models(run)
        chosen = models or available
        unknown = sorted(set(chosen) - set(available))
        if unknown:
            raise FluxbridgeError(f"{run}: no trained model(s) {unknown}; trained: {available}")
        digest = tree_digest(dataset.root)
        for model in chosen:
            suffix = "_daily" if daily else ""
            out = run / "forward" / f"{model}{suffix}.nc"
            inputs = forward_inputs(run, model, digest)
            if out.exists():
                try:
                    check_current(out, inputs, run)
                except FluxbridgeError:
                    if not force:
                        raise
                    log.info(f"{out}: stale, recomputing")
                else:
                    log.info(f"{out}: made from the same dataset and members; kept")
                    continue
            members = load_members(run, model)
            forward_run(
                [FoldedMember(net) for net in members.values()],
                [f"fold_{k}" for k in members],
                dataset,
                out,
                model_name=model,
                daily=daily,
                dask=dask,
                inputs=inputs,
                allow_implausible=allow_implausible,
                replace=out.exists(),  # only reached with force: a stale output of forward's
            )
            log.info(f"wrote {out}")
    return 0


def current_forward(run: Path, data: CanonicalDataset, models: list[str], force: bool) -> str:
    """Check that RUN/forward/<model>.nc of every model exists and was made from today's
    dataset and members; with ``force``, (re)make those that are missing or stale.

    Returns the dataset's content digest.
    """
    digest = tree_digest(data.root)
    redo = []
    for model in models:
        path = run / "forward" / f"{model}.nc"
        try:
            if not path.exists():
                raise FluxbridgeError(
                    f"forward output missing ({path}); run `fluxbridge forward --run {run}` first"
                )
            check_current(path, forward_inputs(run, model, digest), run)
        except FluxbridgeError:
            if not force:
                raise
            redo.append(model)
    if redo:
        log.info(f"forward outputs of {redo} missing or stale: running forward first (--force)")
        run_forward(run, data=data.root, models=redo, force=True)
    return digest
