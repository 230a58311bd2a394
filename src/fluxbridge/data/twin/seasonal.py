"""Calendar of the twin world and the seasonal operators of Upton et al. Table A2.

Pure functions on numpy arrays whose first axis is time (days or months):

* :func:`msc` — mean seasonal cycle: the mean over a base period of every
  day-of-year slot (365 slots; 29 February shares the slot of 28 February);
* :func:`expand` — an MSC back onto a daily axis;
* :func:`amplitude` — max − min of an MSC; :func:`minimum` — min of an MSC;
* :func:`annual_amplitude` — max − min of monthly means within each calendar year.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

N_SLOTS = 365


def day_slots(days: pd.DatetimeIndex) -> np.ndarray:
    """Day-of-year slot 0..364 of each day; 29 Feb maps to 28 Feb's slot (58)."""
    doy = days.day_of_year.to_numpy() - 1
    late_leap = days.is_leap_year & (doy >= 59)  # 29 Feb and later
    return np.where(late_leap, doy - 1, doy).astype(np.int64)


def msc(values: np.ndarray, slots: np.ndarray, base: np.ndarray, window: int = 1) -> np.ndarray:
    """Mean seasonal cycle (365, ...) of daily ``values`` (days, ...).

    ``slots`` are :func:`day_slots`; ``base`` is a boolean mask of the days in the
    base period. With ``window`` > 1 the cycle is smoothed by a circular running mean
    of that many slots (odd windows are centred).
    """
    sums = np.zeros((N_SLOTS, *values.shape[1:]))
    np.add.at(sums, slots[base], values[base])
    counts = np.bincount(slots[base], minlength=N_SLOTS).astype(np.float64)
    if (counts == 0).any():
        raise ValueError("the base period must cover every day of the year")
    cycle = sums / counts.reshape((N_SLOTS,) + (1,) * (values.ndim - 1))
    if window <= 1:
        return cycle
    half = window // 2
    padded = np.concatenate([cycle[-half:], cycle, cycle[: window - 1 - half]], axis=0)
    csum = np.cumsum(padded, axis=0)
    csum = np.concatenate([np.zeros((1, *cycle.shape[1:])), csum], axis=0)
    return (csum[window:] - csum[:-window]) / window


def expand(cycle: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """Daily series (days, ...) repeating a (365, ...) cycle by slot."""
    return cycle[slots]


def amplitude(cycle: np.ndarray) -> np.ndarray:
    """Amplitude (max − min over the first axis) of a seasonal cycle."""
    return cycle.max(axis=0) - cycle.min(axis=0)


def minimum(cycle: np.ndarray) -> np.ndarray:
    """Minimum over the first axis of a seasonal cycle."""
    return cycle.min(axis=0)


def monthly_means(values: np.ndarray, month_index: np.ndarray) -> np.ndarray:
    """Means (months, ...) of daily ``values`` over consecutive months (``month_index`` 0..)."""
    starts = np.flatnonzero(np.r_[True, np.diff(month_index) != 0])
    sums = np.add.reduceat(values, starts, axis=0)
    return sums / np.diff(np.r_[starts, len(month_index)]).reshape((-1,) + (1,) * (values.ndim - 1))


def annual_amplitude(monthly: np.ndarray, year_index: np.ndarray) -> np.ndarray:
    """max − min of monthly values within each year: (years, ...) for ``year_index`` 0.. ."""
    n_years = int(year_index.max()) + 1
    return np.stack([amplitude(monthly[year_index == y]) for y in range(n_years)])


@dataclass(frozen=True)
class Calendar:
    """Days and months of a scenario, with the index arrays the operators need."""

    days: pd.DatetimeIndex
    months: pd.DatetimeIndex
    slots: np.ndarray  # (days,) day-of-year slot
    month_of_day: np.ndarray  # (days,) 0-based month number
    year_of_day: np.ndarray  # (days,) 0-based year number
    year_of_month: np.ndarray  # (months,) 0-based year number
    base: np.ndarray  # (days,) True inside the MSC base period

    @classmethod
    def for_years(cls, first: int, last: int, base: tuple[int, int]) -> Calendar:
        days = pd.date_range(f"{first}-01-01", f"{last}-12-31", freq="D")
        months = pd.date_range(f"{first}-01-01", f"{last}-12-01", freq="MS")
        year = days.year.to_numpy()
        return cls(
            days=days,
            months=months,
            slots=day_slots(days),
            month_of_day=(year - first) * 12 + days.month.to_numpy() - 1,
            year_of_day=year - first,
            year_of_month=months.year.to_numpy() - first,
            base=(year >= base[0]) & (year <= base[1]),
        )

    @property
    def years(self) -> np.ndarray:
        return np.unique(self.days.year.to_numpy())

    @property
    def days_in_month(self) -> np.ndarray:
        return self.months.days_in_month.to_numpy().astype(np.float64)


def monthly_cycle(monthly: np.ndarray, months: pd.DatetimeIndex) -> np.ndarray:
    """Mean seasonal cycle (12, ...) of monthly values, January first."""
    month = months.month.to_numpy() - 1
    return np.stack([monthly[month == m].mean(axis=0) for m in range(12)])
