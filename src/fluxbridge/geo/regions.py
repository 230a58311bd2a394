"""Region masks as data: fractional (region, lat, lon) weights on a grid.

A region mask is the share of each cell that belongs to each region, so that a
regional integral is Σ field × cell_area × land_fraction × fraction. Polygons
(countries, user vector files) are rasterised on a fine global sub-grid
(0.1° or finer) by testing sub-cell centres, and the sub-cells are aggregated to
the target grid by exact spherical overlap areas (:mod:`fluxbridge.geo.regrid`),
so coarse cells on coasts and borders get fractional weights.

RECCAP2 regions (Upton et al. Table A1) are built from Natural Earth 1:110m
admin-0 countries (public domain) and the ISO3 → region table
``resources/reccap2_iso3.csv``; see docs/geo.md for the choices it makes.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.errors import SchemaError
from fluxbridge.geo.grid import Grid, normalise_lon
from fluxbridge.geo.regrid import apply_overlap, overlap_fractions, regrid_conservative
from fluxbridge.io import open_netcdf
from fluxbridge.schema import RECCAP2_REGIONS

EXCLUDED = "-"  # region label of land deliberately left out of every region (Antarctica)
_NETCDF_SUFFIXES = {".nc", ".nc4", ".cdf", ".netcdf"}


@dataclass(frozen=True)
class RegionSet:
    """A set of regions on one grid.

    ``fraction`` (region, lat, lon) is the fraction of each cell's LAND area in
    each region when built with a land fraction, otherwise the fraction of the
    cell's area. It sums to at most 1 over regions.
    """

    ids: np.ndarray
    abbrs: list[str]
    names: list[str]
    fraction: xr.DataArray

    def __post_init__(self) -> None:
        n = len(self.abbrs)
        if len(self.ids) != n or len(self.names) != n or self.fraction.sizes.get("region") != n:
            raise ValueError("RegionSet: ids, abbrs, names and fraction's region dim must agree")
        if self.fraction.dims != ("region", "lat", "lon"):
            raise ValueError(f"RegionSet.fraction dims {self.fraction.dims} != (region, lat, lon)")

    def region_id_map(self) -> xr.DataArray:
        """Majority region id per cell, -1 where no region covers the cell (int32)."""
        frac = self.fraction.values
        best = np.asarray(self.ids, dtype=np.int32)[frac.argmax(axis=0)]
        return xr.DataArray(
            np.where(frac.max(axis=0) > 0, best, -1).astype(np.int32),
            dims=("lat", "lon"),
            coords={"lat": self.fraction["lat"], "lon": self.fraction["lon"]},
            name="region_id",
            attrs={"long_name": "majority region id", "missing_value_meaning": "-1: no region"},
        )

    def to_dataset(self) -> xr.Dataset:
        """The canonical ``region_fraction``/``region_id``/``region_abbr``/``region_name``."""
        return xr.Dataset(
            {
                "region_fraction": self.fraction,
                "region_id": self.region_id_map(),
                "region_abbr": ("region", np.array(self.abbrs, dtype=object)),
                "region_name": ("region", np.array(self.names, dtype=object)),
            }
        )


def _fraction_array(values: np.ndarray, grid: Grid, abbrs: list[str]) -> xr.DataArray:
    return xr.DataArray(
        values,
        dims=("region", "lat", "lon"),
        coords={"region": np.array(abbrs, dtype=object), **grid.coords()},
        name="region_fraction",
        attrs={"units": "1", "long_name": "fraction of cell land area in region"},
    )


def _grid_key(grid: Grid) -> tuple[bytes, bytes]:
    return grid.lat_bounds.tobytes(), grid.lon_bounds.tobytes()


def fine_step(grid: Grid) -> float:
    """Sub-grid step (degrees) for rasterising polygons for ``grid``: ≤ 0.1° and ≤ 1/4 cell."""
    finest = min(grid.resolution) / 4.0
    return next(s for s in (0.1, 0.05, 0.025, 0.0125) if s <= finest or s == 0.0125)


# -- polygons -----------------------------------------------------------------------------


def natural_earth_path() -> Path:
    """Natural Earth 1:110m countries shipped with pyogrio's test fixtures (public domain)."""
    import pyogrio

    path = (
        Path(pyogrio.__file__).parent / "tests/fixtures/naturalearth_lowres/naturalearth_lowres.shp"
    )
    if not path.exists():
        raise FileNotFoundError(f"Natural Earth countries not found at {path}")
    return path


