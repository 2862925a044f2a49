"""Events the published schema or the deployment's date window forbids, and the field each
one must be refused for: every door (HTTP, the validator on beacon.events.raw, the import
CLI) gets the same list."""

from __future__ import annotations

import copy
from typing import Any

from beacon.core.schemas import example_event

REPORTED = "beacon.episode.reported.v1"


def _reported(index: int, path: str, value: Any) -> dict[str, Any]:
    event = copy.deepcopy(example_event(REPORTED))
    event["id"] = f"met-fbd-{index:03d}"
    target = event
    *parents, leaf = path.split("/")
    for part in parents:
        target = target[part]
    target[leaf] = value
    return event


# (field, value): each breaks the schema (wrong JSON type) or the date window.
PROBES: list[tuple[str, Any]] = [
    ("time", 1796000000),
    ("time", "1796000000"),
    ("time", "2026-11-20 22:05:00Z"),
    ("data/age_years", "14"),
    ("data/age_years", True),
    ("data/age_years", 14.5),
    ("data/looked_after", "yes"),
    ("data/looked_after", 1),
    ("data/looked_after", "true"),
    ("data/started_at", "0001-01-01T00:00:00Z"),
    ("data/started_at", "9999-12-31T23:59:59-12:00"),
    ("data/started_at", "1989-12-31T23:59:59Z"),
    ("data/started_at", "2999-01-01T00:00:00Z"),
]
SCHEMA_PROBES = PROBES[:9]  # the ones the JSON Schema itself refuses (the rest: the date window)


def forbidden_events() -> list[tuple[str, dict[str, Any]]]:
    """(the field it must be refused for, the event)."""
    return [(path, _reported(i, path, value)) for i, (path, value) in enumerate(PROBES)]
