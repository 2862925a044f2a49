"""Direct Kafka ingestion: validate records producers wrote to EVENTS_RAW.

Valid records continue to EVENTS (key = subject, the same path as HTTP events);
invalid ones go to EVENTS_DLQ as a dead-letter record (``beacon.core.dead_letters``: where
the record was, every reason, its size, hash and a bounded copy). Nothing is silently
dropped, and a poison record never stops the agent: the decision is a pure function
that cannot raise on bad input (``beacon.runtime.decoding.safe_decode``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pydantic_core

from beacon.core.dead_letters import claimed_source
from beacon.core.events import CloudEvent, EventValidationError, event_to_json
from beacon.ingest.decisions import ContractRules, contract_errors
from beacon.runtime.decoding import Rejected, safe_decode


@dataclass(frozen=True)
class Forward:
    key: bytes
    value: bytes
    event_type: str


def classify(value: bytes | None, *, now: datetime, rules: ContractRules) -> Forward | Rejected:
    """Where one raw record goes: on to EVENTS, or to the dead-letter topic with its reasons."""

    def checked(payload: bytes) -> CloudEvent:
        event, errors = contract_errors(pydantic_core.from_json(payload), now, rules)
        if event is None:
            raise EventValidationError(errors)
        return event

    event = safe_decode(value, checked)
    if isinstance(event, Rejected):
        return event
    return Forward(key=event.subject.encode(), value=event_to_json(event), event_type=event.type)


def source_label(source: str, known_prefix: str) -> str:
    """Bounded metrics label: a source slug in the Beacon URN form, else 'other'."""
    from beacon.ingest.apikeys import SOURCE_NAME

    if source.startswith(known_prefix) and SOURCE_NAME.match(source[len(known_prefix) :]):
        return source[len(known_prefix) :]
    return "other"


def build_app() -> Any:
    """The Faust app (imported by ``python -m beacon validator``)."""
    from beacon.core.topics import EVENTS, EVENTS_DLQ, EVENTS_RAW
    from beacon.ingest.settings import IngestSettings
    from beacon.runtime.decoding import send_dead_letter
    from beacon.runtime.faust_app import make_faust_app
    from beacon.runtime.logs import configure_logging
    from beacon.runtime.metrics import EVENTS_RECEIVED, EVENTS_REJECTED
    from beacon.runtime.settings import load_settings

    settings = load_settings(IngestSettings)
    configure_logging(settings.log_level)
    rules = ContractRules.from_settings(settings)
    app = make_faust_app("validator", settings, settings.validator_port)
    raw_topic = app.topic(EVENTS_RAW, key_serializer="raw", value_serializer="raw")
    events_topic = app.topic(EVENTS, key_serializer="raw", value_serializer="raw")
    dlq_topic = app.topic(EVENTS_DLQ, key_serializer="raw", value_serializer="raw")

    @app.agent(raw_topic, concurrency=1)
    async def validate(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            message = event.message
            outcome = classify(message.value, now=datetime.now(UTC), rules=rules)
            label = source_label(claimed_source(message.value), settings.ingest_source_prefix)
            if isinstance(outcome, Forward):
                # Wait for the broker's ack before the offset can be committed (at-least-once).
                await (await events_topic.send(key=outcome.key, value=outcome.value))
                EVENTS_RECEIVED.labels(source=label, type=outcome.event_type, outcome="accepted").inc()
            else:
                await send_dead_letter(dlq_topic, message, outcome, "validator")
                EVENTS_RECEIVED.labels(source=label, type="unknown", outcome="dead_lettered").inc()
                EVENTS_REJECTED.labels(source=label, reason="dead_lettered").inc()

    return app
