"""First-order conservative regridding between regular lat/lon grids.

On a sphere the overlap of two lat/lon cells is itself a lat/lon cell, so its
exact area factorises: A = R² Δλ_overlap · Δ(sin φ)_overlap. The overlap matrix
between two grids is therefore the Kronecker product of a latitude matrix (in
sin φ) and a longitude matrix (in λ, periodic over 360°). Regridding applies
the two small 1-D matrices one after the other instead of one large 2-D one,
which keeps the cost at O(cells) for any pair of grids, nested or not.

Intensive fields (NEE in gC m-2 d-1, fractions, temperatures) are averaged
over the overlap, weighted by the exact overlap areas (times optional source
weights such as the land fraction). NaN rule: a NaN source cell is left out of
both numerator and denominator, so the destination value is the mean over the
valid part of its overlap; a destination cell with no valid overlap is NaN.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import xarray as xr

from fluxbridge.geo.grid import Grid, normalise_lon


def _overlap_1d(
    src_edges: np.ndarray, dst_edges: np.ndarray, period: float | None
) -> sp.csr_matrix:
    """Overlap lengths (dst intervals, src intervals) of two ascending edge arrays.

    With ``period`` the axis is cyclic: source intervals are also compared
    shifted by ±period, so a source cell straddling the seam counts on both sides.
    """
    shifts = (0.0,) if period is None else (-period, 0.0, period)
    rows, cols, vals = [], [], []
    for shift in shifts:
        lo_s, hi_s = src_edges[:-1] + shift, src_edges[1:] + shift
        # candidate destination interval range for each source interval
        first = np.searchsorted(dst_edges, lo_s, side="right") - 1
        last = np.searchsorted(dst_edges, hi_s, side="left")
        first = np.clip(first, 0, dst_edges.size - 2)
        last = np.clip(last, 0, dst_edges.size - 1)
        for j in range(lo_s.size):
            d = np.arange(first[j], last[j])
            if d.size == 0:
                continue
            length = np.minimum(hi_s[j], dst_edges[d + 1]) - np.maximum(lo_s[j], dst_edges[d])
            keep = length > 0
            rows.append(d[keep])
            cols.append(np.full(keep.sum(), j))
            vals.append(length[keep])
    shape = (dst_edges.size - 1, src_edges.size - 1)
    if not rows:
        return sp.csr_matrix(shape)
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape
    )


def _factors(
    src_lat_edges: np.ndarray,
    src_lon_edges: np.ndarray,
    dst_lat_edges: np.ndarray,
    dst_lon_edges: np.ndarray,
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Latitude (in sin φ) and longitude (in radians) overlap matrices."""
    lat = _overlap_1d(
        np.sin(np.deg2rad(src_lat_edges)), np.sin(np.deg2rad(dst_lat_edges)), period=None
    )
    lon = _overlap_1d(np.deg2rad(src_lon_edges), np.deg2rad(dst_lon_edges), period=2 * np.pi)
    return lat, lon


