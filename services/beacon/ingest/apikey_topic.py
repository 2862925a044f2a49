"""The shell around ``beacon.apikeys``: the CLI's writes and every ingest replica's live view.

``ApiKeyStore`` (the CLI, synchronous): ``create`` and ``revoke`` return once Kafka holds
the record (acks=all); ``list`` reads the topic to its end. ``ApiKeyFeed`` (each ingest
replica, asyncio): reads every partition from the beginning with no consumer group (so
replicas never rebalance each other), keeps reading, and answers ``authenticate``. It is
ready once it has read what the topic held at start; until then every request gets 503
and ``/readyz`` says not ready. A token naming a key id the feed has not seen makes it
catch up with the topic's current end first (one shared catch-up at a time, bounded by
``CATCH_UP_TIMEOUT_S``), so a key works on every replica as soon as the CLI has printed it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaConsumer
from kafka import TopicPartition as SyncTopicPartition

from beacon.core.topics import API_KEYS, TOPICS
from beacon.ingest.apikeys import ApiKey, ApiKeyRegistry, new_key, revocation, token_key_id
from beacon.runtime.decoding import Rejected, safe_decode
from beacon.runtime.kafka import aiokafka_config, client_config, make_producer, topic_partitions
from beacon.runtime.logs import get_logger
from beacon.runtime.metrics import API_KEY_RECORDS_SKIPPED
from beacon.runtime.settings import Settings
from beacon.runtime.topic_admin import ensure_topics

log = get_logger("ingest")

KAFKA_TIMEOUT_S = 10.0
CATCH_UP_TIMEOUT_S = 2.0  # how long an unknown key id may wait for the feed before 401


class KeysUnavailable(RuntimeError):
    """The feed has not read the keys topic (yet, or it failed): nobody is let in."""


def _decode(key: bytes | None, value: bytes | None) -> tuple[str, ApiKey | None] | Rejected:
    key_id = key.decode(errors="replace") if key else ""
    if value is None:  # a tombstone: the key is gone
        return key_id, None
    record = safe_decode(value, ApiKey.from_json)
    if isinstance(record, Rejected):
        return record
    return key_id, record


def _skip(partition: int, offset: int, reason: str) -> None:
    API_KEY_RECORDS_SKIPPED.labels(reason=reason).inc()
    log.error("api_key_record_skipped", topic=API_KEYS, partition=partition, offset=offset, reason=reason)


def fold(registry: ApiKeyRegistry, key: bytes | None, value: bytes | None, partition: int, offset: int) -> None:
    """Fold one record in, or count, log and skip it (a record nobody can read never stops a replica)."""
    decoded = _decode(key, value)
    if isinstance(decoded, Rejected):
        _skip(partition, offset, decoded.reason)
        return
    try:
        registry.apply(*decoded)
    except ValueError:
        _skip(partition, offset, "key_mismatch")


class ApiKeyStore:
    """What ``python -m beacon apikeys`` does: writes and reads ``beacon.apikeys``."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def _write(self, record: ApiKey) -> None:
        ensure_topics(self.settings, tuple(t for t in TOPICS if t.name == API_KEYS))
        producer = make_producer(
            self.settings, request_timeout_ms=int(KAFKA_TIMEOUT_S * 1000), max_block_ms=int(KAFKA_TIMEOUT_S * 1000)
        )
        try:
            producer.send(API_KEYS, key=record.key, value=record.to_json()).get(timeout=KAFKA_TIMEOUT_S)
        finally:
            producer.close(timeout=5)

    def keys(self) -> dict[str, ApiKey]:
        """Every key the topic holds now (read to its end)."""
        registry = ApiKeyRegistry()
        consumer = KafkaConsumer(
            **client_config(self.settings),
            group_id=None,
            enable_auto_commit=False,
            client_id="beacon-apikeys-cli",
            request_timeout_ms=int(KAFKA_TIMEOUT_S * 1000) + 1000,
        )
        try:
            partitions = [
                SyncTopicPartition(API_KEYS, p) for p in sorted(consumer.partitions_for_topic(API_KEYS) or ())
            ]
            if not partitions:
                return {}
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            end = consumer.end_offsets(partitions)
            deadline = time.monotonic() + KAFKA_TIMEOUT_S
            while any(consumer.position(tp) < end[tp] for tp in partitions):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"could not read {API_KEYS} to its end in {KAFKA_TIMEOUT_S:g} s")
                for tp, records in consumer.poll(timeout_ms=500).items():
                    for r in records:
                        fold(registry, r.key, r.value, tp.partition, r.offset)
        finally:
            consumer.close()
        return registry.keys

    def create(self, source: str, scope: str, scopes: dict[str, list[str]]) -> tuple[ApiKey, str]:
        """A new key; returns its record and the key (shown once, never stored)."""
        record, token = new_key(source, scope, scopes, datetime.now(UTC))
        self._write(record)
        return record, token

    def revoke(self, key_id: str) -> ApiKey:
        record = revocation(self.keys(), key_id, datetime.now(UTC))
        self._write(record)  # also when revoked already: the revocation is then surely the latest record
        return record

    def list(self) -> list[ApiKey]:
        return sorted(self.keys().values(), key=lambda k: k.created_at)


