"""A tiny real-data world: fixture files in each product's distributed format, at 10°/5°.

Every product holds simple constants, so the canonical values can be computed by
hand in the tests: fluxes are constant in space and time per product/member.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parents[3]
MAPPINGS = ROOT / "configs" / "prepare" / "mappings"
YEARS = (2003, 2004)
RES = 10.0

# Hand values of the products.
#: Constant drivers besides Tair, each inside its physical range (fluxbridge.plausibility).
DRIVER_VALUES = {
    "WAI2": 1.0,
    "MSC_EVIRpot": 2.0,
    "MSC_FparLST": 3.0,
    "MIN_MSC_NDWI": 0.4,
    "AMP_Band4": 0.5,
    "MSC_LST_Night": 260.0,
    "Rg_VIMSC": 7.0,
    "AMP_MSC_NDVI": 0.8,
    "AMP_MSC_WAI": 9.0,
}
#: kgC m-2 s-1 per m2 of grid cell: net land sinks of about 3 and 2 PgC yr-1 after fire
INVERSION_KGC_M2_S = {"CAMS": -2.0e-10, "CTE": -1.0e-10}
FIRE_KGCO2_M2_S = 4.4009e-10  # kgCO2 m-2 s-1, per m2 of grid cell
FLUXCOM_NEE = -0.5  # gC m-2 d-1 over land
TAIR_K = (280.0, 290.0)  # per PFT, plus day-of-year / 100
PFT = (0.25, 0.75)
BUDGET = {  # GtC/yr, constant for every year
    "fossil emissions excluding carbonation": 9.0,
    "land-use change emissions": 1.0,
    "atmospheric growth": 5.0,
    "ocean sink": 2.5,
    "cement carbonation sink": 0.2,
}
#: ERA5 daily statistics of the public-driver world: 15 °C; ssrd as the daily mean of hourly
#: accumulations (J m-2 per hour → Rg = 12 MJ m-2 d-1); tp (m per hour → 2.4 mm d-1).
ERA5_TAIR_K = 288.15
ERA5_SSRD_DAILY_MEAN = 5.0e5
ERA5_TP_DAILY_MEAN = 1.0e-4
SITES = {  # id: (lat, lon, IGBP)
    "US-Ha1": (42.5, -72.2, "DBF"),
    "DE-Tha": (50.9, 13.6, "ENF"),
    "BR-Sa1": (-2.9, -55.0, "EBF"),
    "AU-How": (-12.5, 131.2, "WSA"),
}


def centres(step: float, lo: float, hi: float) -> np.ndarray:
    return np.arange(lo + step / 2, hi, step)


def land_fraction() -> np.ndarray:
    """(18, 36) land fraction on the 10° grid: land between 40°S and 70°N in the cells
    with lon in [-130, 150), half land at the edges of that box."""
    lat, lon = centres(RES, -90, 90), centres(RES, -180, 180)
    box = (lat[:, None] > -40) & (lat[:, None] < 70) & (lon[None] > -130) & (lon[None] < 150)
    edge = box & ((np.abs(lat[:, None] - (-35)) < 1) | (np.abs(lon[None] - 145) < 1))
    return np.where(edge, 0.5, box.astype(float))


def write_drivers(folder: Path, years=YEARS, *, calendar: str = "standard", drop_last=0) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lat, lon = centres(RES, -90, 90), centres(RES, 0, 360)  # 0..360, as some products
    roll = lon.size // 2
    land = np.roll(land_fraction(), roll, axis=1)  # to the 0..360 order of the file
    pft = np.stack([np.where(land > 0, f, 0.0) for f in PFT])
    xr.Dataset(
        {"land_fraction": (("lat", "lon"), land), "pft_fraction": (("pft", "lat", "lon"), pft)},
        coords={"lat": lat, "lon": lon, "pft": ["ENF", "GRA"]},
    ).to_netcdf(folder / "static.nc", engine="h5netcdf")
    for year in years:
        n = pd.Timestamp(year, 12, 31).day_of_year - drop_last
        day = np.arange(n, dtype=np.float64)
        shape = (n, lat.size, lon.size)
        data = {}
        for name, value in DRIVER_VALUES.items():
            units = {
                "WAI2": "mm",
                "AMP_MSC_WAI": "mm",
                "MSC_EVIRpot": "MJ m-2 d-1",
                "Rg_VIMSC": "MJ m-2 d-1",
                "MSC_FparLST": "K",
                "MSC_LST_Night": "K",
            }
            data[name] = (
                ("time", "lat", "lon"),
                np.full(shape, value, np.float32),
                {"units": units.get(name, "1")},
            )
        tair = np.stack([np.broadcast_to((t + day / 100)[:, None, None], shape) for t in TAIR_K], 1)
        data["Tair"] = (("time", "pft", "lat", "lon"), tair.astype(np.float32), {"units": "K"})
        ds = xr.Dataset(
            data,
            coords={
                "time": ("time", day, {"units": f"days since {year}-01-01", "calendar": calendar}),
                "lat": lat,
                "lon": lon,
                "pft": ["ENF", "GRA"],
            },
        )
        ds.to_netcdf(folder / f"drivers_{year}.nc", engine="h5netcdf")


def month_mids(years=YEARS, since: str = "2000-01-01") -> np.ndarray:
    starts = pd.date_range(f"{years[0]}-01-01", f"{years[1]}-12-01", freq="MS")
    mids = starts + (starts + pd.offsets.MonthBegin(1) - starts) / 2
    return ((mids - pd.Timestamp(since)) / pd.Timedelta(days=1)).to_numpy()


def write_gcb_inversions(
    path: Path, *, time: np.ndarray | None = None, calendar: str = "standard", step: float = 5.0
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    time = month_mids() if time is None else time
    lat, lon = centres(step, -90, 90)[::-1], centres(step, -180, 180)  # descending latitude
    names = list(INVERSION_KGC_M2_S)
    values = np.stack(
        [np.full((time.size, lat.size, lon.size), v) for v in INVERSION_KGC_M2_S.values()]
    )
    xr.Dataset(
        {
            "land_flux_only_fossil_cement_adjusted": (
                ("ensemble_member", "time", "latitude", "longitude"),
                values,
                {"units": "kgC m-2 s-1"},
            ),
            "ensemble_member_name": ("ensemble_member", np.array(names, dtype=object)),
        },
        coords={
            "time": ("time", time, {"units": "days since 2000-01-01", "calendar": calendar}),
            "latitude": lat,
            "longitude": lon,
        },
    ).to_netcdf(path, engine="h5netcdf")


def write_gfas(folder: Path, years=YEARS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lat, lon = centres(5.0, -90, 90)[::-1], centres(5.0, 0, 360)
    for year in years:
        days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
        hours = ((days - pd.Timestamp("1900-01-01")) / pd.Timedelta(hours=1)).to_numpy()
        values = np.full((days.size, lat.size, lon.size), FIRE_KGCO2_M2_S, np.float32)
        xr.Dataset(
            {
                "co2fire": (
                    ("time", "latitude", "longitude"),
                    values,
                    {"units": "kg m**-2 s**-1", "long_name": "Wildfire flux of CO2"},
                )
            },
            coords={
                "time": (
                    "time",
                    hours,
                    {"units": "hours since 1900-01-01 00:00:00.0", "calendar": "gregorian"},
                ),
                "latitude": lat,
                "longitude": lon,
            },
        ).to_netcdf(folder / f"cams_gfas_co2fire_{year}.nc", engine="h5netcdf")


def write_fluxcom(folder: Path, years=YEARS) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lat, lon = centres(RES, -90, 90)[::-1], centres(RES, -180, 180)
    land = land_fraction()[::-1]
    for year in years:
        time = month_mids((year, year), since="1582-10-15")
        values = np.where(land > 0, FLUXCOM_NEE, np.nan)[None].repeat(12, 0)
        xr.Dataset(
            {"NEE": (("time", "lat", "lon"), values, {"units": "gC m-2 day-1"})},
            coords={
                "time": ("time", time, {"units": "days since 1582-10-15", "calendar": "gregorian"}),
                "lat": lat,
                "lon": lon,
            },
        ).to_netcdf(
            folder / f"NEE.RS_METEO.FP-ALL.MLM-ALL.METEO-ERA5.720_360.monthly.{year}.nc",
            engine="h5netcdf",
        )


def write_budget(path: Path, header_row: int = 20) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"note line {i}" for i in range(header_row)]
    lines.append(",".join(["Year", *BUDGET, "land sink", "budget imbalance"]))
    for year in range(2000, 2022):
        lines.append(",".join([str(year), *(str(v) for v in BUDGET.values()), "3.0", "-0.1"]))
    path.write_text("\n".join(lines) + "\n")


def write_mask(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lat, lon = centres(RES, -90, 90), centres(RES, -180, 180)
    ids = np.where(land_fraction() > 0, (np.arange(lon.size) % 18 + 1)[None], -1)
    xr.Dataset(
        {"region_id": (("lat", "lon"), ids.astype(np.int32))}, coords={"lat": lat, "lon": lon}
    ).to_netcdf(path, engine="h5netcdf")


def write_fluxnet(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["SITE_ID,LOCATION_LAT,LOCATION_LONG,IGBP"]
    days = pd.date_range("2002-07-01", "2004-06-30", freq="D")
    for k, (site, (lat, lon, igbp)) in enumerate(SITES.items()):
        rows.append(f"{site},{lat},{lon},{igbp}")
        table = pd.DataFrame(
            {
                "TIMESTAMP": days.strftime("%Y%m%d"),
                "NEE_VUT_REF": -1.0 - k,
                "NEE_VUT_REF_QC": 0.9,
                "TA_F": np.where(days.day == 15, -9999, 10.0 + k),
                "SW_IN_F": 150.0,
                "VPD_F": 5.0,
                "P_F": 1.0,
            }
        )
        table.to_csv(folder / f"FLX_{site}_FLUXNET2015_FULLSET_DD_2002-2004_1-4.csv", index=False)
    (folder / "site_info.csv").write_text("\n".join(rows) + "\n")


def write_world(data: Path) -> None:
    """Every input of the test config under ``data`` (targets as in the manifest)."""
    write_fluxnet(data / "fluxnet/fluxnet2015")
    write_drivers(data / "fluxcom/drivers")
    write_fluxcom(data / "fluxcom/rs_meteo_era5_nee")
    write_gcb_inversions(data / "inversions/gcb2022_inversions_1x1.nc")
    write_gfas(data / "fire/cams_gfas")
    write_budget(data / "gcb/Global_Carbon_Budget_2022v1.0.csv")
    write_mask(data / "regions/reccap2_land_regions.nc")


def write_manifest(path: Path) -> None:
    """The project's manifest entries, with the budget as a CSV export."""
    raw = yaml.safe_load((ROOT / "data_manifest.yaml").read_text())
    for entry in raw["entries"]:
        if entry["name"] == "gcb2022-budget":
            entry["target"] = "gcb/Global_Carbon_Budget_2022v1.0.csv"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))


