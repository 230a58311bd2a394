"""How wrong a twin world's inversions are: per region and for the globe (sum of regions).

``python -m fluxbridge.data.twin.inversion_errors DATASET...`` prints a Markdown table
with, per RECCAP2 region (then TROPICS and NORTH, the two sides of the dipole, and
GLOBAL, the sum of the 18 regions), for each dataset: the ensemble mean's mean annual
error against the truth (PgC yr-1, positive = the inversions put a source where the
truth has less), the RMSE of its monthly error (PgC month-1) and the member spread
(standard deviation across members of each year's integral, averaged over the
years, PgC yr-1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import xarray as xr

from fluxbridge.data.canonical import open_canonical

from .figures import regional_integrals
from .inversions import DIPOLE_NORTH, DIPOLE_TROPICS


def error_table(truth: xr.DataArray, members: xr.DataArray) -> list[dict[str, object]]:
    """Rows (one per region, then the region groups and GLOBAL) of the error statistics.

    ``truth`` is (time, region) and ``members`` (member, time, region), both PgC month-1.
    """
    abbrs = [str(a) for a in truth["region_abbr"].values]
    groups = {
        **{a: [a] for a in abbrs},
        "TROPICS": list(DIPOLE_TROPICS),
        "NORTH": list(DIPOLE_NORTH),
        "GLOBAL": abbrs,
    }
    rows = []
    for name, regions in groups.items():
        idx = [abbrs.index(a) for a in regions]
        t = truth.isel(region=idx).sum("region")
        m = members.isel(region=idx).sum("region")
        error = m.mean("member") - t
        annual_error = error.groupby("time.year").sum().mean("year")
        spread = m.groupby("time.year").sum().std("member", ddof=1).mean("year")
        rows.append(
            {
                "region": name,
                "annual_error": float(annual_error),
                "monthly_rmse": float(np.sqrt((error**2).mean("time"))),
                "member_spread": float(spread),
                "truth_annual": float(t.groupby("time.year").sum().mean("year")),
            }
        )
    return rows


def markdown(tables: dict[str, list[dict[str, object]]]) -> str:
    """One Markdown table: the truth, then error, RMSE and spread of each named table."""
    names = list(tables)
    head = "| region | truth (PgC/yr) |" + "".join(
        f" {n}: mean error (PgC/yr) | {n}: monthly RMSE (PgC/month) | {n}: spread (PgC/yr) |"
        for n in names
    )
    lines = [head, "|---|---|" + "---|---|---|" * len(names)]
    for i, row in enumerate(tables[names[0]]):
        cells = [f"{row['region']}", f"{row['truth_annual']:.3f}"]
        for n in names:
            r = tables[n][i]
            cells += [f"{r['annual_error']:+.3f}", f"{r['monthly_rmse']:.3f}",
                      f"{r['member_spread']:.3f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def dataset_table(root: Path) -> list[dict[str, object]]:
    """The rows of :func:`error_table` for the canonical dataset at ``root``."""
    ds = open_canonical(root, validate=False)
    grid = ds.grid_ds
    truth = regional_integrals(ds.open("truth")["nee"], grid)
    truth = truth.assign_coords(region_abbr=("region", grid["region_abbr"].values))
    return error_table(truth, regional_integrals(ds.open("inversions")["nee"], grid))


def main(argv: list[str]) -> int:
    """Print one table for the datasets ``argv`` (columns named by each folder)."""
    print(markdown({Path(a).name: dataset_table(Path(a)) for a in argv}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