class ApiKeyFeed:
    """One ingest replica's live view of ``beacon.apikeys``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.registry = ApiKeyRegistry()
        self.ready = False
        self.failed: str | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: list[TopicPartition] = []
        self._task: asyncio.Task[None] | None = None
        self._catch_up: asyncio.Task[bool] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="api-key-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def authenticate(self, token: str | None) -> ApiKey | None:
        """The active key of ``token`` or None; raises KeysUnavailable while the keys are not read."""
        if self.failed or not self.ready:
            raise KeysUnavailable(self.failed or "the API keys are still being read")
        key = self.registry.authenticate(token)
        key_id = token_key_id(token)
        if key is None and key_id is not None and key_id not in self.registry.keys:
            await self._caught_up_with_now()  # a key created a moment ago on another replica's CLI
            key = self.registry.authenticate(token)
        return key

    async def _caught_up_with_now(self) -> bool:
        if self._catch_up is None or self._catch_up.done():
            self._catch_up = asyncio.create_task(self._wait_for_end())
        try:
            return await asyncio.wait_for(asyncio.shield(self._catch_up), CATCH_UP_TIMEOUT_S)
        except TimeoutError:
            return False

    async def _wait_for_end(self) -> bool:
        if self._consumer is None:
            return False
        consumer: AIOKafkaConsumer = self._consumer
        end = await consumer.end_offsets(self._partitions)
        while [tp for tp, offset in end.items() if await consumer.position(tp) < offset]:
            if self._consumer is not consumer:  # the feed stopped: nobody will catch up
                return False
            await asyncio.sleep(0.02)
        return True

    async def _run(self) -> None:
        try:
            await self._consume()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # readiness turns 503 and the orchestrator restarts the process
            self.failed = f"the API-keys feed stopped ({type(exc).__name__})"
            log.exception("api_key_feed_failed")

    async def _consume(self) -> None:
        consumer = AIOKafkaConsumer(
            **aiokafka_config(self.settings),
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,  # how long a fetch waits for news: bounds how late a revocation lands
            client_id=f"beacon-ingest-keys-{uuid.uuid4().hex[:8]}",
        )
        await consumer.start()
        try:
            while True:  # not ready (503 keys-unavailable) until the topic exists
                found = await asyncio.to_thread(
                    topic_partitions, self.settings, [API_KEYS], "beacon-ingest-keys-metadata"
                )
                self._partitions = [TopicPartition(API_KEYS, p) for p in found.get(API_KEYS, ())]
                if self._partitions:
                    break
                log.warning("api_key_topic_missing", topic=API_KEYS, hint="run `python -m beacon topics create`")
                await asyncio.sleep(1.0)
            consumer.assign(self._partitions)
            await consumer.seek_to_beginning(*self._partitions)
            end_at_start = await consumer.end_offsets(self._partitions)
            self._consumer = consumer
            while True:
                if not self.ready and not [tp for tp, end in end_at_start.items() if await consumer.position(tp) < end]:
                    self.ready = True
                    log.info("api_keys_loaded", keys=len(self.registry.keys), revoked=len(self.registry.revoked))
                batches = await consumer.getmany(timeout_ms=200, max_records=1000)
                for tp, records in batches.items():
                    for r in records:
                        fold(self.registry, r.key, r.value, tp.partition, r.offset)
        finally:
            self._consumer = None
            await consumer.stop()
