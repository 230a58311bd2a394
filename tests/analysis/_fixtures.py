"""Small hand-made products, masks and class maps for the analysis tests.

Three products of one "true" NEE field on different grids, units and signs:

* ``sat_a``: 1° grid, kgC m-2 s-1, sink-positive (NBP-like), group satellite-inversion;
* ``sat_b``: 2° × 2.5° grid, gC m-2 d-1, source-positive, group satellite-inversion;
* ``insitu_c``: 1° grid, gC m-2 d-1, source-positive, group in-situ-inversion.

All cover lat 10..50, lon 90..130 for 2015-2017 (monthly). The domain mask
(``mask.nc``, 1°) is an ellipse inside lat 20..40, lon 100..120 with fractional
edge cells; ``classes.nc`` holds a climate-zone map (flag_values/flag_meanings)
and PFT fractions on the 1° grid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
import yaml

from fluxbridge.geo.grid import Grid

YEARS = (2015, 2016, 2017)
LAT_RANGE = (10.0, 50.0)
LON_RANGE = (90.0, 130.0)
SECONDS_PER_DAY = 86400.0


def window_grid(dlat: float, dlon: float) -> Grid:
    """A regional grid over LAT_RANGE × LON_RANGE with edges on the global dlat×dlon lattice."""
    return Grid(
        np.arange(LAT_RANGE[0], LAT_RANGE[1] + 1e-9, dlat),
        np.arange(LON_RANGE[0], LON_RANGE[1] + 1e-9, dlon),
    )


def months() -> pd.DatetimeIndex:
    return pd.date_range(f"{YEARS[0]}-01-01", f"{YEARS[-1]}-12-01", freq="MS")


def true_nee(grid: Grid, offset: float, seed: int) -> np.ndarray:
    """(time, lat, lon) NEE in gC m-2 d-1: seasonal uptake peaking in July, plus noise."""
    t = months()
    rng = np.random.default_rng(seed)
    lat = grid.lat[:, None]
    lon = grid.lon[None, :]
    season = -np.cos(2 * np.pi * (t.month.to_numpy() - 7) / 12.0)[:, None, None]
    amplitude = 1.5 + 0.03 * (lat - 30.0) + 0.01 * (lon - 110.0)
    base = 0.2 + offset + 0.1 * np.sin(np.deg2rad(4 * lon))
    noise = 0.2 * rng.standard_normal((t.size, *grid.shape))
    return base + amplitude * season + noise


def _write(ds: xr.Dataset, path: Path) -> Path:
    ds.to_netcdf(path, engine="h5netcdf")
    return path


def _field(values: np.ndarray, grid: Grid, name: str, units: str, **attrs: str) -> xr.Dataset:
    ds = grid.bounds_dataset().assign_coords(time=months())
    ds[name] = (("time", "lat", "lon"), values, {"units": units})
    ds.attrs.update(attrs)
    return ds


def write_products(root: Path) -> dict[str, Path]:
    """The three products; returns name → file path."""
    g1, g2 = window_grid(1.0, 1.0), window_grid(2.0, 2.5)
    a = -true_nee(g1, 0.0, 1) / 1000.0 / SECONDS_PER_DAY  # kgC m-2 s-1, sink positive
    b = true_nee(g2, 0.1, 2)
    c = true_nee(g1, -0.2, 3)
    return {
        "sat_a": _write(
            _field(a, g1, "nbp", "kgC m-2 s-1", group="satellite-inversion"), root / "sat_a.nc"
        ),
        "sat_b": _write(
            _field(b, g2, "nee", "gC m-2 d-1", group="satellite-inversion"), root / "sat_b.nc"
        ),
        "insitu_c": _write(
            _field(c, g1, "nee", "gC m-2 d-1", group="in-situ-inversion"), root / "insitu_c.nc"
        ),
    }


def domain_fraction(grid: Grid) -> np.ndarray:
    """Ellipse in lat 20..40, lon 100..120: 1 inside, 0.5 on a ring of edge cells, 0 outside."""
    lat, lon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    r = ((lat - 30.0) / 10.0) ** 2 + ((lon - 110.0) / 10.0) ** 2
    return np.where(r < 0.8, 1.0, np.where(r < 1.0, 0.5, 0.0))


def write_mask(root: Path) -> Path:
    """``mask.nc``: canonical region_fraction(region, lat, lon) with one region 'TST'."""
    g = window_grid(1.0, 1.0)
    ds = xr.Dataset(
        {
            "region_fraction": (("region", "lat", "lon"), domain_fraction(g)[None]),
            "region_abbr": ("region", np.array(["TST"], dtype=object)),
        },
        coords=g.coords(),
    )
    return _write(ds, root / "mask.nc")


ZONES = {1: "TropMC", 2: "SMC", 3: "TempMC"}


def write_classes(root: Path) -> Path:
    """``classes.nc``: climate_zone by latitude band, pft_fraction (forest south, crop north)."""
    g = window_grid(1.0, 1.0)
    lat, _ = np.meshgrid(g.lat, g.lon, indexing="ij")
    zone = np.where(lat < 25, 1, np.where(lat < 32, 2, 3)).astype(np.int32)
    forest = np.clip((40.0 - lat) / 20.0, 0, 1)
    pft = np.stack([0.6 * forest, 0.4 * forest, 1 - forest])  # ENF, EBF, crop
    ds = xr.Dataset(
        {
            "climate_zone": (
                ("lat", "lon"),
                zone,
                {
                    "flag_values": np.array([1, 2, 3], np.int32),
                    "flag_meanings": "TropMC SMC TempMC",
                },
            ),
            "pft_fraction": (("pft", "lat", "lon"), pft),
        },
        coords={"pft": ["ENF", "EBF", "CRO"], **g.coords()},
    )
    return _write(ds, root / "classes.nc")


def write_ancillary(root: Path) -> Path:
    """Monthly soil moisture, SIF and LAI on a 0.5° grid (SIF/LAI peak in July)."""
    g = window_grid(0.5, 0.5)
    t = months()
    rng = np.random.default_rng(7)
    season = np.cos(2 * np.pi * (t.month.to_numpy() - 7) / 12.0)[:, None, None]
    shape = (t.size, *g.shape)
    data = {
        "soil_moisture": 0.3 + 0.05 * rng.standard_normal(shape),
        "sif": 0.5 + 0.4 * season + 0.02 * rng.standard_normal(shape),
        "lai": 2.0 + 1.5 * season + 0.05 * rng.standard_normal(shape),
    }
    ds = xr.Dataset(
        {k: (("time", "lat", "lon"), v, {"units": "1"}) for k, v in data.items()},
        coords={"time": t, **g.coords()},
    )
    return _write(ds, root / "ancillary.nc")


def write_aircraft(root: Path) -> Path:
    """A tiny aircraft table (biases chosen by hand, see tests)."""
    rows = [
        # time, lat, lon, altitude_m, obs, sat_a, insitu_c
        ("2016-03-01T10:00", 31.0, 121.0, 1000.0, 400.0, 409.0, 409.0),  # < 2 km: excluded
        ("2016-03-01T10:10", 31.0, 121.0, 3000.0, 400.0, 401.0, 402.0),
        ("2016-03-01T10:20", 32.0, 122.0, 5000.0, 401.0, 400.0, 403.0),
        ("2016-03-01T10:30", 36.0, 131.0, 10000.0, 402.0, 402.5, 401.0),
        ("2016-03-01T10:40", 36.0, 131.0, 11000.0, 402.0, 403.5, float("nan")),
    ]
    df = pd.DataFrame(
        rows,
        columns=["time", "lat", "lon", "altitude_m", "obs_ppm", "sat_a_ppm", "insitu_c_ppm"],
    )
    path = root / "aircraft.csv"
    df.to_csv(path, index=False)
    return path


def write_config(root: Path, **overrides: object) -> Path:
    """A complete analysis config over the fixture; ``overrides`` replace top-level keys."""
    write_products(root)
    write_mask(root)
    write_classes(root)
    write_ancillary(root)
    write_aircraft(root)
    cfg: dict[str, object] = {
        "title": "fixture analysis",
        "period": {"start": 2015, "end": 2017},
        "grid": {"resolution": [1.0, 1.0]},
        "domain": {"mask_file": "mask.nc", "region": "TST"},
        "products": [
            {
                "name": "sat_a",
                "group": "satellite-inversion",
                "file": "sat_a.nc",
                "variable": "nbp",
                "sign": "sink_positive",
            },
            {"name": "sat_b", "group": "satellite-inversion", "file": "sat_b.nc"},
            {"name": "insitu_c", "group": "in-situ-inversion", "file": "insitu_c.nc"},
        ],
        "partitions": [
            {
                "name": "climate zones",
                "file": "classes.nc",
                "variable": "climate_zone",
                "merges": {"Trop-SMC": ["TropMC", "SMC"]},
            },
            {
                "name": "ecosystems",
                "file": "classes.nc",
                "variable": "pft_fraction",
                "kind": "majority",
                "aggregate": {"Forest": ["ENF", "EBF"], "Crop": ["CRO"]},
            },
        ],
        "anomalies": {
            "event_year": 2016,
            "windows": [{"label": "drought", "start": "2016-06", "end": "2016-11"}],
        },
        "ancillary": {"file": "ancillary.nc"},
        "aircraft": {"file": "aircraft.csv"},
        "output": "out",
    }
    cfg.update(overrides)
    path = root / "analysis.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
