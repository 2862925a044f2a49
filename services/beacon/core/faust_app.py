"""One place that turns Settings into a Faust app, so every worker gets the same
group timeouts, durability and broker workarounds."""

from __future__ import annotations

import faust
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from beacon.core.settings import Settings


def make_faust_app(name: str, settings: Settings, web_port: int, **overrides: object) -> faust.App:
    datadir = settings.data_dir / name
    datadir.mkdir(parents=True, exist_ok=True)
    config: dict[str, object] = dict(
        broker=[f"kafka://{s}" for s in settings.bootstrap_servers],
        store=settings.table_store,
        datadir=str(datadir),
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication_factor,
        # At-least-once: Tansu rejects transactions; every sink is idempotent instead.
        processing_guarantee="at_least_once",
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=settings.broker_heartbeat_interval_s,
        broker_rebalance_timeout=settings.broker_rebalance_timeout_s,
        producer_acks=-1,
        web_enabled=True,
        web_bind=settings.bind_host,
        web_port=web_port,
        web_in_thread=False,
    )
    if settings.kafka_single_record_batches:
        # One record per batch keeps Tansu's ListOffsets(latest) exact, so table
        # recovery reads the whole changelog (see shared/broker.md, defect 1).
        config["producer_max_batch_size"] = 1
    config.update(overrides)
    app = faust.App(f"beacon-{name}", **config)
    _add_ops_pages(app)
    return app


def _add_ops_pages(app: faust.App) -> None:
    """/healthz (alive), /readyz (tables recovered, partitions assigned), /metrics."""

    @app.page("/healthz")
    async def healthz(web, request):  # type: ignore[no-untyped-def]
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web, request):  # type: ignore[no-untyped-def]
        recovered = app.tables.recovery.completed.is_set() if app.tables else True
        ready = recovered and not app.rebalancing and bool(app.consumer.assignment())
        body = {"ready": ready, "tables_recovered": recovered, "rebalancing": app.rebalancing}
        return web.json(body, status=200 if ready else 503)

    @app.page("/metrics")
    async def metrics(web, request):  # type: ignore[no-untyped-def]
        return web.bytes(generate_latest(), content_type=CONTENT_TYPE_LATEST.split(";")[0])
