"""Real-data preparation: the canonical dataset from the products of the data manifest.

``invoke prepare --config configs/prepare/upton2024.yaml --out data/upton2024``
calls :func:`run_prepare`; docs/real_data.md lists what to fetch first.
"""

from fluxbridge.data.prepare.run import run_prepare

__all__ = ["run_prepare"]
