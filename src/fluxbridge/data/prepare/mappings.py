"""Product mappings (``configs/prepare/mappings/*.yaml``): how one provider's files are read.

A new product or release is a new mapping file, not new code. Every mapping
records where its facts come from (``source``) and which of them could not be
checked against the provider's documentation (``unverified``), so that
docs/real_data.md and the files agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

from fluxbridge.config import from_mapping, load_yaml
from fluxbridge.data.canonical import DRIVER_NAMES
from fluxbridge.data.gridded import ProductMapping
from fluxbridge.data.public.era5 import Era5Product

T = TypeVar("T")


@dataclass(frozen=True)
class GriddedProduct:
    """A monthly (or daily) gridded carbon-flux product.

    ``files`` is a glob relative to the manifest entry's target (``""`` when the
    target is the file itself); ``{member}`` in it is replaced by the member's
    product name (one file per member). ``member_dim`` instead selects members
    inside one file, by the names in ``member_names_variable`` (else by index
    labels of ``member_dim``). ``spread_over``: ``land`` when the flux is per m²
    of land (NaN over ocean), ``cell`` when a land flux is per m² of the whole
    grid cell (coastal cells diluted): it is then divided by the canonical land
    fraction after regridding, which conserves the regional integral.
    ``time_step``: ``daily`` products (GFAS) are averaged to months in blocks.
    """

    product: str
    source: str
    read: ProductMapping
    files: str = ""
    member_dim: str | None = None
    member_names_variable: str | None = None
    spread_over: Literal["land", "cell"] = "land"
    time_step: Literal["monthly", "daily"] = "monthly"
    unverified: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DriverVariable:
    """One Table A2 driver in the driver files: ``canonical = value × scale + offset``.

    ``units`` must equal the file's ``units`` attribute, so a release that changes
    units fails loudly instead of silently.
    """

    variable: str
    units: str
    scale: float = 1.0
    offset: float = 0.0


@dataclass(frozen=True)
class DriverSet:
    """The FLUXCOM driver set layout (see docs/real_data.md, "Drivers")."""

    product: str
    source: str
    files: str
    static_file: str
    land_fraction_variable: str
    pft_fraction_variable: str
    variables: dict[str, DriverVariable]
    pft_dim: str = "pft"
    land_fraction_scale: float = 1.0
    time_name: str = "time"
    lat_name: str = "lat"
    lon_name: str = "lon"
    unverified: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if set(self.variables) != set(DRIVER_NAMES):
            missing = sorted(set(DRIVER_NAMES) - set(self.variables))
            extra = sorted(set(self.variables) - set(DRIVER_NAMES))
            raise ValueError(
                f"variables must be the 10 Table A2 drivers: missing {missing}, unknown {extra}"
            )
        if "{year}" not in self.files:
            raise ValueError(f"files {self.files!r} must contain '{{year}}'")


@dataclass(frozen=True)
class LandSeaMask:
    """The land fraction of the public drivers: a land-sea mask file under the ERA5 entry.

    ``files`` is a glob under the entry's target (one file); ``variable`` a 0..1
    land fraction (ERA5 ``lsm``), regridded conservatively to the canonical grid.
    Canonical cells with less land than ``min_land_fraction`` are ocean (0).
    """

    files: str
    variable: str = "lsm"
    min_land_fraction: float = 0.05

    def __post_init__(self) -> None:
        if not 0 <= self.min_land_fraction < 1:
            raise ValueError(f"min_land_fraction must be in [0, 1), got {self.min_land_fraction}")


@dataclass(frozen=True)
class Era5Mapping:
    """ERA5 single levels as downloaded from the CDS (docs/real_data.md, "Drivers from public
    products"): ``files`` is a glob under the entry's target with ``{year}`` (every file of
    that year: one per year, month or variable); ``read`` names the product layout and
    variables (:class:`fluxbridge.data.public.era5.Era5Product`)."""

    product: str
    source: str
    files: str
    land_sea_mask: LandSeaMask
    read: Era5Product = field(default_factory=Era5Product)
    unverified: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if "{year}" not in self.files:
            raise ValueError(f"files {self.files!r} must contain '{{year}}'")


@dataclass(frozen=True)
class BudgetTerm:
    """One column of the budget table: ``sign`` in the residual sink, 1σ absolute or relative."""

    column: str
    sign: float
    sigma: float
    sigma_relative: bool = False


@dataclass(frozen=True)
class BudgetTable:
    """The global carbon budget table: residual land sink = Σ sign × column (PgC yr-1, + = sink)."""

    product: str
    source: str
    sheet: str
    header_row: int
    year_column: str
    terms: dict[str, BudgetTerm]
    unverified: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RegionMask:
    """A gridded region mask file: ``ids`` maps the file's integer id to a RECCAP2 abbreviation."""

    product: str
    source: str
    variable: str | None = None
    ids: dict[int, str] | None = None
    unverified: list[str] = field(default_factory=list)


def load_mapping(kind: type[T], path: Path) -> T:
    """Read mapping ``path`` as ``kind``; errors name the file and the dotted key."""
    return from_mapping(kind, load_yaml(path), str(path))
