"""One place that turns Settings into a Faust app, so every worker gets the same
group timeouts, durability, broker workarounds, ops pages, JSON logs and the
consumer-progress exporter (committed offset and lag per assigned partition)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted
from faust.web.base import BlueprintManager
from kafka import KafkaConsumer, TopicPartition
from kafka.admin import KafkaAdminClient
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from beacon.runtime.http_headers import aiohttp_security_headers
from beacon.runtime.http_server import aiohttp_options, cap_faust_web_connections
from beacon.runtime.kafka import client_config, faust_credentials
from beacon.runtime.logs import configure_logging, get_logger, logging_config
from beacon.runtime.metrics import CONSUMER_COMMITTED_OFFSET, CONSUMER_LAG, TIMER_HEARTBEAT
from beacon.runtime.settings import Settings

log = get_logger("faust")

# Heartbeat loop name of the exporter itself (beacon_timer_last_run_timestamp_seconds{loop=...}).
CONSUMER_PROGRESS_LOOP = "consumer_progress"


def _use_fetch_max_wait(ms: int) -> None:
    """Faust passes a fixed fetch_max_wait_ms=1500 to aiokafka; substitute ours
    (bench/bench_notifier.py: paging p50 went from ~1 s to ~50 ms on Tansu)."""
    import aiokafka
    from faust.transport.drivers import aiokafka as faust_aiokafka

    class PromptConsumer(aiokafka.AIOKafkaConsumer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["fetch_max_wait_ms"] = ms
            super().__init__(*args, **kwargs)

    faust_aiokafka.aiokafka.AIOKafkaConsumer = PromptConsumer  # type: ignore[misc]


class BeaconFaustApp(faust.App):
    """A Faust app whose web server serves only the pages Beacon registers (``app.page``).

    Faust's built-in views (``/table/<name>/<key>/``, ``/router/``, ``/``, and the statistics,
    graph and performance pages when their flags are on) answer anyone with table contents
    and topology; Beacon's tables hold children's and on-call staff's details. None of them
    is mounted, whatever the ``web_*_enabled`` settings say. (Nothing here uses
    ``@app.table_route``, which needs ``/router/``.)
    """

    def _new_web(self) -> Any:
        web = super()._new_web()
        web.blueprints = BlueprintManager()
        return web


def web_routes(app: faust.App) -> list[tuple[str, str]]:
    """(method, path) of every route the worker's web server serves, as it serves them."""
    app.web.init_server()  # what the worker does at start: mounts blueprints (none) and pages
    router = app.web.web_app.router  # type: ignore[attr-defined]  # the aiohttp driver's
    return sorted({(r.method, r.resource.canonical) for r in router.routes() if r.method != "HEAD"})


def make_faust_app(name: str, settings: Settings, web_port: int, **overrides: object) -> faust.App:
    _use_fetch_max_wait(settings.kafka_fetch_max_wait_ms)
    datadir = settings.data_dir / name
    datadir.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "broker": [f"kafka://{s}" for s in settings.bootstrap_servers],
        "broker_credentials": faust_credentials(settings),
        "store": settings.table_store,
        "datadir": str(datadir),
        "topic_partitions": settings.topic_partitions,
        "topic_replication_factor": settings.topic_replication_factor,
        # At-least-once: Tansu rejects transactions; every sink is idempotent instead.
        "processing_guarantee": "at_least_once",
        "consumer_auto_offset_reset": "earliest",
        # No leader election (no timer runs on_leader): no leader topic that `topics create`
        # does not declare (core/topics.py lists every topic a worker uses).
        "topic_disable_leader": True,
        "broker_session_timeout": settings.broker_session_timeout_s,
        "broker_heartbeat_interval": settings.broker_heartbeat_interval_s,
        "broker_rebalance_timeout": settings.broker_rebalance_timeout_s,
        "producer_acks": -1,
        "web_enabled": True,
        "web_bind": settings.bind_host,
        "web_port": web_port,
        "web_in_thread": False,
        "web_application_options": aiohttp_options(settings, aiohttp_security_headers()),
        # Faust's Worker takes this for mode's logging set-up: JSON lines, not coloured text.
        "logging_config": logging_config(settings.log_level),
    }
    if settings.kafka_single_record_batches:
        # One record per batch keeps Tansu's ListOffsets(latest) exact, so table
        # recovery reads the whole changelog (see shared/broker.md, defect 1).
        config["producer_max_batch_size"] = 1
    config.update(overrides)
    app = BeaconFaustApp(f"beacon-{name}", **config)
    cap_faust_web_connections(app.web, settings.http_max_connections)
    _add_ops_pages(app)
    _add_consumer_progress_exporter(app, settings)
    return app


