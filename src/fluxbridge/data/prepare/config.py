"""The prepare config (``configs/prepare/*.yaml``): which manifest entries feed which file.

A config names inputs by their manifest entry ``name`` and product mappings by
file name (``<mappings_dir>/<mapping>.yaml``), never by machine path; the data
directory is given on the command line (``invoke prepare --data-dir``).
Relative ``manifest``, ``mappings_dir`` and ``sites.folds_csv`` paths are
resolved against the config file's folder, then (for ``manifest``) the current
working directory (the repository root when run through ``invoke``). A leading
``{data_dir}`` in ``manifest`` or ``sites.folds_csv`` stands for the data directory
given on the command line (a data directory that carries its own manifest, e.g. the
twin world written as raw products: ``configs/prepare/twin_raw.yaml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fluxbridge.config import from_mapping, load_yaml
from fluxbridge.data.canonical import RECCAP2_REGIONS
from fluxbridge.data.public.water import BucketParameters
from fluxbridge.errors import ConfigError
from fluxbridge.geo.grid import Grid

GLOBAL_KEY = "GLOBAL"
DATA_DIR_KEY = "{data_dir}"


@dataclass(frozen=True)
class ProductRef:
    """A manifest entry read through a product mapping."""

    entry: str
    mapping: str


@dataclass(frozen=True)
class ModisEntries:
    """The MODIS products of the public drivers, by manifest entry name.

    ``landcover`` (optional, e.g. ``modis-mcd12c1``): MCD12C1 IGBP class percentages;
    the MODIS drivers are then built per PFT and recombined with the MCD12C1 PFT
    fractions, which grid.nc takes with the land fraction (docs/modis.md "Per-PFT
    drivers"); ``landcover_year``: the MCD12C1 year used for every year (default: the
    last MSC year). Absent: one pseudo-PFT ``all``, cell means over all land cover.
    """

    nbar: str = "modis-mcd43c4"
    lst: str = "modis-mod11c2"
    fpar: str = "modis-mcd15a2h"
    landcover: str | None = None
    landcover_year: int | None = None


@dataclass(frozen=True)
class DriversConfig:
    """Where the 10 Table A2 drivers come from.

    ``source: fluxcom`` (default) reads the FLUXCOM RS+METEO driver set (``entry``,
    ``mapping``). ``source: public`` builds them from ERA5 (``era5``: entry and an
    ``Era5Mapping``) and MODIS (``modis``), with mean seasonal cycles over
    ``msc_years`` (Table A2: 2001–2012; must lie within ``years``), optionally
    smoothed over ``msc_window_days``, and the WAI bucket ``wai``
    (:class:`fluxbridge.data.public.water.BucketParameters`).
    """

    source: Literal["fluxcom", "public"] = "fluxcom"
    entry: str | None = None
    mapping: str | None = None
    era5: ProductRef | None = None
    modis: ModisEntries | None = None
    msc_years: list[int] = field(default_factory=lambda: [2001, 2012])
    msc_window_days: int = 1
    wai: BucketParameters = field(default_factory=BucketParameters)

    def __post_init__(self) -> None:
        if self.source == "fluxcom" and (self.entry is None or self.mapping is None):
            raise ValueError("drivers: source fluxcom needs entry and mapping")
        if self.source == "public" and (self.era5 is None or self.modis is None):
            raise ValueError("drivers: source public needs era5 {entry, mapping} and modis")
        if len(self.msc_years) != 2 or self.msc_years[0] > self.msc_years[1]:
            raise ValueError(f"drivers.msc_years must be [first, last], got {self.msc_years}")
        if self.msc_window_days < 1:
            raise ValueError(f"drivers.msc_window_days must be >= 1, got {self.msc_window_days}")

    def entries(self) -> dict[str, str]:
        """Manifest entry name → role."""
        if self.source == "fluxcom":
            return {str(self.entry): "drivers"}
        assert self.era5 is not None and self.modis is not None
        used = {
            self.era5.entry: "era5",
            self.modis.nbar: "modis_nbar",
            self.modis.lst: "modis_lst",
            self.modis.fpar: "modis_fpar",
        }
        if self.modis.landcover is not None:
            used[self.modis.landcover] = "modis_landcover"
        return used


@dataclass(frozen=True)
class SitesConfig:
    """FLUXNET towers: where the CSV files are, how folds are made.

    ``folds_csv`` (optional) is a published fold list with columns SITE_ID, fold;
    without it sites are split into ``n_folds`` grouped folds drawn with ``seed``.
    ``tower_tair``: Tair at the tower from its TA_F where present. ``tower_wai`` (public
    drivers only): WAI2 and AMP_MSC_WAI at the tower from a bucket fed by its own P_F,
    SW_IN_F and TA_F, gaps filled from ERA5 at the tower's cell. ``modis_subsets``
    (public drivers only, optional): a manifest entry holding ORNL DAAC MODIS site
    subsets (:mod:`fluxbridge.data.public.modis_sites`); towers with subsets take their
    MODIS drivers from them instead of their cell.
    """

    entry: str
    site_info: str = "site_info.csv"
    folds_csv: str | None = None
    n_folds: int = 10
    seed: int = 0
    nee_variable: Literal["NEE_VUT_REF", "NEE_CUT_REF"] = "NEE_VUT_REF"
    tower_tair: bool = True
    tower_wai: bool = True
    modis_subsets: str | None = None

    def __post_init__(self) -> None:
        if self.n_folds < 2:
            raise ValueError(f"sites.n_folds must be >= 2, got {self.n_folds}")


@dataclass(frozen=True)
class InversionsConfig:
    """Inversion ensemble: ``members`` maps the canonical member name to its name in the product."""

    entry: str
    mapping: str
    members: dict[str, str]

    def __post_init__(self) -> None:
        if not self.members:
            raise ValueError("inversions.members must name at least one member")


@dataclass(frozen=True)
class FireConfig:
    """Fire emissions subtracted from every inversion member.

    ``fill``: what to do for months the fire product does not cover (GFAS starts
    in 2003): ``error`` or ``climatology`` (that calendar month's mean over the
    covered years, logged).
    """

    entry: str
    mapping: str
    fill: Literal["error", "climatology"] = "error"


@dataclass(frozen=True)
class LateralFluxes:
    """Per-region annual lateral fluxes added to inversion NEE, spread over the region's land.

    ``pgc_per_year`` maps a region abbreviation (or ``GLOBAL`` = all land) to
    PgC yr-1 **added to NEE** (+ = the inversion is made more of a source).
    """

    source: str
    verified: bool
    pgc_per_year: dict[str, float]

    def __post_init__(self) -> None:
        known = {abbr for _, abbr, _ in RECCAP2_REGIONS} | {GLOBAL_KEY}
        unknown = sorted(set(self.pgc_per_year) - known)
        if unknown:
            raise ValueError(f"lateral_fluxes.pgc_per_year: unknown region(s) {unknown}")


@dataclass(frozen=True)
class RegionsConfig:
    """RECCAP2 mask: the official file when the entry is present, else built from countries."""

    entry: str | None = None
    mapping: str | None = None

    def __post_init__(self) -> None:
        if (self.entry is None) != (self.mapping is None):
            raise ValueError("regions: give both entry and mapping, or neither")


@dataclass(frozen=True)
class PrepareConfig:
    """One real-data setup: years, resolution and the inputs of every canonical file."""

    name: str
    description: str
    years: list[int]
    resolution_deg: float
    sites: SitesConfig
    drivers: DriversConfig
    reference: ProductRef
    inversions: InversionsConfig
    residual_sink: ProductRef
    fire: FireConfig | None = None
    lateral_fluxes: LateralFluxes | None = None
    regions: RegionsConfig = field(default_factory=RegionsConfig)
    top_down_years: list[int] | None = None
    manifest: str = "data_manifest.yaml"
    mappings_dir: str = "mappings"

    def __post_init__(self) -> None:
        for key in ("years", "top_down_years"):
            span = getattr(self, key)
            if span is not None and (len(span) != 2 or span[0] > span[1]):
                raise ValueError(f"{key} must be [first, last], got {span}")
        if self.top_down_years is not None and not (
            self.years[0] <= self.top_down_years[0] and self.top_down_years[1] <= self.years[1]
        ):
            raise ValueError(f"top_down_years {self.top_down_years} must lie within {self.years}")
        msc = self.drivers.msc_years
        if self.drivers.source == "public" and not (
            self.years[0] <= msc[0] and msc[1] <= self.years[1]
        ):
            raise ValueError(f"drivers.msc_years {msc} must lie within years {self.years}")
        if self.sites.modis_subsets is not None and self.drivers.source != "public":
            raise ValueError(
                f"sites.modis_subsets {self.sites.modis_subsets!r} needs drivers.source public "
                f"(got {self.drivers.source!r}): the subsets replace the public MODIS drivers"
            )
        try:
            Grid.global_regular(self.resolution_deg)
        except ValueError as exc:
            raise ValueError(f"resolution_deg: {exc}") from exc

    @property
    def grid(self) -> Grid:
        return Grid.global_regular(self.resolution_deg)

    @property
    def year_range(self) -> range:
        """Years of drivers.nc and sites.nc."""
        return range(self.years[0], self.years[1] + 1)

    @property
    def top_down_range(self) -> range:
        """Years of inversions.nc, reference.nc and residual_sink.nc (default: ``years``)."""
        span = self.top_down_years or self.years
        return range(span[0], span[1] + 1)

    def entries(self) -> dict[str, str]:
        """Manifest entry name → what it is used for (required inputs only)."""
        used = {
            self.sites.entry: "sites",
            **self.drivers.entries(),
            self.reference.entry: "reference",
            self.inversions.entry: "inversions",
            self.residual_sink.entry: "residual_sink",
        }
        if self.fire is not None:
            used[self.fire.entry] = "fire"
        if self.sites.modis_subsets is not None:
            used[self.sites.modis_subsets] = "modis_subsets"
        return used


@dataclass(frozen=True)
class LoadedConfig:
    """A validated config with its resolved paths."""

    path: Path
    config: PrepareConfig
    manifest: Path
    mappings_dir: Path
    data_dir: Path | None = None

    def mapping_path(self, name: str) -> Path:
        path = self.mappings_dir / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError(f"{self.path}: mapping {name!r} not found (expected {path})")
        return path

    def resolve(self, relative: str) -> Path:
        path = _in_data_dir(relative, self.data_dir, self.path)
        return path if path.is_absolute() else self.path.parent / path


def _in_data_dir(value: str, data_dir: Path | None, config: Path) -> Path:
    """``value`` with a leading ``{data_dir}`` replaced by the data directory."""
    if not value.startswith(DATA_DIR_KEY):
        return Path(value)
    if data_dir is None:
        raise ConfigError(
            f"{config}: {value!r} names {DATA_DIR_KEY} but no data directory is given"
        )
    return Path(data_dir) / value[len(DATA_DIR_KEY) :].lstrip("/")


def load_prepare_config(path: Path, data_dir: Path | None = None) -> LoadedConfig:
    """Read and validate a prepare config (unknown keys, types, years, resolution).

    ``data_dir`` replaces a leading ``{data_dir}`` in ``manifest`` and ``sites.folds_csv``.
    """
    path = Path(path)
    cfg = from_mapping(PrepareConfig, load_yaml(path), str(path))
    manifest = _in_data_dir(cfg.manifest, data_dir, path)
    if not manifest.is_absolute():
        beside = path.parent / manifest
        manifest = beside if beside.exists() else Path.cwd() / manifest
    mappings = Path(cfg.mappings_dir)
    mappings = mappings if mappings.is_absolute() else path.parent / mappings
    return LoadedConfig(path, cfg, manifest, mappings, data_dir)
