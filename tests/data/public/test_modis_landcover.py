"""MCD12C1 land cover and per-PFT MODIS means on small files in the documented layout.

The MCD12C1 file is written as the LP DAAC distributes it (HDF-EOS2 GCTP_GEO
``StructMetadata.0``, SDS ``Land_Cover_Type_1_Percent`` uint8 rows × columns × 17,
layer k = IGBP class k with 0 = water, fill 255, valid range 0–100). The test region
is the one of test_modis.py: 4 × 4 CMG pixels in 50.0–50.2 °N, 10.0–10.2 °E, and a
canonical grid of 2 × 2 cells of 0.1°. Expected values are worked out by hand from
the percentages and the spherical row areas (∝ sin φ2 − sin φ1), never with the code
under test.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pyhdf.SD")

from tests.data.public.test_modis import (
    EAST,
    GRID,
    NORTH,
    ROW_W,
    SOUTH,
    WEST,
    _inputs,
    _lst_file,
    _struct_geo,
    _write_hdf4,
)

from fluxbridge.data.public import modis
from fluxbridge.data.public.modis import ModisQuality, PerPft
from fluxbridge.data.public.modis_landcover import (
    IGBP_CLASSES,
    IGBP_TO_PFT,
    PFTS,
    LandCover,
    PftPairs,
    landcover_fractions,
)
from fluxbridge.data.twin.landcover import PFTS as TWIN_PFTS
from fluxbridge.errors import SchemaError

W0, W1, W2, W3 = ROW_W  # CMG rows north → south; canonical row 1 = CMG rows 0–1
PCT_META = {"fill": 255, "valid_range": (0, 100), "units": "percent"}


def _percent(cells: dict[tuple[int, int], dict[int, int]]) -> np.ndarray:
    """(4, 4, 17) uint8 class percentages; pixels not given are 100 % water (class 0)."""
    out = np.zeros((4, 4, 17), np.uint8)
    out[..., 0] = 100
    for (i, j), classes in cells.items():
        out[i, j] = 0
        for k, pct in classes.items():
            out[i, j, k] = pct
    return out


# IGBP classes: 1 ENF, 6 closed shrubland, 7 open shrubland, 8 woody savanna, 10 grassland,
# 12 cropland, 13 urban, 15 snow/ice.
PERCENT = _percent(
    {
        # canonical NW cell (lat 1, lon 0): a mixed cell
        (0, 0): {1: 100},
        (0, 1): {1: 50, 6: 50},
        (1, 0): {7: 80, 0: 20},
        (1, 1): {7: 100},
        # NE cell (1, 1): woody savanna in the north row, cropland in the south row
        (0, 2): {8: 100},
        (0, 3): {8: 100},
        (1, 2): {12: 100},
        (1, 3): {12: 100},
        # SE cell (0, 1): one fill pixel, urban + snow adding to 99 %, grassland
        (2, 3): {13: 60, 15: 39},
        (3, 2): {10: 100},
        (3, 3): {10: 100},
    }
)
PERCENT[2, 2] = 255  # fill in every layer
# SW cell (0, 0): all water


def _mcd12c1(path: Path, percent: np.ndarray = PERCENT, name: str = "Land_Cover_Type_1_Percent"):
    layers = {
        name: (percent, PCT_META),
        "Majority_Land_Cover_Type_1": (
            np.zeros(percent.shape[:2], np.uint8),
            {"fill": 255, "valid_range": (0, 16)},
        ),
    }
    return _write_hdf4(path, _struct_geo(WEST, NORTH, EAST, SOUTH, 4, 4), layers)


def _pft(name: str) -> int:
    return PFTS.index(name)


def test_pft_names_and_igbp_table() -> None:
    assert PFTS == TWIN_PFTS  # the schema's names, as the twin world writes them
    assert len(IGBP_CLASSES) == 17 and IGBP_CLASSES[0] == "WAT"
    assert set(IGBP_TO_PFT) == set(IGBP_CLASSES[1:])  # every land class, not water
    assert set(IGBP_TO_PFT.values()) <= set(PFTS)


def test_class_percent_to_land_and_pft_fractions(tmp_path: Path) -> None:
    land, pft = landcover_fractions(_mcd12c1(tmp_path / "MCD12C1.A2010001.061.1.hdf"), GRID)
    assert list(pft["pft"].values) == list(PFTS)
    # NW: land = area mean of (1, 1, 0.8, 1) with rows W0, W0, W1, W1
    land_nw = (2 * W0 + 1.8 * W1) / (2 * W0 + 2 * W1)
    np.testing.assert_allclose(land.values[1, 0], land_nw, rtol=1e-6)
    # ENF: 1 + 0.5 of row-0 pixels; OSH: 0.5 (closed shrub) of row 0, 0.8 + 1 of row 1
    land_area = 2 * W0 + 1.8 * W1
    np.testing.assert_allclose(pft.values[_pft("ENF"), 1, 0], 1.5 * W0 / land_area, rtol=1e-6)
    np.testing.assert_allclose(
        pft.values[_pft("OSH"), 1, 0], (0.5 * W0 + 1.8 * W1) / land_area, rtol=1e-6
    )
    # NE: savanna on row 0, cropland on row 1, no water
    assert land.values[1, 1] == pytest.approx(1.0)
    np.testing.assert_allclose(pft.values[_pft("SAV"), 1, 1], W0 / (W0 + W1), rtol=1e-6)
    np.testing.assert_allclose(pft.values[_pft("CRO"), 1, 1], W1 / (W0 + W1), rtol=1e-6)
    # SW: all water → no land, no PFT
    assert land.values[0, 0] == 0.0 and pft.values[:, 0, 0].sum() == 0.0
    # SE: the fill pixel is left out; urban 60 + snow 39 = 99 % → barren 1.0 of its pixel
    assert land.values[0, 1] == pytest.approx(1.0)
    np.testing.assert_allclose(pft.values[_pft("BSV"), 0, 1], W2 / (W2 + 2 * W3), rtol=1e-6)
    np.testing.assert_allclose(pft.values[_pft("GRA"), 0, 1], 2 * W3 / (W2 + 2 * W3), rtol=1e-6)
    # PFT fractions sum to 1 on land
    np.testing.assert_allclose(pft.values.sum(axis=0)[land.values > 0], 1.0, rtol=1e-6)


def _lst_inputs(tmp_path: Path) -> tuple[Path, np.ndarray]:
    day = np.array(
        [[15000, 15100, 14000, 14100], [15200, 15300, 14200, 14300],
         [14500, 14500, 0, 0], [14500, 14500, 14400, 14600]]
    )  # fmt: skip
    return _lst_file(tmp_path / "MOD11C2.A2010009.061.1.hdf", day, np.zeros((4, 4))), day * 0.02


def _per_pft(tmp_path: Path) -> tuple[PerPft, np.ndarray]:
    lc = _mcd12c1(tmp_path / "MCD12C1.A2010001.061.1.hdf")
    land, pft = landcover_fractions(lc, GRID)
    cells = np.nonzero(land.values > 0)
    return PerPft(lc, PftPairs.from_fractions(pft.values, cells)), np.transpose(cells)


def _pair(per_pft: PerPft, ilat: int, ilon: int, name: str) -> int:
    p = per_pft.pairs
    hit = np.flatnonzero((p.ilat == ilat) & (p.ilon == ilon) & (p.pft == _pft(name)))
    assert hit.size == 1, (ilat, ilon, name)
    return int(hit[0])


def test_per_pft_means_in_cells_with_two_pfts(tmp_path: Path) -> None:
    per_pft, cells = _per_pft(tmp_path)
    lst_file, lst = _lst_inputs(tmp_path)
    days = [dt.date(2010, 1, 10)]
    stacks, index = modis.product_composites(
        [lst_file], modis.LST, GRID, days, ModisQuality(), per_pft
    )
    assert index.tolist() == [0]
    values = stacks["LST_Day"][0]
    assert values.shape == (per_pft.pairs.size,)
    # NE: savanna = mean of row 0 (280, 282 K), cropland = mean of row 1 (284, 286 K)
    assert values[_pair(per_pft, 1, 1, "SAV")] == pytest.approx(281.0, rel=1e-6)
    assert values[_pair(per_pft, 1, 1, "CRO")] == pytest.approx(285.0, rel=1e-6)
    # NW, mixed pixels: ENF weights 1 (0,0) and 0.5 (0,1), same row area
    enf = (lst[0, 0] * 1.0 + lst[0, 1] * 0.5) / 1.5
    assert values[_pair(per_pft, 1, 0, "ENF")] == pytest.approx(enf, rel=1e-6)
    # OSH: 0.5 of (0,1) on row 0, 0.8 of (1,0) and 1 of (1,1) on row 1
    osh = (0.5 * W0 * lst[0, 1] + W1 * (0.8 * lst[1, 0] + lst[1, 1])) / (0.5 * W0 + 1.8 * W1)
    assert values[_pair(per_pft, 1, 0, "OSH")] == pytest.approx(osh, rel=1e-6)
    # reconstruction Σ fraction × value in the NE cell (fractions by hand, as above)
    cell_ne = int(np.flatnonzero((cells == [1, 1]).all(axis=1))[0])
    ne = (W0 * 281.0 + W1 * 285.0) / (W0 + W1)
    assert per_pft.pairs.to_cells(values[None, :])[0, cell_ne] == pytest.approx(ne, rel=1e-6)


def test_pft_without_valid_pixel_takes_the_all_cover_mean(tmp_path: Path) -> None:
    per_pft, _ = _per_pft(tmp_path)
    lst_file, lst = _lst_inputs(tmp_path)
    stacks, _ = modis.product_composites(
        [lst_file], modis.LST, GRID, [dt.date(2010, 1, 10)], ModisQuality(), per_pft
    )
    values = stacks["LST_Day"][0]
    # SE: the barren pixel (2,3) has LST fill (0): barren has no valid pixel in the cell,
    # so it takes the all-cover mean, the grassland pixels (3,2), (3,3): (288 + 292) / 2 K
    all_cover = (lst[3, 2] + lst[3, 3]) / 2
    assert all_cover == pytest.approx(290.0)
    assert values[_pair(per_pft, 0, 1, "BSV")] == pytest.approx(all_cover, rel=1e-6)
    assert values[_pair(per_pft, 0, 1, "GRA")] == pytest.approx(290.0, rel=1e-6)


def test_pairs_reconstruction_by_hand() -> None:
    # 2 PFTs × 2 cells on a 1 × 2 grid: cell 0 is 0.25 ENF + 0.75 GRA, cell 1 all GRA
    fraction = np.zeros((len(PFTS), 1, 2))
    fraction[_pft("ENF"), 0, 0] = 0.25
    fraction[_pft("GRA"), 0, 0] = 0.75
    fraction[_pft("GRA"), 0, 1] = 1.0
    pairs = PftPairs.from_fractions(fraction, (np.array([0, 0]), np.array([0, 1])))
    assert pairs.size == 3
    assert pairs.cell.tolist() == [0, 0, 1]
    values = np.array([[2.0, 6.0, 4.0], [np.nan, 1.0, 3.0]])  # (time, pair)
    out = pairs.to_cells(values)
    np.testing.assert_allclose(out[0], [0.25 * 2 + 0.75 * 6, 4.0])
    assert np.isnan(out[1, 0]) and out[1, 1] == 3.0  # a present PFT's NaN stays NaN


def test_wrong_sds_is_one_line_naming_file_and_sds(tmp_path: Path) -> None:
    path = _mcd12c1(tmp_path / "MCD12C1.A2010001.061.1.hdf", name="LC_Type1_Percent")
    with pytest.raises(SchemaError) as err:
        landcover_fractions(path, GRID)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "Land_Cover_Type_1_Percent" in msg


def test_wrong_shape_is_one_line_naming_file_and_sds(tmp_path: Path) -> None:
    # 14 layers: the UMD scheme's percentages under the IGBP name
    path = _mcd12c1(tmp_path / "MCD12C1.A2010001.061.1.hdf", PERCENT[..., :14].copy())
    with pytest.raises(SchemaError) as err:
        landcover_fractions(path, GRID)
    msg = str(err.value)
    assert "\n" not in msg and str(path) in msg and "Land_Cover_Type_1_Percent" in msg
    assert "(4, 4, 14)" in msg and "(4, 4, 17)" in msg


def test_modis_daily_per_pft_on_pairs_with_sinusoidal_fpar(tmp_path: Path) -> None:
    files, _ = _inputs(tmp_path)
    per_pft, _ = _per_pft(tmp_path)
    ds = modis.modis_daily(files, GRID, 2010, per_pft=per_pft)
    assert ds["FPAR"].dims == ("time", "pair") and ds.sizes["pair"] == per_pft.pairs.size
    ne_sav, ne_cro = _pair(per_pft, 1, 1, "SAV"), _pair(per_pft, 1, 1, "CRO")
    assert ds["pair_pft"].values[ne_sav] == "SAV"
    # fPAR tile pixels (equal area) sit one to one in the CMG pixels (test_modis._fpar_tile):
    # NE savanna row 0: 0.1, 0.2 → 0.15; cropland row 1: 0.3 and a fill → 0.3
    fpar = ds["FPAR"].sel(time="2010-01-12").values
    assert fpar[ne_sav] == pytest.approx(0.15, rel=1e-6)
    assert fpar[ne_cro] == pytest.approx(0.3, rel=1e-6)


def test_cmg_rows_are_read_once_with_the_same_shares(tmp_path: Path) -> None:
    lc = LandCover(_mcd12c1(tmp_path / "MCD12C1.A2010001.061.1.hdf"))
    first = lc.block_weights(slice(0, 4))
    # (0,1): 50 % ENF + 50 % closed shrubland → 0.5 ENF, 0.5 OSH;
    # (2,3): 60 % urban + 39 % snow → barren 99/99 = 1; (2,2) fill → NaN
    assert first[_pft("ENF"), 0, 1] == pytest.approx(0.5)
    assert first[_pft("OSH"), 0, 1] == pytest.approx(0.5)
    assert first[_pft("BSV"), 2, 3] == pytest.approx(1.0)
    assert np.isnan(first[:, 2, 2]).all()
    np.testing.assert_array_equal(first, lc.pft_weights(slice(0, 4))[0])

    def no_read(*args: object) -> None:
        raise AssertionError("read again")

    lc._g.read = no_read  # type: ignore[method-assign]
    np.testing.assert_array_equal(lc.block_weights(slice(0, 4)), first)
    lc.close()
