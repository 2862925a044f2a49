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
        "retries": 5,
        "linger_ms": 5,
        "max_in_flight_requests_per_connection": 1,  # keeps one child's events in order on retry
    }
    if settings.kafka_single_record_batches:
        config["batch_size"] = 1  # the first record always fits: one record per batch
    return config


def make_producer(settings: Settings, **overrides: Any) -> KafkaProducer:
    return KafkaProducer(**{**producer_config(settings), **overrides})
