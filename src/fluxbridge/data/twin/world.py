"""The twin world evaluated block by block of land cells: weather → surface → drivers → NEE.

:class:`World` holds what is drawn once (climate normals, weather variability, the
unexplained-flux field); :meth:`World.block` returns every daily and monthly field
of one block of cells. Blocks have a fixed size, so the numbers never depend on how
the caller iterates and two builds are bitwise identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .drivers import table_a2
from .fields import CorrelatedField, rho_from_timescale, stream_rng
from .geography import Geography
from .landcover import PFTS, effective_traits
from .nee import gpp, respiration
from .scenario import REGION_ABBRS, Scenario
from .seasonal import Calendar, monthly_means
from .surface import remote_sensing
from .weather import WeatherNoise, climate, daily_weather, water_bucket

BLOCK_CELLS = 512
_STREAM_UNEXPLAINED, _STREAM_MODIS = 20, 21
SIF_PER_GPP = 0.12  # mW m-2 nm-1 sr-1 per gC m-2 d-1 (SIF ∝ GPP, a GPP-like proxy)
LAI_EXTINCTION = 0.5  # Beer's law: fAPAR = 1 − exp(−k LAI)


@dataclass(frozen=True)
class Block:
    """Fields of the land cells ``start:stop``; arrays are (time, cell)."""

    start: int
    stop: int
    drivers: dict[str, np.ndarray]  # daily, float32
    nee: np.ndarray  # daily true NEE, gC m-2 d-1
    monthly: dict[str, np.ndarray]  # nee, gpp, reco, unexplained, soil_moisture, lai, sif


class World:
    """The static and random ingredients of a scenario's world, evaluated lazily by block."""

    def __init__(self, scenario: Scenario, geography: Geography, calendar: Calendar) -> None:
        self.scenario = scenario
        self.geography = geography
        self.calendar = calendar
        geo = geography
        self.lat = geo.grid.lat[geo.cell_ilat]
        self.lon = geo.grid.lon[geo.cell_ilon]
        self.pft_share = geo.on_cells(geo.pft_fraction)
        self.traits = effective_traits(self.pft_share)
        drought = scenario.drought
        weight = (
            geo.on_cells(geo.region_fraction[REGION_ABBRS.index(drought.region)])
            if drought is not None
            else np.zeros(geo.n_cells)
        )
        self.climate = climate(
            self.lat,
            self.lon,
            geo.on_cells(geo.continentality),
            geo.on_cells(geo.climate_type_fraction),
            geo.on_cells(geo.rain_shape_fraction),
            self.traits["capacity"],
            weight,
        )
        self.noise = WeatherNoise.draw(scenario.seed, calendar)
        cfg = scenario.unexplained_flux
        self.unexplained = CorrelatedField.draw(
            stream_rng(scenario.seed, _STREAM_UNEXPLAINED),
            len(calendar.days),
            cfg.length_scale_deg,
            rho_from_timescale(cfg.timescale_days),
        )
        self.drought_days = np.zeros(len(calendar.days))
        if drought is not None:
            days = calendar.days
            self.drought_days = (
                (days.year == drought.year)
                & (days.month >= drought.months[0])
                & (days.month <= drought.months[1])
            ).astype(np.float64)

    @property
    def n_blocks(self) -> int:
        return -(-self.geography.n_cells // BLOCK_CELLS)

    def block(self, index: int) -> Block:
        """Every field of block ``index`` (cells index·BLOCK_CELLS … +BLOCK_CELLS)."""
        start = index * BLOCK_CELLS
        stop = min(start + BLOCK_CELLS, self.geography.n_cells)
        sel = slice(start, stop)
        cal = self.calendar
        clim = self.climate.take(sel)
        traits = {k: v[sel] for k, v in self.traits.items()}
        traits["lue"] = traits["lue"] * self.scenario.biosphere.lue_scale
        severity = self.scenario.drought.severity if self.scenario.drought else 0.0
        wx = daily_weather(clim, self.noise, cal, self.drought_days, severity)
        water = water_bucket(wx["rain"], wx["tair"], wx["rg"], clim.capacity)
        rng = stream_rng(self.scenario.seed, _STREAM_MODIS, index)
        rs = remote_sensing(wx["tair"], water, wx["rpot"], wx["cloud"], wx["rg"], traits, rng)
        gross = gpp(rs["fapar"], wx["rg"], wx["tair"], water, traits)
        reco = respiration(gross, wx["tair"], water, traits, self.scenario.biosphere.sink_fraction)
        vegetated = 1.0 - self.pft_share[PFTS.index("BSV"), sel]
        amplitude = self.scenario.unexplained_flux.amplitude_gc_m2_d
        extra = amplitude * vegetated[None, :] * self.unexplained.values(clim.xyz)
        nee = reco - gross + extra
        drivers = table_a2({**wx, **rs, "water": water}, cal, self.scenario.msc_smoothing_days)
        lai = -np.log(np.clip(1.0 - rs["fapar"], 0.05, 1.0)) / LAI_EXTINCTION
        daily = {
            "nee": nee,
            "gpp": gross,
            "reco": reco,
            "unexplained": extra,
            "soil_moisture": 0.05 + 0.4 * water / clim.capacity[None, :],
            "lai": lai,
            "sif": SIF_PER_GPP * gross,
        }
        monthly = {k: monthly_means(v, cal.month_of_day) for k, v in daily.items()}
        return Block(start, stop, drivers, nee, monthly)
