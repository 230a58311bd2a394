"""ORNL DAAC MODIS site subsets → tower MODIS fields and drivers.

The CSV files follow the long layout the ORNL DAAC subset web service's JSON
takes when the MODISTools client writes it (``mt_subset``: header columns
repeated on every row, then ``modis_date, calendar_date, tile, proc_date,
pixel, value``; ``value`` stored integers, ``pixel`` row-major from the
north-west corner). Expected values come from the products' scale factors and
QC bit layouts (user guides) and the textbook index formulas, worked by hand.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from fluxbridge.data.public import modis
from fluxbridge.data.public.modis import ModisQuality
from fluxbridge.data.public.modis_sites import (
    match_towers,
    read_subset_csv,
    read_subset_folder,
    site_daily,
    window_means,
)
from fluxbridge.errors import ConfigError, SchemaError

COLUMNS = (
    "xllcorner,yllcorner,cellsize,nrows,ncols,band,units,scale,latitude,longitude,site,"
    "product,start,end,complete,modis_date,calendar_date,tile,proc_date,pixel,value"
).split(",")
SCALES = {  # band → (units, scale) as the service lists them
    "LST_Day_1km": ("Kelvin", "0.02"),
    "LST_Night_1km": ("Kelvin", "0.02"),
    "QC_Day": ("Bit Field", "Not Scaled"),
    "QC_Night": ("Bit Field", "Not Scaled"),
    "Fpar_500m": ("Percent", "0.01"),
    "FparLai_QC": ("Bit Field", "Not Scaled"),
    **{f"Nadir_Reflectance_Band{b}": ("Reflectance", "1.0E-4") for b in range(1, 8)},
    **{
        f"BRDF_Albedo_Band_Mandatory_Quality_Band{b}": ("Bit Field", "Not Scaled")
        for b in (1, 2, 3, 5, 7)
    },
}


def subset_rows(
    site: str,
    product: str,
    band: str,
    series: dict[dt.date, np.ndarray],
    lat: float = 42.5,
    lon: float = -72.2,
    proc_date: str = "2020168013407",
) -> list[dict]:
    """Rows of one band: ``series`` maps a composite date to its (nrows, ncols) raw window."""
    units, scale = SCALES[band]
    rows = []
    for date, window in series.items():
        nrows, ncols = window.shape
        for k, value in enumerate(np.asarray(window).ravel(), start=1):
            rows.append(
                {
                    "xllcorner": "-6063683.32",
                    "yllcorner": "4726016.05",
                    "cellsize": "463.312716528",
                    "nrows": nrows,
                    "ncols": ncols,
                    "band": band,
                    "units": units,
                    "scale": scale,
                    "latitude": lat,
                    "longitude": lon,
                    "site": site,
                    "product": product,
                    "start": "2003-01-01",
                    "end": "2004-12-31",
                    "complete": "TRUE",
                    "modis_date": f"A{date.year}{date.timetuple().tm_yday:03d}",
                    "calendar_date": date.isoformat(),
                    "tile": "h12v04",
                    "proc_date": proc_date,
                    "pixel": k,
                    "value": int(value),
                }
            )
    return rows


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=COLUMNS).to_csv(path, index=False)
    return path


def const(value: float, n: int = 3) -> np.ndarray:
    return np.full((n, n), value)


D0 = dt.date(2003, 1, 1)
REFLECTANCE = {1: 500, 2: 3000, 3: 300, 5: 2000, 7: 1000}  # red, NIR, blue, 1.24 µm, 2.13 µm


def nbar_rows(site: str, dates: list[dt.date], qa: np.ndarray | None = None, **kw) -> list[dict]:
    rows = []
    for b, value in REFLECTANCE.items():
        rows += subset_rows(
            site, "MCD43A4", f"Nadir_Reflectance_Band{b}", dict.fromkeys(dates, const(value)), **kw
        )
        q = const(0) if qa is None else qa
        rows += subset_rows(
            site,
            "MCD43A4",
            f"BRDF_Albedo_Band_Mandatory_Quality_Band{b}",
            dict.fromkeys(dates, q),
            **kw,
        )
    return rows


# ------------------------------------------------------------------ scaling, QC, window


def test_lst_scaling_qc_and_window_mean(tmp_path: Path) -> None:
    inner = np.array([[14000, 14500, 15000], [15500, 16000, 16500], [17000, 17500, 18000]])
    day = np.full((5, 5), 20000)  # the ring outside the 3 x 3 block: 400 K
    day[1:4, 1:4] = inner
    qc = np.zeros((5, 5), dtype=int)
    qc[1, 1] = 0b10  # mandatory QA 2: LST not produced (cloud) → out
    rows = subset_rows("US-Ha1", "MOD11A2", "LST_Day_1km", {D0: day})
    rows += subset_rows("US-Ha1", "MOD11A2", "QC_Day", {D0: qc})
    rows += subset_rows("US-Ha1", "MOD11A2", "LST_Night_1km", {D0: np.full((5, 5), 14000)})
    rows += subset_rows("US-Ha1", "MOD11A2", "QC_Night", {D0: np.zeros((5, 5))})
    (subset,) = read_subset_csv(write_csv(tmp_path / "lst.csv", rows))
    q = ModisQuality()
    # 3 x 3: the 8 valid inner pixels, (14500 + ... + 18000) / 8 = 16250 → × 0.02 K
    three = window_means(subset, q, window=3)
    np.testing.assert_allclose(three["LST_Day"], [325.0])
    np.testing.assert_allclose(three["LST_Night"], [280.0])
    # the tower pixel alone: 16000 × 0.02
    np.testing.assert_allclose(window_means(subset, q, window=1)["LST_Day"], [320.0])
    # 5 x 5: 16 ring pixels at 20000 and the 8 inner: (320000 + 130000) / 24 × 0.02
    np.testing.assert_allclose(window_means(subset, q, window=5)["LST_Day"], [375.0])


@pytest.mark.parametrize(
    ("qc", "kept"),
    [
        (0b00000000, True),  # produced, good quality
        (0b00000001, True),  # produced, other quality: check bits 6-7
        (0b01000001, True),  # LST error <= 2 K (bits 6-7 = 1)
        (0b10000001, False),  # LST error <= 3 K (bits 6-7 = 2) > max_lst_error 1
        (0b00000010, False),  # not produced (cloud)
        (0b00000011, False),  # not produced (other)
    ],
)
def test_lst_qc_bits(tmp_path: Path, qc: int, kept: bool) -> None:
    rows = subset_rows("S", "MOD11A2", "LST_Day_1km", {D0: const(15000, 1)})
    rows += subset_rows("S", "MOD11A2", "QC_Day", {D0: const(qc, 1)})
    rows += subset_rows("S", "MOD11A2", "LST_Night_1km", {D0: const(15000, 1)})
    rows += subset_rows("S", "MOD11A2", "QC_Night", {D0: const(0, 1)})
    (subset,) = read_subset_csv(write_csv(tmp_path / "lst.csv", rows))
    got = window_means(subset, ModisQuality(), window=1)["LST_Day"][0]
    assert (got == pytest.approx(300.0)) if kept else np.isnan(got)


def test_fpar_scaling_codes_qc_and_coverage(tmp_path: Path) -> None:
    dates = [D0, D0 + dt.timedelta(days=8), D0 + dt.timedelta(days=16)]
    # date 0: 3 of 9 valid (1/3 >= 0.25): 40, 50, 60 → mean 0.5; the rest 250 (barren code)
    a = const(250)
    a[0, :] = [40, 50, 60]
    # date 1: 2 of 9 valid (0.22 < 0.25) → NaN
    b = const(250)
    b[0, :2] = [40, 50]
    # date 2: all 70, but the centre from the back-up algorithm (SCF bits 5-7 = 2) and one
    # corner with main-algorithm saturation (SCF 1, kept)
    c = const(70)
    c[0, 0] = 90
    qc_c = const(0)
    qc_c[1, 1] = 2 << 5
    qc_c[0, 0] = 1 << 5
    rows = subset_rows("S", "MCD15A2H", "Fpar_500m", dict(zip(dates, [a, b, c], strict=True)))
    rows += subset_rows(
        "S", "MCD15A2H", "FparLai_QC", dict(zip(dates, [const(0), const(0), qc_c], strict=True))
    )
    (subset,) = read_subset_csv(write_csv(tmp_path / "fpar.csv", rows))
    got = window_means(subset, ModisQuality(), window=3)["FPAR"]
    # date 2: 7 pixels at 0.70 and one at 0.90 → (4.9 + 0.9) / 8
    np.testing.assert_allclose(got, [0.5, np.nan, 5.8 / 8])


def test_nbar_indices_and_mandatory_quality(tmp_path: Path) -> None:
    qa = const(0)
    qa[0, 0] = 1  # magnitude inversion: MCD43C4's quality 4 > max_brdf_quality 2 → out
    qa[0, 1] = 255  # fill
    rows = nbar_rows("S", [D0], qa=qa)
    # a different (bright) reflectance at the two screened pixels: they must not count
    frame = pd.DataFrame(rows)
    bright = (frame["band"] == "Nadir_Reflectance_Band1") & frame["pixel"].isin([1, 2])
    frame.loc[bright, "value"] = 9000
    path = tmp_path / "nbar.csv"
    frame.to_csv(path, index=False)
    (subset,) = read_subset_csv(path)
    got = window_means(subset, ModisQuality(), window=3)
    red, nir, blue, swir, mir = 0.05, 0.30, 0.03, 0.20, 0.10
    # Textbook formulas: NDVI (Rouse 1974), EVI (Huete 2002: G=2.5, C1=6, C2=7.5, L=1),
    # NDWI (Gao 1996 with the 1.24 µm band); Band4 is the 2.13 µm reflectance.
    assert got["NDVI"][0] == pytest.approx((nir - red) / (nir + red))
    assert got["EVI"][0] == pytest.approx(2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1))
    assert got["NDWI"][0] == pytest.approx((nir - swir) / (nir + swir))
    assert got["Band4"][0] == pytest.approx(mir)


def test_nbar_without_quality_bands_is_refused(tmp_path: Path) -> None:
    rows = [r for r in nbar_rows("S", [D0]) if "Quality" not in r["band"]]
    (subset,) = read_subset_csv(write_csv(tmp_path / "nbar.csv", rows))
    with pytest.raises(SchemaError, match="BRDF_Albedo_Band_Mandatory_Quality_Band1"):
        window_means(subset, ModisQuality())


# ------------------------------------------------------------------ composites → days


def test_composites_to_days(tmp_path: Path) -> None:
    lst_dates = [dt.date(2003, 12, 19), dt.date(2003, 12, 27)]
    rows = subset_rows(
        "S",
        "MOD11A2",
        "LST_Day_1km",
        dict(zip(lst_dates, [const(14000), const(15000)], strict=True)),
    )
    rows += subset_rows("S", "MOD11A2", "QC_Day", dict.fromkeys(lst_dates, const(0)))
    rows += subset_rows("S", "MOD11A2", "LST_Night_1km", dict.fromkeys(lst_dates, const(14000)))
    rows += subset_rows("S", "MOD11A2", "QC_Night", dict.fromkeys(lst_dates, const(0)))
    rows += subset_rows("S", "MCD15A2H", "Fpar_500m", dict.fromkeys(lst_dates, const(50)))
    rows += subset_rows("S", "MCD15A2H", "FparLai_QC", dict.fromkeys(lst_dates, const(0)))
    # MCD43A4: daily files dated at their window's centre; here one every 8 days
    nbar_dates = [dt.date(2003, 12, 18), dt.date(2003, 12, 26)]
    frame = pd.DataFrame(nbar_rows("S", nbar_dates))
    later = (frame["band"] == "Nadir_Reflectance_Band7") & (frame["calendar_date"] == "2003-12-26")
    frame.loc[later, "value"] = 2000  # Band4 0.2 on the later file, 0.1 on the earlier
    frame = pd.concat([frame, pd.DataFrame(rows)])
    folder = tmp_path / "subsets"
    write_csv(folder / "S_all.csv", frame.to_dict("records"))
    days = pd.date_range("2003-12-17", "2004-01-04", freq="D")
    got = site_daily(read_subset_folder(folder), days)
    # 8-day LST: 19-26 Dec the first composite, 27-31 Dec the second (cut at year end),
    # nothing before 19 Dec or in 2004
    expected_lst = [np.nan, np.nan] + [280.0] * 8 + [300.0] * 5 + [np.nan] * 4
    np.testing.assert_allclose(got["LST_Day"], expected_lst)
    # nearest daily file within 8 days, ties to the earlier: 17-22 Dec → 18 Dec
    # (22 Dec: 4 days from both), 23 Dec - 3 Jan → 26 Dec, 4 Jan (9 days) → none
    expected_b4 = [0.1] * 6 + [0.2] * 12 + [np.nan]
    np.testing.assert_allclose(got["Band4"], expected_b4)
    assert set(got) == set(modis.VARIABLES)


def test_the_latest_processing_wins(tmp_path: Path) -> None:
    rows = subset_rows("S", "MCD15A2H", "Fpar_500m", {D0: const(40)}, proc_date="2015001000000")
    rows += subset_rows("S", "MCD15A2H", "Fpar_500m", {D0: const(60)}, proc_date="2021001000000")
    rows += subset_rows("S", "MCD15A2H", "FparLai_QC", {D0: const(0)})
    (subset,) = read_subset_csv(write_csv(tmp_path / "fpar.csv", rows[::-1]))
    np.testing.assert_allclose(window_means(subset, ModisQuality())["FPAR"], [0.6])


# ------------------------------------------------------------------ bad input, matching


def test_bad_files_are_one_line(tmp_path: Path) -> None:
    rows = subset_rows("S", "MCD15A2H", "Fpar_500m", {D0: const(40)})
    no_pixel = pd.DataFrame(rows).drop(columns="pixel")
    no_pixel.to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(SchemaError, match=r"a\.csv, variable 'pixel': column missing"):
        read_subset_csv(tmp_path / "a.csv")
    scaled = pd.DataFrame(rows).assign(scale="0.1")
    scaled.to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(SchemaError, match=r"band Fpar_500m has scale 0.1; MCD15A2H has 0.01"):
        read_subset_csv(tmp_path / "b.csv")
    even = subset_rows("S", "MCD15A2H", "Fpar_500m", {D0: const(40, 2)})
    with pytest.raises(SchemaError, match="2 x 2 window; expected odd sizes"):
        read_subset_csv(write_csv(tmp_path / "c.csv", even))
    bad_date = pd.DataFrame(rows).assign(calendar_date="2003-13-01")
    bad_date.to_csv(tmp_path / "d.csv", index=False)
    with pytest.raises(SchemaError, match=r"calendar_date.*'2003-13-01' is not a date"):
        read_subset_csv(tmp_path / "d.csv")
    rows += subset_rows("S", "MCD15A2H", "FparLai_QC", {D0: const(0)})
    (subset,) = read_subset_csv(write_csv(tmp_path / "e.csv", rows))
    with pytest.raises(ConfigError, match="window=2"):
        window_means(subset, ModisQuality(), window=2)
    with pytest.raises(SchemaError, match="smaller than the 5 x 5 block"):
        window_means(subset, ModisQuality(), window=5)


def test_match_towers_by_id_then_position(tmp_path: Path) -> None:
    rows = subset_rows("us-ha1", "MCD15A2H", "Fpar_500m", {D0: const(40)}, lat=0.0, lon=0.0)
    # a fixed-site name with the tower's coordinates, 0.005° (about 0.4 km) off
    rows += subset_rows(
        "de_tharandt", "MCD15A2H", "Fpar_500m", {D0: const(40)}, lat=50.905, lon=13.6
    )
    rows += subset_rows("far_away", "MCD15A2H", "Fpar_500m", {D0: const(40)}, lat=51.0, lon=13.6)
    subsets = read_subset_csv(write_csv(tmp_path / "f.csv", rows))
    matched = match_towers(
        subsets, ["US-Ha1", "DE-Tha"], np.array([42.5, 50.9]), np.array([-72.2, 13.6])
    )
    assert {k: [s.site for s in v] for k, v in matched.items()} == {
        "US-Ha1": ["us-ha1"],
        "DE-Tha": ["de_tharandt"],
    }


def test_statistics_tables_are_skipped(tmp_path: Path) -> None:
    (tmp_path / "statistics_Fpar_500m.csv").write_text("modis_date,mean,std\nA2003001,0.5,0.1\n")
    assert read_subset_folder(tmp_path) == []


# ------------------------------------------------------------------ the prepare hook


def _year_dates(years: tuple[int, int]) -> list[dt.date]:
    """Composite dates every 8 days from 1 January of each year (the 8-day products)."""
    return [
        dt.date(y, 1, 1) + dt.timedelta(days=8 * k)
        for y in range(years[0], years[1] + 1)
        for k in range(46)
    ]


@pytest.fixture(scope="module")
def prepared_with_subsets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    from tests.data.prepare import world
    from tests.data.prepare.test_public import _stand_in_modis_daily, _write_era5

    from fluxbridge.data.prepare.run import run_prepare

    root = tmp_path_factory.mktemp("subsets")
    world.write_world(root / "raw")
    _write_era5(root / "raw/era5/single_levels")
    for target in ("mcd43c4", "mod11c2", "mcd15a2h"):
        (root / "raw/modis" / target).mkdir(parents=True)
        (root / "raw/modis" / target / "granule.hdf").write_bytes(b"stand-in")
    dates = _year_dates(world.YEARS)
    lat, lon, _ = world.SITES["US-Ha1"]
    full = nbar_rows("US-Ha1", dates, lat=lat, lon=lon)
    for band, value in (
        ("LST_Day_1km", 15500),
        ("LST_Night_1km", 14500),
        ("QC_Day", 0),
        ("QC_Night", 0),
    ):
        full += subset_rows(
            "US-Ha1", "MOD11A2", band, dict.fromkeys(dates, const(value)), lat=lat, lon=lon
        )
    for band, value in (("Fpar_500m", 60), ("FparLai_QC", 0)):
        full += subset_rows(
            "US-Ha1", "MCD15A2H", band, dict.fromkeys(dates, const(value)), lat=lat, lon=lon
        )
    subsets = root / "raw/modis/site_subsets"
    write_csv(subsets / "US-Ha1_all.csv", full)
    # DE-Tha: LST only → keeps its cell's drivers
    lat, lon, _ = world.SITES["DE-Tha"]
    partial = []
    for band, value in (
        ("LST_Day_1km", 15500),
        ("LST_Night_1km", 14500),
        ("QC_Day", 0),
        ("QC_Night", 0),
    ):
        partial += subset_rows(
            "DE-Tha", "MOD11A2", band, dict.fromkeys(dates, const(value)), lat=lat, lon=lon
        )
    write_csv(subsets / "DE-Tha_MOD11A2.csv", partial)
    # AU-How: all three products, matched by position under a fixed-site name, but every
    # LST composite flagged "not produced" (QC bits 0-1 = 2) → no valid fAPAR × LST_day
    lat, lon, _ = world.SITES["AU-How"]
    cloudy = pd.DataFrame(full).assign(site="au_howard_springs", latitude=lat, longitude=lon)
    cloudy.loc[cloudy["band"].isin(["QC_Day", "QC_Night"]), "value"] = 2
    write_csv(subsets / "au_howard_springs.csv", cloudy.to_dict("records"))

    world.write_manifest(root / "manifest.yaml")
    manifest = yaml.safe_load((root / "manifest.yaml").read_text())
    # the project's manifest entry (data_manifest.yaml) is the one the subsets go to
    entry = next(e for e in manifest["entries"] if e["name"] == "modis-site-subsets")
    assert entry["target"] == "modis/site_subsets"
    drivers = {
        "source": "public",
        "era5": {"entry": "era5-single-levels", "mapping": "era5_daily_statistics"},
        "modis": {"nbar": "modis-mcd43c4", "lst": "modis-mod11c2", "fpar": "modis-mcd15a2h"},
        "msc_years": list(world.YEARS),
        "wai": {"capacity_mm": 100.0, "spinup_years": 2},
    }
    config = world.write_config(root / "prepare.yaml", root / "manifest.yaml", drivers=drivers)
    cfg = yaml.safe_load(config.read_text())
    cfg["sites"]["modis_subsets"] = "modis-site-subsets"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    mp = pytest.MonkeyPatch()
    mp.setattr(modis, "modis_daily", _stand_in_modis_daily)
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Keep(level=logging.INFO)
    logger = logging.getLogger("fluxbridge.data.prepare.public")
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(logging.INFO)
    try:
        assert run_prepare(config, root / "canonical", root / "raw") == 0
    finally:
        mp.undo()
        logger.removeHandler(handler)
        logger.setLevel(old_level)
    return root / "canonical", records


def test_tower_with_subsets_takes_them(prepared_with_subsets: tuple[Path, list[str]]) -> None:
    canonical, _ = prepared_with_subsets
    sites = xr.open_dataset(canonical / "sites.nc", engine="h5netcdf")
    ha1 = sites.sel(site="US-Ha1")
    red, nir, blue, swir, mir = 0.05, 0.30, 0.03, 0.20, 0.10
    ndvi = (nir - red) / (nir + red)
    evi = 2.5 * (nir - red) / (nir + 6 * red - 7.5 * blue + 1)
    np.testing.assert_allclose(ha1["MSC_LST_Night"].values, 14500 * 0.02, rtol=1e-6)
    np.testing.assert_allclose(ha1["MSC_FparLST"].values, 0.6 * 15500 * 0.02, rtol=1e-6)
    np.testing.assert_allclose(ha1["MIN_MSC_NDWI"].values, (nir - swir) / (nir + swir), rtol=1e-5)
    np.testing.assert_allclose(ha1["MSC_EVIRpot"].values, evi * 12.0, rtol=1e-5)  # ERA5 Rg 12
    np.testing.assert_allclose(ha1["AMP_MSC_NDVI"].values, 0.0, atol=1e-6)
    np.testing.assert_allclose(ha1["AMP_Band4"].values, 0.0, atol=1e-6)
    assert mir == pytest.approx(0.1)
    # Rg_VIMSC = MSC(NDVI × Rpot) with Rpot at the tower's latitude (42.5°N, not the 45°N
    # cell centre): FAO-56 Eq. 21 on 21 March, the mean of J = 80 (2003) and 81 (2004).
    phi = np.deg2rad(42.5)

    def ra(j: int) -> float:
        dr = 1 + 0.033 * np.cos(2 * np.pi * j / 365)
        delta = 0.409 * np.sin(2 * np.pi * j / 365 - 1.39)
        ws = np.arccos(-np.tan(phi) * np.tan(delta))
        return (
            1440 / np.pi * 0.082 * dr
            * (ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws))
        )  # fmt: skip

    day = pd.DatetimeIndex(sites["time"].values).get_loc(pd.Timestamp("2003-03-21"))
    np.testing.assert_allclose(ha1["Rg_VIMSC"].values[day], ndvi * (ra(80) + ra(81)) / 2, rtol=1e-5)


def test_towers_without_subsets_keep_their_cell(
    prepared_with_subsets: tuple[Path, list[str]],
) -> None:
    from tests.data.prepare.test_public import MODIS

    canonical, records = prepared_with_subsets
    sites = xr.open_dataset(canonical / "sites.nc", engine="h5netcdf")
    for site in ("DE-Tha", "BR-Sa1", "AU-How"):
        got = sites.sel(site=site)
        np.testing.assert_allclose(got["MSC_LST_Night"].values, MODIS["LST_Night"], rtol=1e-6)
        np.testing.assert_allclose(
            got["MSC_FparLST"].values, MODIS["FPAR"] * MODIS["LST_Day"], rtol=1e-6
        )
    summary = [m for m in records if m.startswith("MODIS at towers")]
    assert len(summary) == 1
    assert "1 of 4 tower(s) from ORNL DAAC site subsets" in summary[0]
    assert "3 keep their cell's MODIS drivers" in summary[0]
    assert "DE-Tha: no MCD43A4/MCD15A2H subset" in summary[0]
    assert "AU-How: no valid subset value in 2003-2004 for an MSC input" in summary[0]


def test_subsets_need_public_drivers(tmp_path: Path) -> None:
    from tests.data.prepare import world

    from fluxbridge.data.prepare.config import load_prepare_config

    config = world.write_config(tmp_path / "p.yaml", tmp_path / "m.yaml")
    cfg = yaml.safe_load(config.read_text())
    cfg["sites"]["modis_subsets"] = "modis-site-subsets"
    config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    with pytest.raises(
        (ConfigError, ValueError), match=r"sites.modis_subsets .* needs drivers.source public"
    ):
        load_prepare_config(config)