def run_worker(app: faust.App, settings: Settings) -> None:
    """Run ``app`` as a worker in the foreground: JSON logs only (no banner, no colours)."""
    from faust.worker import Worker

    configure_logging(settings.log_level)
    # Fewer garbage collections: a worker allocates a few objects per record and keeps
    # long-lived ones (tables, clients), so CPython's default (a collection every 700
    # allocations) spent ~15% of the correlator's time (bench/bench_correlator.py: 5.9k ->
    # 6.9k events/s, the same as with the collector off). Startup objects are frozen out.
    gc.freeze()
    gc.set_threshold(50_000, 50, 50)
    Worker(
        app,
        loglevel=settings.log_level.lower(),
        logging_config=logging_config(settings.log_level),
        quiet=True,  # the startup banner and "starting➢" dots are not JSON
    ).execute_from_commandline()


def guarded(loop: str) -> Callable[[Callable[[], Awaitable[None]]], Callable[[], Awaitable[None]]]:
    """Wrap one run of a periodic loop so that it never raises and leaves a heartbeat.

    An exception inside a Faust timer stops the whole worker, so the body's exceptions are
    logged (type only: an exception's text may quote a payload) and the next tick tries
    again. After every successful run ``beacon_timer_last_run_timestamp_seconds{loop=...}``
    is set to now; the alert rules page when it goes stale.
    """

    def decorate(body: Callable[[], Awaitable[None]]) -> Callable[[], Awaitable[None]]:
        async def tick() -> None:
            try:
                await body()
            except Exception as exc:  # noqa: BLE001 - the point: nothing escapes into Faust
                log.error("periodic loop failed", loop=loop, error=type(exc).__name__)
            else:
                TIMER_HEARTBEAT.labels(loop=loop).set(time.time())

        tick.__name__ = tick.__qualname__ = f"beacon_loop_{loop}"
        tick.__module__ = body.__module__
        return tick

    return decorate


def guarded_timer(app: faust.App, interval_s: float, loop: str) -> Callable[[Callable[[], Awaitable[None]]], Any]:
    """``@app.timer`` for a ``guarded`` body: use it for every periodic loop of a worker
    (e.g. ``@guarded_timer(app, 10, "escalation")``)."""

    def decorate(body: Callable[[], Awaitable[None]]) -> Any:
        return app.timer(interval_s, name=f"beacon.loop.{loop}")(guarded(loop)(body))

    return decorate


# ---------------------------------------------------------------- readiness


@dataclass(frozen=True)
class Readiness:
    tables_recovered: bool
    rebalancing: bool
    assigned_partitions: int
    views_loaded: bool = True  # the worker's own read views (app.beacon_views_loaded), if any

    @property
    def ready(self) -> bool:
        return self.tables_recovered and not self.rebalancing and self.assigned_partitions > 0 and self.views_loaded

    def as_json(self) -> dict[str, object]:
        return {
            "ready": self.ready,
            "tables_recovered": self.tables_recovered,
            "rebalancing": self.rebalancing,
            "assigned_partitions": self.assigned_partitions,
            "views_loaded": self.views_loaded,
        }


def readiness(app: faust.App) -> Readiness:
    """Ready = table changelogs recovered, not rebalancing, and the group joined (the
    consumer holds at least one partition), and the worker's read views loaded (a worker sets
    ``app.beacon_views_loaded``, e.g. the notifier's alert directory). Before the consumer has
    started, not ready."""
    # Faust's TableManager has .recovery; its interface TableManagerT does not declare it.
    recovered = app.tables.recovery.completed.is_set() if app.tables else True  # type: ignore[attr-defined]
    try:
        assigned = len(app.consumer.assignment())
    except ConsumerNotStarted:
        assigned = 0
    views_loaded = getattr(app, "beacon_views_loaded", lambda: True)()
    return Readiness(
        tables_recovered=recovered,
        rebalancing=bool(app.rebalancing),
        assigned_partitions=assigned,
        views_loaded=bool(views_loaded),
    )


def _add_ops_pages(app: faust.App) -> None:
    """/healthz (alive), /readyz (tables recovered, partitions assigned), /metrics."""

    @app.page("/healthz")
    async def healthz(web, request):  # type: ignore[no-untyped-def]
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web, request):  # type: ignore[no-untyped-def]
        state = readiness(app)
        return web.json(state.as_json(), status=200 if state.ready else 503)

    @app.page("/metrics")
    async def metrics(web, request):  # type: ignore[no-untyped-def]
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])


# ---------------------------------------------------------- consumer progress


@dataclass(frozen=True)
class PartitionProgress:
    topic: str
    partition: int
    committed: int | None  # next offset the group will read; None = never committed
    beginning: int
    end: int  # offset the next record written will get (ListOffsets latest)

    @property
    def lag(self) -> int:
        """Records the group has not yet committed past. Never negative: on Tansu a
        multi-record batch makes ``end`` under-report (see README), so clamp at 0."""
        start = self.committed if self.committed is not None else self.beginning
        return max(0, self.end - start)


