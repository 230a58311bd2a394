"""End-to-end checks of a tiny twin world against independent numpy computations."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml

from fluxbridge.config import load_yaml
from fluxbridge.data.canonical import DRIVER_NAMES, RECCAP2_REGIONS, open_canonical
from fluxbridge.data.twin import run_twin
from fluxbridge.data.twin.build import build
from fluxbridge.data.twin.scenario import scenario_from_mapping
from fluxbridge.errors import FluxbridgeError

TINY = Path(__file__).resolve().parents[3] / "configs" / "twin" / "tiny.yaml"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("twin") / "tiny"
    assert run_twin(TINY, out, force=False) == 0
    return out


def _open(root: Path, name: str) -> xr.Dataset:
    return xr.open_dataset(root / name, engine="h5netcdf")


def _regional_by_hand(nee: np.ndarray, grid: xr.Dataset, months) -> np.ndarray:
    """(time, region) PgC month-1 by the canonical formula, written out with numpy."""
    weight = grid["cell_area"].values * grid["land_fraction"].values
    frac = grid["region_fraction"].values
    days = np.asarray(months.dt.days_in_month, dtype=float)
    out = np.zeros((nee.shape[0], frac.shape[0]))
    for t in range(nee.shape[0]):
        for r in range(frac.shape[0]):
            out[t, r] = np.nansum(nee[t] * weight * frac[r]) * days[t] * 1e-15
    return out


def test_passes_open_canonical_and_keeps_scenario(tiny):
    ds = open_canonical(tiny)
    assert ds.meta["source"] == "twin" and ds.meta["schema_version"] == 1
    assert ds.meta["years"] == [2003, 2005] and ds.meta["resolution_deg"] == 10.0
    assert len(ds.meta["scenario_sha256"]) == 64
    saved = load_yaml(tiny / "scenario.yaml")
    assert saved["sites"]["count"] == 40 and saved["drought"]["region"] == "CHN"
    assert ds.region_abbrs == [a for _, a, _ in RECCAP2_REGIONS]
    grid = ds.grid_ds
    assert set(np.unique(grid["climate_zone"].values)) <= {0, 1, 2, 3, 4, 5}
    assert grid["climate_zone"].attrs["flag_meanings"].split()[0] == "no_land"
    np.testing.assert_allclose(grid["pft_fraction"].sum("pft").values[grid.land_fraction > 0], 1)


def test_bad_scenario_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"seed": 0, "resolution_deg": 10.0, "years": [2001, 2001],
                                   "inversion": {"members": 2}}))  # fmt: skip
    with pytest.raises(FluxbridgeError, match="inversion"):
        run_twin(bad, tmp_path / "out", force=True)
    assert not (tmp_path / "out").exists()


def test_deterministic_arrays(tiny, tmp_path):
    again = tmp_path / "again"
    run_twin(TINY, again, force=False)
    for name in ("drivers.nc", "sites.nc", "truth.nc", "inversions.nc", "reference.nc",
                 "residual_sink.nc", "ancillary.nc", "products/SAT1.nc"):  # fmt: skip
        a, b = _open(tiny, name), _open(again, name)
        for var in a.data_vars:
            np.testing.assert_array_equal(a[var].values, b[var].values, err_msg=f"{name}:{var}")


def test_tower_bias_only_in_the_tropics(tiny):
    sites, truth = _open(tiny, "sites.nc"), _open(tiny, "truth.nc")
    error = sites["nee_obs"].values - truth["site_nee"].values
    lat = sites["site_lat"].values
    tropical = (np.abs(lat) < 23.5) | np.isin(
        sites["site_region"].values, ["NSA", "BRA", "EQAF", "SEAS"]
    )
    np.testing.assert_array_equal(tropical, sites["site_tropical"].values == 1)
    assert tropical.sum() >= 3 and (~tropical).sum() >= 3
    n = np.isfinite(error[tropical]).sum()
    # 1σ of the daily error is < 1.5 gC m-2 d-1 (noise knobs of tiny.yaml), so the
    # mean over n days is within 5σ/√n of the bias unless the bias is wrong.
    assert np.nanmean(error[tropical]) == pytest.approx(-1.5, abs=5 * 1.5 / np.sqrt(n))
    m = np.isfinite(error[~tropical]).sum()
    assert np.nanmean(error[~tropical]) == pytest.approx(0.0, abs=5 * 1.5 / np.sqrt(m))


def test_folds_grouped_by_cell_balanced_and_ids(tiny):
    sites = _open(tiny, "sites.nc")
    fold, cell = sites["fold"].values, sites["site_cell"].values
    for c in np.unique(cell):
        assert np.unique(fold[cell == c]).size == 1, f"cell {c} is split over folds"
    counts = np.bincount(fold, minlength=10)
    largest_cell = np.bincount(cell).max()
    assert counts.size == 10 and counts.sum() == 40 and counts.min() > 0
    assert counts.max() - counts.min() <= largest_cell
    region = sites["site_region"].values
    for r in np.unique(region):  # each region's cells are spread over the folds
        n_cells = np.unique(cell[region == r]).size
        assert 2 * np.unique(fold[region == r]).size >= min(n_cells, 10)
    assert sites["site"].values[0] == "TW-0001"
    gaps = np.isnan(sites["nee_obs"].values)
    assert 0.05 < gaps.mean() < 0.95
    for name in DRIVER_NAMES:
        assert np.isfinite(sites[name].values).all()


def test_inversion_regional_errors_within_configuration(tiny, tmp_path):
    mapping = load_yaml(TINY)
    mapping["inversions"].update(
        shared_bias_pgc_yr=0.0, dipole_pgc_yr=0.0, seasonal_amplitude_error=0.0,
        member_bias_pgc_yr=0.0,
    )  # fmt: skip
    root = tmp_path / "ideal"
    root.mkdir()
    build(scenario_from_mapping(mapping, "ideal"), root)
    grid, inv, truth = _open(root, "grid.nc"), _open(root, "inversions.nc"), _open(root, "truth.nc")
    true_int = _regional_by_hand(truth["nee"].values, grid, truth["time"])
    present = (grid["region_fraction"].values * grid["land_fraction"].values).sum((1, 2)) > 0
    rms = []
    for m in range(inv.sizes["member"]):
        err = _regional_by_hand(inv["nee"].values[m], grid, inv["time"]) - true_int
        rms.append(np.sqrt(np.mean(err[:, present] ** 2)))
    rms = np.array(rms)
    # Member σ is between 0.5 and 1 × 0.02 PgC/month; allow sampling spread of 24 months.
    assert (rms < 1.6 * 0.02).all() and (rms > 0.2 * 0.02).all()
    # The pixel noise (0.8 gC m-2 d-1) really is there, yet it adds nothing regionally.
    pixel = np.nanstd(inv["nee"].values[0] - truth["nee"].values)
    assert pixel > 0.3
    assert list(inv["group"].values) == ["in-situ-inversion", "satellite-inversion"] * 2
    # The realistic defaults of tiny.yaml add shared errors: the ensemble mean drifts.
    real = _open(tiny, "inversions.nc")["nee"].mean("member").values
    mean_error = _regional_by_hand(real, grid, truth["time"]) - true_int
    ideal_error = _regional_by_hand(inv["nee"].mean("member").values, grid, inv["time"]) - true_int
    assert np.abs(mean_error[:, present]).mean() > 1.5 * np.abs(ideal_error[:, present]).mean()


def test_global_totals_are_the_sum_of_the_regions(tiny):
    grid, truth = _open(tiny, "grid.nc"), _open(tiny, "truth.nc")
    regional = _regional_by_hand(truth["nee"].values, grid, truth["time"])
    annual = regional.sum(axis=1).reshape(-1, 12).sum(axis=1)
    meta = json.loads((tiny / "canonical.json").read_text())
    np.testing.assert_allclose(meta["truth_global_nee_pgc_yr"], annual, atol=1e-4)
    assert len(meta["truth_no_region_nee_pgc_yr"]) == annual.size


def test_truth_budget_and_residual_sink(tiny):
    grid, truth = _open(tiny, "grid.nc"), _open(tiny, "truth.nc")
    weight = grid["cell_area"].values * grid["land_fraction"].values
    days = np.asarray(truth["time"].dt.days_in_month, dtype=float)
    n_years = days.size // 12
    regional = _regional_by_hand(truth["nee"].values, grid, truth["time"])
    annual = regional.sum(axis=1).reshape(n_years, 12).sum(axis=1)
    assert -5.0 < annual.mean() < -1.0
    gpp = np.array([np.nansum(truth["gpp"].values[t] * weight) for t in range(days.size)])
    assert 60 < (gpp * days * 1e-15).sum() / n_years < 300  # PgC/yr, the order of Earth's GPP
    sink = _open(tiny, "residual_sink.nc")
    assert sink["nee_global_sigma"].values.tolist() == [0.9] * n_years
    assert np.abs(sink["nee_global"].values - annual).max() < 4 * 0.9


def test_drought_weakens_the_regional_sink(tiny, tmp_path):
    mapping = load_yaml(TINY)
    mapping.pop("drought")
    root = tmp_path / "nodrought"
    root.mkdir()
    build(scenario_from_mapping(mapping, "no drought"), root)
    grid = _open(tiny, "grid.nc")
    chn = [a for _, a, _ in RECCAP2_REGIONS].index("CHN")
    with_d = _regional_by_hand(
        _open(tiny, "truth.nc")["nee"].values, grid, _open(tiny, "truth.nc")["time"]
    )
    without = _regional_by_hand(
        _open(root, "truth.nc")["nee"].values, grid, _open(root, "truth.nc")["time"]
    )
    summer_2004 = slice(12 + 3, 12 + 9)  # April–September of the drought year
    assert with_d[summer_2004, chn].sum() > without[summer_2004, chn].sum() + 0.05
    eu = [a for _, a, _ in RECCAP2_REGIONS].index("EU")
    np.testing.assert_allclose(with_d[:, eu], without[:, eu], atol=1e-6)
    anc = _open(tiny, "ancillary.nc")
    assert {"soil_moisture", "sif", "lai"} <= set(anc.data_vars)
    shutil.rmtree(root)


def test_products_listing(tiny):
    listing = yaml.safe_load((tiny / "products" / "products.yaml").read_text())["products"]
    names = [p["name"] for p in listing]
    assert names == ["SAT1", "SAT2", "INS1", "INS2", "BIO1", "BIO2", "PRIOR"]
    for p in listing:
        ds = _open(tiny / "products", p["file"])
        assert ds.attrs["group"] == p["group"] and ds["nee"].dims == ("time", "lat", "lon")
