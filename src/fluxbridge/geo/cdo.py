"""Regional monthly integrals computed by CDO, for cross-checks in tests and benchmarks.

CDO stays an optional, external reference: nothing in the pipeline calls it.
"""

from __future__ import annotations

import subprocess

import numpy as np

#: gC m-2 d-1 × weights (m2) → fldsum → × days in month → × 1e-15: PgC month-1.
INTEGRAL_OPERATORS = ("-s", "-outputf,%.17g,1", "-mulc,1e-15", "-muldpm", "-fldsum")


def cdo_integral_args(*operands: str) -> list[str]:
    """CDO arguments (without the program name) integrating ``operands`` to PgC month-1.

    ``operands`` is the rest of the chain that yields NEE × area weights, e.g.
    ``("-mul", "nee.nc", "weights.nc")``.
    """
    return [*INTEGRAL_OPERATORS, *operands]


def cdo_monthly_integral_pgc(*operands: str) -> np.ndarray:
    """Run CDO on :func:`cdo_integral_args` and return one value per time step (PgC month-1)."""
    out = subprocess.run(
        ["cdo", *cdo_integral_args(*operands)], check=True, capture_output=True, text=True
    ).stdout
    return np.array([float(v) for v in out.split()])