def reccap2_table() -> pd.DataFrame:
    """The ISO3 → RECCAP2 region table (``resources/reccap2_iso3.csv``)."""
    with resources.files("fluxbridge.resources").joinpath("reccap2_iso3.csv").open() as fh:
        table = pd.read_csv(fh, comment="#", dtype=str, keep_default_na=False)
    abbrs = {a for _, a, _ in RECCAP2_REGIONS} | {EXCLUDED}
    unknown = sorted(set(table["region"]) - abbrs)
    if unknown:
        raise ValueError(f"reccap2_iso3.csv: unknown region abbreviations {unknown}")
    return table


@dataclass(frozen=True)
class _Parts:
    """Single polygons with the country code and region label each belongs to."""

    geoms: list
    country: np.ndarray
    region: np.ndarray


@functools.cache
def _country_parts() -> _Parts:
    """Natural Earth countries split into polygons and labelled through the ISO3 table."""
    import pyogrio
    import shapely

    countries = pyogrio.read_dataframe(natural_earth_path(), columns=["name", "iso_a3"])
    table = reccap2_table()
    geoms, country, region = [], [], []
    for _, feature in countries.iterrows():
        by_iso = table["iso3"] == feature["iso_a3"]
        by_name = table["ne_name"] == feature["name"]
        rows = table[by_name] if by_name.any() else table[by_iso]
        if rows.empty:
            raise ValueError(
                f"reccap2_iso3.csv: Natural Earth country {feature['name']!r} "
                f"(iso_a3 {feature['iso_a3']}) has no row"
            )
        for part in shapely.get_parts(feature["geometry"]):
            x = shapely.get_coordinates(part.representative_point())[0, 0]
            for _, row in rows.iterrows():
                lo = float(row["lon_min"]) if row["lon_min"] else -180.0
                hi = float(row["lon_max"]) if row["lon_max"] else 180.0
                if lo <= x <= hi:
                    geoms.append(part)
                    country.append(row["iso3"])
                    region.append(row["region"])
                    break
            else:
                raise ValueError(f"reccap2_iso3.csv: a part of {feature['name']!r} matches no row")
    return _Parts(geoms, np.array(country), np.array(region))


def rasterise(geoms: list, step: float) -> np.ndarray:
    """Index of the polygon containing each sub-cell centre of a global ``step``° grid.

    Returns an int32 (nlat, nlon) array, -1 where no polygon contains the
    centre; where polygons overlap the first one wins.
    """
    import shapely

    fine = Grid.global_regular(step)
    lat, lon = fine.lat, fine.lon
    out = np.full(fine.shape, -1, dtype=np.int32)
    for index, geom in enumerate(geoms):
        shapely.prepare(geom)
        x0, y0, x1, y1 = geom.bounds
        i0, i1 = np.searchsorted(lat, [y0, y1])
        j0, j1 = np.searchsorted(lon, [x0, x1])
        if i0 == i1 or j0 == j1:
            continue
        yy, xx = np.meshgrid(lat[i0:i1], lon[j0:j1], indexing="ij")
        block = out[i0:i1, j0:j1]
        inside = shapely.contains_xy(geom, xx, yy) & (block == -1)
        block[inside] = index
    return out


@functools.cache
def _country_raster(step: float) -> np.ndarray:
    return rasterise(_country_parts().geoms, step)


def _labels_to_fractions(
    raster: np.ndarray, labels: np.ndarray, wanted: list[str], step: float, grid: Grid
) -> np.ndarray:
    """Area fraction of each ``grid`` cell whose sub-cells carry each wanted label."""
    lat, lon = overlap_fractions(Grid.global_regular(step), grid)
    position = {label: k for k, label in enumerate(wanted)}
    code = np.array([position.get(str(label), -1) for label in labels] + [-1])
    code_of = code[raster]  # raster -1 picks the trailing -1
    out = np.empty((len(wanted), *grid.shape))
    for k in range(len(wanted)):
        out[k] = apply_overlap((code_of == k).astype(np.float64), lat, lon)
    return np.clip(out, 0.0, 1.0)


# -- RECCAP2 ------------------------------------------------------------------------------


@functools.cache
def _reccap2_area_fractions(key: tuple[bytes, bytes]) -> np.ndarray:
    """(19, lat, lon) area fractions: the 18 regions, then the excluded land; cached per grid."""
    grid = Grid(np.frombuffer(key[0]), np.frombuffer(key[1]))
    wanted = [a for _, a, _ in RECCAP2_REGIONS] + [EXCLUDED]
    try:
        parts = _country_parts()
    except (ImportError, FileNotFoundError) as exc:
        warnings.warn(
            f"RECCAP2 regions from coarse lat/lon boxes ({exc}); install the 'geo' extra "
            "(pyogrio, shapely) for country polygons",
            stacklevel=3,
        )
        return _box_fractions(grid, wanted)
    step = fine_step(grid)
    return _labels_to_fractions(_country_raster(step), parts.region, wanted, step, grid)


