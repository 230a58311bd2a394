"""WAI bucket and Priestley–Taylor PET against hand-computed few-day series."""

from __future__ import annotations

import numpy as np
import pytest

from fluxbridge.data.public.water import (
    BucketParameters,
    BucketState,
    priestley_taylor_pet,
    run_bucket,
    spin_up,
)

PARAMS = BucketParameters(capacity_mm=100.0, melt_mm_per_degc_day=3.0, spinup_years=2)


def _col(values: list[float]) -> np.ndarray:
    return np.array(values, dtype=np.float64)[:, None]


def test_pet_by_hand() -> None:
    # T = 20 °C: e° = 0.6108 exp(17.27·20/257.3) = 2.3383 kPa; Δ = 4098·2.3383/257.3² =
    # 0.144740 kPa/°C; γ = 0.0673645; Rn = 0.6·20 = 12 MJ m-2 d-1;
    # PET = 1.26 · 0.682398 · 12/2.45 = 4.21138 mm d-1.
    pet = priestley_taylor_pet(np.array([20.0]), np.array([20.0]), PARAMS)
    assert pet[0] == pytest.approx(4.21138, rel=2e-5)
    # No radiation, no PET; negative Rg (packing noise) counts as none.
    assert priestley_taylor_pet(np.array([-1.0]), np.array([20.0]), PARAMS)[0] == 0.0


def test_three_days_by_hand() -> None:
    # W0 = 50, P = 10, 0, 0, PET = 4 each day, warm:
    # day 1: S = 60,     E = 4·0.6     = 2.4,     W = 57.6
    # day 2: S = 57.6,   E = 4·0.576   = 2.304,   W = 55.296
    # day 3: S = 55.296, E = 4·0.55296 = 2.21184, W = 53.08416
    state = BucketState(np.array([50.0]), np.array([0.0]))
    wai, end = run_bucket(_col([10, 0, 0]), _col([4, 4, 4]), _col([15, 15, 15]), state, PARAMS)
    np.testing.assert_allclose(wai[:, 0], [57.6, 55.296, 53.08416])
    assert end.water[0] == pytest.approx(53.08416)
    assert state.water[0] == 50.0  # the input state is not modified


def test_overflow_and_snow_by_hand() -> None:
    # W0 = 95: day 1 rain 20 fills the bucket (15 mm run off), S = 100, E = 2, W = 98.
    # day 2 at −5 °C: 10 mm fall as snow, S = 98, E = 2·0.98 = 1.96, W = 96.04.
    # day 3 at 2 °C: melt = min(10, 3·2) = 6, S = min(100, 96.04+6) = 100, E = 2, W = 98,
    # snow left 4.
    state = BucketState(np.array([95.0]), np.array([0.0]))
    wai, end = run_bucket(_col([20, 10, 0]), _col([2, 2, 2]), _col([10, -5, 2]), state, PARAMS)
    np.testing.assert_allclose(wai[:, 0], [98.0, 96.04, 98.0])
    assert end.snow[0] == pytest.approx(4.0)


def test_dry_bucket_never_negative() -> None:
    state = BucketState(np.array([1.0]), np.array([0.0]))
    wai, _ = run_bucket(_col([0] * 5), _col([500] * 5), _col([30] * 5), state, PARAMS)
    assert (wai >= 0).all()
    assert wai[0, 0] == 0.0  # E = min(S, 500·1/100) = S


def test_spin_up_repeats_the_year() -> None:
    # No rain, PET 10 mm d-1, one-day "year": W = 100·0.9^k after k passes.
    state = spin_up(_col([0]), _col([10]), _col([10]), PARAMS)
    assert state.water[0] == pytest.approx(100 * 0.9**2)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="capacity_mm"):
        BucketParameters(capacity_mm=0)
