"""Read every product once into the harmonised :class:`Ensemble`.

Order of work: the common grid and land fraction; the domain and its bounding
box (the grid is cropped to it, so memory scales with the domain, not the
globe); the sub-region partitions; then each product — read lazily, converted
to gC m-2 d-1 source-positive by :func:`fluxbridge.data.gridded.read_gridded`,
cut to the analysed years and regridded conservatively onto the cropped grid
``CHUNK_MONTHS`` months at a time (bounded memory for any source resolution).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge import logs
from fluxbridge.analysis.config import GROUPS, LoadedConfig, PartitionConfig
from fluxbridge.analysis.ensemble import Ensemble
from fluxbridge.data.canonical import NEE_UNITS, carbon_long_name
from fluxbridge.data.gridded import ProductMapping, open_product, read_gridded
from fluxbridge.data.manifest import load_manifest
from fluxbridge.errors import ConfigError, SchemaError
from fluxbridge.geo.grid import Grid, normalise_lon
from fluxbridge.geo.regions import (
    country_mask,
    reccap2,
    regions_from_file,
    subregions_from_classes,
)
from fluxbridge.geo.regrid import regrid_conservative
from fluxbridge.io import open_netcdf

log = logging.getLogger(__name__)

CHUNK_MONTHS = 24


@dataclass(frozen=True)
class ProductSource:
    """A product to read: where, how, and its group."""

    name: str
    group: str
    path: Path
    mapping: ProductMapping


def product_sources(lc: LoadedConfig) -> list[ProductSource]:
    """Explicit products, then every file of each ``product_dirs`` entry (sorted by name)."""
    cfg = lc.cfg
    out: list[ProductSource] = []
    manifest = None
    for p in cfg.products:
        if p.file is not None:
            path = lc.resolve(p.file)
        else:
            manifest = manifest or load_manifest(lc.resolve(cfg.manifest))
            (entry,) = manifest.select([p.manifest_entry])
            path = entry.target_path(lc.resolve(cfg.data_dir))
        mapping = ProductMapping(variable=p.variable, units=p.units, sign=p.sign)
        out.append(ProductSource(p.name, p.group, path, mapping))
    for d in cfg.product_dirs:
        directory = lc.resolve(d.directory)
        files = sorted(directory.glob(d.pattern))
        if not files:
            raise ConfigError(f"{lc.path}: product_dirs: no {d.pattern!r} file in {directory}")
        for f in files:
            with open_product(f) as ds:
                group = ds.attrs.get("group")
            if group not in GROUPS:
                raise SchemaError(
                    f, None, f"global attribute 'group' is {group!r}; expected {GROUPS}"
                )
            out.append(ProductSource(f.stem, str(group), f, ProductMapping(variable=d.variable)))
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"{lc.path}: product name(s) {dupes} used more than once")
    return out


def common_grid(lc: LoadedConfig) -> tuple[Grid, xr.DataArray]:
    """The global analysis grid and its land fraction (1 everywhere without a grid file)."""
    g = lc.cfg.grid
    if g.resolution is not None:
        grid = Grid.global_regular(*g.resolution)
        land = xr.DataArray(np.ones(grid.shape), dims=("lat", "lon"), coords=grid.coords())
        return grid, land
    path = lc.resolve(g.file)
    with open_netcdf(path) as ds:
        if "lon" in ds.coords:
            ds = ds.assign_coords(lon=normalise_lon(ds["lon"].values)).sortby(["lat", "lon"])
        grid = Grid.from_dataset(ds, path)
        if g.land_fraction_variable in ds:
            land = ds[g.land_fraction_variable].load().fillna(0.0)
            if land.dims != ("lat", "lon"):
                raise SchemaError(
                    path, g.land_fraction_variable, f"dims {land.dims}, expected (lat, lon)"
                )
        else:
            land = xr.DataArray(np.ones(grid.shape), dims=("lat", "lon"))
    land = land.assign_coords(grid.coords())
    land.attrs = {"units": "1", "long_name": "land fraction"}
    return grid, land


def domain_fraction(lc: LoadedConfig, grid: Grid, land: xr.DataArray) -> xr.DataArray:
    """(lat, lon) fraction of each cell's land in the domain."""
    d = lc.cfg.domain
    if d.reccap2 is not None:
        regions = reccap2(grid, land)
        if d.reccap2 not in regions.abbrs:
            raise ConfigError(f"{lc.path}: domain.reccap2: {d.reccap2!r} not in {regions.abbrs}")
        frac = regions.fraction.sel(region=d.reccap2, drop=True)
    elif d.country is not None:
        try:
            area = country_mask(grid, d.country)
        except ValueError as exc:
            raise ConfigError(f"{lc.path}: domain.country: {exc}") from exc
        # Polygon share of the cell area → share of the cell's land (coasts).
        frac = (area / land.where(land > 0)).clip(0.0, 1.0).fillna(0.0)
    else:
        path = lc.resolve(d.mask_file)
        regions = regions_from_file(path, grid, variable=d.variable)
        if d.region is None and len(regions.abbrs) > 1:
            raise ConfigError(
                f"{lc.path}: domain.region: {path} holds regions {regions.abbrs}; name one"
            )
        pick = d.region or regions.abbrs[0]
        if pick not in regions.abbrs:
            raise ConfigError(
                f"{lc.path}: domain.region: {pick!r} not in {path} (regions {regions.abbrs})"
            )
        frac = regions.fraction.isel(region=regions.abbrs.index(pick), drop=True)
    frac = frac.where(land > 0, 0.0)
    if float((frac * land).sum()) <= 0:
        raise ConfigError(
            f"{lc.path}: domain {d.label!r} has no land on the analysis grid "
            "(the mask does not overlap the grid's land)"
        )
    return frac.drop_vars([c for c in frac.coords if c not in ("lat", "lon")])


