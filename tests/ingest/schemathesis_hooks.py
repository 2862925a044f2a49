"""Schemathesis hooks of tests/ingest/test_schemathesis.py (loaded through SCHEMATHESIS_HOOKS).

A generated event is refused for reasons no schema can express: its ``source`` is not the
key's, a reference does not match the deployment's reference pattern, or a date lies outside
the deployment's window (BEACON_INGEST_EARLIEST_EVENT_TIME,
the future tolerance). Those refusals would hide whether the rest of a schema-violating
event was refused, so each schema-valid ``source`` becomes the key's and each schema-valid
date-time one inside the window. A value the generator made schema-invalid is left alone.
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis

KEY_SOURCE = "urn:beacon:source:met-police"
# Schema-valid references and ids become ones that also match the deployment's reference
# pattern (BEACON_INGEST_REFERENCE_PATTERN, BEACON_INGEST_ID_PATTERN), for the same reason.
PINNED = {"subject": "CH-7F3A9C21", "id": "met-evt-000001", "episode_ref": "MET-2026-000123"}
SCHEMA_SHAPE = {
    "subject": re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{2,63}$"),
    "id": re.compile(r"^.{1,255}$", re.DOTALL),
    "episode_ref": re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{2,63}$"),
}
IN_WINDOW = "2026-11-20T21:15:00Z"
SOURCE_SHAPE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$")


def _pin_reference(container: dict[str, Any], name: str) -> None:
    value = container.get(name)
    if isinstance(value, str) and SCHEMA_SHAPE[name].match(value):
        container[name] = PINNED[name]


def _in_window(value: Any) -> Any:
    if isinstance(value, str) and DATE_TIME.match(value):
        return IN_WINDOW
    if isinstance(value, dict):
        return {k: _in_window(v) for k, v in value.items()}
    return value


def _pin(event: Any) -> Any:
    if not isinstance(event, dict):
        return event
    pinned = dict(event)
    source = pinned.get("source")
    if isinstance(source, str) and len(source) <= 255 and SOURCE_SHAPE.match(source):
        pinned["source"] = KEY_SOURCE
    if "time" in pinned:
        pinned["time"] = _in_window(pinned["time"])
    _pin_reference(pinned, "subject")
    _pin_reference(pinned, "id")
    if isinstance(pinned.get("data"), dict):
        pinned["data"] = _in_window(pinned["data"])
        _pin_reference(pinned["data"], "episode_ref")
    return pinned


@schemathesis.hook
def map_body(context: Any, body: Any) -> Any:
    if isinstance(body, list):
        return [_pin(event) for event in body]
    return _pin(body)
