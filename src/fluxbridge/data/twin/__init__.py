"""The twin world: an observing system simulation experiment with a known true NEE.

``run_twin(scenario, out, force)`` writes a canonical dataset (docs/canonical_dataset.md)
from a scenario YAML (docs/twin_world.md), with the truth in ``truth.nc``.
"""

from .build import run_twin

__all__ = ["run_twin"]
