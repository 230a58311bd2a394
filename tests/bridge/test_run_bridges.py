"""run_bridges end to end on a tiny canonical dataset built here (grid.nc, reference.nc)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from joblib import parallel_backend
from sklearn.metrics import r2_score

from fluxbridge import logs
from fluxbridge.bridge import BridgeSet, build, cluster, lasso
from fluxbridge.bridge.build import (
    BridgeConfig,
    BridgeFallbackWarning,
    RegionData,
    build_region,
    region_inputs,
    run_bridges,
)
from fluxbridge.bridge.quadrature import RegionQuadrature, unit_vectors
from fluxbridge.errors import ConfigError, FluxbridgeError, SchemaError
from fluxbridge.geo.grid import Grid
from fluxbridge.io import write_netcdf

MONTHS = 48
GRID = Grid(np.linspace(-20, 20, 11), np.linspace(0, 40, 11))  # 10 x 10 cells of 4°
NAN_CELL = (3, 2)  # a land cell of AAA whose reference series is missing
MINORITY_CELL = (9, 4)  # 30 % of its land in AAA: counts in the target, never a candidate


def make_dataset(root: Path, grid: Grid = GRID) -> dict:
    rng = np.random.default_rng(0)
    nlat, nlon = GRID.shape
    land = np.ones((nlat, nlon))
    land[:, 9] = 0.0  # an ocean column
    land[5, 3] = 0.6  # a coastal cell
    rf = np.zeros((3, nlat, nlon))
    rf[0, :, :5] = 1.0
    rf[0, MINORITY_CELL[0], MINORITY_CELL[1]] = 0.3
    rf[1, 0:2, 6] = 1.0  # BBB: two pixels only
    # CCC: no land at all
    pft = rng.dirichlet(np.ones(3), size=(nlat, nlon)).transpose(2, 0, 1)
    region_id = np.where(rf.max(axis=0) > 0.5, rf.argmax(axis=0), -1)
    coords = {k: v.values for k, v in grid.coords().items()}
    grid_ds = xr.Dataset(
        {
            "cell_area": (("lat", "lon"), grid.cell_area().values, {"units": "m2"}),
            "land_fraction": (("lat", "lon"), land, {"units": "1"}),
            "pft_fraction": (("pft", "lat", "lon"), pft, {"units": "1"}),
            "region_fraction": (("region", "lat", "lon"), rf, {"units": "1"}),
            "region_id": (("lat", "lon"), region_id.astype(np.int32)),
            "region_abbr": ("region", np.array(["AAA", "BBB", "CCC"], dtype=object)),
            "region_name": ("region", np.array(["A land", "B land", "C sea"], dtype=object)),
        },
        coords={**coords, "pft": ["ENF", "GRA", "CRO"]},
    )
    months = np.arange(MONTHS)
    modes = np.stack(
        [np.sin(2 * np.pi * months / 12), np.cos(2 * np.pi * months / 12), 0.02 * (months - 24)]
    )
    loadings = rng.uniform(0.2, 1.5, size=(3, nlat, nlon))
    nee = (
        np.einsum("kt,kij->tij", modes, loadings)
        - 0.5
        + 0.05 * rng.normal(size=(MONTHS, nlat, nlon))
    )
    nee[:, land == 0] = np.nan
    nee[:, NAN_CELL[0], NAN_CELL[1]] = np.nan
    time = pd.date_range("2001-01-01", periods=MONTHS, freq="MS")
    ref = xr.Dataset(
        {"nee": (("time", "lat", "lon"), nee, {"units": "gC m-2 d-1"})},
        coords={"time": time, **{k: v.values for k, v in grid.coords().items()}},
    )
    root.mkdir(parents=True, exist_ok=True)
    write_netcdf(grid_ds, root / "grid.nc", action="test grid")
    write_netcdf(ref, root / "reference.nc", action="test reference")
    (root / "canonical.json").write_text(json.dumps({"schema_version": 1, "source": "test"}))
    return {"nee": nee, "land": land, "rf": rf, "area": GRID.cell_area().values, "time": time}


def config_file(path: Path, **overrides: object) -> Path:
    cfg = {"n_runs": 4, "n_jobs": 1, "k_folds": 4, "min_candidates": 5, "max_candidates": 20}
    cfg.update(overrides)
    path.write_text(yaml.safe_dump(cfg))
    return path


def target_by_hand(world: dict, r: int) -> np.ndarray:
    out = np.zeros(MONTHS)
    days = world["time"].days_in_month.values
    for t in range(MONTHS):
        for i, j in zip(*np.nonzero(world["rf"][r] * world["land"]), strict=True):
            if np.isfinite(world["nee"][t, i, j]):
                out[t] += (
                    world["nee"][t, i, j]
                    * world["area"][i, j]
                    * world["land"][i, j]
                    * world["rf"][r, i, j]
                    * days[t]
                    * 1e-15
                )
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict, list]:
    tmp = tmp_path_factory.mktemp("bridges")
    world = make_dataset(tmp / "data")
    cfg = config_file(tmp / "bridges.yaml")
    with pytest.warns(BridgeFallbackWarning) as record:
        assert run_bridges(tmp / "data", tmp / "run", cfg) == 0
    return tmp, cfg, world, [str(w.message) for w in record]


def test_every_region_reaches_threshold_or_is_flagged(built) -> None:
    tmp, _, world, messages = built
    bset = BridgeSet.load(tmp / "run" / "bridges.nc")
    assert bset.regions == ["AAA", "BBB"]  # CCC has no land
    assert any("CCC" in m and "no land cell" in m for m in messages)
    assert any("NaN at 1 land cells" in m for m in messages)
    assert any("BBB" in m and "area_weighted_mean" in m for m in messages)
    for br in bset.bridges:
        assert br.r2_train >= 0.95 or br.fallback != "none"
    aaa, bbb = bset["AAA"], bset["BBB"]
    assert aaa.fallback == "none" and 0 < len(aaa.cells) <= 20
    ref = xr.open_dataset(tmp / "data" / "reference.nc", engine="h5netcdf")["nee"]
    applied = bset.apply(ref)
    days = world["time"].days_in_month.values
    # the stored R² is that of the stored bridge against the by-hand regional integral per day
    assert r2_score(target_by_hand(world, 0) / days, applied.sel(region="AAA") / days) == (
        pytest.approx(aaa.r2_train, abs=1e-9)
    )
    # no free intercept; a uniform offset on land passes through at exactly its integral
    assert aaa.bias == 0.0
    land_area = world["area"] * world["land"] * world["rf"][0]  # m², minority cell included
    assert aaa.land_area == pytest.approx(land_area.sum(), rel=1e-12)
    offset = bset.apply(ref + 1.0).sel(region="AAA") - applied.sel(region="AAA")
    np.testing.assert_allclose(offset, land_area.sum() * days * 1e-15, rtol=1e-9)
    assert (NAN_CELL[0], NAN_CELL[1]) not in set(zip(aaa.ilat, aaa.ilon, strict=True))
    assert (MINORITY_CELL[0], MINORITY_CELL[1]) not in set(zip(aaa.ilat, aaa.ilon, strict=True))
    # BBB: area-weighted fallback; both pixels usable and nothing else in BBB, so with
    # per-day weights × days it is the exact integral
    assert bbb.fallback == "area_weighted_mean" and np.isnan(bbb.alpha)
    np.testing.assert_allclose(applied.sel(region="BBB"), target_by_hand(world, 1), rtol=1e-12)
    # cells index the canonical land cells (row-major)
    ilat, ilon = np.nonzero(world["land"] > 0)
    assert np.array_equal(ilat[bset.all_cells], bset._cell_ilat)
    assert np.array_equal(ilon[bset.all_cells], bset._cell_ilon)


def test_artefacts(built) -> None:
    tmp, _, world, _ = built
    run = tmp / "run"
    summary = pd.read_csv(run / "bridges_summary.csv")
    assert summary.columns.tolist() == [
        "region",
        "n_pixels",
        "n_candidates",
        "n_contributing",
        "alpha",
        "r2_train",
        "r2_cv",
        "stability",
        "fallback",
    ]
    assert summary["fallback"].tolist() == ["none", "area_weighted_mean", "no_pixels"]
    # AAA: 5 columns x 10 rows minus the minority cell; coastal and NaN cells are pixels
    assert summary.loc[0, "n_pixels"] == 49
    assert 0.0 <= summary.loc[0, "stability"] <= 1.0
    fidelity = pd.read_csv(run / "bridges_fidelity.csv")
    assert fidelity["field"].unique().tolist() == [
        "reference",
        "reference+offset",
        "reference+gradient",
    ]  # no truth.nc in this dataset
    assert fidelity["region"].unique().tolist() == ["AAA", "BBB"]
    offset = fidelity[fidelity["field"] == "reference+offset"].set_index("region")
    reference = fidelity[fidelity["field"] == "reference"].set_index("region")
    # the bridges pass the +1 offset through over the whole region; the exact integral
    # misses it on AAA's NaN cell (NaN + 1 counts as zero): 1 gC m-2 d-1 × its area × 365.25 d
    nan_cell = world["area"][NAN_CELL] * world["land"][NAN_CELL] * world["rf"][(0, *NAN_CELL)]
    change = offset["annual_bias_pgc_yr"] - reference["annual_bias_pgc_yr"]
    assert change["AAA"] == pytest.approx(nan_cell * 365.25 * 1e-15, rel=1e-4)
    assert change["BBB"] == pytest.approx(0.0, abs=1e-6)
    names = ("inclusion_map", "r2_by_region", "pft_contributing", "pft_by_region")
    for name in (*names, "bridges_fidelity"):
        assert (run / "figures" / f"{name}.png").stat().st_size > 1000
    resolved = yaml.safe_load((run / "bridges_config.yaml").read_text())
    assert resolved["n_runs"] == 4 and resolved["r2_threshold"] == 0.95
    freq = BridgeSet.load(run / "bridges.nc").inclusion_frequency
    assert np.nanmax(freq) <= 1.0 and np.isnan(freq[:, 9]).all()  # ocean never a candidate


def test_rerun_keeps_or_refuses(built, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    tmp, cfg, _, _ = built
    out = tmp / "run" / "bridges.nc"
    before = out.stat().st_mtime_ns
    # session first: pytest.warns must be the innermost to record the warning
    with logs.session(), pytest.warns(BridgeFallbackWarning, match="NaN at 1 land cells"):
        assert run_bridges(tmp / "data", tmp / "run", cfg) == 0
    assert "up to date" in capsys.readouterr().out
    assert out.stat().st_mtime_ns == before
    other = config_file(tmp_path / "c.yaml", seed=1, overwrite="never")
    with (
        pytest.raises(FluxbridgeError, match="overwrite='never'"),
        pytest.warns(BridgeFallbackWarning),
    ):
        run_bridges(tmp / "data", tmp / "run", other)
    with pytest.raises(ConfigError, match="'n_run'"):
        run_bridges(tmp / "data", tmp / "run", config_file(tmp_path / "d.yaml", n_run=3))
    with pytest.raises(ConfigError, match="r2_threshold"):
        run_bridges(tmp / "data", tmp / "run", config_file(tmp_path / "e.yaml", r2_threshold=2.0))


def test_paper_variant_is_reachable(built) -> None:
    tmp, _, world, _ = built
    paper = config_file(tmp / "paper.yaml", intercept=True, per_day=False, refit="none")
    with pytest.warns(BridgeFallbackWarning):
        assert run_bridges(tmp / "data", tmp / "paper_run", paper) == 0
    bset = BridgeSet.load(tmp / "paper_run" / "bridges.nc")
    assert bset.spec.per_day is False and bset.spec.intercept and bset.spec.refit == "none"
    aaa = bset["AAA"]
    assert aaa.bias != 0.0 and aaa.r2_train >= 0.95
    ref = xr.open_dataset(tmp / "data" / "reference.nc", engine="h5netcdf")["nee"]
    applied = bset.apply(ref).sel(region="AAA")
    # per-month basis: the stored R² is against the monthly integral itself
    assert r2_score(target_by_hand(world, 0), applied) == pytest.approx(aaa.r2_train, abs=1e-9)
    # BBB fallback with the mean month length (both pixels usable: no rescaling)
    by_hand = sum(world["nee"][:, i, 6] * world["area"][i, 6] * 365.25 / 12 * 1e-15 for i in (0, 1))
    np.testing.assert_allclose(bset.apply(ref).sel(region="BBB"), by_hand, rtol=1e-12)


def test_robustness_runs_reproducible_by_seed(built) -> None:
    tmp, _, _, _ = built
    cfg = BridgeConfig(n_runs=3, n_jobs=1, k_folds=4, min_candidates=5, max_candidates=20)
    with pytest.warns(BridgeFallbackWarning):
        regions, _ = region_inputs(tmp / "data", cfg)
    a = build_region(regions[0], cfg, 0)
    # two workers (threads here: same scheduling question, no process start-up in tests)
    with parallel_backend("threading"):
        b = build_region(regions[0], BridgeConfig(**{**cfg.__dict__, "n_jobs": 2}), 0)
    c = build_region(regions[0], BridgeConfig(**{**cfg.__dict__, "seed": 5}), 0)
    for ra, rb in zip(a.runs, b.runs, strict=True):
        assert np.array_equal(ra.columns, rb.columns)
        np.testing.assert_array_equal(ra.weights, rb.weights)
    assert any(
        not np.array_equal(ra.columns, rc.columns) for ra, rc in zip(a.runs, c.runs, strict=True)
    )


def test_mismatched_grid_is_refused(tmp_path: Path) -> None:
    make_dataset(tmp_path / "data")
    other = Grid(np.linspace(-20, 20, 11), np.linspace(4, 44, 11))
    shifted = xr.open_dataset(tmp_path / "data" / "reference.nc", engine="h5netcdf").load()
    shifted = shifted.assign_coords({k: v.values for k, v in other.coords().items()})
    write_netcdf(shifted, tmp_path / "data" / "reference.nc", action="shift", overwrite=True)
    with pytest.raises(SchemaError, match="grid differs"):
        run_bridges(tmp_path / "data", tmp_path / "run", None)
    assert not (tmp_path / "run").exists()


def test_default_config_file_matches_dataclass() -> None:
    from fluxbridge.bridge.build import load_config

    root = Path(__file__).resolve().parents[2]
    assert load_config(root / "configs" / "bridges" / "default.yaml") == BridgeConfig()


def test_dask_cluster_gives_the_in_process_bridges(tmp_path: Path) -> None:
    """bridges --dask on a 2-process LocalCluster on loopback: bitwise the in-process files."""
    import warnings

    distributed = pytest.importorskip("distributed")
    from fluxbridge.data.twin import run_twin

    data = tmp_path / "data"
    assert run_twin(Path(__file__).resolve().parents[2] / "configs/twin/tiny.yaml", data) == 0
    # in-process with a 2-job pool, on Dask one job per task: scheduling must not matter
    cfg = config_file(tmp_path / "b.yaml", n_jobs=2, figures=False)
    runs = {"here": tmp_path / "here", "dask": tmp_path / "dask"}
    caught = {}
    with warnings.catch_warnings(record=True) as caught["here"]:
        warnings.simplefilter("always")
        assert run_bridges(data, runs["here"], cfg) == 0
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        warnings.catch_warnings(record=True) as caught["dask"],
    ):
        warnings.simplefilter("always")
        assert run_bridges(data, runs["dask"], cfg, dask=cluster.scheduler_address) == 0
    here = xr.open_dataset(runs["here"] / "bridges.nc", engine="h5netcdf").load()
    there = xr.open_dataset(runs["dask"] / "bridges.nc", engine="h5netcdf").load()
    assert set(here.variables) == set(there.variables) and len(here.variables) > 3
    for name in here.variables:
        np.testing.assert_array_equal(here[name].values, there[name].values, err_msg=name)
    stamp = {"history"}  # the time of writing
    assert {k: v for k, v in here.attrs.items() if k not in stamp} == {
        k: v for k, v in there.attrs.items() if k not in stamp
    }
    for table in ("bridges_summary.csv", "bridges_fidelity.csv"):
        assert (runs["here"] / table).read_bytes() == (runs["dask"] / table).read_bytes()

    def fallbacks(record: list) -> list[str]:
        return sorted(str(w.message) for w in record if w.category is BridgeFallbackWarning)

    assert fallbacks(caught["here"]) == fallbacks(caught["dask"])


def test_period_total_and_spatial_prior(built) -> None:
    tmp, _, world, _ = built
    ref = xr.open_dataset(tmp / "data" / "reference.nc", engine="h5netcdf")["nee"]
    by_hand = target_by_hand(world, 0).sum()
    # default: spatial prior on; the bridge reproduces the reference's total over the months
    default = BridgeSet.load(tmp / "run" / "bridges.nc")
    aaa = default["AAA"]
    assert aaa.fallback == "none"
    assert float(default.apply(ref).sel(region="AAA").sum()) == pytest.approx(by_hand, rel=1e-9)
    with xr.open_dataset(tmp / "run" / "bridges.nc", engine="h5netcdf") as ds:
        assert float(ds.attrs["spatial_prior"]) == 1.0 and int(ds.attrs["period_total"]) == 1
    # without the prior: recorded, same constraints, other weights
    cfg = config_file(tmp / "no_prior.yaml", spatial_prior=0.0)
    with pytest.warns(BridgeFallbackWarning):
        assert run_bridges(tmp / "data", tmp / "no_prior_run", cfg) == 0
    with xr.open_dataset(tmp / "no_prior_run" / "bridges.nc", engine="h5netcdf") as ds:
        assert float(ds.attrs["spatial_prior"]) == 0.0
    bset = BridgeSet.load(tmp / "no_prior_run" / "bridges.nc")
    plain = bset["AAA"]
    assert plain.fallback == "none" and plain.r2_train >= 0.95
    assert plain.weights.sum() == pytest.approx(aaa.land_area * 1e-15, rel=1e-12)
    assert float(bset.apply(ref).sel(region="AAA").sum()) == pytest.approx(by_hand, rel=1e-9)
    same_cells = np.array_equal(np.sort(plain.cells), np.sort(aaa.cells))
    assert not same_cells or not np.allclose(plain.weights, aaa.weights)
    with pytest.raises(ConfigError, match="spatial_prior"):
        run_bridges(tmp / "data", tmp / "bad", config_file(tmp / "bad.yaml", spatial_prior=-1.0))


def synthetic_region(n_pixels: int = 320, months: int = 36, seed: int = 4) -> RegionData:
    """A region of ``n_pixels`` seasonal pixels on a 0.5° patch, target = their area sum."""
    rng = np.random.default_rng(seed)
    side = int(np.ceil(np.sqrt(n_pixels)))
    lat = 40.0 + 0.5 * (np.arange(n_pixels) // side)
    lon = 10.0 + 0.5 * (np.arange(n_pixels) % side)
    t = np.arange(months)
    phase = np.where(lon < lon.mean(), 0.0, 2.0) + 0.3 * rng.normal(size=n_pixels)
    noise = 0.05 * rng.normal(size=(months, n_pixels))
    x = 2.0 * np.sin(2 * np.pi * t[:, None] / 12 + phase) + noise
    area = rng.uniform(1e-5, 3e-5, n_pixels)
    days = np.tile([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], months // 12).astype(float)
    xyz = unit_vectors(lat, lon)
    return RegionData(
        abbr="SYN",
        x=x,
        y=x @ area,
        cells=np.arange(n_pixels),
        area_weights=area,
        n_pixels=n_pixels,
        land_area=float(area.sum() * 1e15),
        weight_sum=float(area.sum()),
        days=days,
        quadrature=RegionQuadrature(cell_xyz=xyz, cell_weight=area, pixel_xyz=xyz),
    )


def test_fast_paths_give_bitwise_the_public_computation(monkeypatch) -> None:
    """Direct coordinate descent, R², memoised Voronoi weights and the Lanczos eigengap
    against scikit-learn's Lasso and r2_score, fresh weights and the dense eigensolver."""
    region = synthetic_region()
    assert region.x.shape[1] >= cluster.LANCZOS_MIN_PIXELS  # the Lanczos path runs
    cfg = BridgeConfig(n_runs=3, n_jobs=1, spatial_prior=0.1, r2_threshold=0.9)
    fast = build_region(region, cfg, 2)
    monkeypatch.setattr(lasso, "enet_coordinate_descent", None)  # PathLasso → sklearn Lasso
    monkeypatch.setattr(lasso, "r2", lambda y, pred: float(r2_score(y, pred)))
    monkeypatch.setattr(build, "_memoised", lambda weights_of: weights_of)
    monkeypatch.setattr(cluster, "LANCZOS_MIN_PIXELS", 10**9)
    public = build_region(region, cfg, 2)
    assert fast.fallback == public.fallback == "none"
    for a, b in zip([fast.chosen, *fast.runs], [public.chosen, *public.runs], strict=True):
        assert np.array_equal(a.columns, b.columns)
        assert np.array_equal(a.weights, b.weights)
        assert (a.alpha, a.r2_train, a.r2_cv, a.reached) == (
            b.alpha,
            b.r2_train,
            b.r2_cv,
            b.reached,
        )
