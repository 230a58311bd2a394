"""Aircraft bias statistics on a constructed table (expected values by hand)."""

from __future__ import annotations

import numpy as np
import pytest
from fluxbridge_tests_analysis_fixtures import write_aircraft

from fluxbridge.analysis.aircraft import aircraft_bias, read_aircraft_table
from fluxbridge.analysis.config import AircraftConfig
from fluxbridge.errors import SchemaError


def test_biases_per_band_box_and_histogram(tmp_path) -> None:
    table, products = read_aircraft_table(write_aircraft(tmp_path))
    assert products == ["sat_a", "insitu_c"]
    cfg = AircraftConfig(file="x", hist_edges_ppm=[-3.0, -1.5, 0.0, 1.5, 3.0])
    b = aircraft_bias(table, products, cfg)
    low, high = b["band"].values
    # 2-8 km: sat_a biases +1 (31N,121E) and -1 (32N,122E); the 1 km row is excluded.
    assert float(b["overall_mean_bias"].sel(product="sat_a", band=low)) == pytest.approx(0.0)
    assert float(b["overall_mean_bias"].sel(product="insitu_c", band=low)) == pytest.approx(2.0)
    box = b["mean_bias"].sel(product="insitu_c", band=low).sel(lat=32.5, lon=120.5)
    assert float(box) == pytest.approx(2.0)  # both rows fall in the 30-35N, 118-123E box
    assert int(b["n_obs"].sel(product="insitu_c", band=low).sum()) == 2
    # > 8 km: sat_a +0.5 and +1.5; insitu_c -1 (its NaN row is skipped).
    assert float(b["overall_mean_bias"].sel(product="sat_a", band=high)) == pytest.approx(1.0)
    assert float(b["overall_mean_bias"].sel(product="insitu_c", band=high)) == pytest.approx(-1.0)
    np.testing.assert_array_equal(b["bias_histogram"].sel(product="sat_a", band=high), [0, 0, 1, 1])
    np.testing.assert_array_equal(b["bias_histogram"].sel(product="sat_a", band=low), [0, 1, 1, 0])


def test_missing_column_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("time,lat,lon,obs_ppm,x_ppm\n2016-01-01,30,120,400,401\n")
    with pytest.raises(SchemaError, match="altitude_m"):
        read_aircraft_table(path)
