"""End-to-end ``run_analyze`` on the fixture: outputs, numbers checked by hand, bad input."""

from __future__ import annotations

import json

import fluxbridge_tests_analysis_fixtures as fx
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml

from fluxbridge.analysis import ingest
from fluxbridge.analysis.config import load_config
from fluxbridge.analysis.run import run_analyze
from fluxbridge.data.gridded import ProductMapping, read_gridded
from fluxbridge.errors import ConfigError, FluxbridgeError, SchemaError
from fluxbridge.geo.grid import Grid

R = 6_371_000.0


def _areas(grid: Grid) -> np.ndarray:
    """Exact spherical cell areas, written out independently of the package."""
    dlam = np.deg2rad(np.diff(grid.lon_bounds))
    dsin = np.diff(np.sin(np.deg2rad(grid.lat_bounds)))
    return R**2 * dsin[:, None] * dlam[None, :]


def _by_hand_annual_nbp(nee: np.ndarray) -> np.ndarray:
    """Annual NBP (PgC yr-1) over the fixture domain of a 1° (time, lat, lon) NEE field."""
    g = fx.window_grid(1.0, 1.0)
    days = fx.months().days_in_month.to_numpy(float)
    w = _areas(g) * fx.domain_fraction(g)
    monthly = -(nee * w).sum(axis=(1, 2)) * days * 1e-15
    return monthly.reshape(len(fx.YEARS), 12).sum(axis=1)


def _open(out, name: str) -> xr.Dataset:
    return xr.load_dataset(out / f"{name}.nc", engine="h5netcdf")


def test_report_and_tables_are_written(analysis_run) -> None:
    _, out = analysis_run
    for name in ("index.html", "report.md", "summary.json"):
        assert (out / name).stat().st_size > 0
    md = (out / "report.md").read_text()
    assert "positive = carbon sink" in md
    for figure in [
        line.split("](")[1].rstrip(")") for line in md.splitlines() if line.startswith("![")
    ]:
        assert (out / figure).exists(), figure
    summary = json.loads((out / "summary.json").read_text())
    assert summary["years"] == list(fx.YEARS)
    for table in summary["tables"]:
        assert (out / table).exists()
    assert not list(out.parent.glob(".out.*"))  # no staging directory left behind


def test_annual_totals_match_a_hand_integral_for_every_unit_and_sign(analysis_run) -> None:
    root, out = analysis_run
    totals = _open(out, "annual_totals")["nbp"].sel(region="TST")
    insitu = xr.load_dataset(root / "insitu_c.nc", engine="h5netcdf")["nee"].values
    np.testing.assert_allclose(
        totals.sel(product="insitu_c"), _by_hand_annual_nbp(insitu), rtol=1e-9
    )
    # sat_a is kgC m-2 s-1, sink-positive: NEE = -value * 1000 g/kg * 86400 s/d.
    sat_a = xr.load_dataset(root / "sat_a.nc", engine="h5netcdf")["nbp"].values
    np.testing.assert_allclose(
        totals.sel(product="sat_a"), _by_hand_annual_nbp(-sat_a * 1000 * 86400), rtol=1e-9
    )


def test_group_median_and_std_match_numpy(analysis_run) -> None:
    _, out = analysis_run
    t = _open(out, "annual_totals")
    sat = t["nbp_mean"].sel(product=["sat_a", "sat_b"]).values
    med = t["nbp_mean_median"].sel(group="satellite-inversion").values
    std = t["nbp_mean_std"].sel(group="satellite-inversion").values
    np.testing.assert_allclose(med, np.median(sat, axis=0))
    np.testing.assert_allclose(std, np.std(sat, axis=0, ddof=1))
    msc = _open(out, "seasonal_cycles")
    np.testing.assert_allclose(
        msc["msc_median"].sel(group="satellite-inversion"),
        np.median(msc["msc"].sel(product=["sat_a", "sat_b"]).values, axis=0),
    )


def test_subregions_partition_the_domain(analysis_run) -> None:
    _, out = analysis_run
    nbp = _open(out, "regional_monthly")["nbp"]
    np.testing.assert_allclose(
        nbp.sel(region="Trop-SMC") + nbp.sel(region="TempMC"), nbp.sel(region="TST"), rtol=1e-9
    )
    np.testing.assert_allclose(
        nbp.sel(region="Forest") + nbp.sel(region="Crop"), nbp.sel(region="TST"), rtol=1e-9
    )


def test_msc_is_monthly_mean_over_years(analysis_run) -> None:
    _, out = analysis_run
    monthly = _open(out, "regional_monthly")["nbp"].sel(product="sat_b", region="TST").values
    msc = _open(out, "seasonal_cycles")["msc"].sel(product="sat_b", region="TST").values
    np.testing.assert_allclose(msc, monthly.reshape(len(fx.YEARS), 12).mean(axis=0))


