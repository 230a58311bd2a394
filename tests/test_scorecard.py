"""Scorecard: rows from a run's truth scores, the goals and their verdicts, refusals."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge import scorecard as sc
from fluxbridge.errors import FluxbridgeError


def _truth_entry(**over: float) -> dict:
    entry = {k: 1.0 for k in sc.TRUTH_KEYS}
    entry["regional_monthly_rmse_pgc_month"] = {"USA": 0.1, "BRA": 0.3, "GLOBAL": 9.0}
    entry.update(over)
    return entry


def test_mean_regional_monthly_rmse_leaves_out_global():
    entry = _truth_entry()
    entry["regional_monthly_rmse_pgc_month"]["NO_REGION"] = 5.0
    assert sc.mean_regional_monthly_rmse(entry) == pytest.approx(0.2)


def test_bridge_transfer_uses_the_truth_rows():
    fid = pd.DataFrame(
        {
            "field": ["truth", "truth", "reference"],
            "region": ["USA", "BRA", "BRA"],
            "annual_bias_pgc_yr": [0.05, -0.2, 3.0],
            "monthly_r2": [0.99, 0.91, 0.1],
        }
    )
    out = sc.bridge_transfer(fid)
    assert out["bridge_truth_max_abs_bias_pgc_yr"] == pytest.approx(0.2)
    assert out["bridge_truth_min_monthly_r2"] == pytest.approx(0.91)
    assert np.isnan(sc.bridge_transfer(None)["bridge_truth_max_abs_bias_pgc_yr"])


def test_exact_gap_over_global_and_tropics():
    annual = pd.DataFrame(
        {"EC-ATM": [-2.0, -0.5, 0.3, 9.0], "EC-ATM-exact": [-2.2, -0.1, 0.3, 0.0]},
        index=["GLOBAL", "BRA", "SEAS", "USA"],  # USA is not checked
    )
    assert sc.exact_gap(annual) == pytest.approx(0.4)
    assert np.isnan(sc.exact_gap(annual[["EC-ATM"]]))


def test_regional_annual_means_drop_incomplete_years(tmp_path):
    time = pd.date_range("2001-01-01", periods=18, freq="MS")  # 2001 whole, 2002 half
    values = np.ones((1, 2, 18))
    values[0, 1] = np.arange(18)
    da = xr.DataArray(
        values, dims=("source", "region", "time"),
        coords={"source": ["EC"], "region": ["GLOBAL", "BRA"], "time": time}, name="nee",
    )  # fmt: skip
    da.to_dataset().to_netcdf(tmp_path / "r.nc", engine="h5netcdf")
    annual = sc.regional_annual_means(tmp_path / "r.nc")
    assert annual.loc["GLOBAL", "EC"] == pytest.approx(12.0)
    assert annual.loc["BRA", "EC"] == pytest.approx(sum(range(12)))


def _rows(**atm: float) -> pd.DataFrame:
    truth = {
        "EC": _truth_entry(
            global_annual_rmse_pgc_yr=20.0,
            within_region_spatial_r_median=0.5,
            site_rmse_vs_obs_unbiased_gc_m2_d=1.0,
        ),
        "EC-ATM": _truth_entry(
            **{
                "global_annual_rmse_pgc_yr": 1.0,
                "within_region_spatial_r_median": 0.6,
                "site_rmse_vs_obs_unbiased_gc_m2_d": 1.04,
                "iav_ratio_global": 1.3,
                **atm,
            }
        ),
        "inversion_mean": _truth_entry(),
    }
    truth["inversion_mean"]["regional_monthly_rmse_pgc_month"] = {"USA": 0.2, "BRA": 0.2}
    annual = pd.DataFrame({"EC-ATM": [-2.0], "EC-ATM-exact": [-2.3]}, index=["GLOBAL"])
    fid = pd.DataFrame(
        {"field": ["truth"], "region": ["BRA"], "annual_bias_pgc_yr": [0.05], "monthly_r2": [0.95]}
    )
    return pd.DataFrame(sc.scenario_rows("demo", truth, fid, annual))


def test_goals_verdicts_by_hand():
    rows = _rows()
    assert list(rows.source) == ["EC", "EC-ATM", "inversion_mean"]
    verdicts = {g.name: (g.value, g.met) for g in sc.goals(rows)}
    assert verdicts["global annual RMSE vs truth cut vs EC"] == pytest.approx((0.95, True))
    # EC-ATM's regional monthly RMSE (0.1 + 0.3)/2 = 0.2 against the inversion mean's 0.2
    assert verdicts["regional monthly RMSE / inversion mean's"] == pytest.approx((1.0, True))
    assert verdicts["within-region spatial R (median) − EC's"] == pytest.approx((0.1, True))
    assert verdicts["site RMSE vs obs, unbiased towers / EC's"] == pytest.approx((1.04, True))
    assert verdicts["|EC-ATM − EC-ATM exact|, global + tropics"] == pytest.approx((0.3, True))
    assert verdicts["IAV ratio to truth (global)"] == pytest.approx((1.3, True))
    failing = {g.name: g.met for g in sc.goals(_rows(iav_ratio_global=2.9))}
    assert failing["IAV ratio to truth (global)"] is False
    text = sc.markdown(rows)
    assert "### Goals: demo" in text and "| EC-ATM |" in text.replace(
        "| demo | EC-ATM |", "| EC-ATM |"
    )


def test_anomaly_r2_column_comes_from_the_global_scores():
    """The IAV ratio compares magnitudes only; the R² column says whether the years match."""
    truth = {"EC": _truth_entry(), "EC-ATM": _truth_entry(iav_ratio_global=0.938)}
    annual = pd.DataFrame({"EC-ATM": [-2.0]}, index=["GLOBAL"])
    glob = {"years": [2001, 2002], "EC-ATM": {"anomaly_r2_vs_truth": 0.002}, "EC": {}}
    rows = pd.DataFrame(sc.scenario_rows("s", truth, None, annual, glob)).set_index("source")
    assert rows.loc["EC-ATM", sc.ANOMALY_R2] == pytest.approx(0.002)
    assert np.isnan(rows.loc["EC", sc.ANOMALY_R2])  # an older metrics.json: unknown, not 0
    assert np.isnan(
        pd.DataFrame(sc.scenario_rows("s", truth, None, annual))
        .set_index("source")
        .loc["EC-ATM", sc.ANOMALY_R2]
    )
    header = sc.markdown(rows.reset_index()).splitlines()[0]
    assert header.endswith("| global_anomaly_r2_vs_truth |")


def test_refuses_duplicate_and_missing_scenarios(tmp_path):
    a = tmp_path / "a" / "demo.yaml"
    b = tmp_path / "b" / "demo.yaml"
    for p in (a, b):
        p.parent.mkdir()
        p.write_text("seed: 0\n")
    with pytest.raises(FluxbridgeError, match="distinct names"):
        sc.run_scorecard([a, b], tmp_path / "out")
    with pytest.raises(FluxbridgeError, match="not found"):
        sc.run_scorecard([tmp_path / "nope.yaml"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_scorecard_on_the_tiny_scenario(tmp_path, monkeypatch):
    from fluxbridge import pipeline

    from .conftest import TINY_SCENARIO, demo_settings

    for name, value in demo_settings(tmp_path).items():
        monkeypatch.setattr(pipeline, name, value)
    out = tmp_path / "card"
    assert sc.run_scorecard([TINY_SCENARIO], out, exact_folds=1) == 0
    table = pd.read_csv(out / "scorecard.csv")
    assert list(table.source) == ["EC", "EC-ATM", "EC-ATM-exact", "inversion_mean"]
    run = out / TINY_SCENARIO.stem
    truth = json.loads((run / "evaluation" / "metrics.json").read_text())["truth"]
    for row in table.itertuples():
        assert row.global_annual_bias_pgc_yr == pytest.approx(
            truth[row.source]["global_annual_bias_pgc_yr"], rel=1e-5
        )
    fid = pd.read_csv(run / "bridges_fidelity.csv")
    assert {"reference", "truth", "EC", "EC-ATM", "EC-ATM-exact"} <= set(fid["field"])
    worst = fid.loc[fid["field"] == "truth", "annual_bias_pgc_yr"].abs().max()
    assert table["bridge_truth_max_abs_bias_pgc_yr"].iloc[0] == pytest.approx(worst, rel=1e-5)
    assert np.isfinite(table["ec_atm_vs_exact_max_abs_pgc_yr"]).all()
    assert "### Goals: tiny" in (out / "scorecard.md").read_text()
    assert (run / "train" / "ec-atm-exact" / "fold_0" / "best.ckpt").exists()
