"""The notifier's agents, timer and background tasks (thin shell around ``escalation.apply``).

Data flow, all keyed by alert id on one internal topic so one agent owns each alert's
state (the ``escalations`` table, changelogged):

    ALERTS  --route_alerts--> inputs (raised + its fixed chain, or resolved)
    ALERTS_BACKLOG --route_backlog_alerts--> inputs (the same, only while no live work
                              waits: live_first.py)
    ACKS    --route_acks----> inputs (acknowledge / escalate / close)
    timer   ----------------> inputs (tick when an alert's step is due; expire when a
                              resolved alert's retention is over)
    sender  ----------------> inputs (delivery result: sent / error)
    Twilio status callback -> inputs (delivered / failed / undelivered)
    inputs  --escalate------> table (state + notification ledger), AUDIT, NOTIFICATIONS
    table changelog --feed_directory--> every replica's AlertDirectory (the web handlers)
    ALERTS (own reader) --sweep_alerts--> inputs (an alert no escalation shows after the
                              grace period, again: the safety net, sweep.py)

The timer and the dispatcher read only the owner's ``OpenIndex`` (what is open in this
replica's partitions), rebuilt from the table only when the partitions change.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Iterator
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import ValidationError

from beacon.core.acks import AckCommand
from beacon.core.alerts import AlertRecord
from beacon.core.notifications import NotificationRecord
from beacon.core.topics import ALERTS
from beacon.notifier.delivery import dispatch_once
from beacon.notifier.escalation import (
    AckReceived,
    AlertRaised,
    AlertResolved,
    Audit,
    Envelope,
    EscalationState,
    Expire,
    ForwardAck,
    SendNotification,
    Tick,
    apply,
    resolve_chain,
)
from beacon.notifier.live_first import INPUTS_AHEAD, LiveFirst
from beacon.notifier.runtime import (
    ESCALATIONS_CHANGELOG,
    INPUTS,
    STALE_SEND_S,
    acks_topic,
    alerts_backlog_topic,
    alerts_topic,
    app,
    audit_topic,
    clock,
    directory,
    dlq_topic,
    escalations,
    index,
    inputs_topic,
    ledger_topic,
    load_state,
    log,
    oncall,
    send_input,
    settings,
)
from beacon.notifier.sweep import Sweep
from beacon.runtime.decoding import Rejected, safe_decode, send_dead_letter
from beacon.runtime.faust_app import guarded_timer
from beacon.runtime.kafka import aiokafka_config
from beacon.runtime.metrics import (
    ACK_LATENCY,
    ALERTS_NEVER_TAKEN_IN,
    ALERTS_ROUTED_AGAIN,
    ESCALATION_STEPS,
    UNACKNOWLEDGED_CRITICAL,
)

TICK_RESEND_AFTER_S = 5.0
EFFECT_WRITE_FAILED = 70  # exit status (EX_SOFTWARE) when Kafka refused an effect's record
RETENTION = index.retention


# ------------------------------------------------------------------ agents
# A backlog's alerts wait while a live alert is unread or the inputs queue holds more than a
# few records: see live_first.py.
live_first = LiveFirst(app, {ALERTS: 0, INPUTS: INPUTS_AHEAD})
# What route_alerts may have missed: see sweep.py.
sweep = Sweep(settings.notifier_sweep_grace_s)


@app.agent(alerts_topic)
async def route_alerts(stream: Any) -> None:
    async for event in stream.events():
        await route_alert(event.message)
        live_first.done(event.message)


@app.agent(alerts_backlog_topic)
async def route_backlog_alerts(stream: Any) -> None:
    async for event in stream.events():
        await live_first.wait()
        await route_alert(event.message)


async def route_alert(message: Any) -> None:
    alert = safe_decode(message.value, AlertRecord.from_json)
    if isinstance(alert, Rejected):
        await send_dead_letter(dlq_topic, message, alert, "notifier")
        return
    await route_record(alert)


async def route_record(alert: AlertRecord) -> None:
    if alert.status == "raised":
        # The chain is fixed here, once: who is on call now is who gets paged.
        chain = resolve_chain(oncall, alert, clock.now())
        if alert.notify and chain.first_role is None:
            log.warning("notify_role_unknown", role=alert.notify, team=chain.team, alert_id=alert.alert_id)
        inp: Any = AlertRaised(alert=alert, chain=chain)
    else:
        inp = AlertResolved(alert=alert)
    # Routed only once Kafka holds the input: Faust flushes before it commits, but a write
    # the broker refused would be committed past all the same, and that page never sent.
    await held_by_kafka([await send_input(alert.alert_id, inp)], alert.alert_id)


@app.agent(acks_topic)
async def route_acks(stream: Any) -> None:
    async for event in stream.events():
        command = safe_decode(event.message.value, AckCommand.from_json)
        if isinstance(command, Rejected):
            await send_dead_letter(dlq_topic, event.message, command, "notifier")
            continue
        await held_by_kafka([await send_input(command.alert_id, AckReceived(command=command))], command.alert_id)


@app.agent(inputs_topic)
async def escalate(stream: Any) -> None:
    async for event in stream.events():
        await escalate_one(event.message)
        live_first.done(event.message)


async def escalate_one(message: Any) -> None:
    envelope = safe_decode(message.value, Envelope.from_json)
    if isinstance(envelope, Rejected):
        await send_dead_letter(dlq_topic, message, envelope, "notifier")
        return
    alert_id = envelope.alert_id
    before = load_state(alert_id)
    now = clock.now()
    after, actions = apply(before, envelope.input, now, RETENTION)
    if after is None:
        if before is not None:  # expired: the tombstone goes to the changelog
            del escalations[alert_id]
            index.forget(before)
            log.info("expired", alert_id=alert_id)
        return
        # Effects first, the state last (as the correlator: alerts before state). A worker
        # killed in between left the state as it was, so the input, read again, gives the same
        # effects again (idempotent: audit ids and ledger keys are deterministic). The other
        # order lost them: the state said the input was applied, so its replay emitted nothing
        # (a ledger "pending" record and its audit, or an acknowledgement forwarded to the
        # alerts of a bundle; issue 13, the kill test).
    await record(before, after, actions, now)
    # Written even when unchanged: a replayed input then puts into the changelog a state
    # the local store holds but the changelog may lack (RocksDB: Faust writes the local
    # store before Kafka acknowledges the changelog record, so a SIGKILL in between left
    # it there only, and a new owner of the partition would never read it).
    escalations[alert_id] = after.model_dump(mode="json")
    # The intent must be in Kafka before anything is sent (see delivery.py).
    await app.producer.flush()
    index.update(after)
    if any(isinstance(a, SendNotification) for a in actions):
        poke()


async def record(before: EscalationState | None, after: EscalationState, actions: list[Any], now: datetime) -> None:
    """Write the effects of a transition (forwarded acknowledgements, audit, ledger) and wait
    until Kafka has every one. A write Kafka refused stops the worker at once, as a SIGKILL
    would, so its input is read again by the next owner: Faust's own crash path commits the
    offset of the input in hand on its way out, which would lose it (robinhood/faust#75)."""
    await held_by_kafka([await write for write in _effects(before, after, actions, now)], after.alert_id)


async def held_by_kafka(written: list[Any], alert_id: str) -> None:
    """Wait until Kafka acknowledged every write; a refused one stops the worker at once, so
    the record that caused the writes is read again (never committed past, never lost)."""
    try:
        await asyncio.gather(*written)
    except Exception as exc:  # noqa: BLE001 - any failed write: the input must be read again
        log.error("effect write failed; stopping the worker", error_type=type(exc).__name__, alert_id=alert_id)
        os._exit(EFFECT_WRITE_FAILED)


def _effects(
    before: EscalationState | None, after: EscalationState, actions: list[Any], now: datetime
) -> Iterator[Awaitable[Any]]:
    """The writes of a transition, in order; each awaits its hand-over to the producer and
    gives the future of Kafka's acknowledgement."""
    for action in actions:
        if isinstance(action, ForwardAck):
            yield send_input(action.command.alert_id, AckReceived(command=action.command))
        if isinstance(action, Audit):
            rec = action.record
            yield audit_topic.send(key=rec.key, value=rec.to_json())
            log.info(
                "audit",
                kind=rec.kind,
                alert_id=rec.alert_id,
                person=rec.person,
                channel=rec.channel,
                step=rec.step,
                detail=rec.detail,
            )
            if rec.kind == "escalation_step" and rec.detail != "chain_exhausted":
                ESCALATION_STEPS.labels(step=str(rec.step)).inc()
            if rec.kind in ("acknowledged", "closed") and after.first_paged_at is not None:
                via = after.acked_via or "unknown"
                ACK_LATENCY.labels(via=via).observe(max(0.0, (now - after.first_paged_at).total_seconds()))
    old = before.notices if before else {}
    for key, notice in after.notices.items():
        if old.get(key) != notice:
            ledger = NotificationRecord(
                alert_id=after.alert_id,
                key=key,
                kind=notice.kind,
                step=notice.step,
                person=notice.person,
                channel=notice.channel,
                status=notice.status,
                at=now,
            )
            yield ledger_topic.send(key=ledger.record_key, value=ledger.to_json())


# ------------------------------------------------------------------ owner's index
def index_current() -> bool:
    """True when the index describes this replica's partitions as they are now: rebuilt by
    the table after the last assignment's recovery (runtime.EscalationsTable)."""
    return index.current and not app.rebalancing


def poke() -> None:
    if _wake is not None:
        _wake.set()


_wake: asyncio.Event | None = None


# ------------------------------------------------------------------ timer and dispatcher
async def timer_pass(now: datetime, loop_now: float) -> tuple[list[str], list[str]]:
    """One pass of the escalation timer over the open alerts: a tick for every alert whose
    step is due, an expiry for every resolved alert past its retention. Returns both lists
    (alert ids). O(open alerts + expired), whatever the table holds."""
    due = index.due_alerts(now, loop_now, TICK_RESEND_AFTER_S)
    for alert_id in due:
        await send_input(alert_id, Tick(alert_id=alert_id))
    expired = index.expired(now)
    for alert_id in expired:
        await send_input(alert_id, Expire(alert_id=alert_id))
    return due, expired


def publish_unacknowledged() -> None:
    counts = index.unacknowledged_counts()
    for severity in ("low", "medium", "high", "critical"):
        for exhausted in (True, False):
            UNACKNOWLEDGED_CRITICAL.labels(severity=severity, exhausted=str(exhausted).lower()).set(
                counts.get((severity, exhausted), 0)
            )


@guarded_timer(app, settings.notifier_tick_interval_s, "escalation")
async def escalation_timer() -> None:
    if not index_current():
        return
    loop_now = asyncio.get_running_loop().time()
    index.drop_stale_sends(loop_now, STALE_SEND_S)
    publish_unacknowledged()
    await timer_pass(clock.now(), loop_now)
    poke()


@app.task
async def dispatcher() -> None:
    global _wake
    _wake = asyncio.Event()
    while True:
        try:
            await asyncio.wait_for(_wake.wait(), timeout=0.5)
        except TimeoutError:
            pass
        _wake.clear()
        try:
            if index_current():
                await dispatch_once()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - logged; one failed round must not stop the loop
            log.exception("loop_failed", loop="dispatcher")


# ------------------------------------------------------------------ every replica's directory
def _changelog_key(raw: bytes | None) -> str | None:
    if not raw:
        return None
    text = raw.decode("utf-8", errors="replace")
    return text[1:-1] if text.startswith('"') and text.endswith('"') else text


@app.task
async def sweep_alerts() -> None:
    """Read beacon.alerts on its own (every partition, no consumer group, from the lookback
    on) and route again what no escalation shows after the grace period: see sweep.py."""
    consumer = AIOKafkaConsumer(
        **aiokafka_config(settings),
        client_id="beacon-notifier-sweep",
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(ALERTS, p) for p in range(settings.topic_partitions)]
        consumer.assign(partitions)
        since_ms = int((time.time() - settings.notifier_sweep_lookback_s) * 1000)
        starts = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            start = starts.get(tp)
            consumer.seek(tp, start.offset if start is not None else ends[tp])
        interval_s = max(1.0, min(10.0, settings.notifier_sweep_grace_s / 4))
        next_sweep = time.time() + interval_s
        while True:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    alert = safe_decode(record.value, AlertRecord.from_json)
                    if not isinstance(alert, Rejected):  # (route_alerts dead-letters it)
                        sweep.saw(alert, record.timestamp / 1000)
            if time.time() < next_sweep or not directory.loaded:
                continue
            next_sweep = time.time() + interval_s
            for alert in sweep.due(time.time(), directory.state):
                log.warning("alert_routed_again", alert_id=alert.alert_id, status=alert.status)
                ALERTS_ROUTED_AGAIN.inc()
                await route_record(alert)
            for alert in sweep.given_up:
                log.error("alert_never_taken_in", alert_id=alert.alert_id, status=alert.status)
                ALERTS_NEVER_TAKEN_IN.inc()
    finally:
        await consumer.stop()


@app.task
async def feed_directory() -> None:
    """Read the whole escalations changelog (every partition, no consumer group) into this
    replica's AlertDirectory, from the beginning and then as the owners write it."""
    consumer = AIOKafkaConsumer(
        **aiokafka_config(settings),  # the same TLS / SASL as every other client
        client_id="beacon-notifier-directory",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
    )
    await consumer.start()
    try:
        while ESCALATIONS_CHANGELOG not in await consumer.topics():
            await asyncio.sleep(0.5)  # the worker creates it as it starts
        partitions = [TopicPartition(ESCALATIONS_CHANGELOG, p) for p in range(settings.topic_partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    alert_id = _changelog_key(record.key)
                    if alert_id is None:
                        continue
                    try:
                        directory.apply(alert_id, record.value)
                    except ValidationError as exc:
                        log.warning("directory_record_refused", error=type(exc).__name__, offset=record.offset)
            if not directory.loaded:
                positions = [await consumer.position(tp) for tp in partitions]
                if all(pos >= ends[tp] for pos, tp in zip(positions, partitions, strict=True)):
                    directory.loaded = True
                    log.info("directory_loaded", alerts=len(directory))
    finally:
        await consumer.stop()


__all__ = [
    "INPUTS",
    "dispatcher",
    "escalate",
    "escalation_timer",
    "feed_directory",
    "route_acks",
    "route_alerts",
    "route_backlog_alerts",
]
