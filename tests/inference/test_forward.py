"""Forward runs on the tiny demo: values against the networks, resume, Dask, memory, bad input.

Expected values come from the files and the checkpoints directly: drivers read
with xarray, members loaded with ``load_member`` and called as plain
``NEENetwork`` modules, monthly means and ensemble statistics taken with numpy
(float64) or Python's ``statistics``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import statistics
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from fluxbridge.data.canonical import DRIVER_NAMES, NEE_UNITS, CanonicalDataset
from fluxbridge.errors import FluxbridgeError
from fluxbridge.inference import forward
from fluxbridge.inference.fast import FoldedMember
from fluxbridge.inference.forward import (
    ForwardPlan,
    compute_year,
    ensemble_mean_std,
    forward_run,
    run_forward,
)
from fluxbridge.io import ENGINE, write_netcdf
from fluxbridge.models.network import NEENetwork
from fluxbridge.outputs import tree_digest
from fluxbridge.plausibility import DriverRange
from fluxbridge.training.checkpoint import FINISHED_FILE, load_member

CPU = torch.device("cpu")
BLOCK = 64  # cells per block in the memory test
FOLDS = (0, 1)  # the demo fixture trains 2 folds


class SimulatedKill(Exception):
    """Raised from inside a forward run in place of a kill."""


def _nets(run: Path, model_dir: str = "ec") -> list[NEENetwork]:
    return [load_member(run / "train" / model_dir / f"fold_{k}" / "best.ckpt") for k in FOLDS]


def _members(run: Path) -> tuple[list[FoldedMember], list[str]]:
    """The EC members as the production entry point builds them."""
    return [FoldedMember(net) for net in _nets(run)], [f"fold_{k}" for k in FOLDS]


def _run(run: Path, out: Path, **kwargs: object) -> Path:
    members, names = _members(run)
    data = CanonicalDataset(run / "data")
    return forward_run(members, names, data, out, model_name="EC", progress=False, **kwargs)


def _load(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine=ENGINE) as ds:
        return ds.load()


def _assert_identical(a: Path, b: Path) -> None:
    """Bitwise equal variables and coordinates (NaN equal to NaN)."""
    with xr.open_dataset(a, engine=ENGINE) as x, xr.open_dataset(b, engine=ENGINE) as y:
        for name in ("nee", "nee_mean", "nee_std", "member", "time", "lat", "lon"):
            np.testing.assert_array_equal(x[name].values, y[name].values, err_msg=name)


def _assert_ensemble_statistics(ds: xr.Dataset) -> None:
    """nee_mean and nee_std (ddof 0) are the float64 ones of the file's members, rounded to
    float32 (rtol 1e-6: float32 rounding is 6e-8 relative; NaN where any member is NaN)."""
    values = ds["nee"].values.astype(np.float64)
    np.testing.assert_allclose(ds["nee_mean"].values, values.mean(axis=0), rtol=1e-6, atol=0)
    np.testing.assert_allclose(ds["nee_std"].values, values.std(axis=0, ddof=0), rtol=1e-6, atol=0)


def _assert_nee_is_the_computed_years(path: Path, run: Path, daily: bool) -> None:
    """The file's nee is, bit for bit, what compute_year gives, on the grid; NaN at sea."""
    members, names = _members(run)
    drivers = _load(run / "data" / "drivers.nc")
    plan = ForwardPlan(
        run / "data" / "drivers.nc",
        pd.DatetimeIndex(drivers["time"].values),
        drivers.sizes["cell"],
        cell_block=4096,
        daily=daily,
    )
    ilat, ilon = drivers["cell_ilat"].values, drivers["cell_ilon"].values
    with xr.open_dataset(path, engine=ENGINE) as ds:
        assert list(ds["member"].values) == names
        nee = ds["nee"].values
    sea = np.ones(nee.shape[2:], dtype=bool)
    sea[ilat, ilon] = False
    assert np.isnan(nee[:, :, sea]).all()
    offset = 0
    for year in plan.years:
        want = compute_year(plan, members, year, CPU)
        got = nee[:, offset : offset + want.shape[1]][:, :, ilat, ilon]
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32), err_msg=year)
        offset += want.shape[1]
    assert offset == nee.shape[1]


