"""One-against-many sensitivity on a copy of the tiny demo run (1 fold × 2 epochs per subset)."""

from __future__ import annotations

import calendar
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from fluxbridge import logs
from fluxbridge.data.canonical import TROPICAL_REGIONS
from fluxbridge.errors import ConfigError, FluxbridgeError
from fluxbridge.evaluation import sensitivity as sens
from fluxbridge.training.run_config import TrainRunConfig

MEMBERS = ["INV1", "INV2", "INV3", "INV4"]  # the tiny scenario's inversion ensemble
SIZES = [1, 2, 3, 4]


def copy_run(tiny_demo: Path, dst: Path) -> Path:
    """The shared demo run must stay untouched (other tests rerun it), so work on a copy
    (with its dataset: the training configs name it relative to the run)."""
    shutil.copytree(tiny_demo, dst, ignore=shutil.ignore_patterns("analysis_china"))
    return dst


@pytest.fixture(scope="module")
def sens_run(tiny_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = copy_run(tiny_demo, tmp_path_factory.mktemp("sens") / "run")
    assert sens.run_sensitivity(run, SIZES, seed=0, max_folds=1) == 0
    return run


def _data(run: Path) -> Path:
    return Path(TrainRunConfig.read(run / "train" / "ec-atm").data)


def _drawn(seed: int = 0) -> dict[int, list[sens.Subset]]:
    return sens.draw_subsets(MEMBERS, SIZES, seed)[0]


# -- drawing subsets ------------------------------------------------------------------


def test_subsets_reproducible_by_seed():
    drawn, skipped = sens.draw_subsets(MEMBERS, [3, 1, 2, 2, 4, 5], seed=7)
    assert drawn == sens.draw_subsets(MEMBERS, [1, 2, 3], seed=7)[0]
    assert skipped == [4, 5]
    # the draw of one size does not depend on the other sizes asked for
    assert sens.draw_subsets(MEMBERS, [2], seed=7)[0][2] == drawn[2]
    pairs = {sens.draw_subsets(MEMBERS, [2], seed=s)[0][2][0].members for s in range(10)}
    assert len(pairs) > 1  # the seed matters
    for k in (2, 3):
        (subset,) = drawn[k]
        assert len(set(subset.members)) == k
        assert list(subset.members) == [m for m in MEMBERS if m in subset.members]


def test_one_model_per_inversion_for_size_one():
    drawn, _ = sens.draw_subsets(MEMBERS, [1], seed=3)
    assert [s.members for s in drawn[1]] == [(m,) for m in MEMBERS]
    assert [s.model("bridge") for s in drawn[1]] == [f"EC-ATM-inv-{m}" for m in MEMBERS]


def test_size_one_trains_every_inversion_with_the_base_settings(sens_run):
    base = yaml.safe_load((sens_run / "train" / "ec-atm" / "config.yaml").read_text())
    for subset in [s for group in _drawn().values() for s in group]:
        directory = sens_run / "train" / f"ec-atm-inv-{subset.label}"
        cfg = yaml.safe_load((directory / "config.yaml").read_text())
        assert cfg["inversions"] == list(subset.members)
        assert cfg["train"] == base["train"]
        assert cfg["folds"] == base["folds"][:1]
        assert (directory / "fold_0" / "best.ckpt").exists()
        assert not (directory / "fold_1").exists()
        assert (sens_run / "forward" / f"EC-ATM-inv-{subset.label}.nc").exists()


# -- outputs ---------------------------------------------------------------------------


def test_sensitivity_nc_dims_and_sources(sens_run):
    with xr.open_dataset(sens_run / "evaluation" / "sensitivity.nc") as ds:
        msc = ds["msc"].load()
    assert msc.dims == ("source", "region", "month")
    assert msc.attrs["units"] == "Pg month-1"
    assert msc["month"].values.tolist() == list(range(1, 13))
    regions = [str(r) for r in msc["region"].values]
    tropical = [r for r in regions if r in TROPICAL_REGIONS]
    assert regions[0] == "GLOBAL" and regions[1 : 1 + len(tropical)] == tropical
    assert len(regions) == 19  # 18 RECCAP2 regions + GLOBAL
    expected = []
    for group in _drawn().values():
        for s in group:
            expected += [f"EC-ATM-inv-{s.label}", f"inversion_mean:{s.label}"]
    expected += ["EC-ATM", "inversion_mean"]
    assert [str(s) for s in msc["source"].values] == expected
    assert msc.sel(source="inversion_mean")["n_inversions"].item() == 4
    assert np.isfinite(msc.values).all()


def _regional_monthly_numpy(nee: np.ndarray, times: np.ndarray, grid: xr.Dataset, region):
    """Σ nee × area × land × region share × days × 1e-15 → PgC month-1 per month (by hand);
    region None = GLOBAL, whose share is the sum of every region's."""
    shares = np.nan_to_num(grid["region_fraction"].values)
    if region is None:
        share = shares.sum(axis=0)
    else:
        share = shares[[str(a) for a in grid["region_abbr"].values].index(region)]
    weight = grid["cell_area"].values * grid["land_fraction"].values * share
    days = np.array([calendar.monthrange(t.year, t.month)[1] for t in pd.DatetimeIndex(times)])
    return np.nansum(nee * weight, axis=(1, 2)) * days * 1e-15


def _msc_numpy(series: np.ndarray, times: np.ndarray) -> np.ndarray:
    months = pd.DatetimeIndex(times).month.to_numpy()
    return np.array([series[months == k].mean() for k in range(1, 13)])


@pytest.mark.parametrize("region", ["GLOBAL", "BRA", "EU"])
def test_msc_matches_numpy_from_forward_and_inversion_files(sens_run, region):
    (pair,) = _drawn()[2]
    data = _data(sens_run)
    with xr.open_dataset(data / "grid.nc") as ds:
        grid = ds.load()
    key = None if region == "GLOBAL" else region
    with xr.open_dataset(sens_run / "forward" / f"EC-ATM-inv-{pair.label}.nc") as fwd:
        nee = fwd["nee"].values.astype(np.float64).mean(axis=0)  # member mean, gC m-2 d-1
        times = fwd["time"].values
    model = _msc_numpy(_regional_monthly_numpy(nee, times, grid, key), times)
    with xr.open_dataset(data / "inversions.nc") as inv:
        members = [str(m) for m in inv["member"].values]
        values = inv["nee"].values
        inv_times = inv["time"].values
    chosen = [members.index(m) for m in pair.members]
    own = np.mean([_regional_monthly_numpy(values[i], inv_times, grid, key) for i in chosen], 0)
    everyone = np.mean([_regional_monthly_numpy(v, inv_times, grid, key) for v in values], 0)
    with xr.open_dataset(sens_run / "evaluation" / "sensitivity.nc") as ds:
        msc = ds["msc"].sel(region=region).load()
    expected = {
        f"EC-ATM-inv-{pair.label}": model,
        f"inversion_mean:{pair.label}": _msc_numpy(own, inv_times),
        "inversion_mean": _msc_numpy(everyone, inv_times),
    }
    for source, values in expected.items():
        np.testing.assert_allclose(msc.sel(source=source), values, rtol=1e-5, atol=1e-7)


def test_json_rmse_by_hand(sens_run):
    summary = json.loads((sens_run / "evaluation" / "sensitivity.json").read_text())
    assert summary["skipped_sizes"] == [4] and summary["sizes"] == [1, 2, 3]
    assert summary["seed"] == 0 and summary["folds"] == [0]
    assert set(summary["subsets"]) == {s.label for g in _drawn().values() for s in g}
    with xr.open_dataset(sens_run / "evaluation" / "sensitivity.nc") as ds:
        msc = ds["msc"].load()
    label = "INV3"
    scores = summary["subsets"][label]["regions"]["SEAS"]
    model = msc.sel(source=f"EC-ATM-inv-{label}", region="SEAS").values
    refs = {
        "msc_rmse_vs_subset_inversion_mean_pgc_month": f"inversion_mean:{label}",
        "msc_rmse_vs_full_inversion_mean_pgc_month": "inversion_mean",
        "msc_rmse_vs_full_ec_atm_pgc_month": "EC-ATM",
    }
    for key, source in refs.items():
        ref = msc.sel(source=source, region="SEAS").values
        assert scores[key] == pytest.approx(np.sqrt(np.mean((model - ref) ** 2)), rel=1e-5)


def test_figures_and_section(sens_run, tmp_path):
    for name in ("figC3_one.png", "figC4_two.png", "figC5_three.png"):
        assert (sens_run / "report" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    section = sens.sensitivity_section(sens_run)
    assert section is not None
    assert [Path(f[0]).name for f in section.figures] == [
        "figC3_one.png",
        "figC4_two.png",
        "figC5_three.png",
    ]
    (table,) = section.tables
    assert [row[0] for row in table.rows] == [s.label for g in _drawn().values() for s in g]
    assert sens.sensitivity_section(tmp_path) is None


def test_rerun_skips_trained_subsets_and_reproduces(sens_run, capsys):
    ckpt = sens_run / "train" / "ec-atm-inv-INV1" / "fold_0" / "best.ckpt"
    before = ckpt.stat().st_mtime_ns
    first = json.loads((sens_run / "evaluation" / "sensitivity.json").read_text())
    with logs.session():  # the console lines a user sees
        assert sens.run_sensitivity(sens_run, SIZES, seed=0, max_folds=1) == 0
    out = capsys.readouterr().out
    assert out.count("already trained, skipped") == 6
    assert "subset size 4 skipped" in out
    assert ckpt.stat().st_mtime_ns == before
    assert json.loads((sens_run / "evaluation" / "sensitivity.json").read_text()) == first


# -- bad input -------------------------------------------------------------------------


def test_run_without_ec_atm(tmp_path):
    with pytest.raises(FluxbridgeError, match=r"invoke train --model ec-atm"):
        sens.run_sensitivity(tmp_path, [1], seed=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sizes", [[0], [1, -2], []])
def test_bad_subset_sizes(tmp_path, sizes):
    with pytest.raises(ConfigError, match=r"subsets="):
        sens.run_sensitivity(tmp_path, sizes, seed=0)
    assert list(tmp_path.iterdir()) == []


def test_sizes_all_too_large_or_bad_fold_cap(tiny_demo, tmp_path):
    run = copy_run(tiny_demo, tmp_path / "run")
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    with pytest.raises(ConfigError, match=r"choose sizes 1\.\.3"):
        sens.run_sensitivity(run, [4, 6], seed=0)
    with pytest.raises(ConfigError, match=r"max_folds=5: choose 1\.\.2"):
        sens.run_sensitivity(run, [1], seed=0, max_folds=5)
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before


def test_subset_trained_with_other_settings_is_refused(tiny_demo, tmp_path):
    run = copy_run(tiny_demo, tmp_path / "run")
    other = run / "train" / "ec-atm-inv-INV1"
    other.mkdir(parents=True)
    cfg = yaml.safe_load((run / "train" / "ec-atm" / "config.yaml").read_text())
    cfg.update(inversions=["INV1"], train={**cfg["train"], "max_epochs": 7})
    (other / "config.yaml").write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=r"ec-atm-inv-INV1/config.yaml: train=.*remove"):
        sens.run_sensitivity(run, [1], seed=0, max_folds=1)
    assert not (run / "evaluation" / "sensitivity.json").exists()