def _box_fractions(grid: Grid, wanted: list[str]) -> np.ndarray:
    """Fallback: regions as the documented lat/lon boxes of resources/regions/reccap2_boxes.csv."""
    with resources.files("fluxbridge.resources").joinpath("regions/reccap2_boxes.csv").open() as fh:
        boxes = pd.read_csv(fh, comment="#")
    step = fine_step(grid)
    fine = Grid.global_regular(step)
    yy, xx = np.meshgrid(fine.lat, fine.lon, indexing="ij")
    raster = np.full(fine.shape, -1, dtype=np.int32)
    for k, box in enumerate(boxes.itertuples()):  # earlier boxes win
        inside = (yy >= box.lat_min) & (yy < box.lat_max) & (xx >= box.lon_min) & (xx < box.lon_max)
        raster[inside & (raster == -1)] = k
    return _labels_to_fractions(raster, boxes["region"].to_numpy(str), wanted, step, grid)


def _check_on_grid(da: xr.DataArray, grid: Grid, what: str) -> np.ndarray:
    if da.dims != ("lat", "lon") or da.shape != grid.shape:
        raise ValueError(
            f"{what} must be (lat, lon) of shape {grid.shape}, got {da.dims} {da.shape}"
        )
    if not Grid.from_dataset(da).same_as(grid):
        raise ValueError(f"{what} is on a different grid")
    return np.nan_to_num(np.asarray(da.values, dtype=np.float64))


def _share_of_land(area: np.ndarray, land: np.ndarray, grid: Grid) -> np.ndarray:
    """Turn area fractions (k, lat, lon; last = excluded) into fractions of each cell's land.

    Land cells no polygon reaches (coasts drawn differently by the two land
    masks) take the shares of the nearest covered cell on the sphere.
    """
    covered = area.sum(axis=0)
    share = np.divide(area, covered, out=np.zeros_like(area), where=covered > 0)
    orphan = (land > 0) & (covered <= 0)
    if orphan.any() and (covered > 0).any():
        from scipy.spatial import cKDTree

        lat, lon = np.meshgrid(np.deg2rad(grid.lat), np.deg2rad(grid.lon), indexing="ij")
        xyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], -1)
        donors = np.argwhere(covered > 0)
        _, nearest = cKDTree(xyz[covered > 0]).query(xyz[orphan])
        src = donors[nearest]
        share[:, orphan] = share[:, src[:, 0], src[:, 1]]
    return np.where(land > 0, share, 0.0)


def reccap2(grid: Grid, land_fraction: xr.DataArray | None = None) -> RegionSet:
    """The 18 RECCAP2 land regions of Upton et al. Table A1 on ``grid``.

    Without ``land_fraction`` the fractions are the share of each cell's area
    inside the region's country polygons. With it (lat, lon, on ``grid``) they
    are the share of each cell's land: polygon shares renormalised per cell,
    land cells outside all polygons filled from the nearest covered cell, and
    land in excluded polygons (Antarctica) left out, so Σ_region ≤ 1 and = 1 on
    land everywhere but the excluded areas. Polygon aggregation is cached per grid.
    """
    area = _reccap2_area_fractions(_grid_key(grid))
    if land_fraction is None:
        values = area[:-1]
    else:
        land = _check_on_grid(land_fraction, grid, "reccap2: land_fraction")
        values = _share_of_land(area, land, grid)[:-1]
    ids, abbrs, names = zip(*RECCAP2_REGIONS, strict=True)
    return RegionSet(
        np.array(ids), list(abbrs), list(names), _fraction_array(values.copy(), grid, list(abbrs))
    )


def polygon_land_fraction(grid: Grid) -> xr.DataArray:
    """(lat, lon) share of each cell's area inside any country polygon (Antarctica included).

    The land fraction to use when a field comes without one: it keeps the ocean
    around a coastal region out of that region's integral.
    """
    area = _reccap2_area_fractions(_grid_key(grid)).sum(axis=0)
    return xr.DataArray(
        np.clip(area, 0.0, 1.0),
        dims=("lat", "lon"),
        coords=grid.coords(),
        name="land_fraction",
        attrs={"units": "1", "long_name": "fraction of cell area inside country polygons"},
    )


