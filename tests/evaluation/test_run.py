"""`invoke evaluate` on the tiny demo: regional series, metrics.json, report, bad input.

Expected numbers are recomputed here with numpy from the run's files: regional
integrals from the fields and exact cell areas computed from the cell edges,
annual means, a textbook NSE, and tower predictions of the held-out members
loaded from their checkpoints.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
import yaml

from fluxbridge.errors import FluxbridgeError
from fluxbridge.evaluation.run import evaluate_run, run_evaluate
from fluxbridge.io import ENGINE, write_netcdf
from fluxbridge.training.checkpoint import load_member

EARTH_RADIUS_M = 6_371_000.0  # the project's sphere (as CDO's)
FOLDS = (0, 1)  # the demo fixture trains 2 folds


def _open(path: Path) -> xr.Dataset:
    with xr.open_dataset(path, engine=ENGINE) as ds:
        return ds.load()


def exact_cell_area(grid: xr.Dataset) -> np.ndarray:
    """R² Δλ (sin φ2 − sin φ1) from the cell edges in grid.nc (m²)."""
    lat = np.deg2rad(grid["lat_bnds"].values)
    lon = np.deg2rad(grid["lon_bnds"].values)
    band = np.sin(lat[:, 1]) - np.sin(lat[:, 0])
    return EARTH_RADIUS_M**2 * np.outer(band, lon[:, 1] - lon[:, 0])


def integral_pgc_month(nee: np.ndarray, times: np.ndarray, weight_m2: np.ndarray) -> np.ndarray:
    """Σ nee × weight × days in month × 1e-15 per month; NaN cells must carry no weight."""
    days = pd.DatetimeIndex(times).days_in_month.to_numpy(dtype=np.float64)
    contribution = np.where(weight_m2 > 0, nee.astype(np.float64) * weight_m2, 0.0)
    return contribution.sum(axis=(1, 2)) * days * 1e-15


def _field(run: Path, source: str) -> tuple[np.ndarray, np.ndarray]:
    """(time, lat, lon) monthly NEE of a named source, read straight from the files."""
    data = run / "data"
    if source == "truth":
        ds = _open(data / "truth.nc")
        return ds["nee"].values, ds["time"].values
    if source == "inversion_mean":
        ds = _open(data / "inversions.nc")
        return ds["nee"].values.astype(np.float64).mean(axis=0), ds["time"].values
    model, _, member = source.partition(":")
    ds = _open(run / "forward" / f"{model}.nc")
    nee = ds["nee"].sel(member=member).values if member else ds["nee_mean"].values
    return nee, ds["time"].values


@pytest.fixture(scope="module")
def monthly(tiny_demo: Path) -> xr.DataArray:
    return _open(tiny_demo / "evaluation" / "regional_monthly.nc")["nee"]


@pytest.fixture(scope="module")
def metrics(tiny_demo: Path) -> dict:
    return json.loads((tiny_demo / "evaluation" / "metrics.json").read_text())


# --- regional_monthly.nc --------------------------------------------------------------------


@pytest.mark.parametrize("source", ["truth", "EC", "EC-ATM:fold_1", "inversion_mean"])
@pytest.mark.parametrize("region", ["GLOBAL", "BRA", "EU"])
def test_regional_series_is_the_integral_of_the_field(
    tiny_demo: Path, monthly: xr.DataArray, source: str, region: str
) -> None:
    grid = _open(tiny_demo / "data" / "grid.nc")
    area = exact_cell_area(grid)
    np.testing.assert_allclose(grid["cell_area"].values, area, rtol=1e-12)
    land = grid["land_fraction"].values
    weight = area * land
    if region != "GLOBAL":
        index = [str(a) for a in grid["region_abbr"].values].index(region)
        weight = weight * grid["region_fraction"].values[index]
    nee, times = _field(tiny_demo, source)
    expected = integral_pgc_month(nee, times, weight)
    got = monthly.sel(source=source, region=region)
    np.testing.assert_array_equal(got["time"].values, times)
    assert monthly.attrs["units"] == "PgC month-1"
    np.testing.assert_allclose(got.values, expected, rtol=1e-10, atol=1e-12)
    assert np.abs(expected).max() > 1e-3  # a real signal, not zeros compared with zeros


def test_regional_sources_and_regions(tiny_demo: Path, monthly: xr.DataArray) -> None:
    grid = _open(tiny_demo / "data" / "grid.nc")
    inversions = _open(tiny_demo / "data" / "inversions.nc")
    members = [f"inversion:{m}" for m in inversions["member"].values]
    expected = [
        *["EC", "EC:fold_0", "EC:fold_1", "EC-ATM", "EC-ATM:fold_0", "EC-ATM:fold_1"],
        *members,
        "inversion_mean",
        "reference",
        "truth",
    ]
    assert sorted(monthly["source"].values.tolist()) == sorted(expected)
    regions = [*(str(a) for a in grid["region_abbr"].values), "GLOBAL"]
    assert monthly["region"].values.tolist() == regions


# --- metrics.json ---------------------------------------------------------------------------


def test_metrics_top_level_keys(metrics: dict) -> None:
    assert set(metrics) == {"models", "global", "regions", "sites", "pixels", "truth"}
    assert metrics["models"] == ["EC", "EC-ATM"]
    assert (
        set(metrics["sites"])
        == set(metrics["pixels"])
        == set(metrics["truth"])
        == {
            "EC",
            "EC-ATM",
        }
    )


def _annual(monthly: xr.DataArray, source: str) -> np.ndarray:
    series = monthly.sel(source=source, region="GLOBAL").values
    return series.reshape(-1, 12).sum(axis=1)  # 2003–2005, complete years


@pytest.mark.parametrize("model", ["EC", "EC-ATM"])
def test_global_annual_numbers(monthly: xr.DataArray, metrics: dict, model: str) -> None:
    entry = metrics["global"][model]
    annual = _annual(monthly, model)
    assert metrics["global"]["years"] == [2003, 2004, 2005]
    assert entry["annual_pgc_yr"] == pytest.approx(annual.tolist(), rel=1e-5)
    assert entry["annual_mean_pgc_yr"] == pytest.approx(annual.mean(), rel=1e-5)
    member_means = [_annual(monthly, f"{model}:fold_{k}").mean() for k in FOLDS]
    assert entry["annual_mean_member_std_pgc_yr"] == pytest.approx(np.std(member_means), rel=1e-5)
    truth = _annual(monthly, "truth")
    bias = metrics["truth"][model]["global_annual_bias_pgc_yr"]
    assert bias == pytest.approx(np.mean(annual - truth), rel=1e-5)


@pytest.mark.parametrize("region", ["EU", "BRA", "GLOBAL"])
def test_nnse_is_textbook_nash_sutcliffe(monthly: xr.DataArray, metrics: dict, region: str) -> None:
    sim = monthly.sel(source="EC", region=region).values
    obs = monthly.sel(source="inversion_mean", region=region).values
    nse = 1.0 - np.sum((sim - obs) ** 2) / np.sum((obs - obs.mean()) ** 2)
    assert metrics["regions"][region]["EC"]["nnse"] == pytest.approx(1.0 / (2.0 - nse), rel=1e-5)
    rmse = np.sqrt(np.mean((sim - obs) ** 2))
    assert metrics["regions"][region]["EC"]["monthly_rmse_pgc_month"] == pytest.approx(
        rmse, rel=1e-5
    )


def test_site_scores_use_the_held_out_member(tiny_demo: Path, metrics: dict) -> None:
    sites = _open(tiny_demo / "data" / "sites.nc")
    observed = sites["nee_obs"].values.astype(np.float64)
    predicted = np.full_like(observed, np.nan)
    for fold in FOLDS:
        net = load_member(tiny_demo / "train" / "ec" / f"fold_{fold}" / "best.ckpt")
        rows = sites["fold"].values == fold
        x = np.stack([sites[name].values[rows] for name in net.driver_names], axis=-1)
        with torch.no_grad():
            predicted[rows] = net(torch.from_numpy(x.astype(np.float32))).numpy()
    keep = np.isfinite(predicted) & np.isfinite(observed)
    assert keep.sum() > 100
    p, o = predicted[keep], observed[keep]
    site = metrics["sites"]["EC"]
    assert site["n"] == int(keep.sum())
    assert site["rmse"] == pytest.approx(np.sqrt(np.mean((p - o) ** 2)), rel=1e-5)
    assert site["r"] == pytest.approx(np.corrcoef(p, o)[0, 1], rel=1e-5)


# --- report ---------------------------------------------------------------------------------


def test_report_files_and_every_referenced_figure_exist(tiny_demo: Path) -> None:
    report = tiny_demo / "report"
    markdown = (report / "report.md").read_text()
    html = (report / "index.html").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)\s]+\.png)\)", markdown)
    for figure in ("fig2_global_annual", "fig3_nnse", "fig4_msc", "fig5_annual_mean", "fig8_sites"):
        assert f"{figure}.png" in figures
    for name in set(figures) | set(re.findall(r'src="([^"]+\.png)"', html)):
        path = report / name
        assert path.is_file(), name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "Truth scorecard" in markdown


# --- bad input ------------------------------------------------------------------------------


def _run_copy(tiny_demo: Path, root: Path, data: Path | None = None) -> Path:
    """A run with the demo's members; their configs point at ``data`` when given."""
    run = root / "run"
    if data is None:
        (run / "train").mkdir(parents=True)
        for model in ("ec", "ec-atm"):
            (run / "train" / model).symlink_to(tiny_demo / "train" / model)
        return run
    shutil.copytree(tiny_demo / "train", run / "train")
    for config in (run / "train").glob("*/config.yaml"):
        content = yaml.safe_load(config.read_text())
        content["data"] = str(data)
        config.write_text(yaml.safe_dump(content))
    return run