def crop_to(grid: Grid, mask: xr.DataArray) -> tuple[Grid, dict[str, slice]]:
    """The smallest sub-grid holding every cell where ``mask`` > 0, and its index slices."""
    rows = np.flatnonzero((mask > 0).any("lon").values)
    cols = np.flatnonzero((mask > 0).any("lat").values)
    # Keep at least two cells per axis: a grid needs two centres to know its edges.
    i0, i1 = rows[0], max(rows[-1] + 1, rows[0] + 2)
    j0, j1 = cols[0], max(cols[-1] + 1, cols[0] + 2)
    if i1 > grid.shape[0]:
        i0, i1 = grid.shape[0] - 2, grid.shape[0]
    if j1 > grid.shape[1]:
        j0, j1 = grid.shape[1] - 2, grid.shape[1]
    sub = Grid(grid.lat_bounds[i0 : i1 + 1], grid.lon_bounds[j0 : j1 + 1])
    return sub, {"lat": slice(i0, i1), "lon": slice(j0, j1)}


def _class_names(da: xr.DataArray, part: PartitionConfig, path: Path) -> dict[int, str]:
    if part.names:
        return dict(part.names)
    if "flag_values" in da.attrs and "flag_meanings" in da.attrs:
        values = np.atleast_1d(np.asarray(da.attrs["flag_values"])).astype(int)
        meanings = str(da.attrs["flag_meanings"]).split()
        if len(meanings) == values.size:
            return dict(zip(values.tolist(), meanings, strict=True))
    raise SchemaError(
        path, part.variable, "no flag_values/flag_meanings: give the class names in 'names'"
    )


def _majority_classes(
    da: xr.DataArray, part: PartitionConfig, path: Path
) -> tuple[xr.DataArray, dict[int, str]]:
    """Class map of the largest (aggregated) fraction along ``part.dim``; NaN where all are 0."""
    if part.dim not in da.dims:
        raise SchemaError(path, part.variable, f"dims {da.dims} lack the class dim {part.dim!r}")
    labels = [str(v) for v in da[part.dim].values] if part.dim in da.coords else None
    if labels is None and "flag_meanings" in da.attrs:
        labels = str(da.attrs["flag_meanings"]).split()
    if labels is None or len(labels) != da.sizes[part.dim]:
        raise SchemaError(path, part.variable, f"cannot name the classes along {part.dim!r}")
    da = da.assign_coords({part.dim: labels})
    groups = part.aggregate or {lab: [lab] for lab in labels}
    stacked = []
    for name, members in groups.items():
        unknown = [m for m in members if m not in labels]
        if unknown:
            raise ConfigError(
                f"partition {part.name!r}: aggregate {name!r} names unknown {unknown}"
            )
        stacked.append(da.sel({part.dim: members}).sum(part.dim))
    fractions = xr.concat(stacked, "class").fillna(0.0)
    classes = fractions.argmax("class").astype(np.float64).where(fractions.sum("class") > 0)
    return classes, dict(enumerate(groups))


