"""Kafka writes awaited until the broker acknowledged them (ingest, console).

kafka-python with ``beacon.runtime.kafka.producer_config`` (acks=all, one in-flight
request so one child's events stay in order, single-record batches on Tansu) plus the
idempotent producer, with delivery and request timeouts of the caller's choosing. Its I/O
thread resolves futures; they are bridged to asyncio so a request waits without holding a
thread.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from beacon.runtime.kafka import producer_config
from beacon.runtime.settings import Settings

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]  # key, value, headers


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge every record in time: the caller must retry."""


def _settle(waiter: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    """Complete ``waiter`` once, on the event loop (Kafka's callbacks run on its thread)."""
    if waiter.done():
        return
    if error is None:
        waiter.set_result(result)
    else:
        waiter.set_exception(error)


def acked_producer_config(settings: Settings, timeout_s: float, client_id: str) -> dict[str, Any]:
    """``producer_config`` with the idempotent producer and every wait bounded by ``timeout_s``."""
    timeout_ms = int(timeout_s * 1000)
    config = producer_config(settings)
    config.update(
        enable_idempotence=True,  # works on Tansu 0.6 and Apache Kafka; retries never duplicate
        delivery_timeout_ms=timeout_ms,
        request_timeout_ms=max(500, timeout_ms - config["linger_ms"] - 100),
        max_block_ms=timeout_ms,
        client_id=client_id,
    )
    return config


class AckedProducer:
    def __init__(self, settings: Settings, timeout_s: float, client_id: str):
        self.config = acked_producer_config(settings, timeout_s, client_id)
        self.timeout_s = timeout_s
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _get(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(**self.config)
            return self._producer

    def _send_all(self, topic: str, records: list[Record]) -> tuple[KafkaProducer, list[Any]]:
        producer = self._get()
        return producer, [
            producer.send(topic, key=key, value=value, headers=headers) for key, value, headers in records
        ]

    def _discard(self, producer: KafkaProducer) -> None:
        """Replace a producer that let a write go unacknowledged. kafka-python's idempotent
        producer does not recover from an expired batch: after a broker failover, every later
        write stayed unacknowledged, even once the cluster was whole again (measured in
        tests/ha/test_broker_failover.py). The next write gets a new producer (a new producer
        id); what the old one still holds is flushed for a few seconds in the background, and
        a copy that lands after the client's retry is dropped by (source, id) downstream."""
        close = producer.close
        with self._lock:
            if self._producer is not producer:
                return  # another request replaced it already
            self._producer = None
        threading.Thread(target=close, kwargs={"timeout": 5}, name="discarded-producer", daemon=True).start()

    async def write(self, topic: str, records: list[Record]) -> list[Any]:
        """Send every record and wait until Kafka acknowledged each (RecordMetadata list).

        Raises KafkaUnavailable if any record was not acknowledged within the timeout.
        """
        loop = asyncio.get_running_loop()
        try:
            # Bounded: a new producer (after a discard) bootstraps first, and with Kafka down
            # that blocks far longer than a client waits for its answer.
            producer, kafka_futures = await asyncio.wait_for(
                asyncio.to_thread(self._send_all, topic, records), self.timeout_s + 5
            )
        except TimeoutError as exc:
            raise KafkaUnavailable("Kafka did not answer in time") from exc
        except KafkaError as exc:
            raise KafkaUnavailable(str(exc)) from exc
        try:
            return await self._acknowledged(loop, kafka_futures)
        except KafkaUnavailable:
            self._discard(producer)
            raise

    async def _acknowledged(self, loop: asyncio.AbstractEventLoop, kafka_futures: list[Any]) -> list[Any]:
        waiters = []
        for kafka_future in kafka_futures:
            waiter: asyncio.Future[Any] = loop.create_future()

            def ok(meta: Any, w: asyncio.Future[Any] = waiter) -> None:
                loop.call_soon_threadsafe(_settle, w, meta, None)

            def failed(exc: BaseException, w: asyncio.Future[Any] = waiter) -> None:
                loop.call_soon_threadsafe(_settle, w, None, KafkaUnavailable(str(exc)))

            kafka_future.add_callback(ok)
            kafka_future.add_errback(failed)
            waiters.append(waiter)
        try:
            # delivery_timeout_ms expires records inside the producer; the outer timeout is a backstop.
            results = await asyncio.wait_for(asyncio.gather(*waiters, return_exceptions=True), self.timeout_s + 5)
        except TimeoutError as exc:
            raise KafkaUnavailable("Kafka did not acknowledge in time") from exc
        for result in results:
            if isinstance(result, BaseException):
                raise KafkaUnavailable(str(result))
        return results

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=5)
                self._producer = None
