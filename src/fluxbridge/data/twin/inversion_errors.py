"""How wrong a twin world's inversions are: per region and for the globe (sum of regions).

``python -m fluxbridge.data.twin.inversion_errors DATASET`` prints a Markdown table with,
per RECCAP2 region, the ensemble mean's mean annual error against the truth (PgC yr-1,
positive = the inversions put a source where the truth has less), the RMSE of its
monthly error (PgC month-1) and the member spread (standard deviation across members
of each year's integral, averaged over the years, PgC yr-1).
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


def markdown(rows: list[dict[str, object]]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| region | truth (PgC/yr) | mean error (PgC/yr) | monthly RMSE (PgC/month) "
        "| member spread (PgC/yr) |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['region']} | {r['truth_annual']:.3f} | {r['annual_error']:+.3f} "
            f"| {r['monthly_rmse']:.3f} | {r['member_spread']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Print the table of the canonical dataset ``argv[0]``."""
    ds = open_canonical(Path(argv[0]), validate=False)
    grid = ds.grid_ds
    truth = regional_integrals(ds.open("truth")["nee"], grid)
    members = regional_integrals(ds.open("inversions")["nee"], grid)
    region_abbr = grid["region_abbr"].values
    truth = truth.assign_coords(region_abbr=("region", region_abbr))
    print(markdown(error_table(truth, members)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
