"""Random fields with spatial and temporal correlation, evaluable block by block.

A field is f(t, x) = Σ_k a_k(t) φ_k(x): random Fourier features φ_k on the unit
sphere (cos(ω_k·x + b_k), ω_k ~ N(0, 1/ℓ²), giving a Gaussian-like correlation with
length scale ℓ) times unit-variance AR(1) series a_k(t). The few coefficients are drawn
once for the whole world, so any block of cells evaluates to the same numbers whatever
the block size: the twin world streams through cells and stays bitwise deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_MODES = 64


def stream_rng(seed: int, *key: int) -> np.random.Generator:
    """A generator for one named random stream (``key``) of scenario ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


def unit_vectors(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """(n, 3) Cartesian unit vectors of points given in degrees."""
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=1)


def ar1(rng: np.random.Generator, n_steps: int, n_series: int, rho: float) -> np.ndarray:
    """(n_steps, n_series) stationary AR(1) series with unit variance and lag-1 correlation rho."""
    eps = rng.standard_normal((n_steps, n_series))
    out = np.empty_like(eps)
    out[0] = eps[0]
    scale = np.sqrt(1.0 - rho**2)
    for t in range(1, n_steps):
        out[t] = rho * out[t - 1] + scale * eps[t]
    return out


def rho_from_timescale(timescale: float) -> float:
    """Lag-1 correlation of an AR(1) process with e-folding ``timescale`` (in steps)."""
    return float(np.exp(-1.0 / timescale))


@dataclass(frozen=True)
class CorrelatedField:
    """A unit-variance field on (time, cell); evaluate it on any set of cells."""

    omega: np.ndarray  # (K, 3) wave vectors
    phase: np.ndarray  # (K,)
    amplitudes: np.ndarray  # (n_steps, K) AR(1) coefficients

    @classmethod
    def draw(
        cls,
        rng: np.random.Generator,
        n_steps: int,
        length_scale_deg: float,
        rho: float,
        n_modes: int = N_MODES,
    ) -> CorrelatedField:
        omega = rng.standard_normal((n_modes, 3)) / np.deg2rad(length_scale_deg)
        phase = rng.uniform(0.0, 2.0 * np.pi, n_modes)
        return cls(omega, phase, ar1(rng, n_steps, n_modes, rho))

    def basis(self, xyz: np.ndarray) -> np.ndarray:
        """(K, n) spatial features of cells with unit vectors ``xyz`` (n, 3)."""
        k = self.omega.shape[0]
        return np.sqrt(2.0 / k) * np.cos(self.omega @ xyz.T + self.phase[:, None])

    def values(self, xyz: np.ndarray) -> np.ndarray:
        """(n_steps, n) field values at the cells."""
        return self.amplitudes @ self.basis(xyz)