def partition(
    lc: LoadedConfig, part: PartitionConfig, domain: xr.DataArray
) -> tuple[list[str], np.ndarray]:
    """Sub-regions of ``domain`` (on the cropped grid): names and (n, lat, lon) fractions."""
    path = lc.resolve(part.file)
    with open_netcdf(path) as ds:
        if part.variable not in ds:
            raise SchemaError(path, part.variable, "variable not in file")
        da = ds[part.variable].load()
    if "lon" in da.coords:
        da = da.assign_coords(lon=normalise_lon(da["lon"].values)).sortby(["lat", "lon"])
    if part.kind == "classes":
        if da.dims != ("lat", "lon"):
            raise SchemaError(path, part.variable, f"dims {da.dims}, expected (lat, lon) classes")
        classes, names = da, _class_names(da, part, path)
    else:
        classes, names = _majority_classes(da, part, path)
    try:
        regions = subregions_from_classes(classes, domain, names, part.merges)
    except ValueError as exc:
        raise ConfigError(f"{lc.path}: partition {part.name!r}: {exc}") from exc
    keep = part.keep or regions.abbrs
    unknown = [k for k in keep if k not in regions.abbrs]
    if unknown:
        raise ConfigError(
            f"{lc.path}: partition {part.name!r}: keep names unknown {unknown}; "
            f"sub-regions are {regions.abbrs}"
        )
    frac = regions.fraction.sel(region=keep)
    present = [k for k in keep if float(frac.sel(region=k).sum()) > 0]
    if not present:
        raise ConfigError(f"{lc.path}: partition {part.name!r}: no class occurs in the domain")
    return present, frac.sel(region=present).values


def _month_index(years: list[int]) -> pd.DatetimeIndex:
    return pd.date_range(f"{years[0]}-01-01", f"{years[-1]}-12-01", freq="MS")


def analysed_years(
    lc: LoadedConfig, spans: dict[str, tuple[pd.Timestamp, pd.Timestamp]]
) -> tuple[list[int], list[str]]:
    """Years analysed under the period policy, and statements for the report."""
    p = lc.cfg.period
    wanted = list(range(p.start, p.end + 1))

    def covered(first: pd.Timestamp, last: pd.Timestamp) -> set[int]:
        start = first.year if first.month == 1 else first.year + 1
        end = last.year if last.month == 12 else last.year - 1
        return set(range(start, end + 1))

    short = {n: s for n, s in spans.items() if not set(wanted) <= covered(*s)}
    if not short:
        return wanted, []
    text = "; ".join(f"{n}: {a:%Y-%m}..{b:%Y-%m}" for n, (a, b) in short.items())
    if p.policy == "require":
        raise ConfigError(
            f"{lc.path}: period {p.start}-{p.end} is not covered by every product ({text}); "
            "shorten the period or set period.policy: overlap"
        )
    years = sorted(set(wanted).intersection(*(covered(*s) for s in spans.values())))
    if not years:
        raise ConfigError(
            f"{lc.path}: the products share no whole year within {p.start}-{p.end} ({text})"
        )
    if years != list(range(years[0], years[-1] + 1)):
        raise ConfigError(f"{lc.path}: the shared years {years} are not contiguous ({text})")
    note = (
        f"Period: {p.start}-{p.end} requested; analysed {years[0]}-{years[-1]}, the whole years "
        f"every product covers (policy 'overlap'; short products: {text})."
    )
    return years, [note]


def regrid_chunked(da: xr.DataArray, grid: Grid, name: str) -> np.ndarray:
    """Regrid (time, lat, lon) onto ``grid`` CHUNK_MONTHS at a time → numpy (time, lat, lon)."""
    da = _window(da, grid)
    out = np.empty((da.sizes["time"], *grid.shape))
    for t0 in range(0, da.sizes["time"], CHUNK_MONTHS):
        block = da.isel(time=slice(t0, t0 + CHUNK_MONTHS)).load()
        out[t0 : t0 + block.sizes["time"]] = regrid_conservative(block, grid).values
    return out


def _window(da: xr.DataArray, grid: Grid) -> xr.DataArray:
    """Source cells around ``grid`` (one extra cell each side), to read no more than needed."""
    lat, lon = da["lat"].values, da["lon"].values
    i = np.flatnonzero((lat >= grid.lat_bounds[0]) & (lat <= grid.lat_bounds[-1]))
    j = np.flatnonzero((lon >= grid.lon_bounds[0]) & (lon <= grid.lon_bounds[-1]))
    if i.size == 0 or j.size == 0:
        return da  # coarse cells larger than the domain: keep everything
    i0, i1 = max(i[0] - 1, 0), min(i[-1] + 2, lat.size)
    j0, j1 = max(j[0] - 1, 0), min(j[-1] + 2, lon.size)
    if i1 - i0 < 2 or j1 - j0 < 2:
        return da
    return da.isel(lat=slice(i0, i1), lon=slice(j0, j1))


