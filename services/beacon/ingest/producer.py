"""Kafka writes for the ingest service, awaited until the broker acknowledged them.

kafka-python with ``beacon.runtime.kafka.producer_config`` (acks=all, one in-flight
request so one child's events stay in order, single-record batches on Tansu)
plus the idempotent producer. Its I/O thread resolves futures; they are bridged
to asyncio so a request waits without holding a thread.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from beacon.ingest.settings import IngestSettings
from beacon.runtime.kafka import producer_config

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


def ingest_producer_config(settings: IngestSettings) -> dict[str, Any]:
    timeout_ms = int(settings.ingest_kafka_timeout_s * 1000)
    config = producer_config(settings)
    config.update(
        enable_idempotence=True,  # works on Tansu 0.6 and Apache Kafka; retries never duplicate
        delivery_timeout_ms=timeout_ms,
        request_timeout_ms=max(500, timeout_ms - config["linger_ms"] - 100),
        max_block_ms=timeout_ms,
        client_id="beacon-ingest",
    )
    return config


class AckedProducer:
    def __init__(self, settings: IngestSettings):
        self.settings = settings
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def _get(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(**ingest_producer_config(self.settings))
            return self._producer

    def _send_all(self, topic: str, records: list[Record]) -> list[Any]:
        producer = self._get()
        return [producer.send(topic, key=key, value=value, headers=headers) for key, value, headers in records]

    async def write(self, topic: str, records: list[Record]) -> list[Any]:
        """Send every record and wait until Kafka acknowledged each (RecordMetadata list).

        Raises KafkaUnavailable if any record was not acknowledged within the timeout.
        """
        loop = asyncio.get_running_loop()
        try:
            kafka_futures = await asyncio.to_thread(self._send_all, topic, records)
        except KafkaError as exc:
            raise KafkaUnavailable(str(exc)) from exc
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
            results = await asyncio.wait_for(
                asyncio.gather(*waiters, return_exceptions=True), self.settings.ingest_kafka_timeout_s + 5
            )
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
