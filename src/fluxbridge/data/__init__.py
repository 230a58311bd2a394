"""Data: manifest and fetch, readers for real products, the canonical schema, the twin world."""
