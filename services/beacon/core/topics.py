"""Kafka topics: names, partitioning and retention, created by the project itself.

Every topic is keyed by the pseudonymous child reference, so one child's events
stay ordered on one partition and each service scales by partitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

EVENTS_RAW = "beacon.events.raw"  # direct Kafka producers write here; validated before use
EVENTS = "beacon.events"  # validated events: the system of record
# Validated events of a history import (``python -m beacon import``): read by the
# correlator only when no live event is waiting, so a backlog never delays a live page.
EVENTS_HISTORY = "beacon.events.history"
EVENTS_DLQ = "beacon.events.dlq"  # invalid records with the original bytes and the reason
ALERTS = "beacon.alerts"  # alert records raised and resolved by the correlator
# The alerts the correlator raised and resolved while replaying a backlog (a history import,
# or catching up after downtime: ``from_backlog``), apart from the live ones: the notifier
# reads them only while no live alert waits, so an import's alerts never queue ahead of one.
ALERTS_BACKLOG = "beacon.alerts.backlog"
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
# The ingest API's keys (hashes only), keyed by key id; compacted: the latest record of each key
# stays for good, and every ingest replica reads it from the beginning (ingest/apikey_topic.py).
API_KEYS = "beacon.apikeys"
NOTIFIER_INPUTS = "beacon.notifier.inputs"  # the notifier's own queue: alerts, acks, ticks, delivery results


def changelog(app: str, table: str) -> str:
    """The changelog Faust keeps for ``table`` of the worker ``app`` (app id ``beacon-<app>``)."""
    return f"beacon-{app}-{table}-changelog"


CORRELATOR_CHANGELOG = changelog("correlator", "children")  # per-child correlation state
NOTIFIER_CHANGELOG = changelog("notifier", "escalations")  # per-alert escalation state


class Retention(Enum):
    """How long a topic keeps its records; the value names the setting of a time-bound kind."""

    RECORD = "event_retention_days"  # the system of record and its history
    AUDIT = "audit_retention_days"  # who was told what, when: kept as long as the case record
    DEAD_LETTERS = "dead_letter_retention_days"  # refused records: long enough to be looked at and replayed
    INPUT = "input_retention_days"  # internal queues whose records are consumed as they arrive
    COMPACTED = "compacted"  # the latest record per key, for ever (tombstones remove a key): state, ledgers


@dataclass(frozen=True)
class TopicSpec:
    """One topic Beacon creates: what it holds (the README's topic table) and how long."""

    name: str
    retention: Retention
    holds: str
    # False for internal topics: a private format read only by the service that writes it,
    # no published schema (docs/ARCHITECTURE.md, "Internal topics").
    published: bool = True

    @property
    def compacted(self) -> bool:
        return self.retention is Retention.COMPACTED


# Every topic Beacon reads or writes, Faust's changelogs included: `topics create` makes them
# all, so nothing depends on a broker's auto-creation (off in production) or on a worker
# creating its topics after its consumer group was already assigned (it then never reads them).
# A new topic is one line here (and its KafkaTopic in deploy/k8s/kafka.yaml; a test compares);
# `make schemas` regenerates the README's table from this list.
TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(EVENTS_RAW, Retention.INPUT, "events from direct Kafka producers, before validation"),
    TopicSpec(EVENTS, Retention.RECORD, "validated events: the system of record"),
    TopicSpec(
        EVENTS_HISTORY, Retention.RECORD, "validated events of a history import (read only while no live one waits)"
    ),
    TopicSpec(EVENTS_DLQ, Retention.DEAD_LETTERS, "refused records: a bounded copy, its hash and the reason"),
    TopicSpec(ALERTS, Retention.RECORD, "alerts raised and resolved by the correlator"),
    TopicSpec(
        ALERTS_BACKLOG,
        Retention.RECORD,
        "alerts raised and resolved while replaying a backlog (read only while no live one waits)",
    ),
    TopicSpec(ACKS, Retention.RECORD, "acknowledgements (SMS reply, link, API, console)"),
    TopicSpec(NOTIFICATIONS, Retention.COMPACTED, "notification ledger: the latest status of each notification"),
    TopicSpec(AUDIT, Retention.AUDIT, "who was told what, when, and who acknowledged"),
    TopicSpec(CONSOLE_SESSIONS, Retention.COMPACTED, "console sessions ended and accounts locked"),
    TopicSpec(CONSOLE_USERS, Retention.COMPACTED, "console staff accounts: scrypt hash, organisations, role"),
    TopicSpec(CONSOLE_NOTES, Retention.RECORD, "notes staff write on alerts, encrypted by the console"),
    TopicSpec(API_KEYS, Retention.COMPACTED, "the ingest API's keys (hashes only), keyed by key id"),
    TopicSpec(
        NOTIFIER_INPUTS, Retention.INPUT, "the notifier's own queue (alerts, acks, ticks, results)", published=False
    ),
    TopicSpec(
        CORRELATOR_CHANGELOG, Retention.COMPACTED, "the correlator's per-child state (Faust changelog)", published=False
    ),
    TopicSpec(
        NOTIFIER_CHANGELOG,
        Retention.COMPACTED,
        "the notifier's per-alert escalations (Faust changelog)",
        published=False,
    ),
)
