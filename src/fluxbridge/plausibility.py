"""Physical plausibility at the edges: driver values, global NEE totals, data left out.

Bad units pass every schema check (Tair in K labelled °C, inversions ×1000 or with
their sign flipped) and then give confident nonsense. The bounds below are wide
physical limits, not climatology: a value outside them is a units or sign
mistake, not weather. docs/plausibility.md states them with their reasons;
``allow_implausible`` (``--allow-implausible``) turns the errors into warnings.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fluxbridge import logs
from fluxbridge.data.canonical import CanonicalDataset
from fluxbridge.errors import FluxbridgeError, SchemaError
from fluxbridge.schema import DRIVER_NAMES

log = logs.get(__name__)

#: Physical range of each canonical driver (canonical units, docs/canonical_dataset.md).
DRIVER_BOUNDS: dict[str, tuple[float, float]] = {
    "Tair": (-95.0, 65.0),  # degC; records: -89.2 (Vostok), 56.7 (Death Valley)
    "MSC_LST_Night": (150.0, 350.0),  # K
    "MSC_FparLST": (-1.0, 400.0),  # K (fAPAR 0..1 × LST)
    "WAI2": (-1.0, 5000.0),  # mm of water in the bucket
    "AMP_MSC_WAI": (-1.0, 5000.0),  # mm
    "MSC_EVIRpot": (-50.0, 50.0),  # MJ m-2 d-1 (EVI -1..1 × Rpot <= ~45)
    "Rg_VIMSC": (-50.0, 50.0),  # MJ m-2 d-1 (NDVI -1..1 × Rpot)
    "MIN_MSC_NDWI": (-1.0, 1.0),
    "AMP_Band4": (0.0, 1.0),  # reflectance amplitude
    "AMP_MSC_NDVI": (0.0, 2.0),
}

#: Annual global land NEE, PgC yr-1 (positive = source), that an atmospheric inversion or
#: the residual sink can give: the land sink is 1-4 PgC yr-1 and fire 1.5-2.5 (GCB), so
#: NEE lies near -2 to -6; the bounds leave room for a poor member, not for a units error.
TOP_DOWN_BOUNDS_PGC_YR = (-15.0, 5.0)
#: The same for a bottom-up model: FLUXCOM-type EC upscaling gives -15 to -25 PgC yr-1
#: (Jung et al. 2020), so the bounds are wider.
MODEL_BOUNDS_PGC_YR = (-50.0, 20.0)
#: Below this magnitude (PgC yr-1) two totals of opposite sign are not called a sign error.
SIGN_TOLERANCE_PGC_YR = 0.5
#: Largest share of land cell-months a gridded product may leave without a value.
MAX_GAP_SHARE = 0.05


class ImplausibleError(FluxbridgeError):
    """A value outside its physical bounds (a units or sign mistake)."""


def _fail(message: str, allow: bool) -> None:
    if allow:
        log.warning(f"{message} (allowed by --allow-implausible)")
        return
    raise ImplausibleError(f"{message}; pass --allow-implausible if this is intended")


def check_driver_range(name: str, low: float, high: float, where: str, allow: bool = False) -> None:
    """Refuse a driver whose finite values span [low, high] beyond :data:`DRIVER_BOUNDS`."""
    if name not in DRIVER_BOUNDS or not (np.isfinite(low) and np.isfinite(high)):
        return
    lo, hi = DRIVER_BOUNDS[name]
    if low < lo or high > hi:
        hint = " (kelvin labelled degC?)" if name == "Tair" and high > hi else ""
        _fail(
            f"{where}, variable {name!r}: values {low:.4g}..{high:.4g} outside the physical "
            f"range {lo:g}..{hi:g}{hint}",
            allow,
        )


def check_drivers(values: Mapping[str, np.ndarray], where: str, allow: bool = False) -> None:
    """:func:`check_driver_range` on each driver's finite values."""
    for name, array in values.items():
        finite = np.asarray(array)[np.isfinite(array)]
        if finite.size:
            check_driver_range(name, float(finite.min()), float(finite.max()), where, allow)


