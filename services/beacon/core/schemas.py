"""JSON Schema files generated from the event models, each with an example.

``python -m beacon schemas export`` rewrites ``schemas/events/``; the test suite
regenerates them in memory and fails if the committed files differ.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from beacon.core.events import EVENT_TYPES, SCHEMA_BASE_URI, envelope_model

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas" / "events"

_T = "2026-11-20T21:15:00Z"
_ENV = {"specversion": "1.0", "source": "urn:beacon:source:met-police", "subject": "CH-7F3A9C21"}

EXAMPLES: dict[str, dict[str, Any]] = {
    "beacon.episode.reported.v1": {
        "id": "met-evt-000001",
        "time": "2026-11-20T22:05:00Z",
        "data": {
            "episode_ref": "MET-2026-000123",
            "category": "missing",
            "started_at": _T,
            "risk": "high",
            "age_years": 14,
            "looked_after": True,
            "reporting_org": "met-police",
            "placing_council": "southwark",
        },
    },
    "beacon.episode.risk_regraded.v1": {
        "id": "met-evt-000002",
        "time": "2026-11-21T01:00:00Z",
        "data": {
            "episode_ref": "MET-2026-000123",
            "risk": "high",
            "category": "missing",
            "regraded_at": "2026-11-21T01:00:00Z",
        },
    },
    "beacon.episode.sighting.v1": {
        "id": "met-evt-000003",
        "time": "2026-11-21T03:10:00Z",
        "data": {"episode_ref": "MET-2026-000123", "kind": "sighting", "observed_at": "2026-11-21T02:40:00Z"},
    },
    "beacon.episode.found.v1": {
        "id": "met-evt-000004",
        "time": "2026-11-21T09:30:00Z",
        "data": {"episode_ref": "MET-2026-000123", "outcome": "found", "ended_at": "2026-11-21T09:20:00Z"},
    },
    "beacon.episode.safe_and_well_checked.v1": {
        "id": "met-evt-000005",
        "time": "2026-11-21T11:00:00Z",
        "data": {"episode_ref": "MET-2026-000123", "checked_at": "2026-11-21T10:45:00Z"},
    },
    "beacon.return_interview.recorded.v1": {
        "id": "swk-evt-000006",
        "source": "urn:beacon:source:southwark",
        "time": "2026-11-23T15:00:00Z",
        "data": {
            "episode_ref": "MET-2026-000123",
            "status": "declined",
            "recorded_at": "2026-11-23T14:30:00Z",
            "reason": "Young person declined; offer repeated by independent worker.",
        },
    },
    "beacon.strategy_discussion.recorded.v1": {
        "id": "swk-evt-000007",
        "source": "urn:beacon:source:southwark",
        "time": "2026-11-21T12:00:00Z",
        "data": {"status": "requested", "recorded_at": "2026-11-21T12:00:00Z", "episode_ref": "MET-2026-000123"},
    },
    "beacon.cse.screened.v1": {
        "id": "swk-evt-000008",
        "source": "urn:beacon:source:southwark",
        "time": "2026-11-02T10:00:00Z",
        "data": {"level": "medium", "screened_at": "2026-11-02T09:30:00Z", "disclosure": False},
    },
    "beacon.placement.changed.v1": {
        "id": "swk-evt-000009",
        "source": "urn:beacon:source:southwark",
        "time": "2026-10-01T09:00:00Z",
        "data": {
            "change": "admission",
            "effective_at": "2026-10-01T09:00:00Z",
            "placing_council": "southwark",
            "host_council": "kent-cc",
            "looked_after": True,
        },
    },
    "beacon.allocation.changed.v1": {
        "id": "swk-evt-000010",
        "source": "urn:beacon:source:southwark",
        "time": "2026-10-02T09:00:00Z",
        "data": {
            "status": "allocated",
            "effective_at": "2026-10-02T09:00:00Z",
            "worker_ref": "SW-0042",
            "team": "southwark-cla-1",
        },
    },
    "beacon.episode.corrected.v1": {
        "id": "met-evt-000011",
        "time": "2026-11-22T08:00:00Z",
        "data": {
            "episode_ref": "MET-2026-000123",
            "corrected_at": "2026-11-22T08:00:00Z",
            "started_at": "2026-11-20T20:45:00Z",
        },
    },
    "beacon.child_rescue_alert.activated.v1": {
        "id": "met-evt-000012",
        "time": "2026-11-20T23:00:00Z",
        "data": {"episode_ref": "MET-2026-000123", "activated_at": "2026-11-20T23:00:00Z"},
    },
}


def example_event(event_type: str) -> dict[str, Any]:
    """A complete, valid example event of the given type: a fresh copy, so a caller that edits it
    (a test setting ``data.started_at``) cannot change the published schema's example."""
    return copy.deepcopy({**_ENV, "type": event_type, "datacontenttype": "application/json", **EXAMPLES[event_type]})


def schema_for(event_type: str) -> dict[str, Any]:
    schema = envelope_model(event_type).model_json_schema()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE_URI}{event_type}.json",
        **schema,
        "examples": [example_event(event_type)],
    }


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def all_schemas() -> dict[str, str]:
    """File name -> rendered JSON Schema, for every event type."""
    return {f"{t}.json": render(schema_for(t)) for t in EVENT_TYPES}


def write_files(directory: Path, files: dict[str, str]) -> list[Path]:
    """Write rendered schema files (name -> text) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def export(directory: Path = SCHEMA_DIR) -> list[Path]:
    return write_files(directory, all_schemas())