def partition_progress(
    partitions: Iterable[tuple[str, int]],
    committed: Mapping[tuple[str, int], int | None],
    beginning: Mapping[tuple[str, int], int],
    end: Mapping[tuple[str, int], int],
) -> list[PartitionProgress]:
    """Pure: join the three offset maps per partition (partitions missing an end offset
    are skipped: the broker did not answer for them this round)."""
    out = []
    for tp in sorted(set(partitions)):
        if tp not in end:
            continue
        offset = committed.get(tp)
        out.append(
            PartitionProgress(
                topic=tp[0],
                partition=tp[1],
                committed=offset if offset is not None and offset >= 0 else None,
                beginning=beginning.get(tp, 0),
                end=end[tp],
            )
        )
    return out


class ConsumerProgressReader:
    """Reads a consumer group's committed offsets and the partitions' ends from the broker,
    as an external lag exporter would: what a restart would resume from, not what this
    process believes. Blocking (kafka-python); call it from a thread."""

    def __init__(self, settings: Settings, group: str):
        self.client_config, self.group = client_config(settings), group
        self._admin: KafkaAdminClient | None = None
        self._consumer: KafkaConsumer | None = None

    def read(self, partitions: Iterable[tuple[str, int]]) -> list[PartitionProgress]:
        tps = [TopicPartition(t, p) for t, p in sorted(set(partitions))]
        if not tps:
            return []
        if self._admin is None:
            self._admin = KafkaAdminClient(**self.client_config, client_id=f"{self.group}-progress")
        if self._consumer is None:
            # No group_id: this consumer only asks for offsets, it never joins the group.
            self._consumer = KafkaConsumer(
                **self.client_config, client_id=f"{self.group}-progress", enable_auto_commit=False
            )
        committed_raw = self._admin.list_group_offsets({self.group: tps}).get(self.group, {})
        committed = {(tp.topic, tp.partition): meta.offset for tp, meta in committed_raw.items()}
        end = {(tp.topic, tp.partition): off for tp, off in self._consumer.end_offsets(tps).items()}
        beginning = {(tp.topic, tp.partition): off for tp, off in self._consumer.beginning_offsets(tps).items()}
        return partition_progress([(tp.topic, tp.partition) for tp in tps], committed, beginning, end)

    def close(self) -> None:
        for client in (self._admin, self._consumer):
            if client is not None:
                client.close()
        self._admin = self._consumer = None


class ConsumerProgressExporter:
    """Sets beacon_consumer_committed_offset and beacon_consumer_lag_records for the
    partitions this worker is assigned, and removes the series of partitions it lost."""

    def __init__(self, app: faust.App, reader: ConsumerProgressReader):
        self.app, self.reader, self.group = app, reader, reader.group
        self._exported: set[tuple[str, int]] = set()

    def assigned(self) -> set[tuple[str, int]]:
        try:
            assignment = self.app.consumer.assignment()
        except ConsumerNotStarted:
            return set()
        # Only topics whose offsets the group commits (agents' sources, repartition topics);
        # not table changelogs (read for recovery) nor Faust's leader-election topic.
        acking = self.app.topics.acks_enabled_for
        return {(tp.topic, tp.partition) for tp in assignment if acking(tp.topic)}

    async def export_once(self) -> list[PartitionProgress]:
        assigned = self.assigned()
        try:
            progress = await asyncio.to_thread(self.reader.read, assigned)
        except Exception:
            self.reader.close()  # a broken connection is rebuilt on the next tick
            raise
        self.publish(progress, assigned)
        return progress

    def publish(self, progress: list[PartitionProgress], assigned: set[tuple[str, int]]) -> None:
        for p in progress:
            labels = (self.group, p.topic, str(p.partition))
            if p.committed is not None:
                CONSUMER_COMMITTED_OFFSET.labels(*labels).set(p.committed)
            CONSUMER_LAG.labels(*labels).set(p.lag)
        for topic, partition in self._exported - assigned:
            for gauge in (CONSUMER_COMMITTED_OFFSET, CONSUMER_LAG):
                try:
                    gauge.remove(self.group, topic, str(partition))
                except KeyError:
                    pass
        self._exported = {(p.topic, p.partition) for p in progress} | (self._exported & assigned)


def _add_consumer_progress_exporter(app: faust.App, settings: Settings) -> None:
    reader = ConsumerProgressReader(settings, group=app.conf.id)
    exporter = ConsumerProgressExporter(app, reader)
    app.consumer_progress = exporter  # type: ignore[attr-defined]  # for tests and other loops

    @guarded_timer(app, settings.consumer_progress_interval_s, CONSUMER_PROGRESS_LOOP)
    async def export_consumer_progress() -> None:
        await exporter.export_once()

    @app.on_before_shutdown.connect  # type: ignore[misc,arg-type]
    async def close_reader(sender: Any, **_kwargs: Any) -> None:
        await asyncio.to_thread(reader.close)