def check_global_total(
    what: str, pgc_yr: float, bounds: tuple[float, float], allow: bool = False
) -> None:
    """Refuse an annual global NEE (PgC yr-1, + = source) outside ``bounds`` or not finite."""
    lo, hi = bounds
    if not np.isfinite(pgc_yr):
        _fail(f"{what}: global NEE has no value (NaN: every value missing?)", allow)
    elif not lo <= pgc_yr <= hi:
        _fail(
            f"{what}: global NEE {pgc_yr:+.4g} PgC/yr outside the plausible {lo:g}..{hi:g} "
            "PgC/yr (units or sign?)",
            allow,
        )


def opposite_signs(a: float, b: float) -> bool:
    """Two global NEE totals (PgC yr-1) of opposite sign, both beyond ``SIGN_TOLERANCE_PGC_YR``."""
    return min(abs(a), abs(b)) > SIGN_TOLERANCE_PGC_YR and np.sign(a) != np.sign(b)


def check_same_sign(what: str, a: float, other: str, b: float, allow: bool = False) -> None:
    """Refuse two global NEE totals (PgC yr-1) of opposite sign when both are clearly non-zero."""
    if opposite_signs(a, b):
        _fail(
            f"{what}: global NEE {a:+.3g} PgC/yr has the opposite sign of {other} "
            f"({b:+.3g} PgC/yr); is its sign convention flipped?",
            allow,
        )


def check_gap_share(what: str, share: float, allow: bool = False) -> None:
    """Refuse a product that leaves more than :data:`MAX_GAP_SHARE` of land cell-months empty."""
    if share > MAX_GAP_SHARE:
        _fail(
            f"{what}: {100 * share:.3g} % of land cell-months have no value (at most "
            f"{100 * MAX_GAP_SHARE:g} % may be filled with 0)",
            allow,
        )


@dataclass(frozen=True)
class Dropped:
    """How much of something was left out, and why: for the log and the report."""

    what: str
    dropped: int
    total: int
    reason: str

    @property
    def share(self) -> float:
        return self.dropped / self.total if self.total else 0.0

    def line(self) -> str:
        return (
            f"{self.dropped:,} of {self.total:,} {self.what} ({100 * self.share:.3g} %) left "
            f"out: {self.reason}"
        )

    def log(self) -> None:
        if self.dropped:
            log.warning(self.line())


def complete_years(days: pd.DatetimeIndex, months: pd.DatetimeIndex) -> tuple[list[int], Dropped]:
    """Years complete in both the daily drivers (``days``) and the monthly inversions
    (``months``): the years the ATM loss can use; and the inversion months left out."""
    per_day = pd.Series(1, index=days.year).groupby(level=0).sum()
    full_days = {int(y) for y, n in per_day.items() if n == 365 + calendar.isleap(int(y))}
    per_month = pd.Series(1, index=months.year).groupby(level=0).sum()
    full_months = {int(y) for y, n in per_month.items() if n == 12}
    years = sorted(full_days & full_months)
    unused = np.isin(months.year, years, invert=True)
    partial = sorted({int(y) for y in months.year[unused]})
    dropped = Dropped(
        "inversion months",
        int(unused.sum()),
        len(months),
        f"year(s) {partial} not complete in both the daily drivers and the monthly inversions",
    )
    return years, dropped


#: Attribute of a product's ``nee`` written by prepare: the share of land cell-months
#: (land-area weighted) the product left empty and prepare set to 0. inversions.nc
#: carries the members' (and fire's) shares as one JSON object under the same name.
FILLED_ATTR = "fluxbridge_filled_land_share"