@pytest.fixture(scope="module")
def uninterrupted(tiny_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One in-process forward run of EC, never interrupted."""
    return _run(tiny_demo, tmp_path_factory.mktemp("uninterrupted") / "EC.nc")


# --- 1. the output file ---------------------------------------------------------------------


def test_output_layout_units_and_ensemble_statistics(tiny_demo: Path) -> None:
    grid = _load(tiny_demo / "data" / "grid.nc")
    days = pd.DatetimeIndex(_load(tiny_demo / "data" / "drivers.nc")["time"].values)
    with xr.open_dataset(tiny_demo / "forward" / "EC.nc", engine=ENGINE) as ds:
        nee = ds["nee"]
        assert nee.dims == ("member", "time", "lat", "lon")
        assert nee.attrs["units"] == NEE_UNITS == "g m-2 d-1"
        assert list(ds["member"].values) == ["fold_0", "fold_1"]
        months = pd.date_range(days[0], days[-1], freq="MS")
        assert months.size == 36
        np.testing.assert_array_equal(ds["time"].values, months.values)
        np.testing.assert_array_equal(ds["lat"].values, grid["lat"].values)
        np.testing.assert_array_equal(ds["lon"].values, grid["lon"].values)

        for name in ("nee", "nee_mean", "nee_std"):
            assert ds[name].dtype == np.float32, name
            assert np.isnan(ds[name].encoding["_FillValue"]), name
            assert ds[name].attrs["cell_methods"] == "time: mean", name
            assert ds[name].attrs["units"] == NEE_UNITS, name
        assert "standard deviation" in ds["nee_std"].attrs["long_name"]
        assert "ddof=0" in ds["nee_std"].attrs["long_name"]
        assert "ensemble mean" in ds["nee_mean"].attrs["long_name"]
        _assert_ensemble_statistics(ds)
        # the two members are different networks: a spread of exactly zero would hide a bug
        land = grid["land_fraction"].values > 0
        assert (ds["nee_std"].values[:, land] > 0).mean() > 0.99

        for name in ("nee", "nee_mean", "nee_std"):
            field = ds[name].values
            assert np.isnan(field[..., ~land]).all(), f"{name}: ocean cells must be NaN"
            assert np.isfinite(field[..., land]).all(), f"{name}: land cells must be finite"


def test_integrate_on_a_forward_file_counts_its_land(tiny_demo: Path, tmp_path: Path) -> None:
    """`integrate` on the project's own forward output: finite, = Σ nee · area · land · days."""
    from fluxbridge.geo.integrate import run_integrate

    out = tmp_path / "integrals.nc"
    assert run_integrate(tiny_demo / "forward" / "EC.nc", "nee_mean", "reccap2", out) == 0
    result = _load(out)
    assert "land_fraction of EC.nc" in result.attrs["land_fraction_source"]
    glob = result["nee_mean"].sel(region="GLOBAL").values
    assert np.isfinite(glob).all()
    grid = _load(tiny_demo / "data" / "grid.nc")
    field = _load(tiny_demo / "forward" / "EC.nc")["nee_mean"]
    days = field["time"].dt.days_in_month.values
    weight = grid["cell_area"].values * grid["land_fraction"].values
    expected = np.nansum(field.values * weight, axis=(1, 2)) * days / 1e15
    np.testing.assert_allclose(glob, expected, rtol=1e-5)


def test_output_bounds_attributes_name_variables_of_the_file(tiny_demo: Path) -> None:
    """CF: a coordinate's ``bounds`` names a variable in the same file (CDO warns otherwise)."""
    grid = _load(tiny_demo / "data" / "grid.nc")
    with xr.open_dataset(tiny_demo / "forward" / "EC.nc", engine=ENGINE) as ds:
        for name in ("lat", "lon"):
            bounds = ds[name].attrs.get("bounds")
            if bounds is not None:
                assert bounds in ds.variables, f"{name}: bounds '{bounds}' not in the file"
                np.testing.assert_array_equal(ds[bounds].values, grid[bounds].values)


@pytest.mark.parametrize(
    ("cell", "month", "fold"),
    [(0, "2003-01", 0), (141, "2004-02", 1), (283, "2005-12", 0), (200, "2004-07", 1)],
)
def test_monthly_value_is_mean_of_network_over_the_days(
    tiny_demo: Path, cell: int, month: str, fold: int
) -> None:
    net = load_member(tiny_demo / "train" / "ec" / f"fold_{fold}" / "best.ckpt")
    with xr.open_dataset(tiny_demo / "data" / "drivers.nc", engine=ENGINE) as drivers:
        sel = drivers.isel(cell=cell).sel(time=month)
        x = np.stack([sel[name].values for name in net.driver_names], axis=-1)
        ilat, ilon = int(drivers["cell_ilat"][cell]), int(drivers["cell_ilon"][cell])
    assert x.shape == (pd.Period(month).days_in_month, 10)
    with torch.no_grad():
        daily = net(torch.from_numpy(x.astype(np.float32))).numpy().astype(np.float64)
    with xr.open_dataset(tiny_demo / "forward" / "EC.nc", engine=ENGINE) as ds:
        got = float(ds["nee"].sel(member=f"fold_{fold}", time=f"{month}-01")[ilat, ilon])
    assert got == pytest.approx(daily.mean(), rel=1e-5, abs=1e-5)


def test_nee_is_bitwise_the_computed_years(tiny_demo: Path, uninterrupted: Path) -> None:
    """The merge only moves values: every member, month and land cell is the year's result."""
    _assert_nee_is_the_computed_years(uninterrupted, tiny_demo, daily=False)


def test_daily_output_in_uneven_merge_blocks(
    tiny_demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Daily: 365/366 steps a year merged 50 at a time (the last block of a year shorter)."""
    monkeypatch.setattr(forward, "MERGE_STEPS", 50)
    out = _run(tiny_demo, tmp_path / "EC_daily.nc", daily=True)
    _assert_nee_is_the_computed_years(out, tiny_demo, daily=True)
    with xr.open_dataset(out, engine=ENGINE) as ds:
        assert ds.sizes["time"] == 365 + 366 + 365
        assert ds["nee_mean"].attrs["cell_methods"] == "time: point"
        _assert_ensemble_statistics(ds)


def test_ensemble_statistics_against_python_statistics(monkeypatch: pytest.MonkeyPatch) -> None:
    """Mean and population std of 7 members, in blocks of 5 columns (the last one shorter),
    against statistics.fmean/pstdev (exact float64 algorithms) rounded to float32; a NaN
    member value makes both NaN at that step and cell only."""
    monkeypatch.setattr(forward, "STATS_BLOCK", 7 * 5)
    rng = np.random.default_rng(3)
    # a large common offset and a small spread: a one-pass float32 variance would cancel
    values = (-40.0 + rng.normal(0.0, 0.05, size=(7, 4, 6))).astype(np.float32)
    values[2, 1, 3] = np.nan
    mean, std = ensemble_mean_std(values)
    assert mean.dtype == std.dtype == np.float32 and mean.shape == std.shape == (4, 6)
    for step in range(4):
        for cell in range(6):
            column = [float(v) for v in values[:, step, cell]]
            if (step, cell) == (1, 3):
                assert np.isnan(mean[step, cell]) and np.isnan(std[step, cell])
                continue
            assert mean[step, cell] == pytest.approx(statistics.fmean(column), rel=1e-6)
            assert std[step, cell] == pytest.approx(statistics.pstdev(column), rel=1e-6)
    assert np.isfinite(mean).sum() == 4 * 6 - 1
    same = np.repeat(values[:1], 3, axis=0)  # identical members: no spread at all
    assert (ensemble_mean_std(same)[1][np.isfinite(same[0])] == 0).all()


def test_run_forward_file_equals_forward_run(tiny_demo: Path, uninterrupted: Path) -> None:
    """`invoke forward` (run_forward, as the demo ran it) and forward_run write the same file."""
    _assert_identical(tiny_demo / "forward" / "EC.nc", uninterrupted)


@pytest.mark.parametrize("daily", [False, True])
def test_years_equal_the_stacked_reference_bitwise(tiny_demo: Path, daily: bool) -> None:
    """compute_year (DriverReader, carried days, summaries) against the path it replaced:
    each block stacked from xarray reads, then the same members and monthly sums, and
    the driver statistics taken with DriverRange.update on that stack."""
    path = tiny_demo / "data" / "drivers.nc"
    members, _ = _members(tiny_demo)
    drivers = _load(path)
    towers = _load(tiny_demo / "data" / "sites.nc")
    empty = DriverRange.of_towers(
        DRIVER_NAMES, np.stack([towers[n].values for n in DRIVER_NAMES], axis=-1)
    )
    times = pd.DatetimeIndex(drivers["time"].values)
    n_cells = drivers.sizes["cell"]
    plan = ForwardPlan(path, times, n_cells, cell_block=100, daily=daily)  # 100 + 100 + 84
    for year in plan.years:  # in order, so that the days carried over are used
        stats = copy.deepcopy(empty)
        got = compute_year(plan, members, year, CPU, stats=stats)
        if year == 2003:  # 2003-12-31 ends day 365 of a 366-day chunk: one day carried
            assert plan.carry.nbytes == n_cells * len(DRIVER_NAMES) * 4
        want_stats = copy.deepcopy(empty)
        days = times.year == year
        month = times[days].month
        starts = np.nonzero(np.r_[True, month[1:] != month[:-1]])[0]
        want = np.empty_like(got)
        for start in range(0, n_cells, 100):
            cells = slice(start, min(start + 100, n_cells))
            block = np.stack(
                [drivers[n].values[days, cells] for n in DRIVER_NAMES], axis=-1
            ).astype(np.float32)
            want_stats.update(block)
            nee = forward.run_members_on_block(members, block, CPU)
            if daily:
                want[:, :, cells] = nee
            else:
                sums = np.add.reduceat(nee.astype(np.float64), starts, axis=1)
                want[:, :, cells] = sums / np.diff(np.r_[starts, days.sum()])[None, :, None]
        np.testing.assert_array_equal(got.view(np.uint32), want.view(np.uint32))
        assert stats.to_json() == want_stats.to_json()
    assert plan.carry.nbytes == 0


# --- 2. kill and resume ---------------------------------------------------------------------


def test_killed_run_resumes_without_recomputing_written_years(
    tiny_demo: Path, uninterrupted: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = forward.compute_year
    calls: list[int] = []
    killed: list[int] = []

    def dies_once_in_second_year(
        plan: ForwardPlan,
        members: list[FoldedMember],
        year: int,
        device: torch.device,
        stats: object = None,
    ) -> np.ndarray:
        calls.append(year)
        if len(calls) == 2 and not killed:
            killed.append(year)
            raise SimulatedKill
        return real(plan, members, year, device, stats)

    monkeypatch.setattr(forward, "compute_year", dies_once_in_second_year)
    out = tmp_path / "EC.nc"
    parts = tmp_path / "EC.nc.parts"
    with pytest.raises(SimulatedKill):
        _run(tiny_demo, out)
    assert calls == [2003, 2004]
    assert not out.exists()
    assert sorted(p.name for p in parts.glob("*.nc")) == ["2003.nc"]
    with h5py.File(parts / "2003.nc", "r") as part:  # the year as computed: land cells only
        assert part["nee"].shape == (2, 12, _load(tiny_demo / "data" / "drivers.nc").sizes["cell"])
        assert part["nee"].compression is None, "parts are temporary: not compressed"
        assert part["nee_mean"].shape == part["nee_std"].shape == part["nee"].shape[1:]

    calls.clear()
    _run(tiny_demo, out)
    assert calls == [2004, 2005], "2003 was already written and must not be recomputed"
    assert not parts.exists(), "parts are removed after the merge"
    _assert_identical(out, uninterrupted)


def test_parts_of_other_members_are_not_reused(
    tiny_demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "EC.nc"
    data = CanonicalDataset(tiny_demo / "data")
    members, names = _members(tiny_demo)
    real = forward.compute_year
    calls: list[int] = []
    killed: list[int] = []

    def counting_then_dying(
        plan: ForwardPlan,
        members: list[FoldedMember],
        year: int,
        device: torch.device,
        stats: object = None,
    ) -> np.ndarray:
        calls.append(year)
        if year == 2004 and not killed:
            killed.append(year)
            raise SimulatedKill
        return real(plan, members, year, device, stats)

    monkeypatch.setattr(forward, "compute_year", counting_then_dying)
    with pytest.raises(SimulatedKill):
        forward_run(members, names, data, out, model_name="EC", progress=False)
    calls.clear()
    # same checkpoints in another order: a different ensemble, so 2003 is computed again
    forward_run(members[::-1], names[::-1], data, out, model_name="EC", progress=False)
    assert calls == [2003, 2004, 2005]
    with xr.open_dataset(out, engine=ENGINE) as ds:
        assert list(ds["member"].values) == ["fold_1", "fold_0"]


def _truncated(part: Path) -> None:
    part.write_bytes(part.read_bytes()[:200])  # damaged on disk after it was written


def _one_cell_short(part: Path) -> None:
    short = _load(part).isel(cell=slice(0, -1))  # readable, but it does not fit the run
    write_netcdf(short, part, action="test: one cell short", overwrite=True)


@pytest.mark.parametrize("damage", [_truncated, _one_cell_short], ids=["truncated", "short"])
def test_a_damaged_or_misshapen_part_is_recomputed(
    tiny_demo: Path,
    uninterrupted: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    damage: Callable[[Path], None],
) -> None:
    """A part that cannot be read, or a readable one whose arrays do not fit the run, is
    made again, not merged."""
    real = forward.compute_year
    calls: list[int] = []
    killed: list[int] = []

    def dies_in_2004(plan, members, year, device, stats=None):
        calls.append(year)
        if year == 2004 and not killed:
            killed.append(year)
            raise SimulatedKill
        return real(plan, members, year, device, stats)

    monkeypatch.setattr(forward, "compute_year", dies_in_2004)
    out = tmp_path / "EC.nc"
    with pytest.raises(SimulatedKill):
        _run(tiny_demo, out)
    damage(tmp_path / "EC.nc.parts" / "2003.nc")
    calls.clear()
    _run(tiny_demo, out)
    assert calls == [2003, 2004, 2005], "the 2003 part is made again, not merged"
    _assert_identical(out, uninterrupted)


def test_the_merge_refuses_a_part_changed_after_the_start(
    tiny_demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A part that no longer fits when it is merged: one line naming it, parts kept."""
    real = forward._write_part

    def writes_2005_short(part_dir, year, steps, values, member_names, stats):
        values = values[:, :, :-1] if year == 2005 else values
        real(part_dir, year, steps, values, member_names, stats)

    monkeypatch.setattr(forward, "_write_part", writes_2005_short)
    out = tmp_path / "EC.nc"
    with pytest.raises(FluxbridgeError, match=r"EC\.nc\.parts/2005\.nc: nee has shape"):
        _run(tiny_demo, out)
    assert not out.exists()
    assert (tmp_path / "EC.nc.parts" / "2005.nc").exists()


# --- provenance -----------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _inputs_of(path: Path) -> dict[str, str]:
    with xr.open_dataset(path, engine=ENGINE) as ds:
        return json.loads(ds.attrs["fluxbridge_inputs"])


def test_output_records_its_inputs_is_kept_when_current_and_refused_when_stale(
    tiny_demo: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_demo / "train" / "ec", run / "train" / "ec")
    run_forward(run, data=tiny_demo / "data")
    out = run / "forward" / "EC.nc"
    recorded = _inputs_of(out)
    assert recorded.pop("dataset") == tree_digest(tiny_demo / "data")
    assert recorded == {
        f"train/ec/fold_{k}/best.ckpt": _sha256(run / "train" / "ec" / f"fold_{k}" / "best.ckpt")
        for k in FOLDS
    }
    before = out.stat().st_mtime_ns
    run_forward(run, data=tiny_demo / "data")  # same dataset and members: kept as it is
    assert out.stat().st_mtime_ns == before

    # fold 1 retrained (here: given fold 0's weights) after the forward run
    ckpts = run / "train" / "ec"
    shutil.copy(ckpts / "fold_0" / "best.ckpt", ckpts / "fold_1" / "best.ckpt")
    with pytest.raises(
        FluxbridgeError, match=r"EC\.nc is stale: train/ec/fold_1/best\.ckpt changed"
    ):
        run_forward(run, data=tiny_demo / "data")
    assert out.stat().st_mtime_ns == before
    run_forward(run, data=tiny_demo / "data", force=True)
    assert _inputs_of(out)["train/ec/fold_1/best.ckpt"] == _sha256(ckpts / "fold_1" / "best.ckpt")
    with xr.open_dataset(out, engine=ENGINE) as ds:  # both members are now fold 0's network
        np.testing.assert_array_equal(ds["nee"].values[0], ds["nee"].values[1])


def test_forward_output_of_another_dataset_on_the_same_grid_is_stale(
    tiny_demo: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_demo / "train" / "ec", run / "train" / "ec")
    run_forward(run, data=tiny_demo / "data")
    other = tmp_path / "other"
    shutil.copytree(tiny_demo / "data", other)
    with xr.open_dataset(other / "reference.nc", engine=ENGINE) as ds:
        changed = (ds.load() * 1.0).assign_attrs(ds.attrs)
    changed["nee"] = changed["nee"] + 0.5
    (other / "reference.nc").unlink()
    write_netcdf(changed, other / "reference.nc", action="test: another reference")
    with pytest.raises(FluxbridgeError, match=r"EC\.nc is stale: dataset changed"):
        run_forward(run, data=other)


# --- 3. Dask --------------------------------------------------------------------------------


def test_dask_local_cluster_gives_identical_arrays(
    tiny_demo: Path, uninterrupted: Path, tmp_path: Path
) -> None:
    pytest.importorskip("distributed")
    out = _run(tiny_demo, tmp_path / "EC.nc", dask="local")
    _assert_identical(out, uninterrupted)


# --- 4. memory ------------------------------------------------------------------------------


def _tiled_drivers(source: Path, target: Path, factor: int) -> ForwardPlan:
    """A drivers file with the cells of ``source`` repeated ``factor`` times; its plan."""
    with xr.open_dataset(source, engine=ENGINE) as ds:
        tiled = xr.Dataset(
            {
                name: (("time", "cell"), np.tile(ds[name].values, (1, factor)))
                for name in DRIVER_NAMES
            },
            coords={"time": ds["time"].values},
        )
    write_netcdf(tiled, target, action="test: tiled drivers", compress=False)
    return ForwardPlan(
        drivers_path=target,
        times=pd.DatetimeIndex(tiled["time"].values),
        n_cells=tiled.sizes["cell"],
        cell_block=BLOCK,
        daily=False,
    )


def _traced_peak(plan: ForwardPlan, members: list[FoldedMember]) -> tuple[int, np.ndarray]:
    """Peak traced allocation (bytes) of compute_year for 2004 less its result; the result."""
    tracemalloc.start()
    try:
        result = compute_year(plan, members, 2004, CPU)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.shape == (len(members), 12, plan.n_cells)
    return peak - result.nbytes, result


def test_memory_of_a_year_does_not_grow_with_the_domain(tiny_demo: Path, tmp_path: Path) -> None:
    members, _ = _members(tiny_demo)
    source = tiny_demo / "data" / "drivers.nc"
    small = _tiled_drivers(source, tmp_path / "x1.nc", 1)
    large = _tiled_drivers(source, tmp_path / "x4.nc", 4)
    n = small.n_cells
    assert large.n_cells == 4 * n and n > 4 * BLOCK

    compute_year(small, members, 2004, CPU)  # warm-up: lazy imports and caches
    peak_small, _ = _traced_peak(small, members)
    peak_large, values = _traced_peak(large, members)
    # the tiled domain repeats its cells, so the last copy gets the NEE of the first
    np.testing.assert_array_equal(values[..., :n], values[..., 3 * n :])
    # a whole year of the 4× domain read at once would be 366 × 1136 × 10 × 4 B ≈ 16 MB on top
    assert peak_large <= 1.25 * peak_small, (peak_small, peak_large)


# --- 5. bad input ---------------------------------------------------------------------------


def test_run_without_checkpoints_is_refused(tiny_demo: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "train" / "ec" / "fold_0").mkdir(parents=True)
    with pytest.raises(FluxbridgeError, match=r"no trained members.*invoke train"):
        run_forward(run, data=tiny_demo / "data")
    assert not (run / "forward").exists()


def test_member_whose_training_did_not_finish_is_refused(tiny_demo: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_demo / "train" / "ec", run / "train" / "ec")
    (run / "train" / "ec" / "fold_1" / FINISHED_FILE).unlink()  # as after a kill mid-fit
    with pytest.raises(FluxbridgeError, match=r"fold_1: training of this member did not finish"):
        run_forward(run, data=tiny_demo / "data")
    assert not (run / "forward").exists()


def test_unknown_model_is_refused(tiny_demo: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "train").mkdir(parents=True)
    (run / "train" / "ec").symlink_to(tiny_demo / "train" / "ec")
    with pytest.raises(FluxbridgeError, match=r"no trained model\(s\) \['EC-XYZ'\]"):
        run_forward(run, data=tiny_demo / "data", models=["EC-XYZ"])
    assert not (run / "forward").exists()


def test_existing_output_is_refused_and_untouched(tiny_demo: Path, tmp_path: Path) -> None:
    out = tmp_path / "EC.nc"
    out.write_bytes(b"an earlier result")
    # a FluxbridgeError, so that `invoke forward` ends with a clean message, not a traceback
    with pytest.raises(FluxbridgeError, match=r"EC\.nc exists"):
        _run(tiny_demo, out)
    assert out.read_bytes() == b"an earlier result"
    assert not (tmp_path / "EC.nc.parts").exists()


def test_nan_driver_at_a_land_cell_names_file_driver_and_year(
    tiny_demo: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    for name in ("canonical.json", "grid.nc", "sites.nc"):
        shutil.copy(tiny_demo / "data" / name, data_dir / name)
    with xr.open_dataset(tiny_demo / "data" / "drivers.nc", engine=ENGINE) as ds:
        drivers = ds.load()
    drivers["Tair"][400, 17] = np.nan  # 400 days after 2003-01-01: 2004-02-05
    assert pd.Timestamp(drivers["time"].values[400]).year == 2004
    write_netcdf(drivers, data_dir / "drivers.nc", action="test: one NaN")

    out = tmp_path / "EC.nc"
    members, names = _members(tiny_demo)
    with pytest.raises(FluxbridgeError) as info:
        forward_run(
            members, names, CanonicalDataset(data_dir), out, model_name="EC", progress=False
        )
    message = str(info.value)
    assert str(data_dir / "drivers.nc") in message
    assert "'Tair'" in message and "2004" in message
    assert not out.exists()
    # documented: finished years stay in the parts folder so that a rerun resumes
    parts = tmp_path / "EC.nc.parts"
    assert sorted(p.name for p in parts.glob("*.nc")) == ["2003.nc"]


# --- plausibility ---------------------------------------------------------------------------


def test_cell_days_outside_the_towers_range_are_counted_in_the_file(tiny_demo: Path) -> None:
    drivers = _load(tiny_demo / "data" / "drivers.nc")
    sites = _load(tiny_demo / "data" / "sites.nc")
    expected = {}
    for name in DRIVER_NAMES:
        tower = sites[name].values
        lo, hi = np.nanmin(tower), np.nanmax(tower)
        pad = 0.1 * (hi - lo)
        cell = drivers[name].values
        count = int(((cell < lo - pad) | (cell > hi + pad)).sum())
        if count:
            expected[name] = count
    with xr.open_dataset(tiny_demo / "forward" / "EC.nc", engine=ENGINE) as ds:
        assert json.loads(ds.attrs["drivers_outside_training_range"]) == expected
    assert expected, "the tiny world has cells colder than any tower (Antarctica)"


def test_tair_in_kelvin_stops_forward_unless_allowed(tiny_demo: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(tiny_demo / "data", data)
    drivers = _load(data / "drivers.nc")
    drivers["Tair"] = drivers["Tair"] + 273.15  # kelvin, still labelled degC
    (data / "drivers.nc").unlink()
    write_netcdf(drivers, data / "drivers.nc", action="test: Tair in K")
    out = tmp_path / "EC.nc"
    with pytest.raises(FluxbridgeError, match=r"drivers\.nc, variable 'Tair': values .*kelvin"):
        forward_run(*_members(tiny_demo), CanonicalDataset(data), out, model_name="EC")
    assert not out.exists()
    forward_run(
        *_members(tiny_demo), CanonicalDataset(data), out, model_name="EC", allow_implausible=True
    )
    with xr.open_dataset(out, engine=ENGINE) as ds:
        outside = json.loads(ds.attrs["drivers_outside_training_range"])
    assert outside["Tair"] == drivers["Tair"].size  # every cell-day far above the towers' range
