"""The flux network, the losses of EC and EC-ATM, and their LightningModules."""

from fluxbridge.models.modules import ECATMModule, ECModule
from fluxbridge.models.network import BridgeIntegral, ExactIntegral, NEENetwork

__all__ = ["BridgeIntegral", "ECATMModule", "ECModule", "ExactIntegral", "NEENetwork"]
