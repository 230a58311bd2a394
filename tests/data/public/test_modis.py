"""MODIS readers on small files written in the products' documented layouts.

The HDF4 files follow the LP DAAC / LAADS file specifications: HDF-EOS2
``StructMetadata.0`` (GCTP_GEO corners in packed degrees DDDMMMSSS.SS for the
0.05° CMG, GCTP_SNSOID corners in metres for MCD15A2H tiles), SDS names and
types, ``_FillValue``, ``valid_range`` and the calibration attributes
(``scale_factor``, ``add_offset``, ... as SDsetcal writes them). Expected values
are worked out by hand or with the textbook formulas in the comments, never
with the code under test.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest

pyhdf_sd = pytest.importorskip("pyhdf.SD")
SD, SDC = pyhdf_sd.SD, pyhdf_sd.SDC

from fluxbridge.data.public import modis  # noqa: E402
from fluxbridge.data.public.modis import (  # noqa: E402
    ModisFiles,
    ModisQuality,
    day_to_composite,
    modis_daily,
)
from fluxbridge.data.public.modis_io import (  # noqa: E402
    SINUSOIDAL_RADIUS_M,
    LatLonGeoref,
    decode,
    georef_from_struct_metadata,
    open_granule,
)
from fluxbridge.errors import ConfigError, SchemaError  # noqa: E402
from fluxbridge.geo.grid import Grid  # noqa: E402

# --------------------------------------------------------------------------- writers

_TYPES = {
    np.dtype(np.int16): SDC.INT16,
    np.dtype(np.uint16): SDC.UINT16,
    np.dtype(np.uint8): SDC.UINT8,
}


def _packed(deg: float) -> float:
    """Decimal degrees → HDF-EOS packed DDDMMMSSS.SS (by hand: 10.05° = 10°03'00")."""
    sign = -1 if deg < 0 else 1
    a = abs(deg)
    d = int(a + 1e-12)
    m = round((a - d) * 60 * 1e6) // 1_000_000
    s = (a - d - m / 60) * 3600
    return sign * (d * 1_000_000 + m * 1_000 + round(s, 6))


def _struct_geo(west: float, north: float, east: float, south: float, ny: int, nx: int) -> str:
    return (
        "GROUP=SwathStructure\nEND_GROUP=SwathStructure\nGROUP=GridStructure\n"
        '\tGROUP=GRID_1\n\t\tGridName="MODIS_CMG"\n'
        f"\t\tXDim={nx}\n\t\tYDim={ny}\n"
        f"\t\tUpperLeftPointMtrs=({_packed(west):.6f},{_packed(north):.6f})\n"
        f"\t\tLowerRightMtrs=({_packed(east):.6f},{_packed(south):.6f})\n"
        "\t\tProjection=GCTP_GEO\n\t\tGridOrigin=HDFE_GD_UL\n"
        "\tEND_GROUP=GRID_1\nEND_GROUP=GridStructure\nGROUP=PointStructure\nEND_GROUP=PointStructure\n"
    )


def _struct_sin(x0: float, y0: float, x1: float, y1: float, ny: int, nx: int) -> str:
    return (
        'GROUP=GridStructure\n\tGROUP=GRID_1\n\t\tGridName="MOD_Grid_MOD15A2H"\n'
        f"\t\tXDim={nx}\n\t\tYDim={ny}\n"
        f"\t\tUpperLeftPointMtrs=({x0:.6f},{y0:.6f})\n\t\tLowerRightMtrs=({x1:.6f},{y1:.6f})\n"
        "\t\tProjection=GCTP_SNSOID\n"
        f"\t\tProjParams=({SINUSOIDAL_RADIUS_M:.6f},0,0,0,0,0,0,0,0,0,0,0,0)\n"
        "\t\tSphereCode=-1\n\t\tGridOrigin=HDFE_GD_UL\n\tEND_GROUP=GRID_1\nEND_GROUP=GridStructure\n"
    )


def _write_hdf4(
    path: Path, struct: str, layers: dict[str, tuple[np.ndarray, dict]], compress: bool = False
) -> Path:
    """An HDF4 file with ``StructMetadata.0`` and SDS (data, {fill, valid_range, scale, ...});
    ``compress``: deflate, as the archive's files are (the benchmark's 0.05° year)."""
    sd = SD(str(path), SDC.WRITE | SDC.CREATE)
    sd.attr("StructMetadata.0").set(SDC.CHAR, struct)
    for name, (data, meta) in layers.items():
        t = _TYPES[data.dtype]
        sds = sd.create(name, t, data.shape)
        sds.attr("long_name").set(SDC.CHAR, meta.get("long_name", name))
        sds.attr("units").set(SDC.CHAR, meta.get("units", "none"))
        if "valid_range" in meta:
            sds.attr("valid_range").set(t, list(meta["valid_range"]))
        if "fill" in meta:
            sds.setfillvalue(meta["fill"])
        if "scale" in meta:  # what MODIS writes: SDsetcal(scale, err, offset, err, type)
            sds.setcal(
                meta["scale"], 0.0, meta.get("offset", 0.0), 0.0, SDC.INT16 if t == SDC.INT16 else t
            )
        if compress:
            sds.setcompress(SDC.COMP_DEFLATE, value=1)
        sds[:] = data
        sds.endaccess()
    sd.end()
    return path


# The test region: 4 × 4 CMG cells of 0.05° in 50.0–50.2 °N, 10.0–10.2 °E, and a
# canonical grid of 2 × 2 cells of 0.1° over it (each takes 2 × 2 CMG cells).
NORTH, SOUTH, WEST, EAST = 50.2, 50.0, 10.0, 10.2
GRID = Grid(np.array([50.0, 50.1, 50.2]), np.array([10.0, 10.1, 10.2]))
# exact areas of the CMG rows (north → south): ∝ sin φ2 − sin φ1 (same width)
ROW_EDGES = np.array([50.2, 50.15, 50.1, 50.05, 50.0])
ROW_W = np.sin(np.deg2rad(ROW_EDGES[:-1])) - np.sin(np.deg2rad(ROW_EDGES[1:]))

NBAR_META = {"fill": 32767, "valid_range": (0, 32766), "scale": 0.0001, "units": "reflectance"}


def _nbar_file(path: Path, bands: dict[int, np.ndarray], quality=None, snow=None) -> Path:
    """MCD43C4 v061 SDS: Nadir_Reflectance_Band1..7 (int16), BRDF_Quality, Percent_Snow, ..."""
    shape = (4, 4)
    layers = {}
    for b in range(1, 8):
        data = bands.get(b, np.full(shape, 1000, np.int16)).astype(np.int16)
        layers[f"Nadir_Reflectance_Band{b}"] = (data, NBAR_META)
    q = np.zeros(shape, np.uint8) if quality is None else quality.astype(np.uint8)
    layers["BRDF_Quality"] = (q, {"fill": 255, "valid_range": (0, 5)})
    s = np.zeros(shape, np.uint8) if snow is None else snow.astype(np.uint8)
    layers["Percent_Snow"] = (s, {"fill": 255, "valid_range": (0, 100), "units": "percent"})
    layers["Percent_Inputs"] = (
        np.full(shape, 100, np.uint8),
        {"fill": 255, "valid_range": (0, 100)},
    )
    layers["Local_Solar_Noon"] = (
        np.full(shape, 40, np.uint8),
        {"fill": 255, "valid_range": (0, 90)},
    )
    layers["BRDF_Albedo_Uncertainty"] = (
        np.full(shape, 100, np.int16),
        {"fill": 32767, "valid_range": (0, 32766), "scale": 0.0001},
    )
    return _write_hdf4(path, _struct_geo(WEST, NORTH, EAST, SOUTH, 4, 4), layers)


LST_META = {"fill": 0, "valid_range": (7500, 65535), "scale": 0.02, "units": "K"}


def _lst_file(path: Path, day: np.ndarray, qc_day: np.ndarray, night=None, qc_night=None) -> Path:
    """MOD11C2 v061 SDS: LST_Day_CMG (uint16, ×0.02 K, fill 0), QC_Day (uint8), ... Night."""
    night = day - 500 if night is None else night
    qc_night = qc_day if qc_night is None else qc_night
    layers = {
        "LST_Day_CMG": (day.astype(np.uint16), LST_META),
        "QC_Day": (qc_day.astype(np.uint8), {"valid_range": (0, 255)}),
        "LST_Night_CMG": (night.astype(np.uint16), LST_META),
        "QC_Night": (qc_night.astype(np.uint8), {"valid_range": (0, 255)}),
        "Clear_sky_days": (np.full(day.shape, 255, np.uint8), {"fill": 0}),
    }
    return _write_hdf4(path, _struct_geo(WEST, NORTH, EAST, SOUTH, 4, 4), layers)


# --------------------------------------------------------------------------- decoding


def test_packed_degrees_and_geo_grid() -> None:
    g = georef_from_struct_metadata(_struct_geo(-180, 90, 180, -90, 3600, 7200), Path("x.hdf"))
    assert g == LatLonGeoref(90.0, -0.05, -180.0, 0.05, 3600, 7200)
    g = georef_from_struct_metadata(_struct_geo(WEST, NORTH, EAST, SOUTH, 4, 4), Path("x.hdf"))
    assert g.lat0 == pytest.approx(50.2) and g.dlat == pytest.approx(-0.05)
    assert g.lon0 == pytest.approx(10.0) and g.dlon == pytest.approx(0.05)


def test_decode_scale_fill_and_valid_range() -> None:
    raw = np.array([15000, 0, 7499, 7500, 65535], dtype=np.uint16)
    out = decode(raw, {"_FillValue": 0, "valid_range": [7500, 65535], "scale_factor": 0.02})
    # 15000 × 0.02 = 300 K; 0 is fill; 7499 below the valid range; 7500 × 0.02 = 150 K
    np.testing.assert_allclose(out, [300.0, np.nan, np.nan, 150.0, 1310.7])


def test_hdf4_reader_reads_attributes_as_written(tmp_path: Path) -> None:
    day = np.full((4, 4), 14500, np.uint16)
    path = _lst_file(tmp_path / "MOD11C2.A2010009.061.2021000000000.hdf", day, np.zeros((4, 4)))
    g = open_granule(path)
    try:
        assert g.dates == (dt.date(2010, 1, 9),)
        attrs = g.attrs("LST_Day_CMG")
        assert attrs["scale_factor"] == pytest.approx(0.02)
        assert list(attrs["valid_range"]) == [7500, 65535]
        assert attrs["_FillValue"] == 0
        np.testing.assert_allclose(decode(g.read("LST_Day_CMG", slice(1, 3)), attrs), 290.0)
    finally:
        g.close()


# --------------------------------------------------------------------------- QC and indices


def test_lst_quality_bits(tmp_path: Path) -> None:
    """QC bits 0–1 (mandatory QA) and 6–7 (LST error) from the MOD11C2 user guide."""
    qc = np.zeros((4, 4), np.uint8)
    qc[0, 0] = 0b01000001  # produced, other quality; LST error ≤ 2 K → kept
    qc[0, 1] = 0b10000000  # LST error ≤ 3 K → dropped (default keeps ≤ 2 K)
    qc[1, 0] = 0b00000010  # not produced, cloud → dropped
    day = np.full((4, 4), 15000, np.uint16)  # 300 K
    day[0, 0] = 15500  # 310 K
    path = _lst_file(tmp_path / "MOD11C2.A2010001.061.1.hdf", day, qc)
    g = open_granule(path)
    out = modis._lst_fields(g, slice(0, 4), 0, ModisQuality())
    g.close()
    expected = np.full((4, 4), 300.0)
    expected[0, 0] = 310.0
    expected[0, 1] = expected[1, 0] = np.nan
    np.testing.assert_allclose(out["LST_Day"], expected)
    np.testing.assert_allclose(out["LST_Night"], expected - 10.0)  # night = day − 500 × 0.02


def test_nbar_indices_by_hand(tmp_path: Path) -> None:
    shape = (4, 4)
    bands = {
        1: np.full(shape, 500),  # red 0.05
        2: np.full(shape, 4000),  # NIR 0.40
        3: np.full(shape, 300),  # blue 0.03
        5: np.full(shape, 3000),  # 1.24 µm 0.30
        7: np.full(shape, 1000),  # 2.13 µm 0.10
    }
    quality = np.zeros(shape)
    quality[0, 0] = 3  # mixed, < 75 % full inversions → dropped
    snow = np.zeros(shape)
    snow[0, 1] = 60  # mostly snow → dropped
    bands[1][1, 1] = 32767  # fill in red → NDVI/EVI NaN, NDWI and Band4 kept
    path = _nbar_file(tmp_path / "MCD43C4.A2010005.061.1.hdf", bands, quality, snow)
    g = open_granule(path)
    out = modis._nbar_fields(g, slice(0, 4), 0, ModisQuality())
    g.close()
    ndvi = (0.40 - 0.05) / (0.40 + 0.05)  # 0.7778
    evi = 2.5 * (0.40 - 0.05) / (0.40 + 6 * 0.05 - 7.5 * 0.03 + 1)  # 0.875 / 1.475 = 0.5932
    ndwi = (0.40 - 0.30) / (0.40 + 0.30)  # 0.1429
    for name, value in (("NDVI", ndvi), ("EVI", evi), ("NDWI", ndwi), ("Band4", 0.10)):
        expected = np.full(shape, value)
        expected[0, 0] = expected[0, 1] = np.nan
        if name in ("NDVI", "EVI"):
            expected[1, 1] = np.nan
        np.testing.assert_allclose(out[name], expected, rtol=1e-12, err_msg=name)
    assert out["EVI"][2, 2] == pytest.approx(0.59322, abs=1e-5)


# --------------------------------------------------------------------------- composites → days


def test_period_composites_to_days() -> None:
    year = [dt.date(2010, 1, 1) + dt.timedelta(days=i) for i in range(365)]
    starts = [dt.date(2010, 1, 1) + dt.timedelta(days=8 * k) for k in range(46)]  # DOY 1, 9, …, 361
    del starts[2]  # DOY 17–24 missing
    idx = day_to_composite(year, starts, "period")
    assert idx[0] == 0 and idx[7] == 0 and idx[8] == 1 and idx[15] == 1
    assert (idx[16:24] == -1).all()  # the missing composite leaves its 8 days empty
    assert idx[24] == 2  # DOY 25 → the composite starting on DOY 25
    assert (idx[360:] == 44).all()  # DOY 361–365: the last, 5-day composite
    # the DOY 361 composite of 2009 does not spill into 2010
    assert (day_to_composite(year[:3], [dt.date(2009, 12, 27)], "period") == -1).all()


def test_centre_dated_files_to_days() -> None:
    days = [dt.date(2010, 1, 1) + dt.timedelta(days=i) for i in range(31)]
    files = [dt.date(2010, 1, 17), dt.date(2010, 1, 9)]  # any order
    idx = day_to_composite(days, files, "centre", nearest_days=8)
    # 1 Jan is 8 days from 9 Jan → 9 Jan; 13 Jan is 4 days from both → the earlier (9 Jan);
    # 25 Jan is 8 days from 17 Jan → 17 Jan; 26 Jan is 9 days away → none
    assert idx[0] == 1 and idx[12] == 1 and idx[13] == 0 and idx[24] == 0
    assert idx[25] == -1 and idx[30] == -1


# ------------------------------------------------------------------- aggregation, end to end


def _fpar_tile(path: Path, fpar: np.ndarray, qc: np.ndarray) -> Path:
    """MCD15A2H v061 tile: Fpar_500m (uint8, ×0.01, fill 255, valid 0–100), FparLai_QC."""
    # 4 × 4 pixels of 0.05° of latitude in 50.0–50.2 °N; sinusoidal x = R λ cos φ
    r = SINUSOIDAL_RADIUS_M
    dy = r * np.deg2rad(0.05)
    y0 = r * np.deg2rad(50.2)
    # width: pixel centres must fall in 10.0–10.1 and 10.1–10.2 °E at every row
    # (cos φ varies by 0.3 % over the tile, so centres move < 0.001° in longitude)
    x0 = r * np.deg2rad(10.0) * np.cos(np.deg2rad(50.1))
    dx = r * np.deg2rad(0.05) * np.cos(np.deg2rad(50.1))
    layers = {
        "Fpar_500m": (fpar.astype(np.uint8), {"fill": 255, "valid_range": (0, 100), "scale": 0.01}),
        "FparLai_QC": (qc.astype(np.uint8), {"fill": 255, "valid_range": (0, 254)}),
        "Lai_500m": (
            np.zeros((4, 4), np.uint8),
            {"fill": 255, "valid_range": (0, 100), "scale": 0.1},
        ),
    }
    return _write_hdf4(path, _struct_sin(x0, y0, x0 + 4 * dx, y0 - 4 * dy, 4, 4), layers)


def _inputs(tmp_path: Path) -> tuple[ModisFiles, dict[str, np.ndarray]]:
    """One NBAR file (15 Jan 2010), two LST composites (DOY 9 and 17), one fPAR tile (DOY 9)."""
    shape = (4, 4)
    red = np.array(
        [[500, 600, 500, 500], [700, 800, 500, 500], [500, 500, 500, 500], [500, 500, 500, 500]]
    )
    bands = {1: red, 2: np.full(shape, 4000), 3: np.full(shape, 300), 5: np.full(shape, 3000)}
    bands[7] = np.arange(16).reshape(shape) * 100 + 1000  # 0.10 … 0.25
    quality = np.zeros(shape)
    quality[3, 3] = 4  # magnitude inversions → dropped
    nbar = _nbar_file(tmp_path / "MCD43C4.A2010015.061.1.hdf", bands, quality)

    day = np.array([[15000, 15100, 14000, 14000], [15200, 15300, 14000, 14000],
                    [14500, 14500, 14000, 0], [14500, 14500, 14000, 0]])  # fmt: skip
    qc = np.zeros(shape)
    qc[2, 1] = 0b11  # not produced
    lst1 = _lst_file(tmp_path / "MOD11C2.A2010009.061.1.hdf", day, qc)
    lst2 = _lst_file(tmp_path / "MOD11C2.A2010017.061.1.hdf", day + 100, np.zeros(shape))

    fpar = np.array([[50, 60, 10, 20], [70, 80, 30, 255], [250, 40, 40, 40], [40, 40, 40, 40]])
    fqc = np.zeros(shape)
    fqc[3, 3] = 0b01100000  # SCF_QC 3: back-up algorithm → dropped
    tile = _fpar_tile(tmp_path / "MCD15A2H.A2010009.h18v04.061.1.hdf", fpar, fqc)
    files = ModisFiles(nbar=(nbar,), lst=(lst1, lst2), fpar=(tile,))
    return files, {"red": red, "band7": bands[7], "day": day}


def _cell_mean(values: np.ndarray, rows: slice, cols: slice) -> float:
    """Area-weighted mean of 2 × 2 CMG cells (NaN left out), by the spherical row areas."""
    v = values[rows, cols]
    w = np.broadcast_to(ROW_W[rows, None], v.shape)
    ok = ~np.isnan(v)
    return float((v[ok] * w[ok]).sum() / w[ok].sum())


def test_modis_daily_end_to_end(tmp_path: Path) -> None:
    files, raw = _inputs(tmp_path)
    ds = modis_daily(files, GRID, 2010)
    assert ds.sizes == {"time": 365, "lat": 2, "lon": 2}
    assert all(ds[v].dtype == np.float32 for v in modis.VARIABLES)
    assert ds["EVI"].chunks is not None  # lazy: the year is never held whole
    # canonical row 0 is 50.0–50.1 °N = CMG rows 2, 3 (the file is north-up)
    south, north, west, east = slice(2, 4), slice(0, 2), slice(0, 2), slice(2, 4)

    ndvi = (0.4 - raw["red"] * 1e-4) / (0.4 + raw["red"] * 1e-4)
    jan15 = ds.sel(time="2010-01-15")
    np.testing.assert_allclose(jan15["NDVI"][1, 0], _cell_mean(ndvi, north, west), rtol=1e-6)
    band7 = (raw["band7"] * 1e-4).astype(float)
    band7[3, 3] = np.nan  # BRDF_Quality 4
    np.testing.assert_allclose(jan15["Band4"][0, 1], _cell_mean(band7, south, east), rtol=1e-6)
    np.testing.assert_allclose(jan15["Band4"][1, 1], _cell_mean(band7, north, east), rtol=1e-6)
    # one NBAR file dated 15 Jan: 7 … 23 Jan take it (± 8 days), 6 and 24 Jan do not
    evi = ds["EVI"][:, 1, 1].values
    assert np.isfinite(evi[6:23]).all() and np.isnan(evi[5]) and np.isnan(evi[23])

    # LST: DOY 9 composite on 9–16 Jan, DOY 17 on 17–24 Jan, nothing else
    lst = raw["day"] * 0.02
    lst[raw["day"] == 0] = np.nan
    lst[2, 1] = np.nan  # mandatory QA 11
    day9 = ds["LST_Day"].sel(time="2010-01-09").values
    np.testing.assert_allclose(day9[1, 0], _cell_mean(lst, north, west), rtol=1e-6)
    np.testing.assert_allclose(day9[0, 0], _cell_mean(lst, south, west), rtol=1e-6)
    # the south-east cell has 2 of 4 CMG cells valid (≈ 0.5 of its area ≥ 0.25): 280 K
    np.testing.assert_allclose(day9[0, 1], 280.0, rtol=1e-6)
    np.testing.assert_allclose(
        ds["LST_Day"].sel(time="2010-01-20")[1, 0], _cell_mean(lst, north, west) + 2.0, rtol=1e-6
    )
    assert np.isnan(ds["LST_Day"].sel(time="2010-01-08")).all()
    assert np.isnan(ds["LST_Day"].sel(time="2010-01-25")).all()

    # fPAR: equal-area sinusoidal pixels, plain means of the valid ones (hand):
    # NW (rows 0–1, cols 0–1): (0.5 + 0.6 + 0.7 + 0.8) / 4 = 0.65
    # NE: 0.1, 0.2, 0.3 (255 is fill) → 0.2;  SW: 0.4, 0.4, 0.4 (250 = non-vegetated code) → 0.4
    # SE: 0.4 × 3 (the SCF_QC 3 pixel dropped) → 0.4
    fpar = ds["FPAR"].sel(time="2010-01-12").values
    np.testing.assert_allclose(fpar, [[0.4, 0.4], [0.65, 0.2]], rtol=1e-6)
    assert np.isnan(ds["FPAR"].sel(time="2010-01-17")).all()


def test_min_coverage_leaves_sparse_cells_empty(tmp_path: Path) -> None:
    files, _ = _inputs(tmp_path)
    # the fPAR cells with 3 of 4 pixels valid cover ≈ 0.75 of their cell; 0.8 drops them
    q = ModisQuality(min_coverage=0.8)
    fpar = modis_daily(files, GRID, 2010, q)["FPAR"].sel(time="2010-01-12").values
    assert np.isnan(fpar[0, 0]) and np.isnan(fpar[1, 1]) and np.isnan(fpar[0, 1])
    assert fpar[1, 0] == pytest.approx(0.65, rel=1e-6)  # 4 of 4 valid
    # pixel area / cell area on the sinusoidal sphere (R² cos φ Δλ Δφ vs R² Δλ Δ sin φ) ≈ 1/4
    phi = np.deg2rad([50.1, 50.2])
    frac = (
        np.cos(np.deg2rad(50.1))
        * np.deg2rad(0.05) ** 2
        / (np.deg2rad(0.1) * np.diff(np.sin(phi))[0])
    )
    assert frac == pytest.approx(0.25, rel=2e-3)


def test_row_blocks_do_not_change_the_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, _ = _inputs(tmp_path)
    whole = modis_daily(files, GRID, 2010).sel(time="2010-01-15").compute()
    monkeypatch.setattr(modis, "_ROWS_PER_BLOCK", 1)
    blocked = modis_daily(files, GRID, 2010).sel(time="2010-01-15").compute()
    for name in modis.VARIABLES:
        np.testing.assert_allclose(blocked[name], whole[name], rtol=1e-6, err_msg=name)


def _appeears_nbar(path: Path, bands: dict[int, np.ndarray], date: dt.date) -> Path:
    """NBAR as AppEEARS returns it in the geographic projection: NetCDF4, raw int16 + CF attrs."""
    import h5netcdf

    lat = np.array([50.175, 50.125, 50.075, 50.025])  # north first, as the source grid
    lon = np.array([10.025, 10.075, 10.125, 10.175])
    with h5netcdf.File(path, "w") as f:
        f.dimensions = {"time": 1, "lat": 4, "lon": 4}
        t = f.create_variable("time", ("time",), "f8")
        t[:] = [(date - dt.date(2000, 1, 1)).days]
        t.attrs.update({"units": "days since 2000-01-01 00:00:00", "calendar": "julian"})
        for name, values in (("lat", lat), ("lon", lon)):
            v = f.create_variable(name, (name,), "f8")
            v[:] = values
            v.attrs["units"] = "degrees_north" if name == "lat" else "degrees_east"
        for b in range(1, 8):
            v = f.create_variable(
                f"Nadir_Reflectance_Band{b}",
                ("time", "lat", "lon"),
                "i2",
                fillvalue=np.int16(32767),
            )
            v[0] = bands.get(b, np.full((4, 4), 1000)).astype(np.int16)
            v.attrs.update(
                {
                    "scale_factor": 0.0001,
                    "add_offset": 0.0,
                    "valid_min": np.int16(0),
                    "valid_max": np.int16(32766),
                }
            )
        for name, fill in (("BRDF_Quality", 255), ("Percent_Snow", 255)):
            v = f.create_variable(name, ("time", "lat", "lon"), "u1", fillvalue=np.uint8(fill))
            v[0] = np.zeros((4, 4), np.uint8)
    return path


def test_netcdf_subset_matches_hdf4(tmp_path: Path) -> None:
    files, raw = _inputs(tmp_path)
    bands = {
        1: raw["red"],
        2: np.full((4, 4), 4000),
        3: np.full((4, 4), 300),
        5: np.full((4, 4), 3000),
        7: raw["band7"],
    }
    bands[1] = bands[1].copy()
    nc = _appeears_nbar(tmp_path / "MCD43C4.061_aid0001.nc", bands, dt.date(2010, 1, 15))
    hdf = _nbar_file(tmp_path / "MCD43C4.A2010015.061.2.hdf", bands)
    a = modis_daily(ModisFiles(nbar=(nc,), lst=files.lst, fpar=files.fpar), GRID, 2010)
    b = modis_daily(ModisFiles(nbar=(hdf,), lst=files.lst, fpar=files.fpar), GRID, 2010)
    for name in ("EVI", "NDVI", "NDWI", "Band4"):
        x = a[name].sel(time="2010-01-15").values
        assert np.isfinite(x).all()
        np.testing.assert_allclose(x, b[name].sel(time="2010-01-15").values, rtol=1e-6)


# --------------------------------------------------------------------------- bad input


def test_missing_sds_names_file_and_sds(tmp_path: Path) -> None:
    files, _ = _inputs(tmp_path)
    bad = _write_hdf4(
        tmp_path / "MOD11C2.A2010025.061.1.hdf",
        _struct_geo(WEST, NORTH, EAST, SOUTH, 4, 4),
        {"LST_Day_CMG": (np.zeros((4, 4), np.uint16), LST_META)},
    )
    with pytest.raises(SchemaError, match=r"MOD11C2\.A2010025.*QC_Day.*SDS missing"):
        modis_daily(ModisFiles(nbar=files.nbar, lst=(bad,), fpar=files.fpar), GRID, 2010)


def test_refusals(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mixes MOD11"):
        ModisFiles(lst=(Path("MOD11C2.A2010001.hdf"), Path("MYD11C2.A2010001.hdf")))
    with pytest.raises(ConfigError, match=r"ModisFiles\.fpar is empty"):
        modis_daily(ModisFiles(nbar=(Path("a.hdf"),), lst=(Path("b.hdf"),)), GRID, 2010)
    with pytest.raises(ConfigError, match="min_coverage"):
        ModisQuality(min_coverage=0.0)
    undated = _lst_file(tmp_path / "lst.hdf", np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(SchemaError, match="AYYYYDDD"):
        open_granule(undated)
    (tmp_path / "x.tif").write_bytes(b"")
    with pytest.raises(SchemaError, match="unknown extension"):
        open_granule(tmp_path / "x.tif")
    (tmp_path / "MCD43C4.A2010001.hdf").write_text("not hdf")
    with pytest.raises(SchemaError, match="not a readable HDF4"):
        open_granule(tmp_path / "MCD43C4.A2010001.hdf")


def test_netcdf_without_geographic_coordinates_is_refused(tmp_path: Path) -> None:
    import h5netcdf

    path = tmp_path / "MCD15A2H.A2010009.sinusoidal.nc"
    with h5netcdf.File(path, "w") as f:  # AppEEARS' native-projection output: xdim/ydim in m
        f.dimensions = {"ydim": 2, "xdim": 2}
        for name in ("xdim", "ydim"):
            v = f.create_variable(name, (name,), "f8")
            v[:] = [0.0, 463.3]
        f.create_variable("Fpar_500m", ("ydim", "xdim"), "u1")[:] = np.zeros((2, 2), np.uint8)
    with pytest.raises(SchemaError, match="geographic projection"):
        open_granule(path)


def test_composites_no_day_takes_are_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    files, _ = _inputs(tmp_path)
    early = _lst_file(
        tmp_path / "MOD11C2.A2009361.061.1.hdf", np.full((4, 4), 15000), np.zeros((4, 4))
    )
    read: list[tuple[int, int]] = []
    original = modis._lst_fields

    def counting(g, rows, t, q):
        read.append((g.dates[0].year, rows.start))
        return original(g, rows, t, q)

    monkeypatch.setattr(modis, "LST", dataclasses.replace(modis.LST, fields=counting))
    ds = modis_daily(
        ModisFiles(nbar=files.nbar, lst=(early, *files.lst), fpar=files.fpar), GRID, 2010
    )
    assert {year for year, _ in read} == {2010}  # the 2009 DOY 361 composite ends on 31 Dec 2009
    assert np.isnan(ds["LST_Day"].sel(time="2010-01-01")).all()
