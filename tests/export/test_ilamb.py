"""ILAMB export: conversions on hand values, the files of a tiny run, ilamb3 scoring them."""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.data.units import parse_flux_units
from fluxbridge.errors import FluxbridgeError
from fluxbridge.export.ilamb import (
    complete_monthly_means,
    g_m2_d_to_kg_m2_s,
    land_area_percent,
    month_axis,
    monthly_nee,
    nee_to_nbp,
    run_export,
)

ROOT = Path(__file__).resolve().parents[2]
SCORE_SCRIPT = Path(__file__).with_name("_ilamb_score.py")
MODELS = ("EC", "EC-ATM")


# ---------------------------------------------------------------- pure conversions


def test_g_m2_d_to_kg_m2_s_hand_values() -> None:
    # 86.4 g m-2 d-1 = 0.0864 kg / 86 400 s = 1e-6 kg m-2 s-1; 1 g m-2 d-1 = 1 / 86.4e6.
    out = g_m2_d_to_kg_m2_s(xr.DataArray([86.4, 1.0, -172.8]))
    np.testing.assert_allclose(out.values, [1e-6, 1.0 / 86.4e6, -2e-6], rtol=1e-12)


def test_nee_to_nbp_flips_sign_only() -> None:
    out = nee_to_nbp(xr.DataArray([2.0, -3.5, 0.0]))
    np.testing.assert_array_equal(out.values, [-2.0, 3.5, 0.0])


def test_land_area_percent() -> None:
    out = land_area_percent(xr.DataArray([0.25, np.nan, 1.0]))
    np.testing.assert_allclose(out.values, [25.0, 0.0, 100.0])


def test_complete_monthly_means_drops_partial_months() -> None:
    days = pd.date_range("2004-01-30", "2004-03-31", freq="D")  # Jan partial; 2004 is leap
    values = np.where(days.month == 2, days.day, 2.0).astype(float)  # Feb: 1..29, Mar: 2
    daily = xr.DataArray(values, dims="time", coords={"time": days}, attrs={"units": "u"})
    out = complete_monthly_means(daily)
    assert list(pd.DatetimeIndex(out["time"].values)) == [
        pd.Timestamp("2004-02-01"),
        pd.Timestamp("2004-03-01"),
    ]
    np.testing.assert_allclose(out.values, [15.0, 2.0])  # (1 + 29) / 2, constant
    assert out.attrs == {"units": "u"}


def test_month_axis_mid_month_and_bounds() -> None:
    mid, bounds = month_axis(pd.DatetimeIndex(["2003-01-01", "2003-02-01"]))
    assert list(mid) == [pd.Timestamp("2003-01-16 12:00"), pd.Timestamp("2003-02-15")]
    assert pd.DatetimeIndex(bounds[:, 0]).equals(pd.DatetimeIndex(["2003-01-01", "2003-02-01"]))
    assert pd.DatetimeIndex(bounds[:, 1]).equals(pd.DatetimeIndex(["2003-02-01", "2003-03-01"]))


def test_monthly_nee_reads_units_from_the_file() -> None:
    # 1e-6 kgC m-2 s-1 = 86.4 gC m-2 d-1; the units attribute, not a constant, decides.
    days = pd.date_range("2003-02-01", "2003-02-28", freq="D")
    ds = xr.Dataset(
        {"nee_mean": ("time", np.full(days.size, 1e-6), {"units": "kgC m-2 s-1"})},
        coords={"time": days},
    )
    out = monthly_nee(Path("x.nc"), ds)
    np.testing.assert_allclose(out.values, [86.4], rtol=1e-12)


def test_monthly_nee_refuses_irregular_time() -> None:
    times = pd.DatetimeIndex(["2003-01-01", "2003-03-01"])
    ds = xr.Dataset(
        {"nee_mean": ("time", [1.0, 2.0], {"units": "gC m-2 d-1"})}, coords={"time": times}
    )
    with pytest.raises(FluxbridgeError, match="neither contiguous days nor contiguous month"):
        monthly_nee(Path("x.nc"), ds)


# ---------------------------------------------------------------- errors


def test_unknown_format_is_named(tmp_path: Path) -> None:
    with pytest.raises(FluxbridgeError, match=r"'csv'.*'ilamb'"):
        run_export(tmp_path, format="csv")


