"""Daily weather of the twin world: radiation, air temperature, cloudiness, rain, water bucket.

Everything here works on a block of land cells at once: arrays are (day, cell).
Signs and units: temperatures in °C, radiation in MJ m-2 d-1, rain and water in mm
(mm d-1 for rates).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fields import CorrelatedField, ar1, stream_rng, unit_vectors
from .landcover import CLIMATE_TYPES, RAIN_SHAPES
from .seasonal import Calendar

SOLAR_CONSTANT = 0.0820  # MJ m-2 min-1 (FAO-56)

#: Climate type → (mean-temperature offset °C, seasonal half-range offset °C, rain factor).
CLIMATE_OFFSETS: dict[str, tuple[float, float, float]] = {
    "tropical_wet": (0.0, 0.0, 1.5),
    "tropical_dry": (0.5, 0.5, 0.9),
    "desert": (2.0, 2.0, 0.12),
    "steppe": (1.0, 1.0, 0.35),
    "mediterranean": (1.0, 0.0, 0.8),
    "humid_subtropical": (1.0, 0.0, 1.1),
    "oceanic": (0.0, -2.0, 1.0),
    "continental_hot": (-1.0, 2.0, 0.8),
    "continental_warm": (-3.0, 3.0, 0.8),
    "boreal": (-6.0, 5.0, 0.7),
    "tundra": (-8.0, 2.0, 0.5),
    "ice": (-20.0, 2.0, 0.2),
}

# Random streams (second entry of the seed sequence) used by this module.
_STREAM_SYNOPTIC_T, _STREAM_WEATHER, _STREAM_IAV_T, _STREAM_IAV_P, _STREAM_ENSO = range(1, 6)


def potential_radiation(lat_deg: np.ndarray, day_of_year: np.ndarray) -> np.ndarray:
    """Daily extraterrestrial radiation Ra (MJ m-2 d-1), FAO-56 Eqs. 21–25.

    Ra = 24·60/π · Gsc · dr · [ωs sinφ sinδ + cosφ cosδ sin ωs] with dr the inverse
    relative Earth–Sun distance, δ the solar declination and ωs the sunset hour angle
    (0 in polar night, π in polar day). Broadcasts ``lat_deg`` against ``day_of_year``.
    """
    phi = np.deg2rad(lat_deg)
    j = np.asarray(day_of_year, dtype=np.float64)
    dr = 1.0 + 0.033 * np.cos(2.0 * np.pi * j / 365.0)
    delta = 0.409 * np.sin(2.0 * np.pi * j / 365.0 - 1.39)
    ws = np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))
    return (
        24.0
        * 60.0
        / np.pi
        * SOLAR_CONSTANT
        * dr
        * (ws * np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.sin(ws))
    )


@dataclass(frozen=True)
class Climate:
    """Static climate of a set of cells (arrays are (cell,) unless noted)."""

    lat: np.ndarray
    lon: np.ndarray
    t_mean: np.ndarray  # °C
    t_half_range: np.ndarray  # °C, signed by hemisphere
    rain_mean: np.ndarray  # mm d-1
    rain_shape: np.ndarray  # (shape, cell) shares of RAIN_SHAPES
    capacity: np.ndarray  # mm
    drought_weight: np.ndarray  # 0..1 share of the cell in the drought region

    def take(self, sel: slice) -> Climate:
        return Climate(
            *(getattr(self, f)[..., sel] for f in self.__dataclass_fields__)  # type: ignore[arg-type]
        )

    @property
    def xyz(self) -> np.ndarray:
        return unit_vectors(self.lat, self.lon)


def climate(
    lat: np.ndarray,
    lon: np.ndarray,
    continentality: np.ndarray,
    type_share: np.ndarray,
    rain_shape: np.ndarray,
    capacity: np.ndarray,
    drought_weight: np.ndarray,
) -> Climate:
    """Climate normals of cells from latitude, continentality and climate-type shares.

    Mean temperature falls from ~27 °C at the equator to ~−7 °C at 70°, colder inland
    at high latitudes; the seasonal half-range grows with latitude and continentality;
    rain has an equatorial and a mid-latitude maximum, drier inland. Climate-type
    offsets (:data:`CLIMATE_OFFSETS`) then bend each toward its Köppen class.
    """
    offsets = np.array([CLIMATE_OFFSETS[t] for t in CLIMATE_TYPES])  # (type, 3)
    weights = type_share / np.maximum(type_share.sum(axis=0, keepdims=True), 1e-12)
    t_off, amp_off, rain_factor = offsets.T @ weights
    a = np.abs(lat)
    high = np.clip((a - 35.0) / 20.0, 0.0, 1.0)
    t_mean = -15.0 + 42.0 * np.cos(np.deg2rad(lat)) ** 1.5 - 6.0 * continentality * high + t_off
    half = 1.0 + 28.0 * np.abs(np.sin(np.deg2rad(lat))) ** 1.5 * (0.35 + 0.65 * continentality)
    half = np.maximum(half + amp_off * high, 0.5) * np.tanh(lat / 5.0)
    rain = 5.5 * np.exp(-((lat / 14.0) ** 2)) + 2.2 * np.exp(-(((a - 48.0) / 14.0) ** 2)) + 0.5
    rain = rain * (1.2 - 0.6 * continentality) * rain_factor
    shares = rain_shape / np.maximum(rain_shape.sum(axis=0, keepdims=True), 1e-12)
    return Climate(lat, lon, t_mean, half, rain, shares, capacity, drought_weight)


@dataclass(frozen=True)
class WeatherNoise:
    """The world's weather variability, drawn once: correlated fields and an ENSO index."""

    synoptic_t: CorrelatedField  # daily, unit variance
    weather: CorrelatedField  # daily rain/cloud anomalies
    iav_t: CorrelatedField  # monthly temperature anomalies
    iav_rain: CorrelatedField  # monthly rain anomalies
    enso: np.ndarray  # (month,) unit-variance ENSO-like index

    @classmethod
    def draw(cls, seed: int, calendar: Calendar) -> WeatherNoise:
        n_days, n_months = len(calendar.days), len(calendar.months)
        return cls(
            CorrelatedField.draw(stream_rng(seed, _STREAM_SYNOPTIC_T), n_days, 8.0, 0.75),
            CorrelatedField.draw(stream_rng(seed, _STREAM_WEATHER), n_days, 6.0, 0.5),
            CorrelatedField.draw(stream_rng(seed, _STREAM_IAV_T), n_months, 15.0, 0.8),
            CorrelatedField.draw(stream_rng(seed, _STREAM_IAV_P), n_months, 15.0, 0.8),
            ar1(stream_rng(seed, _STREAM_ENSO), n_months, 1, 0.9)[:, 0],
        )


