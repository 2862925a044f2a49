"""Read and write topics of the real broker from tests."""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from beacon.core.topics import ALERTS, ALERTS_BACKLOG
from beacon.runtime.kafka import client_config, make_producer
from beacon.runtime.settings import Settings


def produce(
    settings: Settings, topic: str, records: list[tuple[bytes | None, bytes]], written_at: datetime | None = None
) -> None:
    """Write ``records`` and wait for every acknowledgement: a record the broker refused
    fails the test here instead of going missing. ``written_at``: the records' Kafka
    timestamp (default now), e.g. records that waited in the topic while a worker was down."""
    producer = make_producer(settings)
    timestamp_ms = int(written_at.timestamp() * 1000) if written_at is not None else None
    try:
        futures = [producer.send(topic, key=key, value=value, timestamp_ms=timestamp_ms) for key, value in records]
        producer.flush()
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close()


def produce_events(
    settings: Settings, topic: str, events: list[dict[str, Any]], written_at: datetime | None = None
) -> None:
    produce(settings, topic, [(e["subject"].encode(), json.dumps(e).encode()) for e in events], written_at)


def read_topic(
    settings: Settings, topic: str, *, expect: int, timeout_s: float = 30.0, settle_s: float = 1.0
) -> list[Any]:
    """Every record of ``topic`` from the start, waiting until ``expect`` have arrived,
    then ``settle_s`` longer so that an unexpected extra record is seen too."""
    return read_topics(settings, (topic,), expect=expect, timeout_s=timeout_s, settle_s=settle_s)


def read_alerts(settings: Settings, *, expect: int, timeout_s: float = 30.0, settle_s: float = 1.0) -> list[Any]:
    """Every alert record, live (``beacon.alerts``) and from a backlog (``beacon.alerts.backlog``),
    as ``read_topic`` reads one topic; ``expect`` counts both. Each record is on the topic its
    ``from_backlog`` says."""
    records = read_topics(settings, (ALERTS, ALERTS_BACKLOG), expect=expect, timeout_s=timeout_s, settle_s=settle_s)
    for record in records:
        flagged = bool(json.loads(record.value).get("from_backlog"))
        assert flagged is (record.topic == ALERTS_BACKLOG), f"{record.topic} holds an alert with from_backlog={flagged}"
    return records


def read_topics(
    settings: Settings, topics: tuple[str, ...], *, expect: int, timeout_s: float = 30.0, settle_s: float = 1.0
) -> list[Any]:
    """``read_topic`` over several topics at once (``expect`` counts them all)."""
    consumer = KafkaConsumer(**client_config(settings), enable_auto_commit=False)
    try:
        partitions = [
            TopicPartition(topic, p) for topic in topics for p in sorted(consumer.partitions_for_topic(topic) or [])
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        settle_until: float | None = None
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
            if len(records) >= expect:
                settle_until = settle_until or time.monotonic() + settle_s
                if time.monotonic() >= settle_until:
                    break
        return records
    finally:
        consumer.close()