def overlap_fractions(src: Grid, dst: Grid) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The two 1-D factors of :func:`conservative_weights`: (lat, lon) overlap fractions.

    ``lat[k, i]`` is the share of destination row k's Δ(sin φ) covered by source
    row i, ``lon[l, j]`` the share of destination column l's Δλ covered by
    source column j; the 2-D fraction is their product.
    """
    lat, lon = _factors(src.lat_bounds, src.lon_bounds, dst.lat_bounds, dst.lon_bounds)
    lat = sp.csr_matrix(sp.diags(1.0 / np.diff(np.sin(np.deg2rad(dst.lat_bounds)))) @ lat)
    lon = sp.csr_matrix(sp.diags(1.0 / np.diff(np.deg2rad(dst.lon_bounds))) @ lon)
    return lat, lon


def conservative_weights(src: Grid, dst: Grid) -> sp.csr_matrix:
    """Area-overlap fractions, shape (dst cells, src cells), cells in row-major (lat, lon) order.

    Entry (d, s) is the area of the overlap of cells d and s divided by the
    area of cell d (exact spherical areas). Rows sum to 1 where ``src`` covers
    the destination cell, and to the covered fraction elsewhere.
    """
    lat, lon = overlap_fractions(src, dst)
    return sp.csr_matrix(sp.kron(lat, lon, format="csr"))


def apply_overlap(values: np.ndarray, lat: sp.csr_matrix, lon: sp.csr_matrix) -> np.ndarray:
    """Apply separable overlap factors: (..., nlat_src, nlon_src) → (..., nlat_dst, nlon_dst)."""
    lead = values.shape[:-2]
    nlat_s, nlon_s = values.shape[-2:]
    x = values.reshape(-1, nlon_s) @ lon.T  # (N·nlat_s, nlon_d)
    x = np.asarray(x).reshape(-1, nlat_s, lon.shape[0])
    x = np.moveaxis(x, 1, 0).reshape(nlat_s, -1)  # (nlat_s, N·nlon_d)
    y = np.asarray(lat @ x).reshape(lat.shape[0], -1, lon.shape[0])
    return np.moveaxis(y, 0, 1).reshape(*lead, lat.shape[0], lon.shape[0])


def _source_edges(
    da: xr.DataArray, grid: Grid | None = None
) -> tuple[xr.DataArray, np.ndarray, np.ndarray]:
    """Put ``da`` on ascending lat / [-180, 180) lon and return it with its cell edges.

    Edges are those of ``grid`` when given (checked against the centres), else
    half-way between centres. Longitude edges are not clipped: a cell centred
    on 180° spans the seam and the periodic overlap handles it.
    """
    for name in ("lat", "lon"):
        if name not in da.coords or da[name].ndim != 1:
            raise ValueError(f"regrid: '{da.name}' needs a 1-D '{name}' coordinate")
        if da[name].size < 2 and grid is None:
            raise ValueError(f"regrid: '{da.name}' has one '{name}' centre; pass src_grid")
    lon = normalise_lon(da["lon"].values)
    if not np.array_equal(lon, da["lon"].values):
        da = da.assign_coords(lon=lon)
    da = da.sortby(["lat", "lon"])
    lat_c = da["lat"].values.astype(np.float64)
    lon_c = da["lon"].values.astype(np.float64)
    if np.unique(lon_c).size != lon_c.size or np.unique(lat_c).size != lat_c.size:
        raise ValueError(f"regrid: '{da.name}' has duplicate lat or lon centres")
    if grid is not None:
        if grid.shape != (lat_c.size, lon_c.size) or not (
            np.all((grid.lat_bounds[:-1] <= lat_c) & (lat_c <= grid.lat_bounds[1:]))
            and np.all((grid.lon_bounds[:-1] <= lon_c) & (lon_c <= grid.lon_bounds[1:]))
        ):
            raise ValueError(f"regrid: src_grid does not match the centres of '{da.name}'")
        return da, grid.lat_bounds, grid.lon_bounds
    lat_edges = np.clip(_edges(lat_c), -90.0, 90.0)
    lon_edges = _edges(lon_c)
    if lon_edges[-1] - lon_edges[0] > 360.0 + 1e-6:
        raise ValueError(f"regrid: longitudes of '{da.name}' span more than 360°")
    return da, lat_edges, lon_edges


def _edges(centres: np.ndarray) -> np.ndarray:
    mid = 0.5 * (centres[1:] + centres[:-1])
    return np.concatenate([[2 * centres[0] - mid[0]], mid, [2 * centres[-1] - mid[-1]]])


def regrid_conservative(
    da: xr.DataArray,
    dst: Grid,
    *,
    src_area_weights: xr.DataArray | None = None,
    src_grid: Grid | None = None,
) -> xr.DataArray:
    """Area-conservative regridding of an intensive field onto ``dst``.

    Parameters
    ----------
    da : DataArray with ``lat``/``lon`` cell-centre coordinates (degrees; lon
        in -180..180 or 0..360, any order) and any other leading dims
        (member, time, ...). Units are kept (the field is intensive).
    dst : destination grid.
    src_area_weights : optional (lat, lon) weights on the source grid, e.g. the
        land fraction, so that the result is the land-weighted mean. Regridding
        ``nee`` with ``src_area_weights=land_fraction`` and ``land_fraction``
        itself without weights conserves Σ nee · land_fraction · area.
    src_grid : the cell edges of ``da`` (in -180..180), for grids whose edges
        are not half-way between centres (irregular spacing, single cells).

    Returns
    -------
    DataArray on ``dst`` (dims: the leading dims of ``da``, then lat, lon).
    Destination value = Σ_s f_s w_s A(d∩s) / Σ_s w_s A(d∩s) over valid (non-NaN)
    source cells; NaN where that denominator is 0. For a NaN-free field on a
    grid that covers ``dst``, Σ_d f_d A_d equals Σ_s f_s A_s to rounding.
    """
    src, lat_edges, lon_edges = _source_edges(da, src_grid)
    lead = [d for d in src.dims if d not in ("lat", "lon")]
    src = src.transpose(*lead, "lat", "lon")
    lat, lon = _factors(lat_edges, lon_edges, dst.lat_bounds, dst.lon_bounds)

    weights = np.ones(src.shape[-2:])
    if src_area_weights is not None:
        if set(src_area_weights.dims) != {"lat", "lon"}:
            raise ValueError(f"regrid: src_area_weights dims {src_area_weights.dims} != (lat, lon)")
        w, _, _ = _source_edges(src_area_weights.transpose("lat", "lon"), src_grid)
        if w.shape != weights.shape:
            raise ValueError(
                f"regrid: src_area_weights must be (lat, lon) of shape {weights.shape}, "
                f"got {w.dims} {w.shape}"
            )
        weights = np.nan_to_num(np.asarray(w.values, dtype=np.float64))
        if (weights < 0).any():
            raise ValueError("regrid: src_area_weights must be ≥ 0")

    values = np.asarray(src.values, dtype=np.float64)
    valid = ~np.isnan(values)
    w = np.where(valid, weights, 0.0)
    numerator = apply_overlap(np.where(valid, values, 0.0) * w, lat, lon)
    if valid.all():  # one denominator serves every leading index
        denominator = apply_overlap(weights, lat, lon)
    else:
        denominator = apply_overlap(w, lat, lon)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(
            denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan
        )
    coords = {k: v for k, v in src.coords.items() if "lat" not in v.dims and "lon" not in v.dims}
    coords.update(dst.coords())
    return xr.DataArray(
        out, dims=(*lead, "lat", "lon"), coords=coords, name=da.name, attrs=dict(da.attrs)
    )
