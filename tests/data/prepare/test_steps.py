"""Prepare steps checked alone: shipped configs, folds, lateral fluxes, budget table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.data.manifest import load_manifest
from fluxbridge.data.prepare.budget import read_table
from fluxbridge.data.prepare.config import LateralFluxes, load_prepare_config
from fluxbridge.data.prepare.inversions import lateral_field
from fluxbridge.data.prepare.mappings import BudgetTable, load_mapping
from fluxbridge.data.prepare.run import _mappings
from fluxbridge.data.prepare.sites import grouped_folds, published_folds, tower_cells
from fluxbridge.errors import ConfigError, SchemaError
from fluxbridge.geo.grid import Grid

from . import world

CONFIGS = ("upton2024", "oco2mip")


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_and_their_mappings_load(name: str) -> None:
    loaded = load_prepare_config(world.ROOT / f"configs/prepare/{name}.yaml")
    assert loaded.config.resolution_deg == 0.5
    assert set(_mappings(loaded)) >= {"drivers", "reference", "inversions", "residual_sink"}


@pytest.mark.parametrize("name", CONFIGS)
def test_shipped_configs_name_manifest_entries(name: str) -> None:
    loaded = load_prepare_config(world.ROOT / f"configs/prepare/{name}.yaml")
    known = set(load_manifest(world.ROOT / "data_manifest.yaml").names)
    named = set(loaded.config.entries()) | {loaded.config.regions.entry}
    assert named - known == set()


def test_bad_config_key_is_named(tmp_path: Path) -> None:
    path = world.write_config(tmp_path / "p.yaml", tmp_path / "m.yaml", resolution_deg=7.0)
    with pytest.raises(ConfigError, match="resolution_deg"):
        load_prepare_config(path)


def test_grouped_folds_keep_groups_together_and_are_seeded() -> None:
    groups = np.array([5, 5, 1, 2, 3, 3, 3, 4, 6, 7])
    folds = grouped_folds(groups, 3, seed=1)
    for g in np.unique(groups):
        assert np.unique(folds[groups == g]).size == 1
    np.testing.assert_array_equal(folds, grouped_folds(groups, 3, seed=1))
    counts = np.bincount(folds, minlength=3)
    assert counts.max() - counts.min() <= 3  # the largest group has 3 sites
    with pytest.raises(SchemaError, match="cannot fill 20 folds"):
        grouped_folds(groups, 20, seed=1)


def test_grouped_folds_deal_each_stratum_across_the_folds() -> None:
    # Six single-site groups in stratum "a", six in "b", three folds: by hand, the greedy
    # least-filled rule gives each fold two sites of each stratum.
    groups = np.arange(12)
    strata = np.array(["a"] * 6 + ["b"] * 6)
    folds = grouped_folds(groups, 3, seed=4, strata=strata)
    for s in ("a", "b"):
        np.testing.assert_array_equal(np.bincount(folds[strata == s], minlength=3), [2, 2, 2])


def test_published_folds(tmp_path: Path) -> None:
    path = tmp_path / "folds.csv"
    path.write_text("SITE_ID,fold\nUS-Ha1,3\nDE-Tha,0\n")
    np.testing.assert_array_equal(published_folds(path, ["DE-Tha", "US-Ha1"]), [0, 3])
    with pytest.raises(SchemaError, match="no fold for site"):
        published_folds(path, ["BR-Sa1"])


def test_tower_over_sea_goes_to_the_nearest_land_cell() -> None:
    grid = Grid.global_regular(10.0)
    land = np.zeros(grid.shape)
    land[13, 18] = 1.0  # cell 40..50°N, 0..10°E
    land[2, 30] = 1.0  # cell 70..60°S, 120..130°E
    # (45 N, -2 E) is in an ocean cell; its nearest land cell centre is (45 N, 5 E).
    np.testing.assert_array_equal(
        tower_cells(np.array([45.0, -65.0]), np.array([-2.0, 125.0]), grid, land), [1, 0]
    )


def test_towers_of_one_sea_cell_share_a_land_cell_and_a_fold() -> None:
    grid = Grid.global_regular(10.0)
    land = np.zeros(grid.shape)
    land[12, 17] = 1.0  # land cell 0: 30..40°N, -10..0°E, centre (35 N, -5 E)
    land[13, 19] = 1.0  # land cell 1: 40..50°N, 10..20°E, centre (45 N, 15 E)
    # Sea cell 40..50°N, 0..10°E (centre 45 N, 5 E): its centre is 7.1° from cell 1 and
    # 12.6° from cell 0 (great circles). A tower at (40.5 N, 0.5 E) is itself nearer
    # cell 0 (7.0° vs 11.5°), one at (45 N, 9 E) nearer cell 1; both get the centre's pixel.
    lat, lon = np.array([40.5, 45.0, 35.0]), np.array([0.5, 9.0, -5.0])
    np.testing.assert_array_equal(tower_cells(lat, lon, grid, land), [1, 1, 0])
    folds = grouped_folds(tower_cells(lat, lon, grid, land), 2, seed=0)
    assert folds[0] == folds[1] != folds[2]


def test_lateral_flux_integrates_to_the_table_value() -> None:
    grid = Grid.global_regular(30.0)
    land = xr.DataArray(np.full(grid.shape, 0.5), dims=("lat", "lon"), coords=grid.coords())
    frac = np.zeros((2, *grid.shape))
    frac[0, :3] = 1.0  # USA = southern half, CAN = northern half
    frac[1, 3:] = 1.0
    rf = xr.DataArray(
        frac, dims=("region", "lat", "lon"), coords={"region": ["USA", "CAN"], **grid.coords()}
    )
    months = pd.date_range("2004-01-01", "2004-12-01", freq="MS")
    table = LateralFluxes(source="test", verified=False, pgc_per_year={"USA": 0.3, "GLOBAL": 0.6})
    adj = lateral_field(table, months, grid, land, rf)
    area = (grid.cell_area() * land).values
    days = months.days_in_month.to_numpy()
    usa = (adj.values * area * frac[0]).sum(axis=(1, 2)) @ days / 1e15
    can = (adj.values * area * frac[1]).sum(axis=(1, 2)) @ days / 1e15
    np.testing.assert_allclose([usa, can], [0.3 + 0.3, 0.3])  # GLOBAL spread by land area


def test_budget_xlsx_reads_like_its_csv_export_and_a_corrupt_one_is_named(
    tmp_path: Path,
) -> None:
    mapping = load_mapping(BudgetTable, world.MAPPINGS / "gcb2022_budget.yaml")
    csv = tmp_path / "budget.csv"
    world.write_budget(csv, header_row=mapping.header_row)
    xlsx = tmp_path / "budget.xlsx"
    with pd.ExcelWriter(xlsx) as writer:
        rows = [line.split(",") for line in csv.read_text().splitlines()]
        body = [[float(v) for v in r] for r in rows[mapping.header_row + 1 :]]
        notes = pd.DataFrame([[r[0]] for r in rows[: mapping.header_row]])
        notes.to_excel(writer, sheet_name=mapping.sheet, header=False, index=False)
        pd.DataFrame(body, columns=rows[mapping.header_row]).to_excel(
            writer, sheet_name=mapping.sheet, startrow=mapping.header_row, index=False
        )
    pd.testing.assert_frame_equal(
        read_table(xlsx, mapping), read_table(csv, mapping), check_dtype=False
    )
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"PK\x03\x04")
    with pytest.raises(SchemaError, match="budget"):
        read_table(broken, mapping)


def test_budget_missing_column_is_named(tmp_path: Path) -> None:
    mapping = load_mapping(BudgetTable, world.MAPPINGS / "gcb2022_budget.yaml")
    path = tmp_path / "budget.csv"
    world.write_budget(path, header_row=3)
    with pytest.raises(SchemaError, match="missing column"):
        read_table(path, mapping)
