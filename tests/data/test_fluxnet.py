"""FLUXNET2015/ONEFlux readers on small hand-made files in the distributed column layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.data.fluxnet import parse_file_name, read_site_file, run_sites
from fluxbridge.errors import ConfigError, SchemaError

UMOL = 12.011e-6 * 86400  # µmol CO2 m-2 s-1 -> gC m-2 d-1, by hand
HH_NAME = "FLX_US-Ha1_FLUXNET2015_FULLSET_HH_2005-2005_1-4.csv"
DD_NAME = "FLX_DE-Tha_FLUXNET2015_FULLSET_DD_2005-2005_1-4.csv"
# A slice of the real FULLSET column order, with neighbours the reader must ignore.
HH_COLUMNS = [
    "TIMESTAMP_START", "TIMESTAMP_END", "TA_F_MDS", "TA_F", "TA_F_QC", "SW_IN_POT", "SW_IN_F",
    "SW_IN_F_QC", "VPD_F", "VPD_F_QC", "P_F", "P_F_QC", "NEE_CUT_REF", "NEE_VUT_REF",
    "NEE_CUT_REF_QC", "NEE_VUT_REF_QC", "NEE_VUT_REF_RANDUNC",
]  # fmt: skip
DD_COLUMNS = ["TIMESTAMP", *HH_COLUMNS[2:]]


def hh_frame(days: int, start: str = "2005-01-01", minutes: int = 30) -> pd.DataFrame:
    t = pd.date_range(start, periods=days * 24 * 60 // minutes, freq=f"{minutes}min")
    n = t.size
    frame = pd.DataFrame(
        {
            "TIMESTAMP_START": t.strftime("%Y%m%d%H%M"),
            "TIMESTAMP_END": (t + pd.Timedelta(minutes=minutes)).strftime("%Y%m%d%H%M"),
            "TA_F_MDS": -9999,
            "TA_F": 10.0,
            "TA_F_QC": 0,
            "SW_IN_POT": 0.0,
            "SW_IN_F": 0.0,
            "SW_IN_F_QC": 0,
            "VPD_F": 4.0,
            "VPD_F_QC": 0,
            "P_F": 0.0,
            "P_F_QC": 0,
            "NEE_CUT_REF": 99.0,
            "NEE_VUT_REF": 1.0,
            "NEE_CUT_REF_QC": 0,
            "NEE_VUT_REF_QC": 0,
            "NEE_VUT_REF_RANDUNC": 0.3,
        }
    )
    assert len(frame) == n
    return frame[HH_COLUMNS]


def write(frame: pd.DataFrame, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    frame.to_csv(path, index=False)
    return path


def test_half_hourly_to_daily_by_hand(tmp_path: Path) -> None:
    f = hh_frame(4)
    # day 1: 24 records at +4, 24 at -8 -> mean -2 umol; QC: 30 x 0, 10 x 1, 8 x 2
    f.loc[0:23, "NEE_VUT_REF"] = 4.0
    f.loc[24:47, "NEE_VUT_REF"] = -8.0
    f.loc[0:47, "NEE_VUT_REF_QC"] = [0] * 30 + [1] * 10 + [2] * 8
    f.loc[12:35, "SW_IN_F"] = 100.0  # 24 of 48 records -> 50 W m-2 mean
    f.loc[20:23, "P_F"] = 0.5  # 2 mm that day
    f.loc[0:47, "TA_F"] = np.arange(48, dtype=float)  # mean 23.5
    # day 2: one NEE record missing (-9999), QC of that record also -9999
    f.loc[60, ["NEE_VUT_REF", "NEE_VUT_REF_QC"]] = -9999
    f.loc[48:95, "NEE_VUT_REF"] = 3.0
    f.loc[60, "NEE_VUT_REF"] = -9999
    # day 3: rows absent from the file; day 4 complete at 1 umol
    f = f.drop(index=range(96, 144))
    path = write(f, tmp_path, HH_NAME)

    daily = read_site_file(path)
    assert list(daily.index) == list(pd.date_range("2005-01-01", periods=4))
    np.testing.assert_allclose(daily["nee_obs"].values, [-2.0 * UMOL, np.nan, np.nan, UMOL])
    np.testing.assert_allclose(daily["nee_qc_fraction"].values, [40 / 48, 47 / 48, np.nan, 1.0])
    np.testing.assert_allclose(
        daily["nee_measured_fraction"].values, [30 / 48, 47 / 48, np.nan, 1.0]
    )
    assert daily["sw_in"].iloc[0] == pytest.approx(50.0 * 86400 / 1e6)
    assert daily["precip"].iloc[0] == pytest.approx(2.0)
    assert daily["tair"].iloc[0] == pytest.approx(23.5)
    assert daily["vpd"].iloc[3] == pytest.approx(4.0)

    relaxed = read_site_file(path, min_valid_fraction=0.9)  # needs ceil(43.2) = 44 of 48
    assert relaxed["nee_obs"].iloc[1] == pytest.approx(3.0 * UMOL)
    cut = read_site_file(path, nee_variable="NEE_CUT_REF")
    assert cut["nee_obs"].iloc[3] == pytest.approx(99.0 * UMOL)


def test_hourly_file(tmp_path: Path) -> None:
    f = hh_frame(1, minutes=60)
    f["NEE_VUT_REF"] = np.r_[np.full(12, 6.0), np.full(12, -2.0)]
    f["P_F"] = 0.25
    daily = read_site_file(write(f, tmp_path, "AMF_US-Var_FLUXNET_FULLSET_HR_2005-2005_3-5.csv"))
    assert daily["nee_obs"].iloc[0] == pytest.approx(2.0 * UMOL)
    assert daily["precip"].iloc[0] == pytest.approx(6.0)  # 24 x 0.25 mm


def dd_frame() -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "TIMESTAMP": ["20050101", "20050102", "20050103"],
            "TA_F_MDS": -9999,
            "TA_F": [1.0, 2.0, 3.0],
            "TA_F_QC": 1.0,
            "SW_IN_POT": 100.0,
            "SW_IN_F": [100.0, 200.0, -9999],
            "SW_IN_F_QC": 1.0,
            "VPD_F": [1.5, 2.5, 3.5],
            "VPD_F_QC": 1.0,
            "P_F": [0.0, 12.5, 1.0],
            "P_F_QC": 1.0,
            "NEE_CUT_REF": 0.0,
            "NEE_VUT_REF": [1.25, -9999, -3.5],
            "NEE_CUT_REF_QC": 1.0,
            "NEE_VUT_REF_QC": [0.75, -9999, 1.0],
            "NEE_VUT_REF_RANDUNC": 0.1,
        }
    )
    return frame[DD_COLUMNS]


def test_daily_file_passes_gc_values_through(tmp_path: Path) -> None:
    daily = read_site_file(write(dd_frame(), tmp_path, DD_NAME))
    np.testing.assert_allclose(daily["nee_obs"].values, [1.25, np.nan, -3.5])
    np.testing.assert_allclose(daily["nee_qc_fraction"].values, [0.75, np.nan, 1.0])
    assert daily["nee_measured_fraction"].isna().all()
    np.testing.assert_allclose(daily["sw_in"].values, [8.64, 17.28, np.nan])
    np.testing.assert_allclose(daily["precip"].values, [0.0, 12.5, 1.0])


@pytest.mark.parametrize(
    ("name", "site", "resolution"),
    [
        (HH_NAME, "US-Ha1", "HH"),
        ("FLX_US-Ha1_FLUXNET2015_SUBSET_DD_1991-2012_1-4.csv", "US-Ha1", "DD"),
        ("AMF_US-Ha1_FLUXNET_FULLSET_HH_1991-2020_3-5.csv", "US-Ha1", "HH"),
        ("ICOSETC_BE-Bra_FLUXNET_HR_L2.csv", "BE-Bra", "HR"),
        ("FLX_US-Ha1_FLUXNET2015_ERAI_HH_1989-2014_1-4.csv", "US-Ha1", None),
        ("FLX_US-Ha1_FLUXNET2015_FULLSET_MM_1991-2012_1-4.csv", "US-Ha1", None),
        ("FLX_AR-SLu_FLUXNET2015_AUXMETEO_2009-2011_1-3.csv", "AR-SLu", None),
    ],
)
def test_file_names(name: str, site: str, resolution: str | None) -> None:
    info = parse_file_name(Path(name))
    assert (info.site, info.resolution) == (site, resolution)


def site_info_csv(folder: Path, rows: list[tuple[str, float, float, str]]) -> Path:
    path = folder / "site_info.csv"
    pd.DataFrame(rows, columns=["SITE_ID", "LOCATION_LAT", "LOCATION_LONG", "IGBP"]).to_csv(
        path, index=False
    )
    return path


def test_run_sites_end_to_end(tmp_path: Path) -> None:
    folder = tmp_path / "fluxnet"
    hh = hh_frame(2)
    hh["NEE_VUT_REF"] = -4.0
    write(hh, folder, HH_NAME)
    write(dd_frame(), folder, DD_NAME)
    # DE-Tha also has an HH file at a constant 50 umol: the DD file must win
    other = hh_frame(1)
    other["NEE_VUT_REF"] = 50.0
    write(other, folder, "FLX_DE-Tha_FLUXNET2015_FULLSET_HH_2005-2005_1-4.csv")
    write(hh_frame(1), folder, "FLX_US-Ha1_FLUXNET2015_FULLSET_WW_2005-2005_1-4.csv")  # skipped
    info = site_info_csv(
        folder, [("US-Ha1", 42.5378, -72.1715, "DBF"), ("DE-Tha", 50.96, 13.57, "ENF")]
    )
    out = tmp_path / "sites.nc"

    assert run_sites(folder, info, out) == 0
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert list(ds["site"].values) == ["DE-Tha", "US-Ha1"]
        assert list(pd.DatetimeIndex(ds["time"].values)) == list(
            pd.date_range("2005-01-01", periods=3)
        )
        np.testing.assert_allclose(ds["nee_obs"].sel(site="DE-Tha").values, [1.25, np.nan, -3.5])
        np.testing.assert_allclose(
            ds["nee_obs"].sel(site="US-Ha1").values, [-4 * UMOL, -4 * UMOL, np.nan]
        )
        np.testing.assert_allclose(ds["site_lat"].values, [50.96, 42.5378])
        np.testing.assert_allclose(ds["site_lon"].values, [13.57, -72.1715])
        assert list(ds["site_igbp"].values) == ["ENF", "DBF"]
        assert ds["source_file"].sel(site="DE-Tha").item() == DD_NAME
        assert ds["nee_obs"].attrs["units"] == "g m-2 d-1"
        assert ds["sw_in"].attrs["units"] == "MJ m-2 d-1"
        assert ds.attrs["Conventions"] == "CF-1.8"
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        run_sites(folder, info, out)


def test_run_sites_without_site_info(tmp_path: Path) -> None:
    folder = tmp_path / "fluxnet"
    write(hh_frame(1), folder, HH_NAME)
    out = tmp_path / "sites.nc"
    run_sites(folder, None, out)
    with xr.open_dataset(out, engine="h5netcdf") as ds:
        assert np.isnan(ds["site_lat"].values).all()
        assert [str(v) for v in ds["site_igbp"].values] == [""]


# ---- bad input: a clear error naming file/column/value, and no output file ----


def _hh(tmp_path: Path, edit: object = None, name: str = HH_NAME) -> Path:
    frame = hh_frame(1)
    if edit is not None:
        frame = edit(frame)  # type: ignore[operator]
    return write(frame, tmp_path / "fluxnet", name)


def _swap(frame: pd.DataFrame, i: int, j: int) -> pd.DataFrame:
    rows = frame.index.to_numpy().copy()
    rows[[i, j]] = rows[[j, i]]
    return frame.loc[rows]


BAD_FILES = {
    "empty file": (lambda p: _write_text(p, ""), None, "empty file"),
    "header only": (lambda p: _write_text(p, ",".join(HH_COLUMNS) + "\n"), None, "no data rows"),
    "wrong column names": (
        lambda p: _hh(p, lambda f: f.rename(columns={"NEE_VUT_REF": "NEE"})),
        "NEE_VUT_REF",
        "missing column",
    ),
    "non-monotonic timestamps": (
        lambda p: _hh(p, lambda f: _swap(f, 3, 4)),
        "TIMESTAMP_START",
        "not increasing: 200501010130 at line 6 follows 200501010200",
    ),
    "duplicate timestamps": (
        lambda p: _hh(p, lambda f: pd.concat([f.iloc[:5], f.iloc[4:]])),
        "TIMESTAMP_START",
        "duplicate timestamp 200501010200",
    ),
    "bad timestamp": (
        lambda p: _hh(
            p,
            lambda f: f.assign(
                TIMESTAMP_START=f["TIMESTAMP_START"].where(f.index != 2, "2005-01-01 01:00")
            ),
        ),
        "TIMESTAMP_START",
        "'2005-01-01 01:00' at line 4",
    ),
    "hourly records in an HH file": (
        lambda p: write(hh_frame(1, minutes=60), p / "fluxnet", HH_NAME),
        "TIMESTAMP_END",
        "a HH file has 0 days 00:30:00",
    ),
    "QC flag out of range": (
        lambda p: _hh(p, lambda f: f.assign(NEE_VUT_REF_QC=7)),
        "NEE_VUT_REF_QC",
        "QC value 7",
    ),
    "non-numeric value": (
        lambda p: _hh(p, lambda f: f.assign(TA_F=["warm"] + [1.0] * (len(f) - 1))),
        "TA_F",
        "'warm' at line 2",
    ),
    "bad file name": (lambda p: _hh(p, name="US-Ha1_halfhourly.csv"), None, "not a FLUXNET"),
    "no valid NEE (all -9999)": (
        lambda p: _hh(p, lambda f: f.assign(NEE_VUT_REF=-9999, NEE_VUT_REF_QC=-9999)),
        "NEE_VUT_REF",
        "no day with valid NEE in 1 days",
    ),
}


def _write_text(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "fluxnet"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / HH_NAME
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_raises_clear_error_and_writes_nothing(tmp_path: Path, case: str) -> None:
    make, column, needle = BAD_FILES[case]
    path = make(tmp_path)
    out = tmp_path / "sites.nc"
    with pytest.raises(SchemaError) as err:
        run_sites(path.parent, None, out)
    assert str(path) in str(err.value)
    assert err.value.variable == column
    assert needle in str(err.value)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fluxnet"]


def test_bad_dd_qc_fraction(tmp_path: Path) -> None:
    frame = dd_frame()
    frame["NEE_VUT_REF_QC"] = [0.5, 1.5, 1.0]
    with pytest.raises(SchemaError, match=r"QC value 1.5 not in \[0, 1\]"):
        read_site_file(write(frame, tmp_path, DD_NAME))


def test_site_info_problems(tmp_path: Path) -> None:
    folder = tmp_path / "fluxnet"
    write(hh_frame(1), folder, HH_NAME)
    out = tmp_path / "sites.nc"
    info = site_info_csv(tmp_path, [("DE-Tha", 50.96, 13.57, "ENF")])
    with pytest.raises(SchemaError, match=r"no row for site\(s\) \['US-Ha1'\]") as err:
        run_sites(folder, info, out)
    assert str(info) in str(err.value)
    info = site_info_csv(tmp_path, [("US-Ha1", 142.5, -72.17, "DBF")])
    with pytest.raises(SchemaError, match="LOCATION_LAT"):
        run_sites(folder, info, out)
    pd.DataFrame({"SITE_ID": ["US-Ha1"], "LAT": [1.0]}).to_csv(info, index=False)
    with pytest.raises(SchemaError, match="missing column"):
        run_sites(folder, info, out)
    assert not out.exists()


def test_folder_problems(tmp_path: Path) -> None:
    out = tmp_path / "sites.nc"
    with pytest.raises(ConfigError, match="not a folder"):
        run_sites(tmp_path / "absent", None, out)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SchemaError, match="no FLUXNET flux tables"):
        run_sites(empty, None, out)
    folder = tmp_path / "two"
    write(hh_frame(1), folder, HH_NAME)
    write(hh_frame(1), folder, "AMF_US-Ha1_FLUXNET_FULLSET_HH_1991-2020_3-5.csv")
    with pytest.raises(SchemaError, match="second HH file"):
        run_sites(folder, None, out)
    with pytest.raises(ConfigError, match="min_valid_fraction"):
        read_site_file(folder / HH_NAME, min_valid_fraction=0.0)
    assert not out.exists()