def _rain_shapes(lat: np.ndarray, j: np.ndarray) -> dict[str, np.ndarray]:
    """(day, cell) seasonal rain multipliers with annual mean 1 for each shape."""
    hemi = np.sign(lat)[None, :]
    season = np.cos(2.0 * np.pi * (j[:, None] - 200.0) / 365.25) * hemi  # +1 = local summer
    dry = 1.0 - 0.8 / np.pi  # annual mean of 1 − 0.8·max(0, cos)
    year = np.arange(1, 366, dtype=np.float64)

    def itcz(days: np.ndarray) -> np.ndarray:
        centre = 12.0 * np.sin(2.0 * np.pi * (days[:, None] - 110.0) / 365.25)
        return np.exp(-(((lat[None, :] - centre) / 10.0) ** 2)) + 0.05

    return {
        "none": np.ones_like(season),
        "dry_summer": (1.0 - 0.8 * np.maximum(season, 0.0)) / dry,
        "dry_winter": (1.0 - 0.8 * np.maximum(-season, 0.0)) / dry,
        "itcz": itcz(j) / itcz(year).mean(axis=0),
    }


def enso_pattern(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Where an ENSO warm phase dries the land: Amazonia, the Maritime Continent, N Australia."""
    tropics = np.exp(-((lat / 20.0) ** 2))
    lobes = np.exp(-(((lon + 60.0) / 30.0) ** 2)) + np.exp(-(((lon - 125.0) / 35.0) ** 2))
    return tropics * (lobes - 0.3)


def daily_weather(
    clim: Climate,
    noise: WeatherNoise,
    calendar: Calendar,
    drought_days: np.ndarray,
    drought_severity: float,
) -> dict[str, np.ndarray]:
    """Daily ``tair`` (°C), ``rpot``, ``rg`` (MJ m-2 d-1), ``cloud`` (0..1), ``rain`` (mm d-1).

    ``drought_days`` (day,) marks the drought window; inside it rain falls by
    ``drought_severity`` × the cell's drought weight and air warms by 2 °C × the same.
    """
    j = calendar.days.day_of_year.to_numpy().astype(np.float64)
    xyz = clim.xyz
    lat = clim.lat
    enso = noise.enso[calendar.month_of_day][:, None]
    tropics = np.exp(-((lat / 20.0) ** 2))[None, :]
    drought = drought_days[:, None] * clim.drought_weight[None, :] * drought_severity

    seasonal = clim.t_half_range[None, :] * np.cos(2.0 * np.pi * (j[:, None] - 200.0) / 365.25)
    synoptic = noise.synoptic_t.values(xyz) * (1.0 + 3.0 * np.abs(np.sin(np.deg2rad(lat))))
    iav_t = 0.6 * noise.iav_t.values(xyz)[calendar.month_of_day]
    tair = clim.t_mean[None, :] + seasonal + synoptic + iav_t + 0.3 * enso * tropics + 2.0 * drought

    shapes = _rain_shapes(lat, j)
    shape = sum(clim.rain_shape[k][None, :] * shapes[s] for k, s in enumerate(RAIN_SHAPES))
    rain_clim = clim.rain_mean[None, :] * shape
    wet = noise.weather.values(xyz)
    iav_p = noise.iav_rain.values(xyz)[calendar.month_of_day]
    enso_dry = np.exp(-0.25 * enso * enso_pattern(lat, clim.lon)[None, :])
    rain = rain_clim * np.exp(wet - 0.5) * np.exp(0.2 * iav_p - 0.02) * enso_dry * (1.0 - drought)

    cloud = np.clip(0.25 + 0.45 * (1.0 - np.exp(-rain_clim / 3.0)) + 0.15 * wet, 0.02, 0.98)
    rpot = potential_radiation(lat[None, :], j[:, None])
    rg = rpot * (0.75 - 0.5 * cloud)
    return {"tair": tair, "rpot": rpot, "rg": rg, "cloud": cloud, "rain": rain}


def water_bucket(
    rain: np.ndarray, tair: np.ndarray, rg: np.ndarray, capacity: np.ndarray
) -> np.ndarray:
    """Daily plant-available water (mm) of a one-layer bucket with snow (day, cell).

    Rain below 0 °C accumulates as snow and melts at 3 mm °C-1 d-1 above 0 °C.
    Potential evapotranspiration follows Hargreaves–Samani's radiation form,
    PET = 0.0135 (T + 17.8) · 0.408 Rg (mm d-1); actual ET is PET scaled by the
    relative water content up to half capacity. The bucket starts half full and is
    spun up over the first year.
    """
    pet = np.maximum(0.0135 * (tair + 17.8) * 0.408 * rg, 0.0)
    frozen = tair < 0.0
    melt_cap = 3.0 * np.maximum(tair, 0.0)
    n_days = rain.shape[0]
    water = 0.5 * capacity
    snow = np.zeros_like(capacity)
    out = np.empty_like(rain)
    for spin in (True, False):
        for t in range(min(n_days, 365) if spin else n_days):
            snow = snow + np.where(frozen[t], rain[t], 0.0)
            melt = np.minimum(snow, melt_cap[t])
            snow = snow - melt
            supply = water + np.where(frozen[t], 0.0, rain[t]) + melt
            et = np.minimum(supply, pet[t] * np.minimum(1.0, water / (0.5 * capacity)))
            water = np.minimum(supply - et, capacity)
            if not spin:
                out[t] = water
    return out
