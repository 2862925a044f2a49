"""Kafka topics: names, partitioning and retention, created by the project itself.

Every topic is keyed by the pseudonymous child reference, so one child's events
stay ordered on one partition and each service scales by partitions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from beacon.core.settings import Settings

log = logging.getLogger(__name__)

EVENTS_RAW = "beacon.events.raw"  # direct Kafka producers write here; validated before use
EVENTS = "beacon.events"  # validated events: the system of record
EVENTS_DLQ = "beacon.events.dlq"  # invalid records with the original bytes and the reason
ALERTS = "beacon.alerts"  # alert records raised and resolved by the correlator
ACKS = "beacon.acks"  # acknowledgements from SMS replies, links and the API
NOTIFICATIONS = "beacon.notifications"  # notification ledger: intents and delivery outcomes
AUDIT = "beacon.audit"  # who was told what, when, and who acknowledged
# Console sessions ended and accounts locked (keyed by session id or staff user name, not by
# child; compacted: read from the beginning by every console replica, see console/sessions.py).
CONSOLE_SESSIONS = "beacon.console.sessions"
# Console staff accounts (keyed by user name; compacted: every console replica reads it from the
# beginning and ``console-user`` writes it, see core/console_users.py).
CONSOLE_USERS = "beacon.console.users"
# Notes staff write on alerts, encrypted by the console (core/notes.py); keyed by alert id.
CONSOLE_NOTES = "beacon.console.notes"


@dataclass(frozen=True)
class TopicSpec:
    name: str
    compacted: bool = False


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(EVENTS_RAW),
    TopicSpec(EVENTS),
    TopicSpec(EVENTS_DLQ),
    TopicSpec(ALERTS),
    TopicSpec(ACKS),
    TopicSpec(NOTIFICATIONS, compacted=True),
    TopicSpec(AUDIT),
    TopicSpec(CONSOLE_SESSIONS, compacted=True),
    TopicSpec(CONSOLE_USERS, compacted=True),
    TopicSpec(CONSOLE_NOTES),
)


def topic_configs(spec: TopicSpec, settings: Settings) -> dict[str, str]:
    if spec.compacted:
        return {"cleanup.policy": "compact"}
    retention_ms = settings.event_retention_days * 24 * 3600 * 1000
    return {"cleanup.policy": "delete", "retention.ms": str(retention_ms)}


def ensure_topics(settings: Settings, specs: tuple[TopicSpec, ...] = TOPICS) -> list[str]:
    """Create the missing topics; returns the names created. Safe to run repeatedly."""
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers, client_id="beacon-topics")
    try:
        existing = set(admin.list_topics())
        missing = [s for s in specs if s.name not in existing]
        new = [
            NewTopic(
                name=s.name,
                num_partitions=settings.topic_partitions,
                replication_factor=settings.topic_replication_factor,
                topic_configs=topic_configs(s, settings),
            )
            for s in missing
        ]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass  # another service created it first
        for s in missing:
            log.info("created topic %s (%d partitions)", s.name, settings.topic_partitions)
        return [s.name for s in missing]
    finally:
        admin.close()