def filled_shares(data: CanonicalDataset) -> dict[str, float]:
    """Per prepared product, the share of land cell-months set to 0 (:data:`FILLED_ATTR`);
    empty for a dataset not made by prepare (the twin world leaves no gaps)."""
    shares: dict[str, float] = {}
    with data.open("inversions") as inv:
        recorded = inv.attrs.get(FILLED_ATTR)
    if recorded is not None:
        try:
            shares.update({str(k): float(v) for k, v in json.loads(str(recorded)).items()})
        except (ValueError, AttributeError) as err:
            raise SchemaError(
                data.path("inversions"), FILLED_ATTR, f"not a JSON object of shares ({err})"
            ) from err
    if data.has("reference"):
        with data.open("reference") as ref:
            if FILLED_ATTR in ref["nee"].attrs:
                shares["reference"] = float(ref["nee"].attrs[FILLED_ATTR])
    return shares


#: Share of the towers' range added on each side before a driver value counts as
#: outside the training range (the network extrapolates there).
TRAINING_RANGE_MARGIN = 0.1


def column_summary(values: np.ndarray, low: float, high: float) -> tuple[float, float, int]:
    """Min, max of one driver's ``values`` (any shape) and how many lie outside [low, high].

    The same numbers as :meth:`DriverRange.update` takes from a block, in the driver's
    own units, in fewer passes: min and max first, and the two counting passes only
    when [min, max] is not inside [low, high] (most blocks of most drivers). NaN
    propagates to min and max and is never counted as outside. ``low``/``high`` are
    compared in float64 (as ``update`` does), so pass them as numpy float64 or Python
    floats, not float32.
    """
    minimum, maximum = values.min(), values.max()
    low, high = np.float64(low), np.float64(high)
    if minimum >= low and maximum <= high:
        return float(minimum), float(maximum), 0
    outside = np.count_nonzero(values < low) + np.count_nonzero(values > high)
    return float(minimum), float(maximum), int(outside)


