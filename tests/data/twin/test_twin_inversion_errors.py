"""The inversion-error table against statistics computed by hand."""

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from fluxbridge.data.twin.inversion_errors import error_table, markdown
from fluxbridge.data.twin.scenario import REGION_ABBRS


def test_error_table_by_hand():
    time = pd.date_range("2001-01-01", "2002-12-01", freq="MS")
    truth = xr.DataArray(np.zeros((24, 18)), dims=("time", "region"), coords={"time": time})
    truth = truth.assign_coords(region_abbr=("region", list(REGION_ABBRS)))
    members = np.zeros((2, 24, 18))
    usa = REGION_ABBRS.index("USA")
    members[0, :, usa] = 0.01  # member 1: +0.12 PgC/yr every year
    members[1, :12, usa] = 0.03  # member 2: +0.36 in 2001, 0 in 2002
    rows = error_table(truth, xr.DataArray(members, dims=("member", "time", "region"),
                                           coords={"time": time}))  # fmt: skip
    row = {r["region"]: r for r in rows}
    # Ensemble mean: 0.02 PgC/month in 2001, 0.005 in 2002 → annual 0.24 and 0.06.
    assert row["USA"]["annual_error"] == pytest.approx((0.24 + 0.06) / 2)
    assert row["USA"]["monthly_rmse"] == pytest.approx(np.sqrt((0.02**2 + 0.005**2) / 2))
    # Spread: std (ddof 1) of {0.12, 0.36} = 0.1697 in 2001, of {0.12, 0} = 0.0849 in 2002.
    spread = (np.std([0.12, 0.36], ddof=1) + np.std([0.12, 0.0], ddof=1)) / 2
    assert row["USA"]["member_spread"] == pytest.approx(spread)
    assert row["GLOBAL"]["annual_error"] == pytest.approx(0.15)
    assert row["NORTH"]["annual_error"] == pytest.approx(0.15)
    assert row["TROPICS"]["annual_error"] == 0.0 and row["CAN"]["member_spread"] == 0.0
    assert "| USA | 0.000 | +0.150 |" in markdown({"x": rows})
