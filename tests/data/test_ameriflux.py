"""AmeriFlux BASE reader: the real US-Tw3 file (fetched) and small files in the BASE layout.

Expected values come from plain pandas on the raw file (``comment="#"``,
-9999 as missing, TIMESTAMP_START date) or by hand, never from the reader.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.data.ameriflux import meteo_candidates, read_base_file
from fluxbridge.data.fluxnet import parse_file_name, read_site_file, run_sites, select_site_files
from fluxbridge.errors import SchemaError

UMOL = 12.011e-6 * 86400  # µmol CO2 m-2 s-1 -> gC m-2 d-1, by hand
TW3 = "AMF_US-Tw3_BASE_HH_5-5.csv"
NAME = "AMF_US-Xyz_BASE_HH_1-5.csv"


@pytest.fixture
def tw3(real_file: Callable[[str], Path], tmp_path: Path) -> Path:
    folder = tmp_path / "towers"
    folder.mkdir()
    return Path(shutil.copyfile(real_file("us_tw3_base_hh"), folder / TW3))


def test_real_base_file_daily_values(tw3: Path) -> None:
    raw = pd.read_csv(tw3, comment="#", dtype={"TIMESTAMP_START": str}).replace(-9999, np.nan)
    assert tw3.read_text().startswith("# Site: US-Tw3\n# Version: 5-5\n")
    assert "NEE_PI" not in raw and "NEE_PI_F" not in raw  # so FC_PI_F is the NEE column
    day = pd.to_datetime(raw["TIMESTAMP_START"].str[:8], format="%Y%m%d")
    by_day = raw.groupby(day)
    nee = (by_day["FC_PI_F"].mean() * UMOL).where(by_day["FC_PI_F"].count() == 48)
    tair = by_day["TA"].mean().where(by_day["TA"].count() == 48)
    measured = (raw["FC"].notna() & raw["FC_PI_F"].notna()).groupby(day).sum() / 48
    days = pd.date_range(day.iloc[0], day.iloc[-1], freq="D")

    daily = read_site_file(tw3)
    assert daily.index[0] == pd.Timestamp("2013-01-01")
    assert daily.index[-1] == pd.Timestamp("2018-06-04")
    assert len(daily) == len(days)
    np.testing.assert_allclose(daily["nee_obs"], nee.reindex(days).to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(daily["tair"], tair.reindex(days).to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        daily["nee_measured_fraction"], measured.reindex(days).to_numpy(), atol=1e-15
    )
    assert int(daily["nee_obs"].notna().sum()) == int(nee.notna().sum()) == 1838
    # the unfilled FC alone would give far fewer complete days: the gap-filled column matters
    assert int((by_day["FC"].count() == 48).sum()) < 500
    # alfalfa in the Sacramento delta: a net sink in summer, values of a few gC m-2 d-1
    summer = daily["nee_obs"][daily.index.month.isin([6, 7])]
    assert summer.mean() < -1.0
    assert daily["nee_obs"].abs().max() < 30.0


def test_real_base_file_through_invoke_sites(tw3: Path, tmp_path: Path) -> None:
    files = select_site_files(tw3.parent)
    assert list(files) == ["US-Tw3"]
    assert files["US-Tw3"].product == "BASE" and files["US-Tw3"].resolution == "HH"
    out = tmp_path / "sites.nc"
    assert run_sites(tw3.parent, None, out) == 0
    with xr.open_dataset(out) as ds:
        assert ds["source_file"].values.tolist() == [TW3]
        assert int(np.isfinite(ds["nee_obs"]).sum()) == 1838


@pytest.mark.parametrize(
    ("name", "product", "resolution"),
    [
        ("AMF_US-Tw3_BASE_HH_5-5.csv", "BASE", "HH"),
        ("AMF_US-Ha1_BASE_HR_18-5.csv", "BASE", "HR"),
        ("AMF_US-Ha1_BASE_DD_18-5.csv", "FLUXNET", None),  # BASE has no daily table: skipped
        ("FLX_US-Ha1_BASE_HH_18-5.csv", "FLUXNET", None),  # BASE is an AmeriFlux product only
        ("AMF_US-Ha1_FLUXNET_FULLSET_HH_1991-2020_3-5.csv", "FLUXNET", "HH"),
    ],
)
def test_base_file_names(name: str, product: str, resolution: str | None) -> None:
    info = parse_file_name(Path(name))
    assert (info.product, info.resolution) == (product, resolution)


def base_file(
    folder: Path,
    columns: dict[str, np.ndarray | float],
    *,
    days: int = 2,
    minutes: int = 30,
    name: str = NAME,
    header: str = "# Site: US-Xyz\n# Version: 1-5\n\n",
) -> Path:
    """A BASE file in the documented layout: '#' lines, a blank line, then the table."""
    t = pd.date_range("2020-07-01", periods=days * 24 * 60 // minutes, freq=f"{minutes}min")
    frame = pd.DataFrame(
        {
            "TIMESTAMP_START": t.strftime("%Y%m%d%H%M"),
            "TIMESTAMP_END": (t + pd.Timedelta(minutes=minutes)).strftime("%Y%m%d%H%M"),
            **{k: np.broadcast_to(v, t.shape) for k, v in columns.items()},
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(header + frame.to_csv(index=False))
    return path


def test_nee_pi_f_preferred_and_measured_from_nee_pi(tmp_path: Path) -> None:
    nee_pi = np.full(96, 2.0)
    nee_pi[:12] = -9999  # 12 of day 1's records were gap-filled by the team
    path = base_file(tmp_path, {"FC": 50.0, "NEE_PI": nee_pi, "NEE_PI_F": 2.0, "TA": 20.0})
    daily = read_base_file(path)
    assert daily["nee_obs"].tolist() == pytest.approx([2.0 * UMOL, 2.0 * UMOL])
    assert daily["nee_qc_fraction"].tolist() == pytest.approx([36 / 48, 1.0])
    assert daily["nee_measured_fraction"].tolist() == pytest.approx([36 / 48, 1.0])
    assert daily["tair"].tolist() == pytest.approx([20.0, 20.0])


def test_plain_fc_with_ssitc_flag_and_completeness(tmp_path: Path) -> None:
    fc = np.where(np.arange(144) % 48 < 24, 6.0, -10.0)  # night +6, day -10 µmol m-2 s-1
    flag = np.zeros(144)
    flag[:6] = 2  # six night records of day 1 fail the steady-state/ITC test: discarded
    flag[6:12] = 1  # flag 1 is kept
    fc[60] = -9999  # one day-2 record missing
    columns = {"FC": fc, "FC_SSITC_TEST": flag, "SC": 99.0, "TA_1_1_1": 5.0}
    path = base_file(tmp_path, columns, days=3)
    strict = read_base_file(path)
    full = (24 * 6.0 + 24 * -10.0) / 48
    assert strict["nee_obs"].iloc[:2].isna().all()  # days 1-2 lack some of the 48 records
    assert strict["nee_obs"].iloc[2] == pytest.approx(full * UMOL)
    assert strict["nee_qc_fraction"].tolist() == pytest.approx([42 / 48, 47 / 48, 1.0])
    relaxed = read_base_file(path, min_valid_fraction=0.85)  # needs ceil(40.8) = 41
    day1 = (18 * 6.0 + 24 * -10.0) / 42  # the mean leans to daytime: why the default is 1.0
    day2 = (23 * 6.0 + 24 * -10.0) / 47  # record 60 is a night record of day 2
    assert relaxed["nee_obs"].tolist() == pytest.approx([day1 * UMOL, day2 * UMOL, full * UMOL])
    # SC is not added (storage rule not documented); TA_1_1_1 stands in for TA
    assert relaxed["tair"].tolist() == pytest.approx([5.0, 5.0, 5.0])


def test_hourly_file_and_meteo_units(tmp_path: Path) -> None:
    sw = np.where(np.arange(48) % 24 >= 12, 200.0, 0.0)  # 12 of 24 h at 200 W m-2
    precip = np.zeros(48)
    precip[3] = 1.5
    path = base_file(
        tmp_path,
        {"FC_PI_F": -1.0, "TA_PI_F": 11.0, "TA": 99.0, "SW_IN": sw, "VPD_PI": 7.0, "P": precip},
        minutes=60,
        name="AMF_US-Xyz_BASE_HR_1-5.csv",
    )
    daily = read_site_file(path)
    assert daily["nee_obs"].tolist() == pytest.approx([-UMOL, -UMOL])
    assert daily["tair"].tolist() == pytest.approx([11.0, 11.0])  # gap-filled TA_PI_F first
    assert daily["sw_in"].tolist() == pytest.approx([100.0 * 0.0864] * 2)  # mean W m-2 → MJ d-1
    assert daily["vpd"].tolist() == pytest.approx([7.0, 7.0])
    assert daily["precip"].tolist() == pytest.approx([1.5, 0.0])
    # no FC: nothing tells which FC_PI_F records were measured
    assert daily["nee_measured_fraction"].tolist() == pytest.approx([1.0, 1.0])


def test_meteo_qualifier_rules(tmp_path: Path) -> None:
    assert meteo_candidates("TA")[:4] == ("TA_PI_F", "TA_F", "TA", "TA_PI")
    assert "TA_1_1_A" in meteo_candidates("TA") and "TA_2_1_1" not in meteo_candidates("TA")
    # only a second horizontal position: not the tower's top sensor, so no tair
    path = base_file(tmp_path, {"FC": 1.0, "TA_2_1_1": 30.0, "TA_1_1_A": 12.0})
    assert read_base_file(path)["tair"].tolist() == pytest.approx([12.0, 12.0])
    path = base_file(tmp_path / "b", {"FC": 1.0, "TA_2_1_1": 30.0})
    assert read_base_file(path)["tair"].isna().all()


def test_header_site_must_match_the_name(tmp_path: Path) -> None:
    path = base_file(tmp_path, {"FC": 1.0}, header="# Site: US-Abc\n# Version: 1-5\n")
    with pytest.raises(SchemaError, match=r"'# Site: US-Abc' in the header.*says US-Xyz"):
        read_base_file(path)


def test_no_flux_column_is_an_error(tmp_path: Path) -> None:
    path = base_file(tmp_path, {"TA": 1.0, "FCH4": 3.0})
    with pytest.raises(SchemaError, match=r"AMF_US-Xyz_BASE_HH_1-5\.csv, variable 'FC'"):
        read_base_file(path)


def test_errors_give_file_lines_counting_the_header(tmp_path: Path) -> None:
    path = base_file(tmp_path, {"FC": 1.0})
    lines = path.read_text().splitlines()
    assert lines[3].startswith("TIMESTAMP_START")  # two '#' lines and a blank line first
    fields = lines[10].split(",")
    fields[0] = "2020O7010430"  # a letter O for a zero
    lines[10] = ",".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(SchemaError, match="bad timestamp '2020O7010430' at line 11;"):
        read_base_file(path)


def test_bad_ssitc_flag_and_all_missing(tmp_path: Path) -> None:
    path = base_file(tmp_path, {"FC": 1.0, "FC_SSITC_TEST": 3.0})
    with pytest.raises(SchemaError, match=r"'FC_SSITC_TEST': flag 3\.0 not in 0, 1, 2"):
        read_base_file(path)
    path = base_file(tmp_path / "b", {"FC": -9999.0})
    with pytest.raises(SchemaError, match="variable 'FC': no day with valid NEE"):
        read_base_file(path)