@dataclass
class DriverRange:
    """Running per-driver statistics of forward inputs against the towers' (training) range.

    ``low``/``high``: the towers' min/max widened by :data:`TRAINING_RANGE_MARGIN` of the
    range on each side; ``minimum``/``maximum``: of the values seen; ``outside``: how
    many cell-days lay outside [low, high]; ``n``: cell-days seen.
    """

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    minimum: np.ndarray
    maximum: np.ndarray
    outside: np.ndarray
    n: int = 0

    @classmethod
    def of_towers(cls, names: tuple[str, ...], towers: np.ndarray) -> DriverRange:
        """From the towers' drivers ``towers`` (..., driver); NaN ignored."""
        flat = np.asarray(towers, dtype=np.float64).reshape(-1, len(names))
        lo, hi = np.nanmin(flat, axis=0), np.nanmax(flat, axis=0)
        pad = TRAINING_RANGE_MARGIN * (hi - lo)
        k = len(names)
        return cls(
            names, lo - pad, hi + pad, np.full(k, np.inf), np.full(k, -np.inf), np.zeros(k, int)
        )

    def update(self, block: np.ndarray) -> None:
        """Add a block of drivers (..., driver): the plain way, which the tests take as the
        oracle of :meth:`update_summary` and forward.py before issue 14 used
        (``benchmarks/bench_forward_drivers.py`` runs that code as its baseline)."""
        flat = block.reshape(-1, len(self.names))
        self.minimum = np.minimum(self.minimum, flat.min(axis=0))
        self.maximum = np.maximum(self.maximum, flat.max(axis=0))
        self.outside += ((flat < self.low) | (flat > self.high)).sum(axis=0)
        self.n += flat.shape[0]

    def update_summary(
        self, minimum: np.ndarray, maximum: np.ndarray, outside: np.ndarray, n: int
    ) -> None:
        """Add a block of ``n`` cell-days given by its per-driver :func:`column_summary`."""
        self.minimum = np.minimum(self.minimum, minimum)
        self.maximum = np.maximum(self.maximum, maximum)
        self.outside += np.asarray(outside, dtype=self.outside.dtype)
        self.n += n

    def merged(self, other: DriverRange) -> DriverRange:
        return DriverRange(
            self.names,
            self.low,
            self.high,
            np.minimum(self.minimum, other.minimum),
            np.maximum(self.maximum, other.maximum),
            self.outside + other.outside,
            self.n + other.n,
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "names": list(self.names),
                **{
                    key: getattr(self, key).tolist()
                    for key in ("low", "high", "minimum", "maximum", "outside")
                },
                "n": self.n,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> DriverRange:
        data = json.loads(text)
        arrays = {
            key: np.asarray(data[key], dtype=int if key == "outside" else float)
            for key in ("low", "high", "minimum", "maximum", "outside")
        }
        return cls(tuple(data["names"]), n=int(data["n"]), **arrays)

    def check(self, where: str, allow: bool = False) -> dict[str, int]:
        """Physical bounds (error) and the training range (warning with counts).

        Returns the cell-days outside the training range per driver (those > 0).
        """
        for k, name in enumerate(self.names):
            if self.n:
                check_driver_range(name, self.minimum[k], self.maximum[k], where, allow)
        counts = {name: int(c) for name, c in zip(self.names, self.outside, strict=True) if c}
        if counts:
            shown = ", ".join(f"{name} {c:,}" for name, c in counts.items())
            log.warning(
                f"{where}: cell-days outside the towers' driver range (±"
                f"{100 * TRAINING_RANGE_MARGIN:g} %), where the network extrapolates, of "
                f"{self.n:,}: {shown}"
            )
        return counts


def check_dataset(data: CanonicalDataset, *, top_down: bool, allow: bool = False) -> None:
    """The canonical dataset's plausibility, before a stage writes anything.

    The towers' drivers within :data:`DRIVER_BOUNDS` and not NaN on every tower-day
    with NEE; with ``top_down``, the residual sink's and each inversion member's
    annual global NEE (Σ regions) within :data:`TOP_DOWN_BOUNDS_PGC_YR`, the members of
    the residual sink's sign.
    """
    from fluxbridge.geo.integrate import regional_integral_pgc

    path = data.path("sites")
    with data.open("sites") as sites:
        values = {name: sites[name].values for name in DRIVER_NAMES}
        observed = np.isfinite(sites["nee_obs"].values)
        for name, limit in (("site_lat", 90.0), ("site_lon", 180.0)):
            coord = np.asarray(sites[name].values, dtype=np.float64)
            if coord.size and not (np.abs(coord) <= limit).all():
                raise SchemaError(
                    path,
                    name,
                    f"values {np.nanmin(coord):g}..{np.nanmax(coord):g} outside "
                    f"-{limit:g}..{limit:g} (longitudes must be -180..180, not 0..360)",
                )
    check_drivers(values, str(path), allow)
    usable = observed & np.all([np.isfinite(v) for v in values.values()], axis=0)
    if observed.any() and not usable.any():
        empty = [name for name, v in values.items() if not np.isfinite(v[observed]).any()]
        raise FluxbridgeError(
            f"{path}: every tower-day with NEE has a NaN driver (never finite: "
            f"{', '.join(empty) or 'none alone'}); nothing is left to train or score"
        )
    if not top_down:
        return
    sink_path = data.path("residual_sink")
    with data.open("residual_sink") as sink:
        residual = float(sink["nee_global"].mean())
    check_global_total(f"{sink_path}, nee_global", residual, TOP_DOWN_BOUNDS_PGC_YR, allow)
    grid = data.grid_ds
    with data.open("inversions") as inv:
        integral = regional_integral_pgc(
            inv["nee"], grid["cell_area"], grid["land_fraction"], grid["region_fraction"]
        )
    monthly = integral.sum("region", skipna=False)  # Pg per month, + = source
    annual = monthly.groupby("time.year").sum(skipna=False).mean("year")
    where, members = data.path("inversions"), data.inversion_members()
    for member, total in zip(members, annual.transpose("member").values, strict=True):
        what = f"{where}, member {member}"
        check_global_total(what, float(total), TOP_DOWN_BOUNDS_PGC_YR, allow)
        check_same_sign(
            what, float(total), f"the residual sink of {sink_path.name}", residual, allow
        )
