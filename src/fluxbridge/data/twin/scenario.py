"""Twin-world scenario: every knob of the synthetic world, validated at the edge.

A scenario is a YAML mapping loaded strictly with :func:`fluxbridge.config.from_mapping`
(an unknown key, a missing required key or a wrong type is a ``ConfigError`` naming
the file and the dotted key). Each knob is documented in docs/twin_world.md.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from fluxbridge.config import from_mapping, load_yaml, to_mapping
from fluxbridge.data.canonical import RECCAP2_REGIONS
from fluxbridge.geo.grid import Grid

REGION_ABBRS: tuple[str, ...] = tuple(abbr for _, abbr, _ in RECCAP2_REGIONS)


def _check_range(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ValueError(f"{name}={value!r} must lie in [{lo}, {hi}]")


@dataclass(frozen=True)
class SitesConfig:
    """Eddy-covariance towers."""

    count: int = 150
    density: str | dict[str, float] = "default"  # "default" or {REGION_ABBR: relative weight}
    folds: int = 10
    record_years_min: int = 3  # shortest tower record, years (clipped to the scenario)
    gap_fraction: float = 0.2  # share of days missing inside a record
    measurement_noise_gc_m2_d: float = 0.4  # 1σ random error of a daily flux
    representativeness_noise_gc_m2_d: float = 0.4  # 1σ footprint-vs-pixel mismatch (AR(1))
    driver_noise: float = 0.05  # tower drivers = pixel drivers + this × each driver's spread

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count={self.count} must be at least 1")
        if self.folds < 2 or self.folds > self.count:
            raise ValueError(f"folds={self.folds} must lie in [2, count={self.count}]")
        if isinstance(self.density, str) and self.density != "default":
            raise ValueError(f"density={self.density!r}: expected 'default' or a mapping")
        if isinstance(self.density, dict):
            unknown = sorted(set(self.density) - set(REGION_ABBRS))
            if unknown:
                raise ValueError(
                    f"density: unknown region(s) {unknown}; allowed: {', '.join(REGION_ABBRS)}"
                )
            if any(w < 0 for w in self.density.values()) or sum(self.density.values()) <= 0:
                raise ValueError("density: weights must be >= 0 with a positive sum")
        if self.record_years_min < 1:
            raise ValueError(f"record_years_min={self.record_years_min} must be at least 1")
        _check_range("gap_fraction", self.gap_fraction, 0.0, 0.9)
        for name in ("measurement_noise_gc_m2_d", "representativeness_noise_gc_m2_d"):
            _check_range(name, getattr(self, name), 0.0, 10.0)
        _check_range("driver_noise", self.driver_noise, 0.0, 1.0)


@dataclass(frozen=True)
class TowerBiasConfig:
    """Systematic error of tropical towers (e.g. night-time respiration lost to low turbulence)."""

    tropics_gc_m2_d: float = -1.5  # added to tropical tower NEE; negative = spurious sink


@dataclass(frozen=True)
class UnexplainedConfig:
    """The part of the true NEE that no driver explains (disturbance, lateral fluxes)."""

    amplitude_gc_m2_d: float = 0.3  # 1σ
    length_scale_deg: float = 10.0
    timescale_days: float = 30.0

    def __post_init__(self) -> None:
        _check_range("amplitude_gc_m2_d", self.amplitude_gc_m2_d, 0.0, 10.0)
        _check_range("length_scale_deg", self.length_scale_deg, 0.5, 90.0)
        _check_range("timescale_days", self.timescale_days, 1.0, 3650.0)


@dataclass(frozen=True)
class InversionsConfig:
    """The atmospheric-inversion ensemble of inversions.nc."""

    members: int = 5
    regional_error_pgc_month: float = 0.02  # 1σ of the largest member's regional error
    pixel_noise_gc_m2_d: float = 0.8  # 1σ of region-integral-free pixel noise
    error_timescale_months: float = 3.0  # e-folding time of the AR(1) regional error
    noise_length_scale_deg: float = 6.0
    # Calibrated to published inversion ensembles (docs/twin_world.md, "Inversion errors").
    shared_bias_pgc_yr: float = 0.06  # 1σ per-region bias common to every member
    dipole_pgc_yr: float = 0.3  # 1σ tropics-north trade-off, global total unchanged
    seasonal_amplitude_error: float = 0.1  # 1σ shared relative error of each regional MSC
    member_bias_pgc_yr: float = 0.08  # 1σ constant bias per member and region

    def __post_init__(self) -> None:
        if self.members < 1:
            raise ValueError(f"members={self.members} must be at least 1")
        _check_range("regional_error_pgc_month", self.regional_error_pgc_month, 0.0, 10.0)
        for name in ("shared_bias_pgc_yr", "dipole_pgc_yr", "member_bias_pgc_yr"):
            _check_range(name, getattr(self, name), 0.0, 10.0)
        _check_range("seasonal_amplitude_error", self.seasonal_amplitude_error, 0.0, 1.0)
        _check_range("pixel_noise_gc_m2_d", self.pixel_noise_gc_m2_d, 0.0, 50.0)
        _check_range("error_timescale_months", self.error_timescale_months, 0.1, 120.0)
        _check_range("noise_length_scale_deg", self.noise_length_scale_deg, 0.5, 90.0)


@dataclass(frozen=True)
class ReferenceConfig:
    """The FLUXCOM-like reference NEE: an EC-only upscaling of the biased towers."""

    model_error_gc_m2_d: float = 0.2  # 1σ smooth model error
    iav_damping: float = 0.5  # share of the true interannual anomaly the reference keeps
    apply_tower_bias: bool = True
    spatial_error_gc_m2_d: float = 0.4  # 1σ fixed within-region error pattern (3 grid cells)

    def __post_init__(self) -> None:
        _check_range("model_error_gc_m2_d", self.model_error_gc_m2_d, 0.0, 10.0)
        _check_range("spatial_error_gc_m2_d", self.spatial_error_gc_m2_d, 0.0, 10.0)
        _check_range("iav_damping", self.iav_damping, 0.0, 1.0)


@dataclass(frozen=True)
class ResidualSinkConfig:
    """GCB-like global residual land sink."""

    sigma_pgc_yr: float = 0.9

    def __post_init__(self) -> None:
        _check_range("sigma_pgc_yr", self.sigma_pgc_yr, 0.0, 10.0)


@dataclass(frozen=True)
class ProductsConfig:
    """Product families for the ensemble analysis (products/<name>.nc)."""

    satellite: int = 4
    in_situ: int = 4
    biosphere: int = 4
    prior: bool = True

    def __post_init__(self) -> None:
        for name in ("satellite", "in_situ", "biosphere"):
            _check_range(name, getattr(self, name), 0, 50)


@dataclass(frozen=True)
class DroughtConfig:
    """A growing-season drought: less rain and warmer air in one region and year."""

    year: int
    region: str
    severity: float = 0.5  # share of rain removed at the region's core (0..1)
    months: list[int] = field(default_factory=lambda: [4, 9])  # first, last month (inclusive)

    def __post_init__(self) -> None:
        if self.region not in REGION_ABBRS:
            raise ValueError(
                f"region={self.region!r} is not a RECCAP2 region ({', '.join(REGION_ABBRS)})"
            )
        _check_range("severity", self.severity, 0.0, 1.0)
        if len(self.months) != 2 or not 1 <= self.months[0] <= self.months[1] <= 12:
            raise ValueError(f"months={self.months}: expected [first, last] within 1..12")


@dataclass(frozen=True)
class BiosphereConfig:
    """Global knobs of the true carbon cycle."""

    sink_fraction: float = 0.025  # share of GPP not respired over the run (the land sink)
    lue_scale: float = 1.0  # multiplies every PFT's light-use efficiency

    def __post_init__(self) -> None:
        _check_range("sink_fraction", self.sink_fraction, -0.2, 0.4)
        _check_range("lue_scale", self.lue_scale, 0.1, 5.0)


@dataclass(frozen=True)
class Scenario:
    """A complete twin-world scenario."""

    seed: int
    resolution_deg: float
    years: list[int]
    geography: Literal["real", "synthetic"] = "synthetic"
    msc_base_years: list[int] | None = None  # [first, last]; None = every scenario year
    msc_smoothing_days: int = 15  # circular running mean applied to each MSC
    sites: SitesConfig = field(default_factory=SitesConfig)
    tower_bias: TowerBiasConfig = field(default_factory=TowerBiasConfig)
    unexplained_flux: UnexplainedConfig = field(default_factory=UnexplainedConfig)
    inversions: InversionsConfig = field(default_factory=InversionsConfig)
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)
    residual_sink: ResidualSinkConfig = field(default_factory=ResidualSinkConfig)
    products: ProductsConfig = field(default_factory=ProductsConfig)
    biosphere: BiosphereConfig = field(default_factory=BiosphereConfig)
    drought: DroughtConfig | None = None

    def __post_init__(self) -> None:
        if len(self.years) != 2 or self.years[0] > self.years[1]:
            raise ValueError(f"years={self.years}: expected [first, last] with first <= last")
        _check_range("years[0]", self.years[0], 1900, 2100)
        if self.seed < 0:  # numpy's generators take no negative seed
            raise ValueError(f"seed={self.seed} must be >= 0")
        if not self.resolution_deg > 0:
            raise ValueError(f"resolution_deg={self.resolution_deg} must be > 0")
        Grid.global_regular(self.resolution_deg)  # raises when it does not tile the globe
        if self.msc_base_years is not None:
            lo, hi = self.msc_base_years if len(self.msc_base_years) == 2 else (0, -1)
            if not self.years[0] <= lo <= hi <= self.years[1]:
                raise ValueError(
                    f"msc_base_years={self.msc_base_years}: expected [first, last] within "
                    f"years {self.years}"
                )
        _check_range("msc_smoothing_days", self.msc_smoothing_days, 1, 91)
        if self.drought is not None and not self.years[0] <= self.drought.year <= self.years[1]:
            raise ValueError(f"drought.year={self.drought.year} is outside years {self.years}")

    @property
    def grid(self) -> Grid:
        return Grid.global_regular(self.resolution_deg)

    @property
    def base_years(self) -> tuple[int, int]:
        """First and last year of the MSC base period."""
        span = self.msc_base_years or self.years
        return int(span[0]), int(span[1])

    def to_yaml(self) -> str:
        """The resolved scenario (every default filled in) as YAML text."""
        return yaml.safe_dump(to_mapping(self), sort_keys=False)

    def sha256(self) -> str:
        """Checksum of :meth:`to_yaml`: identical for identical resolved scenarios."""
        return hashlib.sha256(self.to_yaml().encode()).hexdigest()


def scenario_from_mapping(data: object, where: str) -> Scenario:
    """Validate a mapping into a :class:`Scenario` (errors name ``where`` and the key)."""
    return from_mapping(Scenario, data, where)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario YAML file."""
    return scenario_from_mapping(load_yaml(path), str(path))
