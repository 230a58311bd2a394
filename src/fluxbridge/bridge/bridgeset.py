"""The set of per-region bridge models: storage (``RUN/bridges.nc``) and application.

A bridge maps the monthly-mean NEE (gC m-2 d-1, positive = source) at a region's
contributing pixels to the region's monthly integral (PgC month-1). In the
per-day basis (default) the weights give the integral per day of the month,

    NEE_region(m) = days(m) · (Σ_p w_p · NEE_p(m) + b)     (w in PgC d-1 per gC m-2 d-1)

and in the paper's per-month basis (Upton et al. Eq. 7) the month itself,
``Σ_p w_p · NEE_p(m) + b`` (w in PgC month-1 per gC m-2 d-1). The basis, the
intercept and the refit rule (:class:`~fluxbridge.bridge.lasso.FitSpec`) are file
attributes; a file without ``weights_basis`` predates per-day weights and is refused.

Pixels are identified by ``cell``: the index into the canonical ``cell``
dimension of drivers.nc (land cells, land_fraction > 0, in row-major order), with
their grid indices ``ilat``/``ilon`` kept beside them for gridded fields.

File layout (ragged): dimension ``region`` for per-region scalars, dimension
``contrib`` with one entry per (region, contributing pixel) and ``contrib_region``
giving the region index of each entry, plus the (lat, lon) inclusion-frequency map.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fluxbridge.bridge.lasso import FitSpec, least_squares
from fluxbridge.data.canonical import MONTHLY_INTEGRAL_UNITS, carbon_long_name
from fluxbridge.errors import SchemaError
from fluxbridge.geo.grid import Grid
from fluxbridge.io import open_netcdf, write_netcdf
from fluxbridge.outputs import file_digest

BASES = {"per_day": True, "per_month": False}

#: How a bridge was made: the threshold Lasso, the exact-area fallback, or an OLS refit.
FALLBACKS = ("none", "area_weighted_mean", "refit_ols")


@dataclass(frozen=True)
class RegionBridge:
    """One region's bridge; arrays are aligned per contributing pixel."""

    region: str
    cells: np.ndarray  # int64 indices into the canonical cell dimension
    ilat: np.ndarray  # int64 row of each cell on the dataset grid
    ilon: np.ndarray  # int64 column of each cell on the dataset grid
    lat: np.ndarray  # degrees_north, cell centre
    lon: np.ndarray  # degrees_east, cell centre
    weights: np.ndarray  # float64, PgC d-1 (per-day basis) or PgC month-1 per gC m-2 d-1
    bias: float  # PgC d-1 or PgC month-1, as the weights
    alpha: float  # Lasso α (scikit-learn convention, unit-scale pixels); NaN for fallbacks
    r2_train: float
    r2_cv: float
    land_area: float  # m², Σ cell_area × land_fraction × region_fraction of the region
    fallback: str = "none"

    def __post_init__(self) -> None:
        n = len(self.cells)
        for name in ("ilat", "ilon", "lat", "lon", "weights"):
            if len(getattr(self, name)) != n:
                raise ValueError(
                    f"region {self.region}: {name} has {len(getattr(self, name))} entries, "
                    f"cells has {n}"
                )
        if len(np.unique(self.cells)) != n:
            raise ValueError(f"region {self.region}: duplicate cells")
        if not self.land_area > 0:
            raise ValueError(
                f"region {self.region}: land_area must be > 0 m², got {self.land_area}"
            )
        if self.fallback not in FALLBACKS:
            raise ValueError(f"region {self.region}: fallback {self.fallback!r} not in {FALLBACKS}")


