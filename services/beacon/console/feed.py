"""Thin shell around the projection: read the topics and fold them into the read model.

Each console instance keeps its own read model (read_model.py: an SQLite file holding the
view and the next offset of every partition, written in one transaction per batch) and
reads every partition itself (no consumer group), so instances never rebalance each other.
A restart resumes from the offsets in its file: ready in seconds whatever the history.
The account topics (sessions and users: compacted, small, held in memory) are read from
their start at every start, as before.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from beacon.console.projection import Record, apply
from beacon.console.read_model import ReadModel, StoredViewState
from beacon.console.sessions import SessionRecord, SessionRegistry
from beacon.console.users import UserDirectory
from beacon.core.acks import AckCommand
from beacon.core.alerts import AlertRecord
from beacon.core.audit import AuditRecord
from beacon.core.console_users import ConsoleUserRecord
from beacon.core.events import event_from_json
from beacon.core.notes import NoteRecord
from beacon.core.topics import (
    ACKS,
    ALERTS,
    ALERTS_BACKLOG,
    AUDIT,
    CONSOLE_NOTES,
    CONSOLE_SESSIONS,
    CONSOLE_USERS,
    EVENTS,
    EVENTS_HISTORY,
)
from beacon.runtime.decoding import Rejected, safe_decode
from beacon.runtime.kafka import aiokafka_config, topic_partitions
from beacon.runtime.logs import get_logger
from beacon.runtime.metrics import CONSOLE_RECORDS_SKIPPED, CONSUMER_LAG, TIMER_HEARTBEAT
from beacon.runtime.settings import Settings

log = get_logger("console")

FEED_TOPICS = (
    EVENTS,
    EVENTS_HISTORY,
    ALERTS,
    ALERTS_BACKLOG,
    AUDIT,
    ACKS,
    CONSOLE_NOTES,
    CONSOLE_SESSIONS,
    CONSOLE_USERS,
)
ACCOUNT_TOPICS = (CONSOLE_SESSIONS, CONSOLE_USERS)  # read before anyone may log in
METRICS_GROUP = "console"  # label for the shared consumer metrics; the console commits nothing
# Reason class of a record that decoded but the projection could not fold in (a bug): skipped too.
UNPROCESSABLE = "unprocessable"
# While catching up, the read model commits after this many records or seconds (whichever first).
# Rarely: each commit encodes every child and alert changed since the last one, and a child is
# touched by records spread over the history; the dirty rows wait in memory meanwhile (bounded
# by this many records' children and alerts).
CATCH_UP_COMMIT_RECORDS = 50_000
CATCH_UP_COMMIT_S = 10.0


def feed_partitions(settings: Settings) -> list[TopicPartition]:
    """Every partition of the feed's topics (``topic_partitions``: never the consumer's own metadata)."""
    by_topic = topic_partitions(settings, FEED_TOPICS, client_id="beacon-console-metadata")
    return [TopicPartition(topic, p) for topic in FEED_TOPICS for p in by_topic.get(topic, ())]


def decode(topic: str, payload: bytes) -> Record:
    """Raises ValueError (EventValidationError, ValidationError) for a record that fails its contract."""
    if topic in (EVENTS, EVENTS_HISTORY):
        return event_from_json(payload)
    if topic in (ALERTS, ALERTS_BACKLOG):
        return AlertRecord.from_json(payload)
    if topic == AUDIT:
        return AuditRecord.from_json(payload)
    if topic == ACKS:
        return AckCommand.from_json(payload)
    if topic == CONSOLE_NOTES:
        return NoteRecord.from_json(payload)
    raise ValueError(f"the console does not read {topic}")


class Feed:
    """Owns the view state; tells waiting pages when it changes."""

    def __init__(self, settings: Settings, read_model: ReadModel | None = None):
        self.settings = settings
        self.read_model = read_model or ReadModel()
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
        self._uncommitted = 0  # records folded since the read model's last commit
        self._committed_at = time.monotonic()

    @property
    def state(self) -> StoredViewState:
        return self.read_model.state

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
            **aiokafka_config(self.settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            client_id=f"beacon-console-{uuid.uuid4().hex[:8]}",
        )
        await consumer.start()
        try:
            partitions = await asyncio.to_thread(feed_partitions, self.settings)
            consumer.assign(partitions)
            end_at_start: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
            await self._seek_to_stored_offsets(consumer, partitions, end_at_start)
            log.info(
                "console_feed_started",
                partitions=len(partitions),
                records_at_start=sum(end_at_start.values()),
                records_to_read=sum(end - self._next_offsets.get(tp, 0) for tp, end in end_at_start.items()),
                read_model=self.read_model.path,
            )
            await self._check_caught_up(consumer, end_at_start)
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                before = self.state.version
                for tp, records in batches.items():
                    for record in records:
                        self._fold(tp.topic, record.value, record.offset, tp.partition)
                    if records:
                        self._next_offsets[tp] = records[-1].offset + 1
                self._uncommitted += sum(len(records) for records in batches.values())
                if self._uncommitted and self._time_to_commit():
                    self._commit()
                if self.state.version != before:
                    self._notify()
                if not self.ready:
                    await self._check_caught_up(consumer, end_at_start)
                self._export_lag(consumer, partitions)
        finally:
            await consumer.stop()

    def _time_to_commit(self) -> bool:
        """Every batch once caught up; while catching up, in larger steps (a child changed by
        many records of the history is then written once, not once per batch)."""
        return (
            self.ready
            or self._uncommitted >= CATCH_UP_COMMIT_RECORDS
            or time.monotonic() - self._committed_at >= CATCH_UP_COMMIT_S
        )

    def _commit(self) -> None:
        offsets = {
            (tp.topic, tp.partition): o for tp, o in self._next_offsets.items() if tp.topic not in ACCOUNT_TOPICS
        }
        self.read_model.commit(offsets)
        self._uncommitted, self._committed_at = 0, time.monotonic()

    async def _seek_to_stored_offsets(
        self, consumer: AIOKafkaConsumer, partitions: list[TopicPartition], end_at_start: dict[TopicPartition, int]
    ) -> None:
        """Resume each partition where the read model stopped; from the start if it holds
        an offset the log does not have (another cluster, a topic recreated): then the
        file describes another log and is rebuilt."""
        stored = self.read_model.offsets()
        beyond = [tp for tp in partitions if stored.get((tp.topic, tp.partition), 0) > end_at_start[tp]]
        if beyond:
            log.warning("console_read_model_rebuilt", reason="offsets_beyond_the_log", partitions=len(beyond))
            self.read_model.reset()
            stored = {}
        beginnings: dict[TopicPartition, int] = await consumer.beginning_offsets(partitions)
        for tp in partitions:
            resume = stored.get((tp.topic, tp.partition))
            if tp.topic in ACCOUNT_TOPICS or resume is None or resume < beginnings[tp]:
                # A stored offset the retention has deleted past: what was deleted is gone from Kafka too.
                await consumer.seek_to_beginning(tp)
                self._next_offsets[tp] = beginnings[tp]
            else:
                consumer.seek(tp, resume)
                self._next_offsets[tp] = resume

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
        if self._uncommitted:
            self._commit()
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
