"""Drivers from public products (ERA5, MODIS) on the canonical grid."""