def write_config(path: Path, manifest: Path, **overrides: object) -> Path:
    """The upton2024 config, shrunk to 10° and 2003-2004, reading the shipped mappings."""
    cfg = yaml.safe_load((ROOT / "configs/prepare/upton2024.yaml").read_text())
    cfg.update(
        years=list(YEARS), resolution_deg=RES, manifest=str(manifest), mappings_dir=str(MAPPINGS)
    )
    cfg["sites"]["n_folds"] = 2
    cfg["inversions"]["members"] = {name: name for name in INVERSION_KGC_M2_S}
    cfg["fire"]["fill"] = "error"
    cfg.update(overrides)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def write_era5_daily_statistics(folder: Path) -> None:
    """Daily statistics per year and the land-sea mask, as the CDS writes them (NetCDF4,
    valid_time, latitude north to south, longitude 0..360), constant in space and time."""
    folder.mkdir(parents=True, exist_ok=True)
    lat = centres(RES, -90, 90)[::-1]
    lon = centres(RES, 0, 360)
    land = np.roll(land_fraction(), lon.size // 2, axis=1)[::-1]
    for year in range(YEARS[0], YEARS[1] + 1):
        days = pd.date_range(f"{year}-01-01", f"{year}-12-31", freq="D")
        shape = (days.size, lat.size, lon.size)
        dims = ("valid_time", "latitude", "longitude")
        xr.Dataset(
            {
                "t2m": (dims, np.full(shape, ERA5_TAIR_K), {"units": "K"}),
                "ssrd": (dims, np.full(shape, ERA5_SSRD_DAILY_MEAN), {"units": "J m**-2"}),
                "tp": (dims, np.full(shape, ERA5_TP_DAILY_MEAN), {"units": "m"}),
            },
            coords={"valid_time": days, "latitude": lat, "longitude": lon},
        ).to_netcdf(folder / f"era5_daily_mean_{year}.nc", engine="h5netcdf")
    xr.Dataset(
        {"lsm": (("valid_time", "latitude", "longitude"), land[None], {"units": "(0 - 1)"})},
        coords={"valid_time": [np.datetime64("1940-01-01")], "latitude": lat, "longitude": lon},
    ).to_netcdf(folder / "era5_land_sea_mask.nc", engine="h5netcdf")


def run_public_prepare(
    root: Path,
    modis_daily: Callable[..., xr.Dataset],
    *,
    modis: dict[str, str] | None = None,
    sites: dict[str, Any] | None = None,
    patches: Iterable[tuple[object, str, object]] = (),
    messages: list[str] | None = None,
) -> Path:
    """``invoke prepare`` with public drivers on this world under ``root``; the canonical
    dataset's folder (``root/canonical``).

    Writes the world, ERA5 daily statistics and placeholder MCD43C4/MOD11C2/MCD15A2H
    granules under ``root/raw`` (other raw files, e.g. an MCD12C1 file, may be written
    there first), the manifest and a config with ``drivers.source: public``, and runs
    prepare with ``fluxbridge.data.public.modis.modis_daily`` replaced by ``modis_daily``.
    ``modis``: more ``drivers.modis`` entries (``landcover``); ``sites``: more
    ``sites`` settings; ``patches``: (object, attribute, value) set during the run;
    ``messages``: receives every INFO-or-above message of the ``fluxbridge`` loggers.
    """
    import pytest

    from fluxbridge.data.prepare.run import run_prepare
    from fluxbridge.data.public import modis as modis_module

    raw = root / "raw"
    write_world(raw)
    write_era5_daily_statistics(raw / "era5/single_levels")
    for target in ("mcd43c4", "mod11c2", "mcd15a2h"):
        (raw / "modis" / target).mkdir(parents=True, exist_ok=True)
        (raw / "modis" / target / "granule.hdf").write_bytes(b"stand-in")
    write_manifest(root / "manifest.yaml")
    drivers = {
        "source": "public",
        "era5": {"entry": "era5-single-levels", "mapping": "era5_daily_statistics"},
        "modis": {"nbar": "modis-mcd43c4", "lst": "modis-mod11c2", "fpar": "modis-mcd15a2h"}
        | (modis or {}),
        "msc_years": list(YEARS),
        "wai": {"capacity_mm": 100.0, "spinup_years": 2},
    }
    config = write_config(root / "prepare.yaml", root / "manifest.yaml", drivers=drivers)
    if sites:
        cfg = yaml.safe_load(config.read_text())
        cfg["sites"].update(sites)
        config.write_text(yaml.safe_dump(cfg, sort_keys=False))
    mp = pytest.MonkeyPatch()
    mp.setattr(modis_module, "modis_daily", modis_daily)
    for obj, name, value in patches:
        mp.setattr(obj, name, value)
    logger, handler = logging.getLogger("fluxbridge"), None
    old_level = logger.level
    if messages is not None:
        handler = _Keep(messages)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        assert run_prepare(config, root / "canonical", raw) == 0
    finally:
        mp.undo()
        if handler is not None:
            logger.removeHandler(handler)
            logger.setLevel(old_level)
    return root / "canonical"


class _Keep(logging.Handler):
    """Appends each record's message to a list."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__(level=logging.INFO)
        self.messages = messages

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