def _assert_no_outputs(run: Path) -> None:
    written = [p for d in ("evaluation", "report") for p in (run / d).rglob("*") if p.is_file()]
    assert written == []


def test_evaluate_without_forward_outputs_is_refused(tiny_demo: Path, tmp_path: Path) -> None:
    run = _run_copy(tiny_demo, tmp_path)
    with pytest.raises(FluxbridgeError, match=r"forward output missing.*EC\.nc.*invoke forward"):
        run_evaluate(run)
    _assert_no_outputs(run)


def test_forward_file_on_another_grid_is_refused_naming_it(tiny_demo: Path, tmp_path: Path) -> None:
    run = _run_copy(tiny_demo, tmp_path)
    for model in ("EC", "EC-ATM"):
        coarse = _open(tiny_demo / "forward" / f"{model}.nc").coarsen(lat=2, lon=2).mean()
        write_netcdf(coarse, run / "forward" / f"{model}.nc", action="test: 20° grid")
    with pytest.raises(FluxbridgeError) as info:
        evaluate_run(run)
    message = str(info.value)
    assert str(run / "forward" / "EC.nc") in message and "grid" in message
    _assert_no_outputs(run)


def test_dataset_without_inversions_is_refused_naming_the_file(
    tiny_demo: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for path in (tiny_demo / "data").iterdir():
        if path.name != "inversions.nc":
            (data / path.name).symlink_to(path)
    run = _run_copy(tiny_demo, tmp_path, data)
    (run / "forward").symlink_to(tiny_demo / "forward")
    with pytest.raises(FluxbridgeError, match=r"inversions\.nc.*not found"):
        evaluate_run(run)
    _assert_no_outputs(run)