def test_chunked_regridding_conserves_the_box_total(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(ingest, "CHUNK_MONTHS", 5)
    path = fx.write_products(tmp_path)["sat_b"]
    src = read_gridded(path, ProductMapping(variable="nee"))
    box = Grid(np.arange(20.0, 40.1, 1.0), np.arange(100.0, 120.1, 1.0))
    dst = ingest.regrid_chunked(src, box, "sat_b")
    src_box = src.sel(lat=slice(20, 40), lon=slice(100, 120)).values
    src_grid = Grid(np.arange(20.0, 40.1, 2.0), np.arange(100.0, 120.1, 2.5))
    expected = (src_box * _areas(src_grid)).sum(axis=(1, 2))
    got = (dst * _areas(box)).sum(axis=(1, 2))
    np.testing.assert_allclose(got, expected, rtol=1e-6)


# -- bad input: a clear error and no output -----------------------------------------------


def _config(tmp_path, **overrides):
    return fx.write_config(tmp_path, **overrides)


def _fails(config, error, match: str) -> None:
    with pytest.raises(error, match=match):
        run_analyze(config)
    assert not (config.parent / "out").exists()
    assert not list(config.parent.glob(".out.*"))


def test_failure_after_tables_were_written_leaves_no_partial_output(tmp_path, monkeypatch) -> None:
    """The staged output must go when the report fails late: the tables are written by then
    (the refusals above all fail before anything is written, so they cannot show this)."""
    from fluxbridge.analysis import run as run_module

    written: list[str] = []

    def fails_after_tables(tmp, *args, **kwargs):
        written.extend(p.name for p in tmp.iterdir())
        raise RuntimeError("figure failed")

    monkeypatch.setattr(run_module, "draw_and_describe", fails_after_tables)
    cfg = _config(tmp_path)
    with pytest.raises(RuntimeError, match="figure failed"):
        run_analyze(cfg)
    assert any(name.endswith(".nc") or name.endswith(".csv") for name in written)
    assert not (cfg.parent / "out").exists()
    assert not list(cfg.parent.glob(".out.*"))


def test_unknown_group_is_rejected(tmp_path) -> None:
    cfg = _config(tmp_path, products=[{"name": "x", "group": "ocean", "file": "sat_b.nc"}])
    _fails(cfg, ConfigError, r"products\[0\]\.group: 'ocean' is not one of")


def test_unknown_key_is_rejected(tmp_path) -> None:
    _fails(_config(tmp_path, colour="red"), ConfigError, "unknown key.*'colour'")


def test_unconvertible_units_name_file_and_variable(tmp_path) -> None:
    cfg = _config(
        tmp_path, products=[{"name": "x", "group": "prior", "file": "sat_b.nc", "units": "K"}]
    )
    _fails(cfg, SchemaError, "sat_b.nc, variable 'nee'.*units 'K'")


def test_mask_without_land_in_the_domain(tmp_path) -> None:
    cfg = _config(tmp_path)
    ds = xr.load_dataset(tmp_path / "mask.nc", engine="h5netcdf")
    ds["region_fraction"][:] = 0.0
    (tmp_path / "mask.nc").unlink()
    ds.to_netcdf(tmp_path / "mask.nc", engine="h5netcdf")
    _fails(cfg, ConfigError, "domain 'TST' has no land")


def test_domain_outside_every_product(tmp_path) -> None:
    cfg = _config(tmp_path)
    g = Grid(np.arange(60.0, 70.1, 1.0), np.arange(0.0, 10.1, 1.0))
    xr.Dataset(
        {
            "region_fraction": (("region", "lat", "lon"), np.ones((1, 10, 10))),
            "region_abbr": ("region", np.array(["FAR"], dtype=object)),
        },
        coords=g.coords(),
    ).to_netcdf(tmp_path / "far.nc", engine="h5netcdf")
    data = yaml.safe_load(cfg.read_text())
    data["domain"] = {"mask_file": "far.nc", "region": "FAR"}
    data["partitions"] = []
    cfg.write_text(yaml.safe_dump(data))
    _fails(cfg, SchemaError, "sat_a.nc.*no value inside the domain 'FAR'")


def test_unreadable_grid(tmp_path) -> None:
    cfg = _config(tmp_path)
    ds = xr.load_dataset(tmp_path / "sat_b.nc", engine="h5netcdf")
    lat = ds["lat"].values.copy()
    lat[3] = lat[2]
    ds = ds.assign_coords(lat=lat)
    (tmp_path / "sat_b.nc").unlink()
    ds.to_netcdf(tmp_path / "sat_b.nc", engine="h5netcdf")
    _fails(cfg, SchemaError, "sat_b.nc.*lat")


def test_period_not_covered_fails_under_require(tmp_path) -> None:
    cfg = _config(tmp_path, period={"start": 2014, "end": 2017})
    _fails(cfg, ConfigError, "period 2014-2017 is not covered.*sat_a: 2015-01..2017-12")


def test_overlap_policy_states_the_years_used(tmp_path) -> None:
    cfg = _config(tmp_path, period={"start": 2014, "end": 2017, "policy": "overlap"})
    lc = load_config(cfg)
    spans = {
        "a": (pd.Timestamp("2015-01-01"), pd.Timestamp("2017-12-01")),
        "b": (pd.Timestamp("2014-01-01"), pd.Timestamp("2016-12-01")),
    }
    years, notes = ingest.analysed_years(lc, spans)
    assert years == [2015, 2016]
    assert "analysed 2015-2016" in notes[0]
    spans["c"] = (pd.Timestamp("2017-01-01"), pd.Timestamp("2017-12-01"))
    with pytest.raises(FluxbridgeError, match="share no whole year"):
        ingest.analysed_years(lc, spans)


# -- the output folder: never lose a dataset or a user's files (docs/run_layout.md)


def _tree(folder):
    return {
        p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()
    }


def test_analyze_into_its_own_base_dir_keeps_the_dataset(tmp_path):
    config = fx.write_config(tmp_path, output=".")
    before = _tree(tmp_path)
    with pytest.raises(FluxbridgeError, match="contains the input"):
        run_analyze(config)
    assert _tree(tmp_path) == before


def test_analyze_never_deletes_user_files_in_its_output(tmp_path):
    config = fx.write_config(tmp_path, output="report", overwrite=True)
    (tmp_path / "report").mkdir()
    (tmp_path / "report" / "notes.md").write_text("mine")
    with pytest.raises(FluxbridgeError, match="not written by fluxbridge"):
        run_analyze(config)
    assert _tree(tmp_path / "report") == {"notes.md": b"mine"}
