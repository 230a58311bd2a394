"""Region masks: RECCAP2 from country polygons, country masks, user mask files, class splits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from fluxbridge.data.canonical import RECCAP2_REGIONS
from fluxbridge.errors import SchemaError
from fluxbridge.geo import regions
from fluxbridge.geo.grid import Grid
from fluxbridge.geo.regions import (
    country_mask,
    reccap2,
    reccap2_table,
    regions_from_file,
    subregions_from_classes,
)
from fluxbridge.io import write_netcdf

GRID = Grid.global_regular(1.0)
KM2 = 1e6


@pytest.fixture(scope="module")
def reccap2_1deg() -> regions.RegionSet:
    return reccap2(GRID)


@pytest.mark.parametrize(
    ("lat", "lon", "abbr"),
    [
        (48.86, 2.35, "EU"),  # Paris
        (-3.1, -60.0, "BRA"),  # Manaus
        (39.9, 116.4, "CHN"),  # Beijing
        (39.0, -98.0, "USA"),  # Kansas
        (64.8, -147.7, "USA"),  # Fairbanks, Alaska
        (52.1, -106.7, "CAN"),  # Saskatoon
        (19.4, -99.1, "CAM"),  # Mexico City
        (4.7, -74.1, "NSA"),  # Bogotá
        (4.0, -53.0, "NSA"),  # French Guiana, a part of the France polygon
        (-31.4, -64.2, "SSA"),  # Córdoba
        (55.75, 37.6, "RUS"),  # Moscow
        (51.2, 71.4, "CAS"),  # Astana
        (24.7, 46.7, "MIDE"),  # Riyadh
        (39.0, 35.0, "MIDE"),  # central Anatolia
        (25.0, 25.0, "NAF"),  # Libyan desert
        (-2.0, 23.0, "EQAF"),  # central Congo basin
        (-1.3, 36.8, "EQAF"),  # Nairobi
        (-26.2, 28.0, "SAF"),  # Johannesburg
        (36.5, 138.5, "KAJ"),  # central Honshu
        (28.6, 77.2, "SAS"),  # Delhi
        (16.4, 102.8, "SEAS"),  # Khon Kaen
        (-23.7, 133.9, "OCE"),  # Alice Springs
    ],
)
def test_known_points(reccap2_1deg: regions.RegionSet, lat: float, lon: float, abbr: str) -> None:
    cell = reccap2_1deg.fraction.sel(lat=lat, lon=lon, method="nearest")
    assert float(cell.sel(region=abbr)) > 0.9
    assert str(cell["region"][int(cell.argmax("region"))].values) == abbr


def test_fractions_bounded_and_labelled(reccap2_1deg: regions.RegionSet) -> None:
    frac = reccap2_1deg.fraction
    assert [str(a) for a in frac["region"].values] == [a for _, a, _ in RECCAP2_REGIONS]
    assert list(reccap2_1deg.ids) == list(range(18))
    assert float(frac.min()) >= 0.0
    assert float(frac.sum("region").max()) <= 1.0 + 1e-9
    # open ocean and Antarctica are in no region
    assert float(frac.sel(lat=-30.5, lon=-150.5).sum()) == 0.0
    assert float(frac.sel(lat=-80.5, lon=0.5).sum()) == 0.0


def test_areas_match_published_country_areas(reccap2_1deg: regions.RegionSet) -> None:
    area = GRID.cell_area()
    by_region = (reccap2_1deg.fraction * area).sum(("lat", "lon")) / KM2
    # total areas (land + inland water) in km²; 1:110m outlines are within a few %
    assert float(by_region.sel(region="BRA")) == pytest.approx(8.516e6, rel=0.03)
    assert float(by_region.sel(region="RUS")) == pytest.approx(17.10e6, rel=0.03)
    assert float(by_region.sel(region="USA")) == pytest.approx(9.83e6, rel=0.05)
    # the land surface without Antarctica: 148.9e6 − 14.2e6 km²
    assert float(by_region.sum()) == pytest.approx(134.7e6, rel=0.03)
    brazil = float((country_mask(GRID, "BRA") * area).sum()) / KM2
    assert brazil == pytest.approx(float(by_region.sel(region="BRA")), rel=1e-9)


def test_land_fraction_makes_shares_of_land() -> None:
    grid = Grid.global_regular(5.0)
    land = xr.DataArray(
        (grid.lat[:, None] > -60) * np.ones(grid.shape), dims=("lat", "lon"), coords=grid.coords()
    )
    covered = reccap2(grid).fraction.sum("region") > 0
    frac = reccap2(grid, land).fraction
    total = frac.sum("region")
    # cells the polygons reach: their land is shared out completely among regions
    reached = (covered & (land.lat > -45)).values
    np.testing.assert_allclose(total.values[reached], 1.0, atol=1e-9)
    # cells no polygon reaches take the shares of the nearest covered cell: all of one
    # region, or nothing when that cell is in Antarctica (excluded)
    orphans = total.values[((land > 0) & ~covered).values]
    assert np.all(np.isclose(orphans, 1.0) | (orphans == 0.0))
    # Atlantic off Portugal: shares of the Iberian/Moroccan coastal cell next to it
    off_portugal = frac.sel(lat=37.5, lon=-12.5)
    assert float(off_portugal.sel(region="EU")) > 0.5
    assert float(off_portugal.sum()) == pytest.approx(1.0)
    assert float(total.where(land == 0).max()) == 0.0


def test_table_covers_every_region_once_per_country() -> None:
    table = reccap2_table()
    assert set(table["region"]) == {a for _, a, _ in RECCAP2_REGIONS} | {"-"}
    split = table[table.duplicated("iso3", keep=False)]
    assert set(split["iso3"]) == {"FRA"}  # French Guiana is the one split country


def test_unknown_country_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown ISO3 code 'XYZ'"):
        country_mask(GRID, "XYZ")


def test_box_fallback_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise ImportError("no pyogrio")

    monkeypatch.setattr(regions, "_country_parts", missing)
    grid = Grid.global_regular(7.5)
    regions._reccap2_area_fractions.cache_clear()
    try:
        with pytest.warns(UserWarning, match="lat/lon boxes"):
            frac = reccap2(grid).fraction
    finally:
        regions._reccap2_area_fractions.cache_clear()
    assert float(frac.sel(lat=48.75, lon=3.75, region="EU")) == pytest.approx(1.0)
    assert float(frac.sel(lat=-3.75, lon=-56.25, region="BRA")) == pytest.approx(1.0)


def _id_file(tmp_path: Path, lon: np.ndarray, ids: np.ndarray, **attrs: object) -> Path:
    grid = Grid.global_regular(45.0)
    da = xr.DataArray(
        ids, dims=("lat", "lon"), coords={"lat": grid.lat, "lon": lon}, attrs=attrs, name="land"
    )
    path = tmp_path / "mask.nc"
    write_netcdf(da.to_dataset(), path, action="test")
    return path


def test_netcdf_integer_ids_on_same_and_coarser_grid(tmp_path: Path) -> None:
    grid = Grid.global_regular(45.0)  # 4 × 8 cells
    ids = np.zeros(grid.shape, dtype=np.int32)
    ids[2:, :4] = 1  # northern hemisphere, western half
    ids[0, 0] = 2
    path = _id_file(
        tmp_path, grid.lon, ids, flag_values=np.array([1, 2]), flag_meanings="north_west corner"
    )
    same = regions_from_file(path, grid)
    assert same.abbrs == ["north_west", "corner"]
    np.testing.assert_array_equal(same.fraction.values[0], ids == 1)

    coarse = Grid(np.array([-90.0, 0.0, 90.0]), np.array([-180.0, 0.0, 180.0]))
    fractions = regions_from_file(path, coarse).fraction.values
    np.testing.assert_allclose(fractions[0], [[0, 0], [1, 0]])
    # the corner cell (-90..-45, -180..-135) is (1 - sin 45°) / 4 of the SW quarter
    assert fractions[1, 0, 0] == pytest.approx((1 - np.sin(np.pi / 4)) / 4)


def test_netcdf_ids_with_lon_0_360_and_no_flags(tmp_path: Path) -> None:
    grid = Grid.global_regular(45.0)
    lon360 = np.arange(22.5, 360.0, 45.0)
    ids = np.full(grid.shape, -1, dtype=np.int32)
    ids[:, lon360 > 180] = 5  # the western hemisphere once normalised
    region_set = regions_from_file(_id_file(tmp_path, lon360, ids), grid)
    assert region_set.abbrs == ["region_5"]
    np.testing.assert_array_equal(
        region_set.fraction.values[0], np.broadcast_to(grid.lon < 0, grid.shape)
    )


def test_fraction_file_and_bad_values(tmp_path: Path) -> None:
    grid = Grid.global_regular(90.0)
    frac = np.zeros((2, *grid.shape))
    frac[0, 0, 0], frac[1, 0, 0] = 0.25, 0.75
    ds = xr.Dataset(
        {
            "region_fraction": (("region", "lat", "lon"), frac),
            "region_abbr": ("region", np.array(["A", "B"], dtype=object)),
        },
        coords=grid.coords(),
    )
    write_netcdf(ds, tmp_path / "f.nc", action="test")
    got = regions_from_file(tmp_path / "f.nc", grid)
    assert got.abbrs == ["A", "B"]
    np.testing.assert_array_equal(got.fraction.values, frac)
    ds["region_fraction"][0, 0, 1] = 1.5
    write_netcdf(ds, tmp_path / "bad.nc", action="test")
    with pytest.raises(SchemaError, match=r"bad\.nc, variable 'region_fraction'.*\[0, 1\]"):
        regions_from_file(tmp_path / "bad.nc", grid)
    with pytest.raises(SchemaError, match="not found"):
        regions_from_file(tmp_path / "missing.nc", grid)


def test_vector_file_boxes(tmp_path: Path) -> None:
    def box(x0: float, y0: float, x1: float, y1: float, abbr: str) -> dict:
        ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
        return {
            "type": "Feature",
            "properties": {"abbr": abbr},
            "geometry": {"type": "Polygon", "coordinates": [ring]},
        }

    path = tmp_path / "boxes.geojson"
    collection = {
        "type": "FeatureCollection",
        "features": [box(0, 0, 10, 10, "A"), box(-20, -5, -10, 5, "B")],
    }
    path.write_text(json.dumps(collection))
    grid = Grid.global_regular(5.0)
    got = regions_from_file(path, grid)
    assert got.abbrs == ["A", "B"]
    expected_a = (np.abs(grid.lat[:, None] - 5) < 5) & (np.abs(grid.lon[None, :] - 5) < 5)
    np.testing.assert_allclose(got.fraction.values[0], expected_a)
    expected_b = (np.abs(grid.lat[:, None]) < 5) & (np.abs(grid.lon[None, :] + 15) < 5)
    np.testing.assert_allclose(got.fraction.values[1], expected_b)


def test_subregions_from_classes_with_merge() -> None:
    grid = Grid.global_regular(60.0)  # 3 × 6
    classes = xr.DataArray(
        np.array([[1, 1, 2, 2, 3, 9]] * 3), dims=("lat", "lon"), coords=grid.coords()
    )
    domain = xr.DataArray(np.full(grid.shape, 0.5), dims=("lat", "lon"), coords=grid.coords())
    got = subregions_from_classes(
        classes, domain, {1: "TropMC", 2: "SMC", 3: "Cold"}, merges={"Trop-SMC": ["TropMC", "SMC"]}
    )
    assert got.abbrs == ["Trop-SMC", "Cold"]
    np.testing.assert_allclose(got.fraction.values[0], 0.5 * np.isin(classes.values, [1, 2]))
    np.testing.assert_allclose(got.fraction.values[1], 0.5 * (classes.values == 3))
    ids = got.region_id_map().values
    np.testing.assert_array_equal(ids[0], [0, 0, 0, 0, 1, -1])


def test_subregions_from_finer_class_map() -> None:
    coarse = Grid(np.array([-90.0, 0.0, 90.0]), np.array([-180.0, 0.0, 180.0]))
    fine = Grid.global_regular(90.0)  # 2 × 4
    classes = xr.DataArray(
        np.array([[1, 1, 1, 1], [1, 2, 1, 1]]), dims=("lat", "lon"), coords=fine.coords()
    )
    domain = xr.DataArray(np.ones(coarse.shape), dims=("lat", "lon"), coords=coarse.coords())
    got = subregions_from_classes(classes, domain, {2: "B"})
    # class 2 covers one of the two equal-area fine cells of the north-western quarter
    np.testing.assert_allclose(got.fraction.values[0], [[0.0, 0.0], [0.5, 0.0]])
