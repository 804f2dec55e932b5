"""Fuzz targets for perimeterdb's parsers: shared by the atheris drivers here and tests/fuzz (Hypothesis)."""
