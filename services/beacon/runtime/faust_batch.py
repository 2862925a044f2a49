"""Batch agents: a Faust worker that hands whole fetches of a topic to one coroutine.

Why: a Faust stream delivers one message at a time through the conductor, a channel
queue and the stream iterator; on 2 cores that path alone caps a plain counting agent
at ~4-5k events/s, and ``stream.take()`` batches only after paying it per message
(bench/bench_correlator.py measures both). A batch agent receives each fetch (up to
``broker_max_poll_records`` records over all its assigned partitions) as one list of
Faust ``Message`` objects, in partition order, straight from the consumer.

Everything else stays Faust's: group membership and assignment, table recovery (the
batch topic's partitions are fetched only once recovery has resumed them), offsets
committed by Faust's commit loop (after its producer flush), rebalance hand-over
(``wait_empty`` waits for the batch in hand to be acknowledged), web views and timers.
Other topics of the same app (table changelogs, ordinary agents) keep the ordinary
per-message path.

Backlog topics (``batch_agent(..., backlog=True)``, e.g. the history an import writes)
yield to every other topic: before each fetch that could return backlog records, the
records already fetched for the other partitions are handed over, and in a fetch that
holds both, the others' batches go first; a backlog fetch is handed over in slices of
``BACKLOG_SLICE`` records, with what was fetched for the others meanwhile in between.
aiokafka keeps fetching the other partitions while backlog records wait in its buffer,
so a live record waits at most for the one backlog slice in hand, never behind the
backlog.
Within one partition, order is Kafka's; between a backlog partition and another
partition there is no order (the handler must not need one).

Delivery semantics, at least once:
- the messages of a batch are acknowledged to Faust only after the handler returned,
  so their offsets are committed only then;
- a handler that raises stops the worker (``app.crash``): nothing of that batch is
  committed and a restarted worker reads it again. A batch agent never skips an event;
  bad input must be dealt with inside the handler (e.g. dead-lettered);
- a batch fetched just before a rebalance (flow stopped or generation changed) is
  dropped unprocessed; Faust seeks back to the committed offsets on assignment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

import faust
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP, Message

from beacon.runtime.logs import get_logger

log = get_logger("faust")

BatchHandler = Callable[[list[Message]], Awaitable[None]]
# Records of a backlog topic handed over at once, at most: a live record fetched meanwhile
# waits for one slice, not for the whole fetch (``broker_max_poll_records``).
BACKLOG_SLICE = 200


class BatchingConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer with a drain loop that serves batch agents."""

    def batch_handlers(self) -> dict[str, BatchHandler]:
        return getattr(self.app, "_beacon_batch_handlers", {})

    def backlog_topics(self) -> set[str]:
        return getattr(self.app, "_beacon_backlog_topics", set())

    async def _records_ahead_of_backlog(self) -> tuple[Any, set[TP] | None]:
        """Records already fetched for the partitions that do not yield (no wait), or
        nothing: then the ordinary fetch, which may return backlog, follows."""
        backlog = self.backlog_topics()
        if not backlog or not self.flow_active or self.app.client_only:
            return {}, None
        ahead = {tp for tp in self._get_active_partitions() if tp.topic not in backlog}
        if not ahead:  # (an empty set would mean "every partition" to aiokafka)
            return {}, None
        return await self._getmany(active_partitions=ahead, timeout=0), ahead

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - run in workers
        handlers = self.batch_handlers()
        if not handlers:
            return await super()._drain_messages(fetcher)
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                self.diag.set_flag(CONSUMER_FETCHING)
                records, active = await self._records_ahead_of_backlog()
                if not records:
                    records, active = await self._wait_next_records(timeout=1.0)
                await self.sleep(0)  # as Faust does: let the loop breathe between fetches
                if records and not self.should_stop:
                    await self._deliver(records, active, handlers)
                self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def _deliver(self, records: Any, active: set[TP] | None, handlers: dict[str, BatchHandler]) -> None:
        generation = self.app.consumer_generation_id
        batches: dict[str, list[Message]] = {}
        for tp, tp_records in records.items():
            if active is not None and tp not in active and tp not in self._buffered_partitions:
                continue
            self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
            handler = handlers.get(tp.topic)
            if handler is None:
                await self._deliver_one_by_one(tp, tp_records)
                continue
            batch = batches.setdefault(tp.topic, [])
            batch += [self._to_message(tp, r) for r in tp_records if self._unread(tp, r.offset)]
        backlog = self.backlog_topics()
        for topic, messages in sorted(batches.items(), key=lambda item: item[0] in backlog):
            if topic not in backlog:
                await self._hand_over(topic, messages, generation, handlers)
                continue
            # A backlog fetch goes in slices; records fetched meanwhile for the other
            # partitions are handed over between two slices.
            for begin in range(0, len(messages), BACKLOG_SLICE):
                if begin:
                    ahead, ahead_active = await self._records_ahead_of_backlog()
                    if ahead:
                        await self._deliver(ahead, ahead_active, handlers)
                if not await self._hand_over(topic, messages[begin : begin + BACKLOG_SLICE], generation, handlers):
                    break

    async def _hand_over(
        self, topic: str, messages: list[Message], generation: int, handlers: dict[str, BatchHandler]
    ) -> bool:
        """Hand ``messages`` to the topic's handler and acknowledge them; False if dropped."""
        if not messages:
            return True
        if not self.flow_active or self.app.consumer_generation_id != generation:
            # A rebalance began after the fetch: these partitions may not be ours any
            # more. Dropped unread; Faust seeks to the committed offsets on assignment.
            return False
        for message in messages:
            await self._note_read(message.tp, message.offset)
            message.tracked = True
            self._unacked_messages.add(message)  # a rebalance waits for these
        try:
            await handlers[topic](messages)
        except Exception as exc:
            log.error(
                "batch agent failed; stopping the worker so the batch is read again",
                topic=topic,
                error_type=type(exc).__name__,
            )
            await self.app.crash(exc)
            raise
        for message in messages:
            self.ack(message)
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()
        return True

    def _unread(self, tp: TP, offset: int) -> bool:
        """Faust's rule: a record below the read offset was delivered already."""
        read = self._read_offset[tp]
        return read is None or offset >= read

    async def _note_read(self, tp: TP, offset: int) -> None:
        """Move the read offset; offsets the broker skipped (compaction, transaction
        markers) become a gap that counts as done, or Faust's commit would stop there."""
        read = self._read_offset[tp]
        if read and offset - read > 1 and self.app.topics.acks_enabled_for(tp.topic):
            await self._add_gap(tp, read + 1, offset)
        self._read_offset[tp] = offset

    async def _deliver_one_by_one(self, tp: TP, tp_records: list[Any]) -> None:
        """Any other topic of this app: Faust's own per-message delivery."""
        for record in tp_records:
            if self._unread(tp, record.offset):
                await self._note_read(tp, record.offset)
                await self.wait_first(self.callback(self._to_message(tp, record)), self.suspend_flow.wait())


class BatchingTransport(faust_aiokafka.Transport):
    Consumer = BatchingConsumer


def batch_agent(app: faust.App, topic: Any, *, backlog: bool = False) -> Callable[[BatchHandler], BatchHandler]:
    """Register ``handler(messages)`` as the only consumer of ``topic`` in ``app``.
    ``backlog``: the topic's records yield to every other topic's (see the module docstring).

    The app must have been made with :func:`use_batching_consumer`."""

    def register(handler: BatchHandler) -> BatchHandler:
        handlers: dict[str, BatchHandler] = app.__dict__.setdefault("_beacon_batch_handlers", {})
        name = topic.get_topic_name()
        if name in handlers:
            raise ValueError(f"topic {name} already has a batch agent")
        handlers[name] = handler
        if backlog:
            app.__dict__.setdefault("_beacon_backlog_topics", set()).add(name)
        # Subscribe (and enable acks for) the topic without a stream reading it.
        app.topics.add(topic)
        return handler

    return register


def use_batching_consumer(app: faust.App) -> None:
    """Give ``app`` the batching consumer (before the app starts)."""
    app.transport = cast(Any, BatchingTransport(app.conf.broker_consumer, app))
