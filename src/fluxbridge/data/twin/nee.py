"""The true NEE of the twin world: Reco − GPP + a component no driver explains.

* GPP = LUE · fAPAR · 0.48 Rg · f(T) · f(W): light-use efficiency per PFT (gC per MJ of
  absorbed PAR), a Gaussian temperature response around the PFT optimum that shuts
  down below ~−2 °C, and a linear water limitation below 40 % of the bucket capacity.
* Reco = Ra + Rh: autotrophic respiration is half of GPP; heterotrophic respiration
  follows Q10 around 15 °C and a soil-moisture limit. Its base rate is calibrated per
  cell so that, over the whole run, Reco = (1 − sink_fraction) · GPP: the land is a
  net sink of that share of its GPP, and weather, ENSO and droughts move it year to
  year.
* The unexplained part: a spatially and temporally correlated random field (no driver
  carries it), zero on barren land.

All fluxes in gC m-2 d-1, NEE positive = source.
"""

from __future__ import annotations

import numpy as np

AUTOTROPHIC_SHARE = 0.5
PAR_SHARE = 0.48


def gpp(
    fapar: np.ndarray, rg: np.ndarray, tair: np.ndarray, water: np.ndarray, traits: dict
) -> np.ndarray:
    """Gross primary production (gC m-2 d-1, ≥ 0)."""
    f_t = np.exp(-(((tair - traits["t_opt"]) / 14.0) ** 2)) * np.clip((tair + 2.0) / 6.0, 0, 1)
    f_w = np.clip(water / (0.4 * traits["capacity"]), 0.0, 1.0)
    return traits["lue"] * fapar * PAR_SHARE * rg * f_t * f_w


def respiration(
    gross: np.ndarray, tair: np.ndarray, water: np.ndarray, traits: dict, sink_fraction: float
) -> np.ndarray:
    """Ecosystem respiration (gC m-2 d-1), calibrated per cell over the run (axis 0 = day)."""
    shape = traits["q10"] ** ((tair - 15.0) / 10.0) * (
        0.25 + 0.75 * np.clip(water / (0.3 * traits["capacity"]), 0.0, 1.0)
    )
    target = (1.0 - AUTOTROPHIC_SHARE - sink_fraction) * gross.sum(axis=0)
    base = np.divide(target, shape.sum(axis=0), out=np.zeros_like(target), where=target > 0)
    return AUTOTROPHIC_SHARE * gross + base * shape
