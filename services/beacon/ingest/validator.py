"""Direct Kafka ingestion: validate records producers wrote to EVENTS_RAW.

Valid records continue to EVENTS (key = subject, the same path as HTTP events);
invalid ones go to EVENTS_DLQ with the original bytes, the source and every
reason. Nothing is silently dropped, and a poison record never stops the agent:
the decision is a pure function that cannot raise on bad input.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from beacon.core.dead_letters import DeadLetterRecord, claimed_source, dead_letter
from beacon.core.events import event_to_json
from beacon.ingest.decisions import ContractRules, contract_errors


@dataclass(frozen=True)
class Forward:
    key: bytes
    value: bytes
    event_type: str


@dataclass(frozen=True)
class DeadLetter:
    key: bytes | None
    record: DeadLetterRecord

    @property
    def value(self) -> bytes:
        return self.record.to_json()


def classify(
    value: bytes | None,
    key: bytes | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    now: datetime,
    rules: ContractRules,
) -> Forward | DeadLetter:
    """Where one raw record goes: on to EVENTS, or to the dead-letter topic with its reasons."""
    reasons: list[tuple[str, str]]
    try:
        raw = json.loads(value or b"")
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        reasons = [("/", f"not valid JSON: {exc}")]
    else:
        event, errors = contract_errors(raw, now, rules)
        if event is not None:
            return Forward(key=event.subject.encode(), value=event_to_json(event), event_type=event.type)
        reasons = [(e.field, e.reason) for e in errors]
    record = dead_letter(
        value, key, reasons, topic=topic, partition=partition, offset=offset, now=now, service="validator"
    )
    return DeadLetter(key=key, record=record)


def source_label(source: str, known_prefix: str) -> str:
    """Bounded metrics label: a source slug in the Beacon URN form, else 'other'."""
    from beacon.ingest.apikeys import SOURCE_NAME

    if source.startswith(known_prefix) and SOURCE_NAME.match(source[len(known_prefix) :]):
        return source[len(known_prefix) :]
    return "other"


def build_app() -> Any:
    """The Faust app (imported by ``python -m beacon validator``)."""
    from beacon.core.faust_app import make_faust_app
    from beacon.core.logs import configure_logging, get_logger
    from beacon.core.metrics import EVENTS_RECEIVED, EVENTS_REJECTED
    from beacon.core.settings import load_settings
    from beacon.core.topics import EVENTS, EVENTS_DLQ, EVENTS_RAW
    from beacon.ingest.settings import IngestSettings

    settings = load_settings(IngestSettings)
    configure_logging(settings.log_level)
    log = get_logger("validator")
    rules = ContractRules.from_settings(settings)
    app = make_faust_app("validator", settings, settings.validator_port)
    raw_topic = app.topic(EVENTS_RAW, key_serializer="raw", value_serializer="raw")
    events_topic = app.topic(EVENTS, key_serializer="raw", value_serializer="raw")
    dlq_topic = app.topic(EVENTS_DLQ, key_serializer="raw", value_serializer="raw")

    @app.agent(raw_topic, concurrency=1)
    async def validate(stream):  # type: ignore[no-untyped-def]
        async for event in stream.events():
            message = event.message
            outcome = classify(
                message.value,
                message.key,
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                now=datetime.now(UTC),
                rules=rules,
            )
            label = source_label(claimed_source(message.value or b""), settings.ingest_source_prefix)
            if isinstance(outcome, Forward):
                # Wait for the broker's ack before the offset can be committed (at-least-once).
                await (await events_topic.send(key=outcome.key, value=outcome.value))
                EVENTS_RECEIVED.labels(source=label, type=outcome.event_type, outcome="accepted").inc()
            else:
                await (await dlq_topic.send(key=outcome.key, value=outcome.value, headers=outcome.record.headers))
                EVENTS_RECEIVED.labels(source=label, type="unknown", outcome="dead_lettered").inc()
                EVENTS_REJECTED.labels(source=label, reason="dead_lettered").inc()
                log.info("dead_lettered", topic=message.topic, partition=message.partition, offset=message.offset)

    return app
