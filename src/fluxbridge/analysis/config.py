"""The analysis configuration (``invoke analyze --config FILE``), validated at the edge.

Every key is documented in docs/ensemble_analysis.md. Relative paths are resolved
against ``base_dir`` (default: the directory of the config file; ``base_dir: cwd``
means the current working directory), so a config can travel with its data.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fluxbridge.config import from_mapping, load_yaml
from fluxbridge.errors import ConfigError

Group = Literal["satellite-inversion", "in-situ-inversion", "biosphere-model", "prior"]
GROUPS: tuple[str, ...] = ("satellite-inversion", "in-situ-inversion", "biosphere-model", "prior")
Sign = Literal["source_positive", "sink_positive"]

MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class ProductConfig:
    """One flux product: a file (or a data-manifest entry), its variable, units and sign.

    ``units`` overrides the file's ``units`` attribute (any carbon flux that
    :mod:`fluxbridge.data.units` parses); ``sign`` says how the file counts
    (``sink_positive`` for NBP-like products, flipped once on reading).
    """

    name: str
    group: Group
    file: str | None = None
    manifest_entry: str | None = None
    variable: str = "nee"
    units: str | None = None
    sign: Sign = "source_positive"

    def __post_init__(self) -> None:
        if (self.file is None) == (self.manifest_entry is None):
            raise ValueError(
                f"product {self.name!r}: give exactly one of 'file' or 'manifest_entry'"
            )


@dataclass(frozen=True)
class ProductDirConfig:
    """Every ``*.nc`` in ``directory``; the group is read from each file's ``group`` attribute."""

    directory: str
    variable: str = "nee"
    pattern: str = "*.nc"


@dataclass(frozen=True)
class PeriodConfig:
    """Whole calendar years ``start``..``end`` (inclusive).

    ``policy: require`` fails when a product does not cover every month;
    ``policy: overlap`` analyses the whole years every product covers and states it.
    """

    start: int
    end: int
    policy: Literal["require", "overlap"] = "require"

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period: end {self.end} is before start {self.start}")


@dataclass(frozen=True)
class GridConfig:
    """The common analysis grid: cell size in degrees, or the grid of ``file``.

    ``file`` may also provide ``land_fraction`` (0..1); without it every cell counts
    fully (flux per unit cell area).
    """

    resolution: list[float] | None = None
    file: str | None = None
    land_fraction_variable: str = "land_fraction"

    def __post_init__(self) -> None:
        if (self.resolution is None) == (self.file is None):
            raise ValueError("grid: give exactly one of 'resolution' or 'file'")
        if self.resolution is not None and len(self.resolution) != 2:
            raise ValueError(f"grid.resolution: expected [dlat, dlon], got {self.resolution}")


@dataclass(frozen=True)
class DomainConfig:
    """The analysis domain: a RECCAP2 region, a country (ISO3) or a region of a mask file.

    ``mask_file`` is a NetCDF file with ``region_fraction(region, lat, lon)`` and
    ``region_abbr`` (as the canonical grid.nc), or a single ``variable`` (lat, lon)
    of fractions in 0..1; ``region`` picks the region by abbreviation.
    """

    reccap2: str | None = None
    country: str | None = None
    mask_file: str | None = None
    region: str | None = None
    variable: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        given = [k for k in ("reccap2", "country", "mask_file") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"domain: give exactly one of 'reccap2', 'country', 'mask_file' (got {given})"
            )

    @property
    def label(self) -> str:
        return self.name or self.reccap2 or self.country or self.region or "domain"


@dataclass(frozen=True)
class PartitionConfig:
    """A split of the domain into sub-regions.

    ``kind: classes``: ``variable`` (lat, lon) holds integer classes; names come from
    ``names`` or the variable's ``flag_values``/``flag_meanings``.
    ``kind: majority``: ``variable`` (``dim``, lat, lon) holds class fractions; each cell
    goes to the class (after ``aggregate``) with the largest fraction.
    ``merges`` joins classes into one sub-region (``Trop-SMC: [TropMC, SMC]``);
    ``keep`` lists the sub-regions reported (default: all present in the domain).
    """

    name: str
    file: str
    variable: str
    kind: Literal["classes", "majority"] = "classes"
    dim: str = "pft"
    names: dict[int, str] | None = None
    aggregate: dict[str, list[str]] | None = None
    merges: dict[str, list[str]] = field(default_factory=dict)
    keep: list[str] | None = None


