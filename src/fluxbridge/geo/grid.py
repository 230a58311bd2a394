"""Regular latitude/longitude grids with exact spherical cell areas.

Cell areas use the exact formula for a cell on a sphere bounded by two
parallels and two meridians, A = R² (λ2 − λ1) (sin φ2 − sin φ1), never the
cos(lat) approximation. R is the mean Earth radius 6 371 000 m, the radius CDO
uses. CDO's ``gridarea`` treats cell edges as great circles rather than
parallels, so its 1° areas differ from these exact latitude-band areas by up to
~2e-5 relative; cross-checks against CDO either pass our areas to CDO or allow
for that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from fluxbridge.errors import SchemaError

EARTH_RADIUS_M = 6_371_000.0


def normalise_lon(lon: np.ndarray) -> np.ndarray:
    """Map longitudes (degrees east, any convention) into [-180, 180)."""
    return ((np.asarray(lon, dtype=np.float64) + 180.0) % 360.0) - 180.0


def cell_areas_m2(lat_bounds: np.ndarray, lon_bounds: np.ndarray) -> np.ndarray:
    """Exact areas (m²) of the cells of a regular lat/lon grid.

    Parameters
    ----------
    lat_bounds : (nlat + 1,) cell edges in degrees north, ascending.
    lon_bounds : (nlon + 1,) cell edges in degrees east, ascending.

    Returns
    -------
    (nlat, nlon) array of areas in m². Sums to 4πR² for a global grid.
    """
    phi = np.deg2rad(np.asarray(lat_bounds, dtype=np.float64))
    lam = np.deg2rad(np.asarray(lon_bounds, dtype=np.float64))
    band = np.diff(np.sin(phi))  # (nlat,)
    width = np.diff(lam)  # (nlon,)
    return EARTH_RADIUS_M**2 * np.outer(band, width)


@dataclass(frozen=True)
class Grid:
    """A regular lat/lon grid given by its cell edges (degrees, ascending).

    Longitudes are in [-180, 180]; latitudes in [-90, 90].
    """

    lat_bounds: np.ndarray
    lon_bounds: np.ndarray

    def __post_init__(self) -> None:
        for name, b, lo, hi in (
            ("lat_bounds", self.lat_bounds, -90.0, 90.0),
            ("lon_bounds", self.lon_bounds, -180.0, 180.0),
        ):
            b = np.asarray(b, dtype=np.float64)
            if b.ndim != 1 or b.size < 2:
                raise ValueError(f"{name} must be a 1-D array of at least 2 edges")
            if not np.all(np.diff(b) > 0):
                raise ValueError(f"{name} must be strictly ascending")
            if b[0] < lo - 1e-9 or b[-1] > hi + 1e-9:
                raise ValueError(f"{name} must lie within [{lo}, {hi}], got {b[0]}..{b[-1]}")
            object.__setattr__(self, name, b)

    @classmethod
    def global_regular(cls, dlat: float, dlon: float | None = None) -> Grid:
        """A global grid with cells of ``dlat`` × ``dlon`` degrees, edges at ±90 / ±180."""
        dlon = dlat if dlon is None else dlon
        nlat = round(180.0 / dlat)
        nlon = round(360.0 / dlon)
        if not np.isclose(nlat * dlat, 180.0) or not np.isclose(nlon * dlon, 360.0):
            raise ValueError(f"{dlat}° × {dlon}° does not tile the globe")
        return cls(np.linspace(-90.0, 90.0, nlat + 1), np.linspace(-180.0, 180.0, nlon + 1))

    @classmethod
    def from_centres(cls, lat: np.ndarray, lon: np.ndarray) -> Grid:
        """Grid from cell centres of a regular grid (edges half-way between centres).

        Longitudes in 0..360 are normalised to -180..180 by the caller
        (:func:`normalise_lon` and a sort); here they must already ascend.
        Edges are clipped to the poles.
        """
        lat = np.asarray(lat, dtype=np.float64)
        lon = np.asarray(lon, dtype=np.float64)
        return cls(
            np.clip(_edges_from_centres(lat), -90.0, 90.0),
            np.clip(_edges_from_centres(lon), -180.0, 180.0),
        )

    @classmethod
    def from_dataset(cls, ds: xr.Dataset | xr.DataArray, path: object = "<memory>") -> Grid:
        """Grid of a dataset with ascending ``lat``/``lon`` centre coordinates."""
        for name in ("lat", "lon"):
            if name not in ds.coords:
                raise SchemaError(path, name, "missing coordinate (expected 1-D cell centres)")
            values = np.asarray(ds[name].values, dtype=np.float64)
            if np.isnan(values).any():
                raise SchemaError(path, name, "coordinate contains NaN")
            if values.size > 1 and not np.all(np.diff(values) > 0):
                raise SchemaError(path, name, "coordinate must be strictly ascending")
        lon = np.asarray(ds["lon"].values, dtype=np.float64)
        if lon.size and lon.max() > 180.0:
            raise SchemaError(
                path,
                "lon",
                f"longitudes {lon.min():g}..{lon.max():g} (0..360); the canonical grid uses "
                "-180..180 (e.g. `cdo sellonlatbox,-180,180,-90,90 in.nc out.nc`)",
            )
        try:
            return cls.from_centres(ds["lat"].values, lon)
        except ValueError as exc:
            raise SchemaError(path, "lat/lon", f"not a regular grid ({exc})") from exc

    @property
    def lat(self) -> np.ndarray:
        """Cell-centre latitudes, degrees north."""
        return 0.5 * (self.lat_bounds[1:] + self.lat_bounds[:-1])

    @property
    def lon(self) -> np.ndarray:
        """Cell-centre longitudes, degrees east."""
        return 0.5 * (self.lon_bounds[1:] + self.lon_bounds[:-1])

    @property
    def shape(self) -> tuple[int, int]:
        return (self.lat.size, self.lon.size)

    @property
    def resolution(self) -> tuple[float, float]:
        """(dlat, dlon) in degrees, from the first cell."""
        return (
            float(self.lat_bounds[1] - self.lat_bounds[0]),
            float(self.lon_bounds[1] - self.lon_bounds[0]),
        )

    def cell_area(self) -> xr.DataArray:
        """Exact cell areas as a DataArray (lat, lon) in m²."""
        return xr.DataArray(
            cell_areas_m2(self.lat_bounds, self.lon_bounds),
            dims=("lat", "lon"),
            coords=self.coords(),
            name="cell_area",
            attrs={"units": "m2", "standard_name": "cell_area", "long_name": "cell area"},
        )

    def coords(self) -> dict[str, xr.DataArray]:
        """CF coordinate variables for this grid (with bounds attributes)."""
        return {
            "lat": xr.DataArray(
                self.lat,
                dims="lat",
                attrs={
                    "units": "degrees_north",
                    "standard_name": "latitude",
                    "long_name": "latitude",
                    "axis": "Y",
                    "bounds": "lat_bnds",
                },
            ),
            "lon": xr.DataArray(
                self.lon,
                dims="lon",
                attrs={
                    "units": "degrees_east",
                    "standard_name": "longitude",
                    "long_name": "longitude",
                    "axis": "X",
                    "bounds": "lon_bnds",
                },
            ),
        }

    def bounds_dataset(self) -> xr.Dataset:
        """``lat_bnds``/``lon_bnds`` variables (CF cell bounds) for writing beside the data."""
        return xr.Dataset(
            {
                "lat_bnds": (
                    ("lat", "bnds"),
                    np.stack([self.lat_bounds[:-1], self.lat_bounds[1:]], 1),
                ),
                "lon_bnds": (
                    ("lon", "bnds"),
                    np.stack([self.lon_bounds[:-1], self.lon_bounds[1:]], 1),
                ),
            },
            coords=self.coords(),
        )

    def same_as(self, other: Grid, atol: float = 1e-6) -> bool:
        """True when both grids have the same edges within ``atol`` degrees."""
        return (
            self.lat_bounds.shape == other.lat_bounds.shape
            and self.lon_bounds.shape == other.lon_bounds.shape
            and np.allclose(self.lat_bounds, other.lat_bounds, atol=atol)
            and np.allclose(self.lon_bounds, other.lon_bounds, atol=atol)
        )


def _edges_from_centres(centres: np.ndarray) -> np.ndarray:
    if centres.size == 1:
        raise ValueError("cannot infer cell edges from a single centre")
    mid = 0.5 * (centres[1:] + centres[:-1])
    first = centres[0] - (mid[0] - centres[0])
    last = centres[-1] + (centres[-1] - mid[-1])
    return np.concatenate([[first], mid, [last]])
