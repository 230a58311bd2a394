"""The oracle for DriverRange's summaries: a block's statistics taken the plain way."""

from __future__ import annotations

import numpy as np

from fluxbridge.plausibility import DriverRange


def add_block(stats: DriverRange, block: np.ndarray) -> None:
    """Add a block of drivers (..., driver) with plain numpy min, max and comparisons."""
    flat = block.reshape(-1, len(stats.names))
    stats.minimum = np.minimum(stats.minimum, flat.min(axis=0))
    stats.maximum = np.maximum(stats.maximum, flat.max(axis=0))
    stats.outside += ((flat < stats.low) | (flat > stats.high)).sum(axis=0)
    stats.n += flat.shape[0]
