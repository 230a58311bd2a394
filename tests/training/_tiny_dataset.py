"""A minimal valid canonical dataset with a planted relation NEE = f(drivers), for training tests.

10° grid over a box of the Americas/Europe, three regions, a few years of daily
drivers, 20 towers in 10 folds with NaN gaps, and an inversion ensemble whose
regional integrals scatter around the true ones. ``tower_bias`` is added to the
towers in BRA only (the tropical respiration bias of the twin world), so an
EC-only model is biased there while the inversions are not.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.data.canonical import DRIVERS, NEE_UNITS
from fluxbridge.geo.grid import Grid
from fluxbridge.io import write_netcdf

REGIONS = (("USA", "United States", 0), ("BRA", "Brazil", 4), ("EU", "Europe", 6))
MEMBERS = ("invA", "invB", "invC")


#: The generic driver values (about -5..16) moved into each driver's physical range
#: (fluxbridge.plausibility.DRIVER_BOUNDS): index → (scale, offset). WAI2 is shifted by
#: WAI_OFFSET mm, which true_nee takes off again, so the planted relation is unchanged.
WAI_OFFSET = 10.0
PLAUSIBLE = {
    0: (1.0, WAI_OFFSET),  # WAI2, mm >= 0
    2: (1.0, 100.0),  # MSC_FparLST, K
    3: (0.05, 0.0),  # MIN_MSC_NDWI, -1..1
    4: (1 / 30, 1 / 3),  # AMP_Band4, 0..1
    5: (3.0, 270.0),  # MSC_LST_Night, K
    7: (1 / 15, 2 / 3),  # AMP_MSC_NDVI, 0..2
    9: (1.0, 10.0),  # AMP_MSC_WAI, mm >= 0
}


def true_nee(x: np.ndarray) -> np.ndarray:
    """The planted relation: drivers (..., 10) in DRIVERS order → NEE gC m-2 d-1."""
    wai, evi, tair = x[..., 0] - WAI_OFFSET, x[..., 1], x[..., 8]
    return 1.2 * np.tanh((tair - 12.0) / 8.0) - 0.6 * np.maximum(evi - 4.0, 0.0) + 0.01 * wai


def _regions(grid: Grid) -> np.ndarray:
    lat, lon = np.meshgrid(grid.lat, grid.lon, indexing="ij")
    frac = np.zeros((len(REGIONS), *lat.shape))
    frac[0] = (lon < -60) & (lat > 20)
    frac[1] = (lon < -30) & (lat < 0)
    frac[2] = (lon > -10) & (lat > 30)
    split = (np.abs(lat - 35) < 1) & (np.abs(lon + 65) < 1)  # one cell shared by USA and EU
    frac[0][split], frac[2][split] = 0.5, 0.5
    return frac


def write_tiny_dataset(
    root: Path,
    *,
    seed: int = 0,
    years: tuple[int, int] = (2001, 2004),
    n_sites: int = 20,
    tower_bias: float = 0.0,
) -> Path:
    """Write grid/drivers/sites/inversions/reference/residual_sink + canonical.json to ``root``."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    grid = Grid(np.arange(-40.0, 61.0, 10.0), np.arange(-100.0, 41.0, 10.0))
    coords = grid.coords()
    region_fraction = _regions(grid)
    land = np.where(region_fraction.sum(0) > 0, rng.uniform(0.6, 1.0, grid.shape), 0.0) + np.where(
        (region_fraction.sum(0) == 0) & (rng.uniform(size=grid.shape) < 0.3), 0.5, 0.0
    )
    ilat, ilon = np.nonzero(land > 0)
    n_cell = ilat.size

    time = pd.date_range(f"{years[0]}-01-01", f"{years[1]}-12-31", freq="D")
    doy = time.day_of_year.to_numpy()
    season = np.sin(2 * np.pi * (doy - 100) / 365.25)[:, None]  # (time, 1)
    cell_lat = grid.lat[ilat][None, :]
    drivers = np.empty((time.size, n_cell, len(DRIVERS)))
    for k in range(len(DRIVERS)):
        level = rng.uniform(0, 10, n_cell)[None, :]
        amp = rng.uniform(0.5, 3, n_cell)[None, :] * np.sign(cell_lat + 1e-3)
        drivers[..., k] = level + amp * season + rng.normal(0, 0.3, (time.size, n_cell))
    drivers[..., 8] = (
        25
        - 0.3 * np.abs(cell_lat)
        + 8 * season * np.sign(cell_lat) * (np.abs(cell_lat) / 50)
        + rng.normal(0, 2, (time.size, n_cell))
    )
    for k, (scale, offset) in PLAUSIBLE.items():
        drivers[..., k] = scale * drivers[..., k] + offset
    nee_cell = true_nee(drivers)  # (time, cell)

    grid_ds = xr.Dataset(
        {
            "cell_area": grid.cell_area(),
            "land_fraction": (("lat", "lon"), land, {"units": "1", "long_name": "land fraction"}),
            "pft_fraction": (
                ("pft", "lat", "lon"),
                np.broadcast_to(land > 0, (1, *grid.shape)).astype(float),
                {"units": "1", "long_name": "pft fraction"},
            ),
            "region_fraction": (
                ("region", "lat", "lon"),
                region_fraction,
                {"units": "1", "long_name": "share of the land in each region"},
            ),
            "region_id": (
                ("lat", "lon"),
                np.where(
                    region_fraction.sum(0) > 0,
                    np.array([r[2] for r in REGIONS])[region_fraction.argmax(0)],
                    -1,
                ).astype(np.int32),
            ),
            "region_abbr": (("region",), np.array([r[0] for r in REGIONS])),
            "region_name": (("region",), np.array([r[1] for r in REGIONS])),
        },
        coords={**coords, "pft": ["all"]},
    ).merge(grid.bounds_dataset())
    write_netcdf(grid_ds, root / "grid.nc", action="tiny test grid")

    time_attrs = {"long_name": "time"}
    drv = xr.Dataset(
        {
            d.name: (("time", "cell"), drivers[..., k].astype(np.float32), {"units": d.units})
            for k, d in enumerate(DRIVERS)
        }
        | {
            "cell_ilat": (("cell",), ilat.astype(np.int32)),
            "cell_ilon": (("cell",), ilon.astype(np.int32)),
        },
        coords={"time": ("time", time, time_attrs)},
    )
    write_netcdf(drv, root / "drivers.nc", action="tiny test drivers")

    site_cell = rng.choice(n_cell, n_sites, replace=False)
    site_x = drivers[:, site_cell, :].transpose(1, 0, 2) + rng.normal(0, 0.05, (n_sites, 1, 10))
    in_bra = region_fraction[1, ilat[site_cell], ilon[site_cell]] > 0
    obs = true_nee(site_x) + rng.normal(0, 0.1, (n_sites, time.size))
    obs += np.where(in_bra, tower_bias, 0.0)[:, None]
    obs[rng.uniform(size=obs.shape) < 0.2] = np.nan
    sites = xr.Dataset(
        {
            "nee_obs": (("site", "time"), obs, {"units": NEE_UNITS}),
            "site_lat": (("site",), grid.lat[ilat[site_cell]], {"units": "degrees_north"}),
            "site_lon": (("site",), grid.lon[ilon[site_cell]], {"units": "degrees_east"}),
            "site_igbp": (("site",), np.array(["ENF"] * n_sites)),
            "fold": (("site",), (np.arange(n_sites) % 10).astype(np.int32)),
        }
        | {
            d.name: (("site", "time"), site_x[..., k], {"units": d.units})
            for k, d in enumerate(DRIVERS)
        },
        coords={"time": ("time", time, time_attrs)},
    )
    write_netcdf(sites, root / "sites.nc", action="tiny test sites")

    months = pd.date_range(time[0], time[-1], freq="MS")
    month_idx = (time.year - years[0]) * 12 + time.month - 1
    monthly = np.stack([nee_cell[month_idx == m].mean(0) for m in range(months.size)])
    field = np.zeros((months.size, *grid.shape))
    field[:, ilat, ilon] = monthly
    spread = np.array([-0.15, 0.05, 0.2])[:, None, None, None]
    inv = field[None] * (1 + spread) + rng.normal(0, 0.05, (len(MEMBERS), *field.shape))
    gridded = {"units": NEE_UNITS, "long_name": "net ecosystem exchange"}
    mcoords = {**coords, "time": ("time", months, time_attrs)}
    write_netcdf(
        xr.Dataset(
            {"nee": (("member", "time", "lat", "lon"), inv, gridded)},
            coords={**mcoords, "member": list(MEMBERS)},
        ),
        root / "inversions.nc",
        action="tiny test inversions",
    )
    write_netcdf(
        xr.Dataset({"nee": (("time", "lat", "lon"), field, gridded)}, coords=mcoords),
        root / "reference.nc",
        action="tiny test reference",
    )
    yrs = np.arange(years[0], years[1] + 1)
    write_netcdf(
        xr.Dataset(
            {
                "nee_global": (("year",), np.full(yrs.size, -1.0), {"units": "PgC yr-1"}),
                "nee_global_sigma": (("year",), np.full(yrs.size, 0.5), {"units": "PgC yr-1"}),
            },
            coords={"year": yrs},
        ),
        root / "residual_sink.nc",
        action="tiny test residual sink",
    )
    meta = {"schema_version": 1, "source": "twin", "years": [int(years[0]), int(years[1])]}
    (root / "canonical.json").write_text(json.dumps(meta | {"resolution_deg": 10.0}))
    return root