class BridgeSet:
    """All regions' bridges on one dataset grid, applied to NEE as one matrix product.

    Parameters
    ----------
    bridges : one :class:`RegionBridge` per region, in output order.
    lat, lon : cell-centre coordinates of the dataset grid (degrees).
    n_cells : number of canonical land cells (bound for ``cells``).
    inclusion_frequency : (lat, lon) fraction of robustness runs in which each pixel
        was contributing (NaN where never a candidate), or None.
    attrs : provenance written to the file (seed, threshold, inputs hash, ...).
    spec : basis, intercept and refit rule the bridges were fitted with (also used by
        :meth:`refit_region`); default ``FitSpec()``.
    """

    def __init__(
        self,
        bridges: Sequence[RegionBridge],
        lat: np.ndarray,
        lon: np.ndarray,
        n_cells: int,
        inclusion_frequency: np.ndarray | None = None,
        attrs: dict[str, Any] | None = None,
        spec: FitSpec | None = None,
    ) -> None:
        self.bridges = list(bridges)
        self.spec = spec or FitSpec()
        self.lat = np.asarray(lat, dtype=np.float64)
        self.lon = np.asarray(lon, dtype=np.float64)
        self.n_cells = int(n_cells)
        self.inclusion_frequency = inclusion_frequency
        self.attrs = dict(attrs or {})
        names = self.regions
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate region names in {names}")
        for br in self.bridges:
            self._check_cells(br)
        if inclusion_frequency is not None and inclusion_frequency.shape != self.grid_shape:
            raise ValueError(
                f"inclusion_frequency has shape {inclusion_frequency.shape}, "
                f"grid is {self.grid_shape}"
            )
        self._index_cells()

    # -- structure --------------------------------------------------------------------------

    @property
    def regions(self) -> list[str]:
        return [br.region for br in self.bridges]

    @property
    def grid_shape(self) -> tuple[int, int]:
        return (self.lat.size, self.lon.size)

    @property
    def grid(self) -> Grid:
        return Grid.from_centres(self.lat, self.lon)

    @property
    def all_cells(self) -> np.ndarray:
        """Sorted unique cell indices over all regions (the columns of ``apply_cells``)."""
        return self._all_cells

    def __getitem__(self, region: str | int) -> RegionBridge:
        return self.bridges[self._region_index(region)]

    def _region_index(self, region: str | int) -> int:
        if isinstance(region, int | np.integer):
            if not 0 <= region < len(self.bridges):
                raise KeyError(f"region index {region} out of range 0..{len(self.bridges) - 1}")
            return int(region)
        try:
            return self.regions.index(region)
        except ValueError:
            raise KeyError(f"no bridge for region {region!r}; have {self.regions}") from None

    def _check_cells(self, br: RegionBridge) -> None:
        cells = np.asarray(br.cells)
        if cells.size and (cells.min() < 0 or cells.max() >= self.n_cells):
            raise ValueError(
                f"region {br.region}: cell indices {cells.min()}..{cells.max()} outside the "
                f"{self.n_cells} canonical land cells"
            )
        nlat, nlon = self.grid_shape
        if br.ilat.size and (
            br.ilat.min() < 0 or br.ilat.max() >= nlat or br.ilon.min() < 0 or br.ilon.max() >= nlon
        ):
            raise ValueError(f"region {br.region}: grid indices outside the {nlat}x{nlon} grid")

    def _index_cells(self) -> None:
        cells = np.concatenate([br.cells for br in self.bridges] or [np.empty(0, np.int64)])
        ilat = np.concatenate([br.ilat for br in self.bridges] or [np.empty(0, np.int64)])
        ilon = np.concatenate([br.ilon for br in self.bridges] or [np.empty(0, np.int64)])
        self._all_cells, first = np.unique(cells.astype(np.int64), return_index=True)
        self._cell_ilat, self._cell_ilon = ilat[first], ilon[first]
        pos = np.searchsorted(self._all_cells, cells)
        if not (
            np.array_equal(self._cell_ilat[pos], ilat)
            and np.array_equal(self._cell_ilon[pos], ilon)
        ):
            raise ValueError("the same cell index maps to different grid positions in two regions")
        self._matrix = np.zeros((len(self.bridges), self._all_cells.size))
        self._bias = np.array([br.bias for br in self.bridges], dtype=np.float64)
        for r, br in enumerate(self.bridges):
            self._matrix[r, np.searchsorted(self._all_cells, br.cells)] = br.weights
        self._torch_cache: dict[tuple[Any, Any], tuple[Any, Any]] = {}

    @property
    def weight_matrix(self) -> np.ndarray:
        """Dense (n_regions, len(all_cells)) weights in ``spec.weight_units``."""
        return self._matrix

    # -- application ------------------------------------------------------------------------

    def apply_cells(self, nee_cells: Any, days_in_month: Any) -> Any:
        """Regional integrals (..., n_regions) in PgC month-1 from NEE at ``all_cells``.

        ``nee_cells``: torch.Tensor or array (..., len(all_cells)) of monthly-mean NEE in
        gC m-2 d-1; ``days_in_month``: (...) days of each month (ignored in the per-month
        basis). A tensor gives a tensor on its device and dtype, differentiable with
        respect to ``nee_cells`` (the weights are constants).
        """
        n = self._all_cells.size
        shape = tuple(nee_cells.shape)
        if not shape or shape[-1] != n:
            raise ValueError(
                f"nee_cells must have last dimension {n} (len(all_cells)), got {shape}"
            )
        if tuple(days_in_month.shape) != shape[:-1]:
            raise ValueError(
                f"days_in_month must have shape {shape[:-1]} (nee_cells without its last "
                f"dimension), got {tuple(days_in_month.shape)}"
            )
        if type(nee_cells).__module__.startswith("torch"):
            weight, bias = self._torch_weights(nee_cells.device, nee_cells.dtype)
            rate = nee_cells @ weight.T + bias
            if not self.spec.per_day:
                return rate
            import torch

            days = torch.as_tensor(days_in_month, dtype=nee_cells.dtype, device=nee_cells.device)
            return rate * days.unsqueeze(-1)
        rate = np.asarray(nee_cells, dtype=np.float64) @ self._matrix.T + self._bias
        if not self.spec.per_day:
            return rate
        return rate * _as_numpy(days_in_month)[..., None]

    def _torch_weights(self, device: Any, dtype: Any) -> tuple[Any, Any]:
        key = (device, dtype)
        if key not in self._torch_cache:
            import torch

            self._torch_cache[key] = (
                torch.as_tensor(self._matrix, dtype=dtype, device=device),
                torch.as_tensor(self._bias, dtype=dtype, device=device),
            )
        return self._torch_cache[key]

    def apply(self, nee: xr.DataArray) -> xr.DataArray:
        """Apply every bridge to a gridded monthly NEE field (..., time, lat, lon) in gC m-2 d-1.

        Month lengths come from the ``time`` coordinate. Returns (region, ...) in
        PgC month-1; NaN at a contributing pixel gives NaN.
        """
        if not {"time", "lat", "lon"} <= set(nee.dims) or "time" not in nee.coords:
            raise ValueError(
                f"nee must have time (a coordinate), lat and lon dimensions, got {nee.dims}"
            )
        if not Grid.from_dataset(nee, nee.name or "nee").same_as(self.grid):
            raise SchemaError(
                nee.name or "<field>",
                "lat/lon",
                f"grid {nee.sizes['lat']}x{nee.sizes['lon']} differs from the bridges' grid "
                f"{self.grid_shape[0]}x{self.grid_shape[1]}",
            )
        at_cells = nee.isel(
            lat=xr.DataArray(self._cell_ilat, dims="cell"),
            lon=xr.DataArray(self._cell_ilon, dims="cell"),
        ).transpose(..., "cell")
        other = [d for d in at_cells.dims if d != "cell"]
        days = at_cells["time"].dt.days_in_month.drop_vars("time")
        days = days.expand_dims({d: at_cells.sizes[d] for d in other if d != "time"})
        values = self.apply_cells(at_cells.values, days.transpose(*other).values)
        out = xr.DataArray(
            values,
            dims=(*other, "region"),
            coords={**{d: at_cells[d] for d in other if d in at_cells.coords}},
        )
        out = out.assign_coords(region=self.regions).transpose("region", ...)
        out.attrs = {
            "units": MONTHLY_INTEGRAL_UNITS,
            "long_name": carbon_long_name("regional NEE integral from bridges"),
        }
        return out.rename("nee_region")

    # -- refit (decoupling callback) -------------------------------------------------------

    def refit_region(
        self, region: str | int, nee_cells_monthly: Any, target: Any, days_in_month: Any
    ) -> RegionBridge:
        """Refit one region's bridge by unshrunk least squares on its contributing pixels.

        ``nee_cells_monthly``: (months, len(all_cells)) monthly-mean NEE (gC m-2 d-1) of the
        current model at ``all_cells``; ``target``: (months,) regional integrals (PgC
        month-1) of the same model; ``days_in_month``: (months,). The fit follows
        ``spec``: per-day target (integral / days) or per-month, free intercept or none,
        Σ w = the region's weight sum (``refit="constrained"``; with ``period_total`` also
        the months' total reproduced) or ordinary least squares.
        The contributing pixels stay; the region's bridge is replaced in place
        (``fallback="refit_ols"``, α = 0, r2_cv NaN, R² in the target basis) and returned.
        """
        r = self._region_index(region)
        x_all = _as_numpy(nee_cells_monthly)
        y = _as_numpy(target)
        days = _as_numpy(days_in_month)
        n = self._all_cells.size
        months = (x_all.shape[0],) if x_all.ndim else ()
        if x_all.ndim != 2 or x_all.shape[1] != n or y.shape != months or days.shape != months:
            raise ValueError(
                f"expected nee_cells_monthly (months, {n}), target and days_in_month (months,), "
                f"got {x_all.shape}, {y.shape} and {days.shape}"
            )
        old = self.bridges[r]
        x = x_all[:, np.searchsorted(self._all_cells, old.cells)]
        if not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError(f"region {old.region}: refit inputs contain NaN or inf")
        if self.spec.per_day:
            y = y / days
        weight_sum = None
        if self.spec.refit == "constrained":
            if not np.isfinite(old.land_area):
                raise ValueError(f"region {old.region}: land_area is unknown; cannot constrain")
            weight_sum = self.spec.weight_sum(old.land_area)
        weights, bias = least_squares(
            x,
            y,
            intercept=self.spec.intercept,
            weight_sum=weight_sum,
            period=self.spec.period_weights(days, len(y)),
        )
        resid = y - (x @ weights + bias)
        ss_tot = float(((y - y.mean()) ** 2).sum())
        new = dataclasses.replace(
            old,
            weights=weights,
            bias=bias,
            alpha=0.0,
            r2_train=1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else float("nan"),
            r2_cv=float("nan"),
            fallback="refit_ols",
        )
        self.bridges[r] = new
        self._index_cells()
        return new

    # -- storage ----------------------------------------------------------------------------

    def to_dataset(self) -> xr.Dataset:
        """CF dataset of the set (ragged ``contrib`` layout)."""
        per = {
            name: np.concatenate([getattr(br, name) for br in self.bridges] or [np.empty(0)])
            for name in ("cells", "ilat", "ilon", "lat", "lon", "weights")
        }
        contrib_region = np.concatenate(
            [np.full(len(br.cells), r, dtype=np.int64) for r, br in enumerate(self.bridges)]
            or [np.empty(0, np.int64)]
        )

        def scalar(name: str) -> np.ndarray:
            return np.array([getattr(br, name) for br in self.bridges], dtype=np.float64)

        data_vars: dict[str, Any] = {
            "region_abbr": ("region", np.array(self.regions, dtype=object)),
            "bias": (
                "region",
                scalar("bias"),
                {"units": self.spec.target_units, "long_name": carbon_long_name("bridge bias")},
            ),
            "land_area": (
                "region",
                scalar("land_area"),
                {"units": "m2", "long_name": "land area of the region (sets the weight sum)"},
            ),
            "alpha": (
                "region",
                scalar("alpha"),
                {
                    "units": self.spec.target_units,
                    "long_name": carbon_long_name(
                        "Lasso alpha (scikit-learn convention, unit-scale pixel series)"
                    ),
                },
            ),
            "r2_train": (
                "region",
                scalar("r2_train"),
                {"units": "1", "long_name": "R2 of the bridge on the training months"},
            ),
            "r2_cv": (
                "region",
                scalar("r2_cv"),
                {"units": "1", "long_name": "R2 of pooled out-of-fold predictions (k-fold CV)"},
            ),
            "fallback": (
                "region",
                np.array([br.fallback for br in self.bridges], dtype=object),
                {"long_name": "how the bridge was built", "flag_values": " ".join(FALLBACKS)},
            ),
            "contrib_region": (
                "contrib",
                contrib_region,
                {"long_name": "index into region of each contributing pixel"},
            ),
            "contrib_cell": (
                "contrib",
                per["cells"].astype(np.int64),
                {"long_name": "index into the canonical land-cell dimension of drivers.nc"},
            ),
            "contrib_ilat": ("contrib", per["ilat"].astype(np.int64), {"long_name": "lat index"}),
            "contrib_ilon": ("contrib", per["ilon"].astype(np.int64), {"long_name": "lon index"}),
            "contrib_lat": (
                "contrib",
                per["lat"],
                {"units": "degrees_north", "standard_name": "latitude"},
            ),
            "contrib_lon": (
                "contrib",
                per["lon"],
                {"units": "degrees_east", "standard_name": "longitude"},
            ),
            "weight": (
                "contrib",
                per["weights"].astype(np.float64),
                {
                    "units": self.spec.weight_units,
                    "long_name": carbon_long_name("bridge weight of the pixel's monthly-mean NEE"),
                },
            ),
        }
        if self.inclusion_frequency is not None:
            data_vars["inclusion_frequency"] = (
                ("lat", "lon"),
                np.asarray(self.inclusion_frequency, dtype=np.float64),
                {
                    "units": "1",
                    "long_name": "fraction of robustness runs in which the pixel is contributing",
                },
            )
        coords = {
            "lat": ("lat", self.lat, {"units": "degrees_north", "standard_name": "latitude"}),
            "lon": ("lon", self.lon, {"units": "degrees_east", "standard_name": "longitude"}),
        }
        attrs = {
            "title": "fluxbridge regional bridge models",
            "n_cells": self.n_cells,
            **self.attrs,
            "weights_basis": "per_day" if self.spec.per_day else "per_month",
            "fit_intercept": int(self.spec.intercept),
            "refit": self.spec.refit,
            "period_total": int(self.spec.period_total),
        }
        return xr.Dataset(data_vars, coords=coords, attrs=attrs)

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write ``bridges.nc`` atomically (refuses to replace a file unless ``overwrite``)."""
        return write_netcdf(
            self.to_dataset(), path, action="bridge models", overwrite=overwrite, compress=False
        )

    @classmethod
    def load(cls, path: str | Path) -> BridgeSet:
        """Read a ``bridges.nc`` written by :meth:`save`."""
        path = Path(path)
        with open_netcdf(path) as ds:
            ds.load()
        required = (
            "region_abbr",
            "bias",
            "land_area",
            "alpha",
            "r2_train",
            "r2_cv",
            "fallback",
            "contrib_region",
            "contrib_cell",
            "contrib_ilat",
            "contrib_ilon",
            "contrib_lat",
            "contrib_lon",
            "weight",
        )
        for name in required:
            if name not in ds.variables:
                raise SchemaError(path, name, "missing; not a bridges.nc written by fluxbridge")
        if "n_cells" not in ds.attrs:
            raise SchemaError(path, "n_cells", "missing global attribute")
        spec = _read_spec(path, ds.attrs)
        owner = ds["contrib_region"].values
        bridges = []
        for r, abbr in enumerate(ds["region_abbr"].values):
            sel = owner == r
            bridges.append(
                RegionBridge(
                    region=str(abbr),
                    cells=ds["contrib_cell"].values[sel].astype(np.int64),
                    ilat=ds["contrib_ilat"].values[sel].astype(np.int64),
                    ilon=ds["contrib_ilon"].values[sel].astype(np.int64),
                    lat=ds["contrib_lat"].values[sel],
                    lon=ds["contrib_lon"].values[sel],
                    weights=ds["weight"].values[sel].astype(np.float64),
                    bias=float(ds["bias"].values[r]),
                    alpha=float(ds["alpha"].values[r]),
                    r2_train=float(ds["r2_train"].values[r]),
                    r2_cv=float(ds["r2_cv"].values[r]),
                    land_area=float(ds["land_area"].values[r]),
                    fallback=str(ds["fallback"].values[r]),
                )
            )
        freq = ds["inclusion_frequency"].values if "inclusion_frequency" in ds else None
        skip = {"n_cells", "Conventions", "history", "title", *SPEC_ATTRS}
        attrs = {k: v for k, v in ds.attrs.items() if k not in skip}
        try:
            return cls(
                bridges,
                ds["lat"].values,
                ds["lon"].values,
                int(ds.attrs["n_cells"]),
                freq,
                attrs,
                spec,
            )
        except ValueError as exc:
            raise SchemaError(path, None, f"inconsistent bridge file ({exc})") from exc


SPEC_ATTRS = ("weights_basis", "fit_intercept", "refit", "period_total")


def _read_spec(path: Path, attrs: dict[str, Any]) -> FitSpec:
    """The FitSpec of a bridges.nc from its attributes (one-line SchemaError if absent)."""
    basis = attrs.get("weights_basis")
    if basis is None:
        raise SchemaError(
            path,
            "weights_basis",
            "missing global attribute: the file predates per-day bridge weights; "
            "rebuild it with `invoke bridges`",
        )
    if basis not in BASES:
        raise SchemaError(path, "weights_basis", f"{basis!r} is not one of {sorted(BASES)}")
    refit = str(attrs.get("refit", ""))
    if refit not in ("constrained", "none") or "fit_intercept" not in attrs:
        raise SchemaError(
            path,
            "refit",
            f"need attributes refit (constrained|none) and fit_intercept, got {refit!r}",
        )
    return FitSpec(
        intercept=bool(int(attrs["fit_intercept"])),
        per_day=BASES[basis],
        refit=refit,  # type: ignore[arg-type]
        # files written before the period-total constraint were fitted without it
        period_total=bool(int(attrs.get("period_total", 0))),
    )


def _as_numpy(values: Any) -> np.ndarray:
    if type(values).__module__.startswith("torch"):
        values = values.detach().cpu().numpy()
    return np.asarray(values, dtype=np.float64)


def bridge_inputs(data: Path) -> dict[str, str]:
    """What bridges are fitted on: sha256 of the dataset's grid.nc and reference.nc."""
    return {name: file_digest(Path(data) / name) for name in ("grid.nc", "reference.nc")}
