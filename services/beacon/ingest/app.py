"""The HTTP ingest service: ``POST /v1/events`` -> Kafka, 202 only once Kafka holds it.

Thin shell: decode/validate/authorise/rate-limit decisions live in
``beacon.ingest.decisions``; this module moves bytes and sets status codes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request, Security
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from beacon.core.events import EVENT_TYPES, envelope_model, event_to_json
from beacon.core.rate_limit import BadCredentialLimiter
from beacon.core.topics import EVENTS
from beacon.ingest.apikey_topic import ApiKeyFeed, KeysUnavailable
from beacon.ingest.decisions import (
    ACCEPTED_CONTENT_TYPES,
    BATCH_TYPES,
    SINGLE_TYPES,
    Bucket,
    Caller,
    ContractRules,
    Problem,
    check_events,
    decode_body,
    retry_after_header,
    take_tokens,
    too_large,
    type_label,
)
from beacon.ingest.settings import IngestSettings
from beacon.runtime.acked_producer import AckedProducer, KafkaUnavailable
from beacon.runtime.broker import kafka_answers
from beacon.runtime.http_headers import API_HEADERS, SecurityHeadersMiddleware
from beacon.runtime.http_server import uvicorn_config
from beacon.runtime.kafka import client_config
from beacon.runtime.logs import get_logger
from beacon.runtime.metrics import EVENTS_RECEIVED, EVENTS_REJECTED, INGEST_LATENCY

UNAUTHENTICATED = "unauthenticated"  # metrics label when no valid key was given


class ProblemItem(BaseModel):
    field: str = Field(description="JSON path of the failing field, '/'-separated (e.g. data/risk).")
    reason: str
    index: int | None = Field(default=None, description="Position of the event in a batch.")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemItem] | None = Field(default=None, description="Every failing field, and why.")


class Accepted(BaseModel):
    """Every event is held by Kafka (acks=all)."""

    accepted: list[str] = Field(description="The ids of the accepted events, in request order.")
    count: int


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        problem.body(), status_code=problem.status, media_type="application/problem+json", headers=dict(problem.headers)
    )


def _event_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """OpenAPI components for every event type, and the request-body schema."""
    models = [envelope_model(t) for t in EVENT_TYPES]
    refs, defs = models_json_schema([(m, "validation") for m in models], ref_template="#/components/schemas/{model}")
    one_event = {"oneOf": [refs[(m, "validation")] for m in models]}
    return defs.get("$defs", {}), one_event


def create_app(settings: IngestSettings) -> FastAPI:
    log = get_logger("ingest")  # after configure_logging: binding fixes the configuration
    keys = ApiKeyFeed(settings)
    producer = AckedProducer(settings, settings.ingest_kafka_timeout_s, "beacon-ingest")
    buckets: dict[str, Bucket] = {}
    bad_credentials = BadCredentialLimiter(settings.http_bad_auth_rate_per_s, settings.http_bad_auth_burst)
    readiness = {"ready": False, "checked_at": 0.0}
    rules = ContractRules.from_settings(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        keys.start()
        try:
            yield
        finally:
            await keys.stop()
            await asyncio.to_thread(producer.close)

    app = FastAPI(
        title="Beacon ingest API",
        version="1.0.0",
        description="Send missing-episode events (CloudEvents 1.0) to Beacon. A 202 means Kafka holds "
        "every event of the request; anything else means nothing was accepted, so resend the same "
        "request (same ids): duplicates are dropped downstream by (source, id).",
        lifespan=lifespan,
        redoc_url=None,  # one documentation page: /docs (README, "Security": every route is documented)
        swagger_ui_oauth2_redirect_url=None,  # no OAuth here: API keys
    )
    app.add_middleware(SecurityHeadersMiddleware, headers=API_HEADERS)
    bearer = HTTPBearer(auto_error=False, description="The API key of your source: `Authorization: Bearer bk_...`.")

    async def kafka_ready() -> bool:
        if time.monotonic() - readiness["checked_at"] > 2.0:
            readiness["ready"] = await asyncio.to_thread(
                kafka_answers, settings.bootstrap_servers, 1.0, "beacon-ingest-ready", **client_config(settings)
            )
            readiness["checked_at"] = time.monotonic()
        return bool(readiness["ready"])

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        kafka = await kafka_ready()
        ready = kafka and keys.ready and not keys.failed
        return JSONResponse(
            {"ready": ready, "kafka": kafka, "api_keys": keys.ready and not keys.failed},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST.split(";")[0])

    problem_content = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}
    retry_after = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "integer"}}}

    @app.post(
        "/v1/events",
        status_code=202,
        response_model=Accepted,
        summary="Send one event or a batch",
        responses={
            400: {"description": "Malformed JSON or batch.", "content": problem_content},
            401: {"description": "No API key, or an unknown or revoked key.", "content": problem_content},
            403: {
                "description": "An event's type is outside the key's scope, or its source is not the key's.",
                "content": problem_content,
            },
            413: {"description": "Body or batch too large.", "content": problem_content},
            415: {"description": "Unsupported content type.", "content": problem_content},
            422: {
                "description": "An event breaks the contract (every failing field is listed).",
                "content": problem_content,
            },
            429: {"description": "Rate limit of this source.", "content": problem_content, "headers": retry_after},
            503: {
                "description": "Kafka unavailable, or the service has not read its API keys (yet): nothing was accepted.",
                "content": problem_content,
                "headers": retry_after,
            },
        },
        openapi_extra={"requestBody": {"required": True, "content": {}}},  # filled in by custom_openapi
    )
    async def post_events(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer)
    ) -> Response:
        started = time.perf_counter()
        response = await _handle(request, credentials)
        INGEST_LATENCY.labels(status=str(response.status_code)).observe(time.perf_counter() - started)
        return response

    async def _handle(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Response:
        try:
            key = await keys.authenticate(credentials.credentials if credentials else None)
        except KeysUnavailable as exc:
            log.warning("api_keys_unavailable", error=str(exc))
            EVENTS_REJECTED.labels(source=UNAUTHENTICATED, reason="keys-unavailable").inc()
            return problem_response(
                Problem(
                    503,
                    "keys-unavailable",
                    "Service Unavailable",
                    "the service cannot read its API keys; nothing was accepted, resend the same request later",
                    headers={"Retry-After": str(settings.ingest_retry_after_s)},
                )
            )
        if key is None:
            address = request.client.host if request.client else "unknown"
            wait_s = bad_credentials.refused(address, time.monotonic())
            if wait_s > 0:  # a key guesser or a broken client: slowed down, the good keys still work
                EVENTS_REJECTED.labels(source=UNAUTHENTICATED, reason="rate-limited").inc()
                return problem_response(
                    Problem(
                        429,
                        "rate-limited",
                        "Too Many Requests",
                        "too many requests without a valid API key from this address; retry later",
                        headers={"Retry-After": retry_after_header(wait_s)},
                    )
                )
            EVENTS_REJECTED.labels(source=UNAUTHENTICATED, reason="unauthorized").inc()
            return problem_response(
                Problem(
                    401,
                    "unauthorized",
                    "Unauthorized",
                    "send a valid, unrevoked API key as 'Authorization: Bearer <key>'",
                    headers={"WWW-Authenticate": 'Bearer realm="beacon-ingest"'},
                )
            )
        source_label = key.source
        caller = Caller(
            source_name=key.source,
            scope=key.scope,
            allowed_types=frozenset(settings.ingest_scopes.get(key.scope, [])),
            source_uri=settings.ingest_source_prefix + key.source,
        )

        body = await _read_body(request)
        if isinstance(body, Problem):
            return _reject(body, source_label)
        decoded = decode_body(
            body,
            request.headers.get("content-type"),
            request.headers,
            max_events=settings.ingest_max_batch_events,
            max_bytes=settings.ingest_max_body_bytes,
        )
        if isinstance(decoded, Problem):
            return _reject(decoded, source_label)
        raws, batch = decoded
        checked = check_events(raws, batch, caller, datetime.now(UTC), rules)
        if isinstance(checked, Problem):
            for raw in raws:
                EVENTS_RECEIVED.labels(source=source_label, type=type_label(raw), outcome="rejected").inc()
            return _reject(checked, source_label)

        bucket, wait_s = take_tokens(
            buckets.get(key.source),
            len(checked),
            time.monotonic(),
            settings.ingest_rate_per_s,
            settings.ingest_rate_burst,
        )
        buckets[key.source] = bucket
        if wait_s > 0:
            return _reject(
                Problem(
                    429,
                    "rate-limited",
                    "Too Many Requests",
                    f"source {key.source!r} may send {settings.ingest_rate_per_s:g} events/s "
                    f"(bursts of {settings.ingest_rate_burst}); retry later",
                    headers={"Retry-After": retry_after_header(wait_s)},
                ),
                source_label,
            )

        records = [
            (e.subject.encode(), event_to_json(e), [("beacon-via", b"http"), ("beacon-key-id", key.key_id.encode())])
            for e in checked
        ]
        try:
            await producer.write(EVENTS, records)
        except KafkaUnavailable as exc:
            log.warning("kafka_unavailable", source=key.source, events=len(records), error=str(exc)[:200])
            readiness["checked_at"] = 0.0
            return _reject(
                Problem(
                    503,
                    "kafka-unavailable",
                    "Service Unavailable",
                    "Kafka did not acknowledge the events; nothing was accepted, resend the same request later",
                    headers={"Retry-After": str(settings.ingest_retry_after_s)},
                ),
                source_label,
            )
        for event in checked:
            EVENTS_RECEIVED.labels(source=source_label, type=event.type, outcome="accepted").inc()
        ids = [e.id for e in checked]
        log.info("events_accepted", source=key.source, count=len(ids))
        return JSONResponse(Accepted(accepted=ids, count=len(ids)).model_dump(), status_code=202)

    def _reject(problem: Problem, source_label: str) -> Response:
        EVENTS_REJECTED.labels(source=source_label, reason=problem.reason).inc()
        return problem_response(problem)

    async def _read_body(request: Request) -> bytes | Problem:
        limit = settings.ingest_max_body_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            return too_large(f"the body is {declared} bytes; at most {limit} are accepted")
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return too_large(f"the body is over {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        defs, one_event = _event_schemas()
        schema.setdefault("components", {}).setdefault("schemas", {}).update(defs)
        problem_schema = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
        schema["components"]["schemas"].update(problem_schema.pop("$defs", {}))
        schema["components"]["schemas"]["ProblemDetails"] = problem_schema
        batch = {"type": "array", "minItems": 1, "maxItems": settings.ingest_max_batch_events, "items": one_event}
        # application/json first: some tools (Prism) validate every +json body against the first entry.
        content: dict[str, Any] = {"application/json": {"schema": {"oneOf": [one_event, batch]}}}
        content.update({t: {"schema": one_event} for t in SINGLE_TYPES})
        content.update({t: {"schema": batch} for t in BATCH_TYPES})
        assert set(content) == set(ACCEPTED_CONTENT_TYPES)
        operation = schema["paths"]["/v1/events"]["post"]
        operation["requestBody"] = {
            "required": True,
            "content": content,
            "description": "One CloudEvent (structured mode) or a JSON array of them. "
            "Binary mode: ce-* headers and the event's data as an application/json body.",
        }
        app.openapi_schema = schema
        return schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    return app


def serve(settings: IngestSettings) -> None:
    import uvicorn

    from beacon.runtime.logs import configure_logging, logging_config

    configure_logging(settings.log_level)
    logging.getLogger("kafka").setLevel(logging.WARNING)  # per-connection chatter, not events
    get_logger("ingest").info("ingest_starting", port=settings.ingest_port)
    uvicorn.Server(
        uvicorn_config(
            create_app(settings),
            settings,
            settings.ingest_port,
            log_level=settings.log_level.lower(),
            log_config=logging_config(settings.log_level),  # uvicorn's own lines as JSON too
            access_log=False,
        )
    ).run()
