"""Correlator worker (Faust): validated events in, alert records out.

Thin shell: the rules are the pure functions in ``engine.py``. Per batch of events (one
fetch, handed over by a batch agent: see ``beacon.runtime.faust_batch``) this module loads
each child's state from the ``children`` table, calls ``engine.apply_event``, sends the
alerts and waits until Kafka has them, and only then writes the new state to the table
(changelog-backed). A crash in between re-processes the batch (at-least-once):
the state then still lacks the emitted ids, so the same alerts are sent again with the
same ids, which every sink drops. The other order could lose an alert; this one cannot.

The wall-clock timer fires time rules (duration ladder, return interview overdue) for
children whose next deadline has passed, but only once the worker has caught up with
the events topic: while a backlog is being replayed, time rules fire from event time
only, so a replayed history gives the alerts it gave the first time.

Live before backlog. A history import (``python -m beacon import``) writes to its own
topic, ``beacon.events.history``, keyed and partitioned like the events topic; its
records yield to live ones (``faust_batch``: a backlog topic), so a live report waits at
most for the one slice of history in hand (200 records), never behind the import. For one child:
- each topic keeps the child's order (one partition each): live events in the order
  they were sent, history events in the order of the import file;
- between the two there is no order: a live event is applied as soon as it is read,
  history events as the import reaches them, before or after it;
- the state is a join of facts, so it ends the same either way; what can differ is
  only what the lateness decides: a history event more than the lateness behind the
  child's live watermark is a backfill (its episode's time rules wait the lateness from
  its arrival, ``Episode.known_since``), and one older than the longest window is stale
  (no rule looks that far back: counted, not merged);
- history events are applied by event time alone (never at the wall clock's horizon),
  and the timer leaves a child alone while history for it may still be unread (its
  history partition not caught up), so a history episode whose found is still on its
  way is not paged as still missing (tests/correlator/test_history_import.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from typing import Any

from kafka.partitioner.default import murmur2

from beacon.core.alerts import Alert
from beacon.core.domain import RISK_RANK
from beacon.core.events import CloudEvent, event_from_json
from beacon.core.policy import Policy, load_policy
from beacon.core.topics import ALERTS, ALERTS_BACKLOG, EVENTS, EVENTS_DLQ, EVENTS_HISTORY
from beacon.correlator import engine, migration
from beacon.correlator.settings import CorrelatorSettings
from beacon.correlator.state import ChildState
from beacon.runtime.decoding import KEY_MISMATCH, REFUSED, Rejected, safe_decode, send_dead_letter
from beacon.runtime.faust_app import guarded_timer, make_faust_app
from beacon.runtime.faust_batch import batch_agent, use_batching_consumer
from beacon.runtime.logs import configure_logging, get_logger
from beacon.runtime.metrics import (
    ALERTS_RAISED,
    ALERTS_RESOLVED,
    CHILDREN_MISSING,
    EVENTS_PROCESSED,
    OPEN_EPISODES,
)
from beacon.runtime.offsets import unprocessed
from beacon.runtime.settings import load_settings
from beacon.runtime.table_store import PartitionedStore

settings = load_settings(CorrelatorSettings)
policy: Policy = load_policy(settings.policy_file)
configure_logging(settings.log_level)
log = get_logger("correlator")
DEBUG_ALERT_LOGS = settings.log_level.upper() == "DEBUG"

# Large producer batches: a batch of events writes one state record per child it touched.
# (Not with single-record batches, the embedded broker's workaround, which must win.)
app = make_faust_app(
    "correlator",
    settings,
    settings.correlator_port,
    broker_max_poll_records=settings.correlator_batch_size,
    **(
        {}
        if settings.kafka_single_record_batches
        else {"producer_max_batch_size": 1024 * 1024, "producer_linger": 0.005}
    ),
)
# Events arrive as whole fetches (runtime/faust_batch.py), not one by one through a stream.
use_batching_consumer(app)
events_topic = app.topic(EVENTS, key_serializer="raw", value_serializer="raw")
history_topic = app.topic(EVENTS_HISTORY, key_serializer="raw", value_serializer="raw")
alerts_topic = app.topic(ALERTS, key_serializer="raw", value_serializer="raw")
dlq_topic = app.topic(EVENTS_DLQ, key_serializer="raw", value_serializer="raw")
children = app.Table(
    "children",
    default=None,
    key_type=bytes,
    value_type=bytes,
    partitions=settings.topic_partitions,
    help="Per-child correlator state (MessagePack), keyed by child reference.",
)
# Batches and timer ticks run outside a Faust event: they name each write's partition.
child_states = PartitionedStore(children)

# Serialises batches and timer ticks: both read-modify-write children's state.
state_lock = asyncio.Lock()
# Children of this worker's partitions with a pending time rule: child key -> epoch second.
deadlines: dict[bytes, int] = {}
# Children missing now (this worker's partitions): child key -> police risk grade.
missing_now: dict[bytes, str] = {}
_indexed_assignment: frozenset[Any] | None = None
_processed_offsets: dict[Any, int] = {}
# Children whose history partition had records left to read when history last changed
# them: history partition -> child keys. The timer leaves them alone until it is read.
history_pending: dict[int, set[bytes]] = defaultdict(set)


@lru_cache(maxsize=1 << 16)  # kafka-python's murmur2 is pure Python; the same children recur
def partition_of(key: bytes, partitions: int) -> int:
    """The events partition of a child (Kafka's default partitioner, as producers use),
    which is also its table changelog partition."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def wall_clock() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=settings.correlator_clock_offset_s)


def _load(key: bytes, partition: int) -> ChildState:
    return migration.load_state(key.decode(), child_states.get(key, partition), policy)


def _track(key: bytes, child_ref: str, state: ChildState) -> None:
    """Keep the timer's deadline index and the missing-children gauges up to date."""
    due = engine.next_deadline(child_ref, state, policy)
    if due is None:
        deadlines.pop(key, None)
    else:
        deadlines[key] = due
    risk = engine.missing_risk(state)
    if risk is None:
        missing_now.pop(key, None)
    else:
        missing_now[key] = risk


def _update_gauges() -> None:
    OPEN_EPISODES.set(len(missing_now))
    counts: dict[str, int] = defaultdict(int)
    for risk in missing_now.values():
        counts[risk] += 1
    for risk in RISK_RANK:
        CHILDREN_MISSING.labels(risk=risk).set(counts.get(risk, 0))


Record = tuple[bytes, bytes, int | None]  # key, value, partition (None: the key's)


async def _produce(topic: str, records: list[Record]) -> list[tuple[Any, list[Record]]]:
    """Hand records straight to the producer; returns (future, records in it) per Kafka
    batch written, the future resolving to the metadata of the batch's first record.

    Not ``topic.send()``: inside an agent Faust turns sends into "attachments" released
    when the event is acked, and its per-send overhead dominated a batch. Not
    ``table[key] = value`` either: that queues changelog records in Faust's producer
    buffer, which throttles the consumer whenever more than 100 are queued. Records go
    as one Kafka batch per partition, except with single-record batches, the embedded
    broker's workaround, which must win."""
    if settings.kafka_single_record_batches:
        return [
            (await app.producer.send(topic, key, value, partition, None, None), [(key, value, partition)])
            for key, value, partition in records
        ]
    kafka = app.producer._ensure_producer()  # type: ignore[attr-defined]  # aiokafka's producer: its batch API
    by_partition: dict[int, list[tuple[bytes, bytes]]] = defaultdict(list)
    if records:
        partitions = len(await kafka.partitions_for(topic))
        for key, value, partition in records:
            by_partition[partition_of(key, partitions) if partition is None else partition].append((key, value))
    sent: list[tuple[Any, list[Record]]] = []
    for partition, items in by_partition.items():
        batch, in_batch = kafka.create_batch(), list[Record]()
        for key, value in items:
            if batch.append(key=key, value=value, timestamp=None) is None:  # full: send it, start the next
                sent.append((await kafka.send_batch(batch, topic, partition=partition), in_batch))
                batch, in_batch = kafka.create_batch(), list[Record]()
                if batch.append(key=key, value=value, timestamp=None) is None:
                    raise ValueError(f"a record for {topic} is larger than the producer's batch size")
            in_batch.append((key, value, partition))
        sent.append((await kafka.send_batch(batch, topic, partition=partition), in_batch))
    return sent


async def _send_alerts(alerts: list[Alert]) -> None:
    """Send and wait until Kafka acknowledged every record (before state is saved)."""
    if not alerts:
        return
    sent: list[tuple[Any, list[Record]]] = []
    # A backlog's alerts go to their own topic: the notifier reads them only while no live
    # alert waits, so an import never queues ahead of a live page.
    for topic, from_backlog in ((ALERTS, False), (ALERTS_BACKLOG, True)):
        records: list[Record] = [(a.key, a.to_json(), None) for a in alerts if bool(a.from_backlog) is from_backlog]
        if records:
            sent += await _produce(topic, records)
    await asyncio.gather(*(future for future, _ in sent))
    # One metric update per label set, not per alert: a replay emits thousands per batch.
    counts = Counter((alert.status, alert.rule, alert.severity.value) for alert in alerts)
    for (status, rule, severity), count in counts.items():
        if status == "raised":
            ALERTS_RAISED.labels(rule=rule, severity=severity).inc(count)
        else:
            ALERTS_RESOLVED.labels(rule=rule).inc(count)
    # Per-alert lines only when the service runs at debug: in the Faust worker each
    # log.debug call still went through structlog (py-spy: 2-4% of the worker's time).
    if DEBUG_ALERT_LOGS:
        for alert in alerts:
            log.debug(
                "alert",
                alert_id=alert.alert_id,
                status=alert.status,
                rule=alert.rule,
                step=alert.step,
                severity=alert.severity.value,
                episode_ref=alert.episode_ref,
            )


async def _save_all(updates: list[tuple[bytes, ChildState, int]]) -> None:
    """Stage states in the table and hand them to the producer without waiting: Faust
    flushes the producer before it commits the events' offsets, so a state is on the
    changelog before its events count as processed, and it reaches the local store only
    once the changelog has it (``PartitionedStore``). A failed write stops the worker
    (its events are then processed again), never a silent loss."""
    records: list[Record] = []
    for key, state, partition in updates:
        value = state.to_bytes()
        child_states.put(key, value, partition)
        records.append((key, value, partition))
    for future, written in await _produce(children.changelog_topic.get_topic_name(), records):
        future.add_done_callback(partial(_on_state_written, written))


def _on_state_written(written: list[Record], future: asyncio.Future[Any]) -> None:
    if future.cancelled() or future.exception() is not None:
        reason = future.exception() or RuntimeError("changelog write cancelled")
        log.error("state write failed; stopping the worker", error=str(reason))
        asyncio.ensure_future(app.crash(reason))
        return
    metadata = future.result()
    # As Faust's own changelog callback: the store records the changelog offset it holds,
    # so recovery after a restart on the same data directory reads only the tail.
    child_states.acknowledged(
        [(key, value, metadata.partition) for key, value, _ in written],
        metadata.topic_partition,
        metadata.offset + len(written) - 1,
    )


async def _dead_letter(message: Any, rejected: Rejected) -> None:
    EVENTS_PROCESSED.labels(outcome="dead_lettered").inc()
    await send_dead_letter(dlq_topic, message, rejected, "correlator")


def _written_at(message: Any) -> datetime | None:
    """Kafka's timestamp of the record (the ingest's write)."""
    written = getattr(message, "timestamp", None)
    return datetime.fromtimestamp(written, UTC) if written is not None else None


async def process_batch(batch: list[Any], history: bool = False) -> None:
    """One batch of Faust messages: grouped by child, one load and one save per child.
    ``history``: from the history topic (see the module docstring)."""
    by_child: dict[bytes, list[tuple[CloudEvent, int, Any]]] = defaultdict(list)
    for message in batch:
        _processed_offsets[message.tp] = max(_processed_offsets.get(message.tp, -1), message.offset)
        parsed = safe_decode(message.value, event_from_json)
        if isinstance(parsed, Rejected):
            await _dead_letter(message, parsed)
            continue
        key = parsed.subject.encode()
        if message.key is not None and message.key != key:
            await _dead_letter(message, Rejected(KEY_MISMATCH, (("key", "the record key is not the event's subject"),)))
            continue
        by_child[key].append((parsed, message.partition, message))
    now = datetime.now(UTC)
    # Live (caught up), events are merged at the wall clock's horizon: one that arrives
    # later than the lateness (a backdated report, a backfill) then holds its episode's
    # time rules for the lateness instead of firing them before its found can arrive.
    # While a backlog is replayed, event time alone decides, as on the first run.
    wall = wall_clock() if not history and caught_up() else None
    async with state_lock:
        alerts: list[Alert] = []
        updates: list[tuple[bytes, str, ChildState, int]] = []
        outcomes: dict[str, int] = defaultdict(int)
        refused: list[tuple[Any, str]] = []
        for key, items in by_child.items():
            state = _load(key, items[0][1])
            changed = False
            for parsed, _, message in items:
                state, outcome = engine.apply_event(state, parsed, now, policy, copy=False, wall=wall)
                if outcome.refused is not None:  # merged nothing (its key is remembered): dead-lettered below
                    refused.append((message, outcome.refused))
                    changed = True
                    continue
                outcomes["duplicate" if outcome.duplicate else "stale" if outcome.stale else "applied"] += 1
                changed = changed or outcome.applied
                if engine.from_backlog(_written_at(message), now, history):  # the notifier holds these
                    alerts += engine.flagged(outcome.alerts)
                else:
                    alerts += outcome.alerts
                for event_id, reason in outcome.refused_earlier:
                    # A correction that came before its report, applied to nothing: its record
                    # is already behind us in the topic, so the refusal is logged (and counted).
                    EVENTS_PROCESSED.labels(outcome="refused").inc()
                    log.warning("correction refused", event_id=event_id, reason=reason)
            if changed:  # duplicates and stale events leave the state as it was: nothing to write
                updates.append((key, items[0][0].subject, state, items[0][1]))
        await _send_alerts(alerts)  # first: a state saying "emitted" must never precede its alert
        await _save_all([(key, state, partition) for key, _, state, partition in updates])
        for key, child_ref, state, _ in updates:
            _track(key, child_ref, state)
        if history:
            for key, items in by_child.items():
                history_pending[items[0][1]].add(key)
    for message, reason in refused:
        await _dead_letter(message, Rejected(REFUSED, (("source", f"refused: {reason}"),)))
    for outcome_name, count in outcomes.items():
        EVENTS_PROCESSED.labels(outcome=outcome_name).inc(count)
    _update_gauges()


@batch_agent(app, events_topic)
async def correlate(batch: list[Any]) -> None:
    await process_batch(batch)


@batch_agent(app, history_topic, backlog=True)
async def correlate_history(batch: list[Any]) -> None:
    await process_batch(batch, history=True)


def _read_to_end(tp: Any) -> bool:
    """Every record of ``tp`` the broker holds is processed: by this worker since it
    started, or before (the group's committed offset, where Faust seeked on assignment, is
    already at the end: a restart on a quiet stream is caught up without a new record)."""
    highwater = app.consumer.highwater(tp)
    # Faust's Consumer keeps the group's committed offsets (the next to read); ConsumerT omits them.
    committed = app.consumer._committed_offset.get(tp)  # type: ignore[attr-defined]
    return highwater is not None and unprocessed(highwater, _processed_offsets.get(tp), committed) == 0


def caught_up() -> bool:
    """True when tables are recovered and every assigned events partition has been read
    to its end: only then may the wall clock fire time rules. (History is not waited
    for: ``_history_unread`` holds back only the children it may still change.)"""
    if app.tables and not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
        return False
    if app.rebalancing:
        return False
    assigned = [tp for tp in app.consumer.assignment() if tp.topic == EVENTS]
    if not assigned:
        return False
    return all(_read_to_end(tp) for tp in assigned)


def _history_unread() -> set[bytes]:
    """Children the timer must leave alone: history changed them while their history
    partition still had records to read. A partition read to its end releases its own."""
    for tp in app.consumer.assignment():
        if tp.topic == EVENTS_HISTORY and tp.partition in history_pending and _read_to_end(tp):
            del history_pending[tp.partition]
    return set().union(*history_pending.values()) if history_pending else set()


def _rebuild_index() -> None:
    """After an assignment change: index this worker's children from the local table."""
    global _indexed_assignment
    deadlines.clear()
    missing_now.clear()
    assigned = {tp.partition for tp in app.consumer.assignment() if tp.topic == EVENTS_HISTORY}
    for partition in set(history_pending) - assigned:
        del history_pending[partition]
    for key, value in child_states.items():
        child_ref = key.decode()
        _track(key, child_ref, migration.load_state(child_ref, value, policy))
    _indexed_assignment = frozenset(app.consumer.assignment())
    _update_gauges()


async def run_tick() -> int:
    """Fire due time rules from the wall clock; returns the number of alerts emitted."""
    if not caught_up():
        return 0
    if _indexed_assignment != frozenset(app.consumer.assignment()):
        _rebuild_index()
    now = wall_clock()
    current = engine.epoch(now)
    held = _history_unread()
    due = [key for key, when in deadlines.items() if when <= current and key not in held]
    if not due:
        return 0
    partitions = app.consumer.topic_partitions(EVENTS) or settings.topic_partitions
    emitted = 0
    async with state_lock:
        alerts: list[Alert] = []
        updates: list[tuple[bytes, str, ChildState]] = []
        for key in due:
            child_ref = key.decode()
            state, new = engine.tick(child_ref, _load(key, partition_of(key, partitions)), now, policy)
            alerts += new
            updates.append((key, child_ref, state))
        await _send_alerts(alerts)
        await _save_all([(key, state, partition_of(key, partitions)) for key, _, state in updates])
        for key, child_ref, state in updates:
            _track(key, child_ref, state)
        emitted = len(alerts)
    _update_gauges()
    return emitted


@guarded_timer(app, settings.correlator_tick_interval_s, "correlator")
async def wall_clock_rules() -> None:
    await run_tick()
