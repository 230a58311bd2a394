"""How faithfully the bridges report regional integrals of fields they were not fitted on.

For a gridded monthly NEE field (gC m-2 d-1, positive = source) the bridge estimate
of region r (``BridgeSet.apply``: its contributing cells only) is compared with the
exact integral over every cell, Σ nee × cell_area × land_fraction × region_fraction ×
days × 1e-15 (PgC month-1; NaN land cells count as zero, as in the bridges'
targets). Per region (:func:`compare_integrals`, also the decoupling callback's table):

* ``bridge_pgc_yr``, ``exact_pgc_yr``: mean annual totals (PgC yr-1), total over the
  months / number of years;
* ``annual_bias_pgc_yr`` = bridge − exact of those;
* ``monthly_r2`` = 1 − Σ(bridge − exact)² / Σ(exact − mean exact)² over months;
* ``rel_error`` = mean_m |bridge − exact| / mean_m |exact|; ``corr`` = Pearson r.

``write_fidelity`` writes ``RUN/bridges_fidelity.csv`` for the reference field, two
perturbed references (a uniform land offset of :data:`OFFSET` and the latitudinal
gradient :data:`GRADIENT` × sin(lat), which is not constant inside any region), the
twin world's truth when the dataset has one, and any forward runs given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from fluxbridge.bridge.bridgeset import BridgeSet
from fluxbridge.data.canonical import open_canonical
from fluxbridge.geo.integrate import regional_integral_pgc
from fluxbridge.io import ENGINE
from fluxbridge.outputs import atomic_path

OFFSET = 1.0  # gC m-2 d-1 added on every land cell for ``reference+offset``
GRADIENT = 1.0  # gC m-2 d-1 × sin(lat) added for ``reference+gradient``
COLUMNS = (
    "field",
    "region",
    "bridge_pgc_yr",
    "exact_pgc_yr",
    "annual_bias_pgc_yr",
    "monthly_r2",
    "rel_error",
    "corr",
    "n_months",
)


def compare_integrals(
    regions: list[str], exact: np.ndarray, bridge: np.ndarray, n_years: float
) -> pd.DataFrame:
    """Per-region comparison of (region, month) exact and bridge integrals (PgC month-1).

    ``n_years`` divides the totals over the months into mean annual totals (PgC yr-1).
    """
    exact, bridge = np.asarray(exact, np.float64), np.asarray(bridge, np.float64)
    if exact.shape != bridge.shape or exact.ndim != 2 or exact.shape[0] != len(regions):
        raise ValueError(
            f"expected exact and bridge of shape ({len(regions)}, months), "
            f"got {exact.shape} and {bridge.shape}"
        )
    diff = bridge - exact
    scale = np.abs(exact).mean(axis=1)
    ss_tot = ((exact - exact.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    corr = [
        float(np.corrcoef(e, b)[0, 1]) if e.std() > 0 and b.std() > 0 else float("nan")
        for e, b in zip(exact, bridge, strict=True)
    ]
    return pd.DataFrame(
        {
            "region": regions,
            "bridge_pgc_yr": bridge.sum(axis=1) / n_years,
            "exact_pgc_yr": exact.sum(axis=1) / n_years,
            "annual_bias_pgc_yr": diff.sum(axis=1) / n_years,
            "monthly_r2": 1.0 - (diff**2).sum(axis=1) / np.where(ss_tot > 0, ss_tot, np.nan),
            "rel_error": np.abs(diff).mean(axis=1) / np.where(scale > 0, scale, np.nan),
            "corr": corr,
            "n_months": exact.shape[1],
        }
    )


def exact_integrals(bset: BridgeSet, nee: xr.DataArray, grid_ds: xr.Dataset) -> xr.DataArray:
    """(region, time) exact integrals (PgC month-1) of ``nee`` over the bridges' regions."""
    abbrs = [str(a) for a in grid_ds["region_abbr"].values]
    missing = sorted(set(bset.regions) - set(abbrs))
    if missing:
        raise ValueError(f"bridge regions {missing} are not regions of the grid ({abbrs})")
    fraction = grid_ds["region_fraction"].assign_coords(region=abbrs).sel(region=bset.regions)
    return regional_integral_pgc(
        nee, grid_ds["cell_area"], grid_ds["land_fraction"], fraction, skipna=True
    )


def fidelity_table(
    bset: BridgeSet, fields: dict[str, xr.DataArray], grid_ds: xr.Dataset
) -> pd.DataFrame:
    """Bridge against exact integral per (field, region); see the module docstring.

    ``fields``: name → (time, lat, lon) monthly-mean NEE in gC m-2 d-1 on the bridges' grid.
    """
    tables = []
    for name, nee in fields.items():
        exact = exact_integrals(bset, nee, grid_ds).transpose("region", "time")
        bridge = bset.apply(nee).transpose("region", "time")
        n_years = nee.sizes["time"] / 12.0
        table = compare_integrals(bset.regions, exact.values, bridge.values, n_years)
        tables.append(table.assign(field=name))
    return pd.concat(tables, ignore_index=True)[list(COLUMNS)]


def perturbed_references(reference: xr.DataArray) -> dict[str, xr.DataArray]:
    """The reference field, + :data:`OFFSET` everywhere, + :data:`GRADIENT` × sin(lat)."""
    gradient = GRADIENT * np.sin(np.deg2rad(reference["lat"]))
    return {
        "reference": reference,
        "reference+offset": reference + OFFSET,
        "reference+gradient": (reference + gradient).transpose(*reference.dims),
    }


def write_fidelity(run: Path, data: Path, models: dict[str, Path] | None = None) -> Path:
    """Write ``RUN/bridges_fidelity.csv`` for RUN/bridges.nc on canonical dataset ``data``.

    ``models``: name → forward file (variable ``nee_mean`` (time, lat, lon)), one
    field each after the reference rows and the truth (when ``data`` has truth.nc).
    """
    run, data = Path(run), Path(data)
    bset = BridgeSet.load(run / "bridges.nc")
    cds = open_canonical(data, validate=False)
    fields = perturbed_references(cds.open("reference")["nee"].load())
    if cds.has("truth"):
        fields["truth"] = cds.open("truth")["nee"].load()
    for name, path in (models or {}).items():
        with xr.open_dataset(path, engine=ENGINE) as ds:
            fields[name] = ds["nee_mean"].load()
    table = fidelity_table(bset, fields, cds.grid_ds)
    out = run / "bridges_fidelity.csv"
    with atomic_path(out, overwrite=True) as tmp:
        table.to_csv(tmp, index=False, float_format="%.6g")
    return out
