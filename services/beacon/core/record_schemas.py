"""JSON Schema files for the records on every topic Beacon writes, one per topic.

Generated from the record models (each with an example built through its model, so
it is valid by construction); ``python -m beacon schemas export`` rewrites
``schemas/records/``, and the test suite fails if the committed files differ.
The events topics carry CloudEvents: their schema is one of the event schemas.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from beacon.core.acks import AckCommand
from beacon.core.alerts import AlertRecord, Severity, alert_id
from beacon.core.apikeys import ApiKey
from beacon.core.audit import AuditRecord
from beacon.core.console_users import ConsoleUserRecord
from beacon.core.dead_letters import DeadLetterRecord, dead_letter
from beacon.core.events import EVENT_TYPES, SCHEMA_BASE_URI
from beacon.core.notes import NoteRecord
from beacon.core.notifications import NotificationRecord
from beacon.core.records import TopicRecord
from beacon.core.schemas import render, write_files
from beacon.core.sessions import SessionRecord
from beacon.core.topics import (
    ACKS,
    ALERTS,
    ALERTS_BACKLOG,
    API_KEYS,
    AUDIT,
    CONSOLE_NOTES,
    CONSOLE_SESSIONS,
    CONSOLE_USERS,
    EVENTS,
    EVENTS_DLQ,
    EVENTS_HISTORY,
    EVENTS_RAW,
    NOTIFICATIONS,
)

RECORD_SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas" / "records"
RECORD_SCHEMA_BASE_URI = "https://beacon.example/schemas/records/"

_AT = datetime.fromisoformat("2026-11-21T02:00:05Z")
_ALERT_ID = alert_id("CH-7F3A9C21", "MET-2026-000123", "triage", "high")

# The record model of each topic Beacon writes JSON records to (key: what a record is keyed by).
RECORD_MODELS: dict[str, type[TopicRecord]] = {
    ALERTS: AlertRecord,
    ALERTS_BACKLOG: AlertRecord,
    ACKS: AckCommand,
    AUDIT: AuditRecord,
    NOTIFICATIONS: NotificationRecord,
    EVENTS_DLQ: DeadLetterRecord,
    CONSOLE_SESSIONS: SessionRecord,
    API_KEYS: ApiKey,
    CONSOLE_USERS: ConsoleUserRecord,
    CONSOLE_NOTES: NoteRecord,
}
EVENT_TOPICS = (EVENTS_RAW, EVENTS, EVENTS_HISTORY)


def example_records() -> dict[str, TopicRecord]:
    """One valid record per topic, built (and so validated) through its model."""
    examples = _examples()
    live = examples[ALERTS]
    assert isinstance(live, AlertRecord)
    # As an import raises it: a year-old episode, read from the history topic.
    examples[ALERTS_BACKLOG] = live.model_copy(
        update={
            "episode_ref": "MET-2025-000456",
            "occurred_at": datetime.fromisoformat("2025-11-20T22:05:00Z"),
            "from_backlog": True,
        }
    )
    return examples


def _examples() -> dict[str, TopicRecord]:
    return {
        ALERTS: AlertRecord(
            alert_id=_ALERT_ID,
            status="raised",
            child_ref="CH-7F3A9C21",
            episode_ref="MET-2026-000123",
            rule="triage",
            step="high",
            severity=Severity.high,
            reason="High-risk missing episode reported",
            council="southwark",
            notify="team_manager",
            occurred_at=datetime.fromisoformat("2026-11-20T22:05:00Z"),
            emitted_at=datetime.fromisoformat("2026-11-20T22:05:01Z"),
            trigger_event_ids=("met-evt-000001",),
        ),
        ACKS: AckCommand(
            command_id="sms:SM0123456789abcdef0123456789abcdef",
            alert_id=_ALERT_ID,
            action="acknowledge",
            by="sw-duty-1",
            via="sms",
            at=_AT,
        ),
        AUDIT: AuditRecord(
            audit_id=f"{_ALERT_ID}:notification_sent:1:sw-duty-1:sms",
            kind="notification_sent",
            at=_AT,
            alert_id=_ALERT_ID,
            child_ref="CH-7F3A9C21",
            person="sw-duty-1",
            channel="sms",
            step=1,
        ),
        NOTIFICATIONS: NotificationRecord(
            alert_id=_ALERT_ID,
            key="1:sw-duty-1:sms",
            kind="page",
            step=1,
            person="sw-duty-1",
            channel="sms",
            status="sent",
            at=_AT,
        ),
        EVENTS_DLQ: dead_letter(
            b'{"specversion": "1.0", "source": "urn:beacon:source:met-police", "type": "beacon.episode.found.v1"}',
            b"CH-7F3A9C21",
            [("id", "Field required"), ("data", "Field required")],
            topic=EVENTS_RAW,
            partition=2,
            offset=41,
            now=datetime.fromisoformat("2026-11-21T09:31:02.120Z"),
            service="validator",
        ),
        CONSOLE_SESSIONS: SessionRecord(
            kind="user_sessions_ended", subject="duty-manager", at=1795744805.0, reason="removed"
        ),
        API_KEYS: ApiKey(
            key_id="Q7mZk2RtW9xa",
            source="met-police",
            scope="police",
            token_sha256="5f0c4e2b9d1a7c3e8f6b0a2d4c6e8f1a3b5d7f9e0c2a4b6d8f1e3c5a7b9d0f2e",
            created_at="2026-11-20T09:00:00Z",
            revoked_at="2026-11-21T02:00:05Z",
        ),
        CONSOLE_USERS: ConsoleUserRecord(
            kind="user_set",
            name="duty-manager",
            at=1795744805.0,
            password_hash="scrypt$32768$8$1$c2FsdHNhbHRzYWx0c2FsdA==$ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGlnZXN0ZGk=",
            organisations=("met-police", "southwark"),
            role="responder",
        ),
        CONSOLE_NOTES: NoteRecord(
            note_id="6f1d0c3a9b2e4d5f8a7b6c5d4e3f2a1b",
            alert_id="A7f3a9c21e0b14d2a",
            child_ref="CH-7F3A9C21",
            by="duty-manager-1",
            at=datetime.fromisoformat("2026-11-21T09:40:00Z"),
            key_id="3b1f0c9d2a4e6f80",
            ciphertext="gAAAAABpIChSexampleexampleexampleexampleexampleexampleexampleexampleexampleexample==",
        ),
    }


def _envelope(topic: str, title: str, description: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{RECORD_SCHEMA_BASE_URI}{topic}.json",
        **body,
        "title": title,
        "description": description,
    }


def record_schema(topic: str) -> dict[str, Any]:
    """The JSON Schema of a record on ``topic``."""
    if topic in EVENT_TOPICS:
        return _envelope(
            topic,
            "CloudEvent",
            f"A record on {topic}: one CloudEvent of one of Beacon's event types, chosen by `type`.",
            {"oneOf": [{"$ref": f"{SCHEMA_BASE_URI}{t}.json"} for t in EVENT_TYPES]},
        )
    model = RECORD_MODELS[topic]
    example = json.loads(example_records()[topic].to_json())
    schema = model.model_json_schema()
    return _envelope(
        topic,
        schema.pop("title"),
        f"A record on {topic}. {schema.pop('description', model.__doc__ or '')}".strip(),
        {**schema, "examples": [example]},
    )


def all_record_schemas() -> dict[str, str]:
    """File name -> rendered JSON Schema, for every topic Beacon writes."""
    return {f"{topic}.json": render(record_schema(topic)) for topic in (*EVENT_TOPICS, *RECORD_MODELS)}


def export(directory: Path = RECORD_SCHEMA_DIR) -> list[Path]:
    return write_files(directory, all_record_schemas())
