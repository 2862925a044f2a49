"""Beacon: event-driven missing-child alert service."""

__version__ = "0.1.0"