def test_missing_run_is_named(tmp_path: Path) -> None:
    with pytest.raises(FluxbridgeError, match=f"{tmp_path / 'nope'}: run directory not found"):
        run_export(tmp_path / "nope")


def test_missing_forward_is_named(tmp_path: Path) -> None:
    with pytest.raises(FluxbridgeError, match=f"{tmp_path / 'forward'}: no forward runs"):
        run_export(tmp_path)


# ---------------------------------------------------------------- tiny run


def _assert_grams_per_m2_day(da: xr.DataArray) -> None:
    """The file's units (whatever their spelling) are grams of carbon per m2 and day."""
    parsed = parse_flux_units(da.attrs["units"])
    assert (parsed.factor, parsed.area, parsed.per) == (1.0, "m2", "day"), da.attrs["units"]


@pytest.fixture(scope="module")
def export_dir(tiny_demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ilamb") / "export"
    assert run_export(tiny_demo, "ilamb", out=out) == 0
    return out


def test_export_values_units_and_signs(tiny_demo: Path, export_dir: Path) -> None:
    for model in MODELS:
        with xr.open_dataset(tiny_demo / "forward" / f"{model}.nc") as fwd:
            _assert_grams_per_m2_day(fwd["nee_mean"])  # the factor below assumes it
            expected = fwd["nee_mean"].values.astype(np.float64) / 86.4e6  # g→kg, d→s
            months = pd.DatetimeIndex(fwd["time"].values)
        with xr.open_dataset(export_dir / model / f"nee_mon_{model}_gn.nc") as nee:
            np.testing.assert_allclose(nee["nee"].values, expected, rtol=1e-6, equal_nan=True)
            assert nee["nee"].attrs["units"] == "kg m-2 s-1"
            assert nee["nee"].attrs["positive"] == "up"
            # CMOR month axis: stamps mid-month, bounds the calendar months.
            np.testing.assert_array_equal(nee["time_bnds"].values[:, 0], months.values)
            assert (
                pd.Timestamp(nee["time"].values[0])
                == months[0] + (months[0] + pd.offsets.MonthBegin(1) - months[0]) / 2
            )
        with xr.open_dataset(export_dir / model / f"nbp_mon_{model}_gn.nc") as nbp:
            np.testing.assert_allclose(nbp["nbp"].values, -expected, rtol=1e-6, equal_nan=True)
            assert nbp["nbp"].attrs["positive"] == "down"
            assert nbp["nbp"].attrs["standard_name"].startswith("surface_net_downward_mass_flux")
        with xr.open_dataset(export_dir / model / f"sftlf_fx_{model}_gn.nc") as sftlf:
            land = xr.open_dataset(tiny_demo / "data" / "grid.nc")["land_fraction"].values
            np.testing.assert_allclose(sftlf["sftlf"].values, np.nan_to_num(land) * 100.0)
    rows = list(csv.DictReader((export_dir / "models.csv").open()))
    assert {(r["source_id"], r["variable_id"]) for r in rows} == {
        (m, v) for m in MODELS for v in ("nee", "nbp", "areacella", "sftlf")
    }
    assert all(Path(r["path"]).is_file() for r in rows)


def test_export_refuses_to_overwrite_without_force(tiny_demo: Path, export_dir: Path) -> None:
    with pytest.raises(FluxbridgeError, match="exists; pass --force"):
        run_export(tiny_demo, out=export_dir)
    before = (export_dir / "EC" / "nee_mon_EC_gn.nc").stat().st_mtime_ns
    assert run_export(tiny_demo, out=export_dir, force=True) == 0
    assert (export_dir / "EC" / "nee_mon_EC_gn.nc").stat().st_mtime_ns >= before


# ---------------------------------------------------------------- ilamb3 reads and scores it


def _ilamb_python() -> Path:
    path = Path(os.environ.get("FLUXBRIDGE_ILAMB_PYTHON", ROOT / ".venv-ilamb" / "bin" / "python"))
    if not path.exists():
        pytest.skip(
            f"no ilamb3 interpreter at {path} (scripts/install_ilamb.sh creates it; "
            "or set FLUXBRIDGE_ILAMB_PYTHON)"
        )
    probe = subprocess.run([str(path), "-c", "import ilamb3"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"{path} cannot import ilamb3: {probe.stderr.strip().splitlines()[-1:]}")
    return path


CONFIG = """\
Ecosystem and Carbon Cycle:
  Net Ecosystem Exchange:
    TwinTruth:
      sources:
        nee: nee/TwinTruth/nee.nc
      analyses: [Bias, RMSE]
  Net Biome Production:
    TwinTruth:
      sources:
        nbp: nbp/TwinTruth/nbp.nc
      analyses: [Bias]
"""


def _area_weighted_mean(field: np.ndarray, lat_bnds: np.ndarray, lon_bnds: np.ndarray) -> float:
    """Mean over the finite cells, weighted by exact spherical cell areas."""
    area = np.diff(np.sin(np.deg2rad(lat_bnds)), axis=1) * np.diff(lon_bnds, axis=1).T
    ok = np.isfinite(field)
    return float((area * np.where(ok, field, 0.0)).sum() / area[ok].sum())


def test_ilamb3_scores_the_export_against_the_truth(
    tiny_demo: Path, export_dir: Path, tmp_path: Path
) -> None:
    python = _ilamb_python()
    config = tmp_path / "fluxbridge_twin.yaml"
    config.write_text(CONFIG)
    result = tmp_path / "scores.json"
    proc = subprocess.run(
        [str(python), str(SCORE_SCRIPT), str(export_dir), str(config), str(tmp_path / "build"),
         str(result)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "MPLBACKEND": "Agg"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(result.read_text())
    scores = report["scores"]
    nee_block = "EcosystemandCarbonCycle/NetEcosystemExchange/TwinTruth"
    nbp_block = "EcosystemandCarbonCycle/NetBiomeProduction/TwinTruth"

    # Independent numbers from the raw files (gC m-2 d-1, the reference's g m-2 d-1):
    # months weighted by their days (ILAMB uses time_bnds), then the area-weighted
    # mean over the cells where both are defined.
    with xr.open_dataset(tiny_demo / "data" / "truth.nc") as truth:
        _assert_grams_per_m2_day(truth["nee"])
        true_nee = truth["nee"].values.astype(np.float64)
        lat_bnds, lon_bnds = truth["lat_bnds"].values, truth["lon_bnds"].values
    for model in MODELS:
        missing = {b for b in (nee_block, nbp_block) if model not in scores.get(b, {})}
        assert not missing, f"ilamb3 gave no scores for {model} in {missing}: {report['logs']}"
        with xr.open_dataset(tiny_demo / "forward" / f"{model}.nc") as fwd:
            _assert_grams_per_m2_day(fwd["nee_mean"])
            nee = fwd["nee_mean"].values.astype(np.float64)
            days = pd.DatetimeIndex(fwd["time"].values).days_in_month.values.astype(np.float64)
        assert nee.shape == true_nee.shape

        def time_mean(x: np.ndarray, days: np.ndarray = days) -> np.ndarray:
            return np.tensordot(days, x, axes=1) / days.sum()

        bias = _area_weighted_mean(time_mean(nee) - time_mean(true_nee), lat_bnds, lon_bnds)
        period_mean = _area_weighted_mean(time_mean(nee), lat_bnds, lon_bnds)
        rmse_map = np.sqrt(time_mean((nee - true_nee) ** 2))
        rmse = _area_weighted_mean(rmse_map, lat_bnds, lon_bnds)
        assert abs(bias) > 1e-3  # a sign error below could not hide behind a zero bias

        got = scores[nee_block][model]
        np.testing.assert_allclose(got["Bias/Bias"], bias, rtol=1e-5)
        np.testing.assert_allclose(got["Bias/Period Mean"], period_mean, rtol=1e-5)
        # ilamb3 weights the squared errors by the spacing of the mid-month stamps
        # (it drops time_bnds there), within a day of the month lengths used here.
        np.testing.assert_allclose(got["RMSE/RMSE"], rmse, rtol=2e-3)
        assert 0.0 < got["Bias/Bias Score"] < 1.0
        # nbp is the same flux seen from the land: every mean changes sign.
        got_nbp = scores[nbp_block][model]
        np.testing.assert_allclose(got_nbp["Bias/Bias"], -bias, rtol=1e-5)
        np.testing.assert_allclose(got_nbp["Bias/Bias Score"], got["Bias/Bias Score"], rtol=1e-9)