def write_tiny_bridges(data: Path, path: Path, cells_per_region: int = 4) -> Path:
    """Least-squares bridges on the reference field, as ``invoke bridges`` would write them.

    Each region's contributing cells are its ``cells_per_region`` cells with the most
    region land area; the weights come from least squares of the exact regional integral
    per day of reference.nc on the reference NEE at those cells, without intercept and
    with Σ w = the region's land area × 1e-15 (the default ``FitSpec``).
    """
    from fluxbridge.bridge.bridgeset import BridgeSet, RegionBridge
    from fluxbridge.bridge.lasso import FitSpec, least_squares
    from fluxbridge.geo.integrate import region_land_area_m2, regional_integral_pgc
    from fluxbridge.io import open_netcdf

    grid_ds = open_netcdf(data / "grid.nc")
    drv = open_netcdf(data / "drivers.nc")
    ref = open_netcdf(data / "reference.nc")["nee"]
    ilat, ilon = drv["cell_ilat"].values, drv["cell_ilon"].values
    target = regional_integral_pgc(
        ref, grid_ds["cell_area"], grid_ds["land_fraction"], grid_ds["region_fraction"]
    ).values  # (region, time)
    share = (grid_ds["cell_area"] * grid_ds["region_fraction"]).transpose("region", ...)
    share = share.values[:, ilat, ilon]
    land_area = region_land_area_m2(
        grid_ds["cell_area"], grid_ds["land_fraction"], grid_ds["region_fraction"]
    ).values
    days = ref["time"].dt.days_in_month.values
    spec = FitSpec()
    bridges = []
    for r, (abbr, _, _) in enumerate(REGIONS):
        cells = np.sort(np.argsort(share[r])[::-1][:cells_per_region])
        x = ref.values[:, ilat[cells], ilon[cells]]
        weights, bias = least_squares(
            x, target[r] / days, intercept=False, weight_sum=spec.weight_sum(land_area[r])
        )
        bridges.append(
            RegionBridge(
                region=abbr,
                cells=cells.astype(np.int64),
                ilat=ilat[cells].astype(np.int64),
                ilon=ilon[cells].astype(np.int64),
                lat=grid_ds["lat"].values[ilat[cells]],
                lon=grid_ds["lon"].values[ilon[cells]],
                weights=weights,
                bias=bias,
                alpha=0.0,
                r2_train=1.0,
                r2_cv=1.0,
                land_area=float(land_area[r]),
            )
        )
    bset = BridgeSet(bridges, grid_ds["lat"].values, grid_ds["lon"].values, ilat.size, spec=spec)
    return bset.save(path)
