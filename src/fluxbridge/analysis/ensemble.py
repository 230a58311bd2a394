"""The harmonised ensemble every analysis step reads.

All products on one grid (cropped to the domain's bounding box), over whole
calendar years, in one convention: monthly-mean NEE in gC m-2 d-1, positive =
source. The report turns NEE into NBP (= −NEE, positive = sink) when it states
numbers; nothing else changes sign.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from fluxbridge.data.canonical import ANNUAL_FLUX_UNITS, carbon_long_name
from fluxbridge.geo.grid import Grid
from fluxbridge.geo.integrate import regional_integral_pgc


@dataclass
class Ensemble:
    """Harmonised products, the domain and its sub-regions on the common grid.

    Attributes
    ----------
    nee : (product, time, lat, lon) gC m-2 d-1, positive = source; coordinate
        ``product_group`` (product). NaN where a product has no value.
    cell_area : (lat, lon) exact cell areas, m².
    land_fraction : (lat, lon) 0..1.
    region_fraction : (region, lat, lon) fraction of each cell's land in each
        region; the first region is the whole domain; coordinate ``partition``
        (region) names the split a region belongs to ("domain", "climate zones", ...).
    grid : the common (cropped) grid.
    years : the analysed calendar years.
    notes : statements for the report (e.g. the period overlap used).
    """

    nee: xr.DataArray
    cell_area: xr.DataArray
    land_fraction: xr.DataArray
    region_fraction: xr.DataArray
    grid: Grid
    years: list[int]
    domain: str
    notes: list[str] = field(default_factory=list)

    @property
    def products(self) -> list[str]:
        return [str(p) for p in self.nee["product"].values]

    @property
    def groups(self) -> list[str]:
        """Groups present, in first-appearance order."""
        return list(dict.fromkeys(str(g) for g in self.nee["product_group"].values))

    def partition_regions(self, partition: str) -> list[str]:
        part = self.region_fraction["partition"].values
        return [
            str(r)
            for r, p in zip(self.region_fraction["region"].values, part, strict=True)
            if p == partition
        ]

    @property
    def partitions(self) -> list[str]:
        return [
            p
            for p in dict.fromkeys(map(str, self.region_fraction["partition"].values))
            if p != "domain"
        ]

    @property
    def domain_mask(self) -> xr.DataArray:
        """True where the cell has land in the domain."""
        return (self.region_fraction.isel(region=0, drop=True) * self.land_fraction) > 0

    def regional_nee(self) -> xr.DataArray:
        """(product, region, time) regional NEE integrals, PgC month-1, positive = source.

        Cells where a product has no value contribute nothing (see :meth:`coverage`).
        """
        out = regional_integral_pgc(
            self.nee,
            self.cell_area,
            self.land_fraction,
            self.region_fraction.drop_vars("partition"),
            per="month",
            skipna=True,
        )
        return out.assign_coords(partition=("region", self.region_fraction["partition"].values))

    def coverage(self) -> xr.DataArray:
        """(product,) fraction of the domain's land area where the product has values."""
        w = self.cell_area * self.land_fraction * self.region_fraction.isel(region=0, drop=True)
        valid = self.nee.notnull().all("time")
        share = (valid * w).sum(("lat", "lon")) / w.sum()
        # A ratio of areas: the cell_area attributes that xarray carried along do not apply.
        share.attrs = {"units": "1"}
        return share


def monthly_to_annual_nbp_map(nee: xr.DataArray) -> xr.DataArray:
    """(…, time, lat, lon) NEE gC m-2 d-1 → (…, year, lat, lon) NBP gC m-2 yr-1 (sink > 0)."""
    days = nee["time"].dt.days_in_month.astype(np.float64)
    annual = -(nee * days).groupby("time.year").sum("time", skipna=False)
    annual.attrs = {
        "units": ANNUAL_FLUX_UNITS,
        "long_name": carbon_long_name("NBP (positive = sink)"),
    }
    return annual
