"""Thin shell around the projection: read the topics from the beginning and fold them in.

Each console instance keeps its own in-memory view and reads every partition itself
(no consumer group, no committed offsets), so instances never rebalance each other
and a restart rebuilds the view from Kafka, the system of record.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from beacon.console.projection import Record, ViewState, apply
from beacon.console.sessions import SessionRecord, SessionRegistry
from beacon.console.users import UserDirectory
from beacon.core.acks import AckCommand
from beacon.core.alerts import AlertRecord
from beacon.core.audit import AuditRecord
from beacon.core.console_users import ConsoleUserRecord
from beacon.core.decoding import Rejected, safe_decode
from beacon.core.events import event_from_json
from beacon.core.logs import get_logger
from beacon.core.metrics import CONSOLE_RECORDS_SKIPPED, CONSUMER_LAG, TIMER_HEARTBEAT
from beacon.core.settings import Settings
from beacon.core.topics import ACKS, ALERTS, AUDIT, CONSOLE_SESSIONS, CONSOLE_USERS, EVENTS

log = get_logger("console")

FEED_TOPICS = (EVENTS, ALERTS, AUDIT, ACKS, CONSOLE_SESSIONS, CONSOLE_USERS)
ACCOUNT_TOPICS = (CONSOLE_SESSIONS, CONSOLE_USERS)  # read before anyone may log in
METRICS_GROUP = "console"  # label for the shared consumer metrics; the console commits nothing
# Reason class of a record that decoded but the projection could not fold in (a bug): skipped too.
UNPROCESSABLE = "unprocessable"


def decode(topic: str, payload: bytes) -> Record:
    """Raises ValueError (EventValidationError, ValidationError) for a record that fails its contract."""
    if topic == EVENTS:
        return event_from_json(payload)
    if topic == ALERTS:
        return AlertRecord.from_json(payload)
    if topic == AUDIT:
        return AuditRecord.from_json(payload)
    if topic == ACKS:
        return AckCommand.from_json(payload)
    raise ValueError(f"the console does not read {topic}")


class Feed:
    """Owns the view state; tells waiting pages when it changes."""

    def __init__(self, settings: Settings, state: ViewState | None = None):
        self.settings = settings
        self.state = state or ViewState()
        self.ready = False  # caught up with every partition's end as it was at start
        self.failed: str | None = None
        self.closing = False  # set at shutdown: live streams end so the server can stop at once
        # Users, ended sessions and locked accounts; sessions_ready once what was there at start is in.
        self.users = UserDirectory()
        self.sessions = SessionRegistry()
        self.sessions_ready = False
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._next_offsets: dict[TopicPartition, int] = {}

    # -- change notification (Server-Sent Events wait on this)

    async def wait_for_change(self, seen_version: int, timeout_s: float) -> int:
        """Return the view version once it differs from ``seen_version`` (or after the timeout)."""
        if self.state.version == seen_version:
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), timeout_s)
            except TimeoutError:
                pass
        return self.state.version

    def close_streams(self) -> None:
        self.closing = True
        self._notify()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- the consumer loop

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="console-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        self._notify()

    async def _run(self) -> None:
        try:
            await self._consume()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # readiness turns 503 and the orchestrator restarts the process
            self.failed = type(exc).__name__
            log.exception("console_feed_failed")

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=f"beacon-console-{uuid.uuid4().hex[:8]}",
        )
        await consumer.start()
        try:
            await consumer.topics()  # refresh metadata so every topic's partitions are known
            partitions = [
                TopicPartition(topic, p)
                for topic in FEED_TOPICS
                for p in sorted(consumer.partitions_for_topic(topic) or ())
            ]
            consumer.assign(partitions)
            await consumer.seek_to_beginning(*partitions)
            end_at_start: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
            log.info("console_feed_started", partitions=len(partitions), records_at_start=sum(end_at_start.values()))
            await self._check_caught_up(consumer, end_at_start)
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                before = self.state.version
                for tp, records in batches.items():
                    for record in records:
                        self._fold(tp.topic, record.value, record.offset, tp.partition)
                    if records:
                        self._next_offsets[tp] = records[-1].offset + 1
                if self.state.version != before:
                    self._notify()
                if not self.ready:
                    await self._check_caught_up(consumer, end_at_start)
                self._export_lag(consumer, partitions)
        finally:
            await consumer.stop()

    def _fold(self, topic: str, payload: bytes | None, offset: int, partition: int) -> None:
        """Fold one record in, or count and skip it: a record the console cannot read is
        never shown half-read and never stops the feed (the workers reading that topic
        dead-letter it; the console, one of many replicas, only reads)."""
        if topic == CONSOLE_USERS:
            user = safe_decode(payload, ConsoleUserRecord.from_json)
            if isinstance(user, Rejected):
                self._skip(topic, partition, offset, user.reason)
            else:
                self.users.apply(user)
            return
        if topic == CONSOLE_SESSIONS:
            session = safe_decode(payload, SessionRecord.from_json)
            if isinstance(session, Rejected):
                self._skip(topic, partition, offset, session.reason)
            else:
                self.sessions.apply(session)
            return
        record = safe_decode(payload, lambda value: decode(topic, value))
        if isinstance(record, Rejected):
            self._skip(topic, partition, offset, record.reason)
            return
        try:
            apply(self.state, record)
        except Exception as exc:  # noqa: BLE001 - a projection bug on one record must not freeze every page
            log.error(
                "console_record_not_folded", topic=topic, partition=partition, offset=offset, error=type(exc).__name__
            )
            self._skip(topic, partition, offset, UNPROCESSABLE)

    def _skip(self, topic: str, partition: int, offset: int, reason: str) -> None:
        CONSOLE_RECORDS_SKIPPED.labels(topic=topic, reason=reason).inc()
        log.warning("console_record_skipped", topic=topic, partition=partition, offset=offset, reason=reason)

    async def _check_caught_up(self, consumer: AIOKafkaConsumer, end_at_start: dict[Any, int]) -> None:
        behind = {tp.topic for tp, end in end_at_start.items() if await consumer.position(tp) < end}
        if not behind.intersection(ACCOUNT_TOPICS):
            self.sessions_ready = True
        if behind:
            return
        self.ready = True
        self._notify()
        log.info("console_caught_up", version=self.state.version, duplicates=self.state.duplicates)
        if not self.users.users:
            log.warning("console_no_users", hint="add one with: python -m beacon console-user add NAME --org ORG")

    def _export_lag(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            highwater = consumer.highwater(tp)  # None until the partition has been fetched once
            if highwater is not None:
                lag = max(0, highwater - self._next_offsets.get(tp, 0))
                CONSUMER_LAG.labels(METRICS_GROUP, tp.topic, str(tp.partition)).set(lag)
        TIMER_HEARTBEAT.labels("console_feed").set(time.time())