@functools.cache
def _country_fraction(key: tuple[bytes, bytes], iso3: str) -> np.ndarray:
    grid = Grid(np.frombuffer(key[0]), np.frombuffer(key[1]))
    parts = _country_parts()
    step = fine_step(grid)
    return _labels_to_fractions(_country_raster(step), parts.country, [iso3], step, grid)[0]


def country_mask(grid: Grid, iso3: str) -> xr.DataArray:
    """Fraction (lat, lon) of each cell's area inside country ``iso3`` (Natural Earth 1:110m)."""
    known = set(_country_parts().country)
    if iso3 not in known:
        raise ValueError(f"country_mask: unknown ISO3 code {iso3!r}; known: {sorted(known)}")
    values = _country_fraction(_grid_key(grid), iso3)
    return xr.DataArray(
        values.copy(),
        dims=("lat", "lon"),
        coords=grid.coords(),
        name=f"mask_{iso3}",
        attrs={"units": "1", "long_name": f"fraction of cell area in {iso3}"},
    )


# -- user masks ---------------------------------------------------------------------------


def regions_from_file(path: Path, grid: Grid, *, variable: str | None = None) -> RegionSet:
    """Regions from a NetCDF mask or a vector file, as fractions on ``grid``.

    NetCDF: either ``region_fraction(region, lat, lon)`` (names from
    ``region_abbr``/``region_name``) or a (lat, lon) map of integer ids (the
    ``variable`` named, else ``region_id``, else the only 2-D variable). Ids
    < 0 and NaN are "no region"; if the variable has CF ``flag_values`` /
    ``flag_meanings`` only those ids are regions and take those names.
    Longitudes in 0..360 are accepted. A mask on another grid is aggregated
    to ``grid`` by exact overlap areas (fractions of cell area).

    Vector files (shapefile, GeoPackage, GeoJSON; read by pyogrio): one region
    per distinct value of the ``abbr`` (else ``name``) column, rasterised like
    the country polygons.
    """
    path = Path(path)
    if not path.exists():
        raise SchemaError(path, None, "region mask file not found")
    if path.suffix.lower() in _NETCDF_SUFFIXES:
        return _regions_from_netcdf(path, grid, variable)
    return _regions_from_vector(path, grid, variable)


def _regions_from_netcdf(path: Path, grid: Grid, variable: str | None) -> RegionSet:
    ds = open_netcdf(path)
    if "lon" in ds.coords:
        ds = ds.assign_coords(lon=normalise_lon(ds["lon"].values)).sortby(["lat", "lon"])
    if variable is None and "region_fraction" in ds:
        return _from_fractions(ds, path, grid)
    name = variable or ("region_id" if "region_id" in ds else _only_2d(ds, path))
    if name not in ds:
        raise SchemaError(path, name, "variable not in file")
    da = ds[name]
    if da.dims == ("region", "lat", "lon"):
        return _from_fractions(ds.rename({name: "region_fraction"}), path, grid)
    if da.dims != ("lat", "lon"):
        raise SchemaError(path, name, f"dims {da.dims}, expected (lat, lon) integer region ids")
    values = np.asarray(da.values, dtype=np.float64)
    valid = np.isfinite(values)
    if np.any(values[valid] != np.round(values[valid])):
        raise SchemaError(path, name, "region ids must be integers")
    if "flag_values" in da.attrs:
        ids = np.atleast_1d(np.asarray(da.attrs["flag_values"], dtype=np.int64))
        meanings = str(da.attrs.get("flag_meanings", "")).split()
        labels = meanings if len(meanings) == ids.size else [f"region_{i}" for i in ids]
    else:
        ids = np.unique(values[valid & (values >= 0)]).astype(np.int64)
        labels = [f"region_{i}" for i in ids]
    coords = {"lat": ds["lat"], "lon": ds["lon"]}
    # One region at a time: a fine mask (1/16° for the raw twin at 0.5°) as a dense
    # (region, lat, lon) float64 stack would need ~2.5 GB before regridding copies it.
    shares = [
        _to_grid(
            xr.DataArray(
                (values == i)[None].astype(np.float64), dims=("region", "lat", "lon"), coords=coords
            ),
            grid,
            [label],
        ).values[0]
        for i, label in zip(ids, labels, strict=True)
    ]
    return RegionSet(ids, labels, labels, _fraction_array(np.stack(shares), grid, labels))


def _only_2d(ds: xr.Dataset, path: Path) -> str:
    candidates = [str(k) for k, v in ds.data_vars.items() if v.dims == ("lat", "lon")]
    if len(candidates) != 1:
        raise SchemaError(
            path, None, f"cannot tell the region variable among {candidates}; name it (variable=)"
        )
    return candidates[0]


