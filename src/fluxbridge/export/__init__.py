"""Exports of a run's outputs in the layouts other tools read (ILAMB: docs/ilamb.md)."""

from fluxbridge.export.ilamb import FORMATS, run_export

__all__ = ["FORMATS", "run_export"]
