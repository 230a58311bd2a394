"""Inversion-ensemble analysis over a country and its sub-regions (He et al. 2023).

``run.run_analyze(config)`` is the entry point of ``invoke analyze``; see
docs/ensemble_analysis.md for the configuration and every output.
"""