def _from_fractions(ds: xr.Dataset, path: Path, grid: Grid) -> RegionSet:
    frac = ds["region_fraction"]
    if frac.dims != ("region", "lat", "lon"):
        raise SchemaError(path, "region_fraction", f"dims {frac.dims}, expected (region, lat, lon)")
    n = frac.sizes["region"]
    if "region_abbr" in ds:
        abbrs = [str(a) for a in ds["region_abbr"].values]
    elif "region" in frac.coords:
        abbrs = [str(a) for a in frac["region"].values]
    else:
        abbrs = [f"region_{i}" for i in range(n)]
    names = [str(a) for a in ds["region_name"].values] if "region_name" in ds else abbrs
    values = frac.fillna(0.0)
    if float(values.min()) < 0 or float(values.max()) > 1 + 1e-9:
        raise SchemaError(path, "region_fraction", "fractions must lie in [0, 1]")
    return RegionSet(np.arange(n), abbrs, names, _to_grid(values, grid, abbrs))


def _to_grid(fraction: xr.DataArray, grid: Grid, abbrs: list[str]) -> xr.DataArray:
    """Put (region, lat, lon) fractions on ``grid``: as they are, or by overlap areas."""
    fraction = fraction.drop_vars("region", errors="ignore")
    if Grid.from_dataset(fraction).same_as(grid):
        values = np.asarray(fraction.values, dtype=np.float64)
    else:
        values = regrid_conservative(fraction, grid).fillna(0.0).values
    return _fraction_array(np.clip(values, 0.0, 1.0), grid, abbrs)


def _regions_from_vector(path: Path, grid: Grid, column: str | None) -> RegionSet:
    import pyogrio
    import shapely

    try:
        table = pyogrio.read_dataframe(path)
    except Exception as exc:  # GDAL raises its own error types for unreadable files
        raise SchemaError(path, None, f"not a readable vector file ({exc})") from exc
    column = column or next((c for c in ("abbr", "name") if c in table.columns), None)
    if column is None or column not in table.columns:
        raise SchemaError(path, column, "needs an 'abbr' or 'name' column naming the regions")
    labels = list(dict.fromkeys(str(v) for v in table[column]))
    geoms, owner = [], []
    for _, row in table.iterrows():
        for part in shapely.get_parts(row["geometry"]):
            geoms.append(part)
            owner.append(str(row[column]))
    step = fine_step(grid)
    values = _labels_to_fractions(rasterise(geoms, step), np.array(owner), labels, step, grid)
    return RegionSet(np.arange(len(labels)), labels, labels, _fraction_array(values, grid, labels))


def subregions_from_classes(
    classes: xr.DataArray,
    domain: xr.DataArray,
    names: dict[int, str],
    merges: dict[str, list[str]] | None = None,
) -> RegionSet:
    """Split a domain (e.g. one country) into sub-regions by a class map.

    Parameters
    ----------
    classes : (lat, lon) integer class map (climate zones, majority land
        cover), on the grid of ``domain`` or on a finer regular grid, in which
        case each class's area share of every ``domain`` cell is used.
    domain : (lat, lon) fraction of each cell in the domain (e.g. a
        :func:`country_mask` or one region's fraction).
    names : class id → sub-region name; classes not listed are left out.
    merges : new name → list of names it replaces, e.g.
        ``{"Trop-SMC": ["TropMC", "SMC"]}``; the merged region takes the place
        of its first member.

    Returns
    -------
    RegionSet with fraction = domain × class share, ids 0..n-1 in order.
    """
    grid = Grid.from_dataset(domain)
    onehot = xr.concat(
        [(classes == k).astype(np.float64).where(classes.notnull()) for k in names],
        dim="region",
    )
    share = _to_grid(onehot.fillna(0.0), grid, list(names.values())).values
    by_name = dict(zip(names.values(), share, strict=True))
    for new, members in (merges or {}).items():
        missing = [m for m in members if m not in by_name]
        if missing:
            raise ValueError(f"subregions_from_classes: merge {new!r} names unknown {missing}")
        position = list(by_name).index(members[0])
        merged = sum(by_name.pop(m) for m in members)
        items = list(by_name.items())
        items.insert(position, (new, merged))
        by_name = dict(items)
    labels = list(by_name)
    dom = np.nan_to_num(np.asarray(domain.values, dtype=np.float64))
    values = np.stack([by_name[k] for k in labels]) * dom
    return RegionSet(np.arange(len(labels)), labels, labels, _fraction_array(values, grid, labels))
