"""Kafka client construction shared by every service, so they all agree on
durability (acks=all) and on the embedded broker's single-record-batch workaround."""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer

from beacon.core.settings import Settings


def producer_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "acks": "all",
        # Retried until acknowledged or this long (kafka-python's retries are unbounded by
        # default): a fixed 5 retries 100 ms apart gave up within half a second of a leader
        # election or a topic's creation, and the record was lost (seen on Apache Kafka).
        "delivery_timeout_ms": 60_000,  # more than request_timeout_ms (30 s) + linger_ms
        "linger_ms": 5,
        "max_in_flight_requests_per_connection": 1,  # keeps one child's events in order on retry
    }
    if settings.kafka_single_record_batches:
        config["batch_size"] = 1  # the first record always fits: one record per batch
    return config


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    return KafkaProducer(**{**producer_config(settings), **overrides})
