"""fluxbridge: eddy-covariance + atmospheric-inversion constrained NEE upscaling.

Conventions kept everywhere (see docs/canonical_dataset.md):
NEE in gC m-2 d-1 at pixel level, positive = flux to the atmosphere (source);
regional integrals in PgC month-1 or PgC yr-1.
"""

__version__ = "0.1.0"
