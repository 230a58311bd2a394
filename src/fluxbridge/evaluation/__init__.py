"""Evaluation: metrics, regional series, model-vs-reference comparisons, reports."""