@dataclass(frozen=True)
class EventWindow:
    """A period marked on the anomaly figures, months as ``YYYY-MM`` (inclusive)."""

    label: str
    start: str
    end: str


@dataclass(frozen=True)
class AnomalyConfig:
    """Monthly anomalies and the event (drought) analysis."""

    event_year: int | None = None
    event_months: list[int] = field(default_factory=lambda: [6, 7, 8, 9, 10, 11])
    event_group: Group = "satellite-inversion"
    windows: list[EventWindow] = field(default_factory=list)

    def __post_init__(self) -> None:
        bad = [m for m in self.event_months if not 1 <= m <= 12]
        if bad or not self.event_months:
            raise ValueError(f"anomalies.event_months: expected months 1..12, got {bad or '[]'}")


@dataclass(frozen=True)
class AncillaryConfig:
    """Gridded monthly soil moisture, SIF and LAI (any grid; regridded conservatively)."""

    file: str
    soil_moisture: str | None = "soil_moisture"
    sif: str | None = "sif"
    lai: str | None = "lai"


@dataclass(frozen=True)
class AircraftConfig:
    """Posterior CO2 against aircraft profiles (CSV format in docs/ensemble_analysis.md)."""

    file: str
    bands_m: list[list[float]] = field(default_factory=lambda: [[2000.0, 8000.0], [8000.0, 1e9]])
    box_deg: list[float] = field(default_factory=lambda: [5.0, 5.0])
    lat_range: list[float] = field(default_factory=lambda: [15.0, 55.0])
    lon_range: list[float] = field(default_factory=lambda: [108.0, 155.0])
    hist_edges_ppm: list[float] = field(default_factory=lambda: [-4.0 + 0.5 * i for i in range(17)])

    def __post_init__(self) -> None:
        for band in self.bands_m:
            if len(band) != 2 or band[1] <= band[0]:
                raise ValueError(f"aircraft.bands_m: each band is [bottom, top], got {band}")


@dataclass(frozen=True)
class AnalysisConfig:
    """The whole ``invoke analyze`` configuration."""

    period: PeriodConfig
    domain: DomainConfig
    grid: GridConfig
    output: str
    products: list[ProductConfig] = field(default_factory=list)
    product_dirs: list[ProductDirConfig] = field(default_factory=list)
    partitions: list[PartitionConfig] = field(default_factory=list)
    peak_months: list[int] = field(default_factory=lambda: [7, 8])
    anomalies: AnomalyConfig = field(default_factory=AnomalyConfig)
    ancillary: AncillaryConfig | None = None
    aircraft: AircraftConfig | None = None
    manifest: str = "data_manifest.yaml"
    data_dir: str = "data/raw"
    base_dir: str | None = None
    overwrite: bool = True
    title: str | None = None

    def __post_init__(self) -> None:
        if not self.products and not self.product_dirs:
            raise ValueError("give at least one of 'products' or 'product_dirs'")
        bad = [m for m in self.peak_months if not 1 <= m <= 12]
        if bad or not self.peak_months:
            raise ValueError(f"peak_months: expected months 1..12, got {bad or '[]'}")


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config with the directory its relative paths are resolved against."""

    cfg: AnalysisConfig
    path: Path
    base: Path

    def resolve(self, p: str) -> Path:
        """``p`` as an absolute path (relative paths against the base directory)."""
        q = Path(p).expanduser()
        return q if q.is_absolute() else (self.base / q)


def load_config(path: Path) -> LoadedConfig:
    """Read and validate an analysis config; ConfigError names file and dotted key."""
    path = Path(path)
    cfg = from_mapping(AnalysisConfig, load_yaml(path), str(path))
    # Lexically, without following symlinks: the checkout's configs/ links into the
    # package, and `../..` must mean the checkout's root as the path was written.
    here = Path(os.path.abspath(path)).parent
    if cfg.base_dir is None:
        base = here
    elif cfg.base_dir == "cwd":
        base = Path.cwd()
    else:
        base = Path(os.path.normpath(here / cfg.base_dir))
    names = [p.name for p in cfg.products]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{path}: products: duplicate name(s) {dupes}")
    return LoadedConfig(cfg=cfg, path=path, base=base)