def build_ensemble(lc: LoadedConfig, progress: bool = True) -> Ensemble:
    """Everything the analysis needs, harmonised (see the module docstring)."""
    cfg = lc.cfg
    sources = product_sources(lc)
    grid_global, land_global = common_grid(lc)
    dom_global = domain_fraction(lc, grid_global, land_global)
    grid, cut = crop_to(grid_global, dom_global * land_global)
    land = land_global.isel(cut)
    domain = dom_global.isel(cut)
    names, fractions, partitions = ["domain"], [domain.values], ["domain"]
    names[0] = cfg.domain.label
    for part in cfg.partitions:
        sub_names, sub_frac = partition(lc, part, domain)
        names += sub_names
        fractions.append(sub_frac)
        partitions += [part.name] * len(sub_names)
    region_fraction = xr.DataArray(
        np.concatenate([f if f.ndim == 3 else f[None] for f in fractions]),
        dims=("region", "lat", "lon"),
        coords={"region": names, "partition": ("region", partitions), **grid.coords()},
        attrs={"units": "1", "long_name": "fraction of the cell's land in each region"},
    )
    fields = {s.name: read_gridded(s.path, s.mapping) for s in sources}
    spans = {
        n: (pd.Timestamp(f["time"].values[0]), pd.Timestamp(f["time"].values[-1]))
        for n, f in fields.items()
    }
    years, notes = analysed_years(lc, spans)
    months = _month_index(years)
    nee = np.empty((len(sources), months.size, *grid.shape))
    for k, s in enumerate(logs.progress(sources, "products", "product") if progress else sources):
        nee[k] = regrid_chunked(fields[s.name].sel(time=months), grid, s.name)
        inside = domain.values * land.values > 0
        if np.isnan(nee[k][:, inside]).all():
            raise SchemaError(
                s.path, s.mapping.variable, f"no value inside the domain {cfg.domain.label!r}"
            )
    da = xr.DataArray(
        nee,
        dims=("product", "time", "lat", "lon"),
        coords={
            "product": [s.name for s in sources],
            "product_group": ("product", [s.group for s in sources]),
            "time": months,
            **grid.coords(),
        },
        name="nee",
        attrs={"units": NEE_UNITS, "long_name": carbon_long_name("NEE (positive = source)")},
    )
    return Ensemble(
        nee=da,
        cell_area=grid.cell_area(),
        land_fraction=land.assign_coords(grid.coords()),
        region_fraction=region_fraction,
        grid=grid,
        years=years,
        domain=cfg.domain.label,
        notes=notes,
    )


def load_ancillary(lc: LoadedConfig, ens: Ensemble) -> dict[str, xr.DataArray]:
    """Soil moisture, SIF and LAI (those configured) on the ensemble's grid and months."""
    a = lc.cfg.ancillary
    if a is None:
        return {}
    path = lc.resolve(a.file)
    out: dict[str, xr.DataArray] = {}
    with open_netcdf(path) as ds:
        for key in ("soil_moisture", "sif", "lai"):
            var = getattr(a, key)
            if var is None:
                continue
            if var not in ds:
                raise SchemaError(path, var, f"ancillary variable for {key!r} not in file")
            da = ds[var]
            if set(da.dims) != {"time", "lat", "lon"}:
                raise SchemaError(path, var, f"dims {da.dims}, expected (time, lat, lon)")
            stamps = pd.DatetimeIndex(
                [pd.Timestamp(year=t.year, month=t.month, day=1) for t in da.indexes["time"]]
            )
            da = da.assign_coords(time=stamps, lon=normalise_lon(da["lon"].values)).sortby(
                ["lat", "lon"]
            )
            missing = ens.nee["time"].to_index().difference(stamps)
            if missing.size:
                raise SchemaError(
                    path, var, f"missing months {missing[0]:%Y-%m} .. ({missing.size} months)"
                )
            field = da.sel(time=ens.nee["time"].values).transpose("time", "lat", "lon")
            regridded = xr.DataArray(
                regrid_chunked(field, ens.grid, var),
                dims=("time", "lat", "lon"),
                coords={"time": ens.nee["time"].values, **ens.grid.coords()},
                attrs=dict(da.attrs),
            )
            out[key] = regridded
    return out
