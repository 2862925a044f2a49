"""Module holding the validator's Faust app, for ``python -m beacon validator``."""

from beacon.ingest.validator import build_app

app = build_app()
