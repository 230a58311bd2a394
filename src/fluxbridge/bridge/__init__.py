"""Bridge models: sparse linear links from a few "contributing" pixels to a regional integral.

Pipeline (Upton et al. §3.3.1): DTW distances between the candidate pixels'
monthly NEE series → spectral clustering → stratified random sampling of
candidates → Lasso with a decreasing α until R² reaches a threshold → k-fold
CV; repeated over seeded random draws for robustness. See docs/bridges.md.
"""

from fluxbridge.bridge.bridgeset import BridgeSet, RegionBridge
from fluxbridge.bridge.dtw import dtw_distance_matrix

__all__ = ["BridgeSet", "RegionBridge", "dtw_distance_matrix"]
