"""`invoke evaluate` on the tiny demo: regional series, metrics.json, report, bad input.

Expected numbers are recomputed here with numpy from the run's files: regional
integrals from the fields and exact cell areas computed from the cell edges,
annual means, a textbook NSE, tower predictions of the held-out members loaded
from their checkpoints, and map correlations with numpy's weighted covariance.
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

from fluxbridge.data.canonical import DRIVER_NAMES, CanonicalDataset
from fluxbridge.errors import FluxbridgeError
from fluxbridge.evaluation.report import _data_checks_section
from fluxbridge.evaluation.run import (
    check_model_totals,
    evaluate_run,
    held_out_years,
    run_evaluate,
)
from fluxbridge.inference.forward import current_forward
from fluxbridge.io import ENGINE, write_netcdf
from fluxbridge.plausibility import ImplausibleError
from fluxbridge.training.checkpoint import load_member

EARTH_RADIUS_M = 6_371_000.0  # the project's sphere (as CDO's)
FOLDS = (0, 1)  # the demo fixture trains 2 folds
TROPICAL = ("NSA", "BRA", "EQAF", "SEAS")  # Upton's tropical regions, as the brief lists them
DAYS_PER_YEAR = 365.25


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


def _share(grid: xr.Dataset, region: str) -> np.ndarray:
    """Each cell's land share in ``region``; GLOBAL = the sum over the dataset's regions,
    NO_REGION = what they leave, clipped at 0."""
    shares = np.nan_to_num(grid["region_fraction"].values)
    if region == "GLOBAL":
        return shares.sum(axis=0)
    if region == "NO_REGION":
        return np.clip(1.0 - shares.sum(axis=0), 0.0, None)
    return shares[[str(a) for a in grid["region_abbr"].values].index(region)]


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
    weight = area * grid["land_fraction"].values * _share(grid, region)
    nee, times = _field(tiny_demo, source)
    expected = integral_pgc_month(nee, times, weight)
    got = monthly.sel(source=source, region=region)
    np.testing.assert_array_equal(got["time"].values, times)
    assert monthly.attrs["units"] == "Pg month-1"
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
    regions = [*(str(a) for a in grid["region_abbr"].values), "GLOBAL", "NO_REGION"]
    assert monthly["region"].values.tolist() == regions


def test_global_is_the_sum_of_the_18_regions(monthly: xr.DataArray) -> None:
    single = [r for r in monthly["region"].values if r not in ("GLOBAL", "NO_REGION")]
    assert len(single) == 18
    np.testing.assert_allclose(
        monthly.sel(region="GLOBAL").values,
        monthly.sel(region=single).sum("region").values,
        rtol=1e-10,
    )


def test_no_region_holds_the_land_no_region_claims(tiny_demo: Path, monthly: xr.DataArray) -> None:
    grid = _open(tiny_demo / "data" / "grid.nc")
    weight = exact_cell_area(grid) * grid["land_fraction"].values * _share(grid, "NO_REGION")
    nee, times = _field(tiny_demo, "EC")
    np.testing.assert_allclose(
        monthly.sel(source="EC", region="NO_REGION").values,
        integral_pgc_month(nee, times, weight),
        atol=1e-12,
    )


# --- metrics.json ---------------------------------------------------------------------------


def test_metrics_record_the_digests_of_their_inputs(tiny_demo: Path, metrics: dict) -> None:
    import hashlib

    from fluxbridge.outputs import tree_digest

    forward = {
        f"forward/{m}.nc": hashlib.sha256((tiny_demo / "forward" / f"{m}.nc").read_bytes())
        for m in ("EC", "EC-ATM")
    }
    assert metrics["inputs"] == {
        "dataset": tree_digest(tiny_demo / "data"),
        **{k: h.hexdigest() for k, h in forward.items()},
    }


def test_data_checks_count_tower_days_left_out(tiny_demo: Path, metrics: dict) -> None:
    sites = _open(tiny_demo / "data" / "sites.nc")
    obs = np.isfinite(sites["nee_obs"].values)
    nan_driver = np.zeros_like(obs)
    for name in DRIVER_NAMES:
        nan_driver |= ~np.isfinite(sites[name].values)
    checks = metrics["data_checks"]
    assert checks["tower_days_with_nee"] == obs.sum()
    assert checks["tower_days_left_out_nan_driver"] == (obs & nan_driver).sum()
    with xr.open_dataset(tiny_demo / "forward" / "EC.nc", engine=ENGINE) as ds:
        recorded = json.loads(ds.attrs["drivers_outside_training_range"])
    assert checks["cell_days_outside_towers_range"]["EC"] == recorded
    inv_months = _open(tiny_demo / "data" / "inversions.nc")["time"].values
    years = sorted({int(str(t)[:4]) for t in inv_months})
    assert checks["inversion_months"] == len(inv_months) == 12 * len(years)
    assert (checks["inversion_months_left_out"], checks["atm_years"]) == (0, years)
    assert checks["land_cell_months_filled_with_zero"] == {}  # a twin: nothing prepared
    markdown = (tiny_demo / "report" / "report.md").read_text()
    section = markdown[markdown.index("## Data checks") :]
    assert f"Months: 0 of {len(inv_months)} inversion months (0 %) left out" in section
    assert "Cells: land cell-months a product left empty and prepare set to 0: none" in section
    assert checks["models_opposite_sign_to_residual_sink"] == {}
    assert "Sign: every model's global NEE has the residual sink's sign." in section


def test_data_checks_section_states_what_was_dropped_and_where() -> None:
    section = _data_checks_section(
        {
            "tower_days_with_nee": 2000,
            "tower_days_left_out_nan_driver": 50,
            "inversion_months": 36,
            "inversion_months_left_out": 12,
            "inversion_years_left_out": [2003],
            "atm_years": [2001, 2002],
            "land_cell_months_filled_with_zero": {"CAMS": 0.0125, "fire": 0.0},
            "cell_days_outside_towers_range": {"EC": {"Tair": 7}},
            "models_opposite_sign_to_residual_sink": {"EC": 12.24},
        }
    )
    text = " ".join(section.paragraphs)
    assert "Tower-days: 50 of 2,000 with NEE (2.5 %) left out" in text
    assert (
        "Months: 12 of 36 inversion months (33.3 %) left out of the ATM loss: the year(s) [2003]"
        in text
    )
    assert "CAMS 1.25 %, fire 0 %" in text
    assert "where the network extrapolates: see the table." in text
    assert section.tables[0].rows == [["EC", "Tair", 7]]
    assert "Sign: EC +12.2 PgC/yr of global NEE, the opposite sign of the residual sink" in text


def _global_annual_pgc(path: Path, grid: xr.Dataset) -> float:
    """Σ nee_mean × cell area × land fraction × days, per year, averaged over years (PgC)."""
    ds = _open(path)
    weight = exact_cell_area(grid) * grid["land_fraction"].values
    monthly = integral_pgc_month(ds["nee_mean"].values, ds["time"].values, weight)
    years = pd.DatetimeIndex(ds["time"].values).year
    return float(pd.Series(monthly).groupby(years).sum().mean())


def test_a_model_of_the_other_sign_is_scored_and_a_units_error_refused(
    tiny_demo: Path, tmp_path: Path
) -> None:
    """A model that is a net source (EC on towers biased towards sources) is a result, not
    a flipped convention: evaluation records it; ×1000 (kg read as g) is still refused."""
    data = CanonicalDataset(tiny_demo / "data")
    grid = _open(tiny_demo / "data" / "grid.nc")
    ec = _open(tiny_demo / "forward" / "EC.nc")
    source = tmp_path / "EC.nc"
    write_netcdf(ec.assign(nee_mean=-ec["nee_mean"]), source, action="test: sign flipped")
    expected = _global_annual_pgc(source, grid)
    assert expected > 0.5  # a net source: the tiny demo's EC is a sink
    opposite = check_model_totals(
        data, {"EC": source, "EC-ATM": tiny_demo / "forward" / "EC-ATM.nc"}
    )
    assert list(opposite) == ["EC"]
    assert opposite["EC"] == pytest.approx(expected, rel=1e-3)  # edges vs the grid's cell_area
    thousandfold = tmp_path / "EC-kg.nc"
    write_netcdf(ec.assign(nee_mean=ec["nee_mean"] * 1000.0), thousandfold, action="test: ×1000")
    with pytest.raises(
        ImplausibleError, match=rf"{re.escape(str(thousandfold))}.*outside the plausible"
    ):
        check_model_totals(data, {"EC": thousandfold})


def test_metrics_top_level_keys(metrics: dict) -> None:
    assert set(metrics) == {
        "models",
        "global",
        "regions",
        "held_out_years",
        "regions_held_out_years",
        "sites",
        "pixels",
        "truth",
        "inputs",
        "data_checks",
    }
    assert metrics["models"] == ["EC", "EC-ATM"]
    assert set(metrics["sites"]) == set(metrics["pixels"]) == {"EC", "EC-ATM"}
    assert set(metrics["truth"]) == {"EC", "EC-ATM", "inversion_mean"}


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


def _tower_predictions(run: Path, model_dir: str) -> np.ndarray:
    """(site, time) daily NEE, each tower predicted by the checkpoint of its held-out fold."""
    sites = _open(run / "data" / "sites.nc")
    predicted = np.full(sites["nee_obs"].shape, np.nan)
    for fold in FOLDS:
        net = load_member(run / "train" / model_dir / f"fold_{fold}" / "best.ckpt")
        rows = sites["fold"].values == fold
        x = np.stack([sites[name].values[rows] for name in net.driver_names], axis=-1)
        with torch.no_grad():
            predicted[rows] = net(torch.from_numpy(x.astype(np.float32))).numpy()
    return predicted


def test_site_scores_use_the_held_out_member(tiny_demo: Path, metrics: dict) -> None:
    observed = _open(tiny_demo / "data" / "sites.nc")["nee_obs"].values.astype(np.float64)
    predicted = _tower_predictions(tiny_demo, "ec")
    keep = np.isfinite(predicted) & np.isfinite(observed)
    assert keep.sum() > 100
    p, o = predicted[keep], observed[keep]
    site = metrics["sites"]["EC"]
    assert site["n"] == int(keep.sum())
    assert site["rmse"] == pytest.approx(np.sqrt(np.mean((p - o) ** 2)), rel=1e-5)
    assert site["r"] == pytest.approx(np.corrcoef(p, o)[0, 1], rel=1e-5)


def test_site_rmse_without_the_biased_towers(tiny_demo: Path, metrics: dict) -> None:
    sites = _open(tiny_demo / "data" / "sites.nc")
    biased = sites["site_tropical"].values == 1
    assert 0 < biased.sum() < biased.size  # the scenario biases some towers, not all
    predicted = _tower_predictions(tiny_demo, "ec-atm")[~biased]
    observed = sites["nee_obs"].values[~biased]
    keep = np.isfinite(predicted) & np.isfinite(observed)
    expected = np.sqrt(np.mean((predicted[keep] - observed[keep]) ** 2))
    got = metrics["truth"]["EC-ATM"]["site_rmse_vs_obs_unbiased_gc_m2_d"]
    assert got == pytest.approx(expected, rel=1e-5)
    assert "site_rmse_vs_obs_unbiased_gc_m2_d" not in metrics["truth"]["inversion_mean"]


# --- truth scores (twin world) --------------------------------------------------------------


def _mean_annual_map(nee: np.ndarray) -> np.ndarray:
    """(time, lat, lon) monthly gC m-2 d-1 over whole years → mean of the months × 365.25 d."""
    return nee.astype(np.float64).mean(axis=0) * DAYS_PER_YEAR


def _weighted_r(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> float:
    keep = (w > 0) & np.isfinite(x) & np.isfinite(y)
    c = np.cov(x[keep], y[keep], aweights=w[keep])
    return float(c[0, 1] / np.sqrt(c[0, 0] * c[1, 1]))


@pytest.mark.parametrize("source", ["EC-ATM", "inversion_mean"])
@pytest.mark.parametrize("region", ["BRA", "EU"])
def test_within_region_spatial_r_from_the_files(
    tiny_demo: Path, metrics: dict, source: str, region: str
) -> None:
    grid = _open(tiny_demo / "data" / "grid.nc")
    weight = exact_cell_area(grid) * grid["land_fraction"].values * _share(grid, region)
    model = _mean_annual_map(_field(tiny_demo, source)[0])
    truth = _mean_annual_map(_field(tiny_demo, "truth")[0])
    expected = _weighted_r(model, truth, weight)
    entry = metrics["truth"][source]
    assert entry["within_region_spatial_r"][region] == pytest.approx(expected, rel=1e-4)
    values = list(entry["within_region_spatial_r"].values())
    assert len(values) == 18
    assert entry["within_region_spatial_r_median"] == pytest.approx(np.median(values), rel=1e-5)


def _annual_numpy(run: Path, source: str, region: str) -> np.ndarray:
    grid = _open(run / "data" / "grid.nc")
    weight = exact_cell_area(grid) * grid["land_fraction"].values * _share(grid, region)
    nee, times = _field(run, source)
    return integral_pgc_month(nee, times, weight).reshape(-1, 12).sum(axis=1)


def _vs_truth(run: Path, source: str, region: str) -> tuple[np.ndarray, np.ndarray]:
    return _annual_numpy(run, source, region), _annual_numpy(run, "truth", region)


def _iav(annual: np.ndarray) -> float:
    years = np.arange(annual.size, dtype=np.float64)
    fit = np.polynomial.Polynomial.fit(years, annual, 1)
    return float(np.std(annual - fit(years)))


@pytest.mark.parametrize("source", ["EC", "inversion_mean"])
def test_regional_and_global_truth_scores_from_the_files(
    tiny_demo: Path, metrics: dict, source: str
) -> None:
    entry = metrics["truth"][source]
    rmse = {}
    for region in TROPICAL:
        sim, truth = _vs_truth(tiny_demo, source, region)
        rmse[region] = np.sqrt(np.mean((sim - truth) ** 2))
        assert entry["regional_annual_rmse_pgc_yr"][region] == pytest.approx(rmse[region], rel=1e-4)
        assert entry["iav_ratio"][region] == pytest.approx(_iav(sim) / _iav(truth), rel=1e-4)
    assert entry["tropical_annual_rmse_pgc_yr"] == pytest.approx(
        np.mean(list(rmse.values())), rel=1e-4
    )
    sim, truth = _vs_truth(tiny_demo, source, "GLOBAL")
    assert entry["iav_ratio_global"] == pytest.approx(_iav(sim) / _iav(truth), rel=1e-4)
    assert entry["global_annual_rmse_pgc_yr"] == pytest.approx(
        np.sqrt(np.mean((sim - truth) ** 2)), rel=1e-4
    )
    extra = [
        r
        for r in entry["regional_monthly_rmse_pgc_month"]
        if r not in (*TROPICAL, "GLOBAL", "NO_REGION")
    ]
    assert len(extra) == 14
    assert entry["extratropical_monthly_rmse_pgc_month"] == pytest.approx(
        np.mean([entry["regional_monthly_rmse_pgc_month"][r] for r in extra]), rel=1e-5
    )
    no_region = _annual_numpy(tiny_demo, source, "NO_REGION").mean()
    assert entry["no_region_annual_pgc_yr"] == pytest.approx(no_region, abs=1e-9)


def test_iav_excess_by_region_sums_to_the_global_iav_difference(metrics: dict) -> None:
    entry = metrics["truth"]["EC-ATM"]
    own = metrics["global"]["EC-ATM"]["iav_magnitude_pgc_yr"]
    true = metrics["global"]["truth"]["iav_magnitude_pgc_yr"]
    parts = entry["iav_excess_variance_by_region_pgc2_yr2"]
    assert len(parts) == 18
    assert sum(parts.values()) == pytest.approx(own**2 - true**2, rel=1e-3, abs=1e-6)


def test_anomaly_r2_against_the_inversion_mean(monthly: xr.DataArray, metrics: dict) -> None:
    sim, obs = _annual(monthly, "EC-ATM"), _annual(monthly, "inversion_mean")
    years = np.arange(sim.size, dtype=np.float64)
    residual = [a - np.polynomial.Polynomial.fit(years, a, 1)(years) for a in (sim, obs)]
    r = np.corrcoef(*residual)[0, 1]
    assert metrics["global"]["EC-ATM"]["anomaly_r2_vs_inversion_mean"] == pytest.approx(
        r**2, rel=1e-4
    )


# --- held-out years -------------------------------------------------------------------------


def test_held_out_years_scores_use_those_years_alone(
    tiny_demo: Path, monthly: xr.DataArray, metrics: dict
) -> None:
    files = sorted((tiny_demo / "train" / "ec-atm").glob("fold_*/atm_years.json"))
    assert len(files) == len(FOLDS)
    years = json.loads(files[0].read_text())["val"]
    assert metrics["held_out_years"]["EC-ATM"] == years
    keep = monthly["time"].dt.year.isin(years).values
    assert 0 < keep.sum() < keep.size
    sim = monthly.sel(source="EC-ATM", region="BRA").values[keep]
    obs = monthly.sel(source="inversion_mean", region="BRA").values[keep]
    got = metrics["regions_held_out_years"]["BRA"]["EC-ATM"]["monthly_rmse_pgc_month"]
    assert got == pytest.approx(np.sqrt(np.mean((sim - obs) ** 2)), rel=1e-5)
    assert set(metrics["regions_held_out_years"]) == set(metrics["regions"])


def _fake_model(run: Path, folds: dict[int, object]) -> None:
    for fold, years in folds.items():
        fold_dir = run / "train" / "ec-atm" / f"fold_{fold}"
        fold_dir.mkdir(parents=True)
        (fold_dir / "best.ckpt").touch()
        if years is not None:
            (fold_dir / "atm_years.json").write_text(json.dumps(years))


def test_held_out_years_absent_disagreeing_or_malformed(tmp_path: Path) -> None:
    _fake_model(tmp_path / "none", {0: None, 1: None})
    assert held_out_years(tmp_path / "none", ["EC-ATM"]) == {}
    _fake_model(
        tmp_path / "ok", {0: {"train": [2001], "val": [2003, 2002]}, 1: {"val": [2002, 2003]}}
    )
    assert held_out_years(tmp_path / "ok", ["EC-ATM"]) == {"EC-ATM": [2002, 2003]}
    _fake_model(tmp_path / "differ", {0: {"val": [2002]}, 1: {"val": [2003]}})
    with pytest.raises(FluxbridgeError, match=r"fold_1/atm_years\.json.*differ.*fold_0"):
        held_out_years(tmp_path / "differ", ["EC-ATM"])
    _fake_model(tmp_path / "bad", {0: {"train": [2001]}})
    with pytest.raises(FluxbridgeError, match=r"fold_0/atm_years\.json.*'val'"):
        held_out_years(tmp_path / "bad", ["EC-ATM"])


# --- report ---------------------------------------------------------------------------------


def test_report_files_and_every_referenced_figure_exist(tiny_demo: Path) -> None:
    report = tiny_demo / "report"
    markdown = (report / "report.md").read_text()
    html = (report / "index.html").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)\s]+\.png)\)", markdown)
    for figure in (
        "fig2_global_annual",
        "fig3_nnse",
        "fig4_msc",
        "fig5_annual_mean",
        "fig5_truth_mean",
        "fig5_minus_truth",
        "fig7_pixel_r",
        "fig8_sites",
    ):
        assert f"{figure}.png" in figures
    for name in set(figures) | set(re.findall(r'src="([^"]+\.png)"', html)):
        path = report / name
        assert path.is_file(), name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert "Truth scorecard" in markdown
    assert "Regional skill on the held-out inversion years" in markdown
    assert "| NO_REGION |" in markdown  # its own row in the regional tables
    assert "Within-region spatial R" in markdown


def test_report_states_the_iav_ratio_with_its_numbers(tiny_demo: Path, metrics: dict) -> None:
    markdown = (tiny_demo / "report" / "report.md").read_text()
    ratio = metrics["truth"]["EC-ATM"]["iav_ratio_global"]
    assert (
        f"EC-ATM IAV: {metrics['global']['EC-ATM']['iav_magnitude_pgc_yr']:.3g} PgC/yr" in markdown
    )
    assert f"ratio {ratio:.3g}" in markdown


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
    with pytest.raises(
        FluxbridgeError, match=r"forward output missing.*EC\.nc.*fluxbridge forward"
    ):
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


def test_dask_cluster_gives_the_in_process_evaluation(tiny_demo: Path, tmp_path: Path) -> None:
    """evaluate --dask on a 2-process LocalCluster on loopback: metrics.json and the regional
    series are bitwise those of the in-process evaluation of the same run."""
    distributed = pytest.importorskip("distributed")
    runs = {"here": tmp_path / "here", "dask": tmp_path / "dask"}
    for run in runs.values():  # copies: the session's demo run stays as it is
        shutil.copytree(tiny_demo, run)
        for stale in ("evaluation", "report"):
            shutil.rmtree(run / stale, ignore_errors=True)
    here = evaluate_run(runs["here"])
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        there = evaluate_run(runs["dask"], dask=cluster.scheduler_address)
    assert json.dumps(here) == json.dumps(there)
    assert (runs["here"] / "evaluation" / "metrics.json").read_bytes() == (
        runs["dask"] / "evaluation" / "metrics.json"
    ).read_bytes()
    series = [_open(run / "evaluation" / "regional_monthly.nc") for run in runs.values()]
    assert series[0]["nee"].size > 100
    np.testing.assert_array_equal(series[0]["nee"].values, series[1]["nee"].values)
    assert list(series[0]["source"].values) == list(series[1]["source"].values)
    tables = sorted(p.name for p in (runs["here"] / "evaluation").glob("*.csv"))
    for name in tables:
        assert (runs["here"] / "evaluation" / name).read_bytes() == (
            runs["dask"] / "evaluation" / name
        ).read_bytes(), name


def test_forward_older_than_the_retrained_members_is_refused_then_remade_with_force(
    tiny_demo: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(tiny_demo / "train", run / "train")
    shutil.copytree(tiny_demo / "forward", run / "forward")
    (run / "data").symlink_to(tiny_demo / "data")  # the configs name RUN/data (relative)
    # EC fold 1 retrained after the forward run (here: given fold 0's weights)
    ec = run / "train" / "ec"
    shutil.copy(ec / "fold_0" / "best.ckpt", ec / "fold_1" / "best.ckpt")
    with pytest.raises(FluxbridgeError, match=r"EC\.nc is stale: train/ec/fold_1/best\.ckpt"):
        evaluate_run(run)
    _assert_no_outputs(run)
    data = CanonicalDataset(tiny_demo / "data")
    kept = (run / "forward" / "EC-ATM.nc").stat().st_mtime_ns
    current_forward(run, data, ["EC", "EC-ATM"], force=True)
    assert (run / "forward" / "EC-ATM.nc").stat().st_mtime_ns == kept  # current: not redone
    current_forward(run, data, ["EC", "EC-ATM"], force=False)  # both current now
