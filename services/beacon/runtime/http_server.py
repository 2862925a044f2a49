"""uvicorn as every Beacon HTTP service (ingest, console) runs it: slow clients are cut off and
connections are bounded, so a few hundred half-sent requests cannot pin the process.

- Headers: uvicorn has no read timeout before a request's headers are complete (its
  keep-alive timer only runs between requests), so ``guarded_h11`` adds one: a request whose
  headers are not all in within ``BEACON_HTTP_HEADER_TIMEOUT_S`` is answered 408 and closed.
- Connections: uvicorn's ``limit_concurrency`` is only checked once headers are complete; the
  same protocol closes a connection beyond ``BEACON_HTTP_MAX_CONNECTIONS`` at once (503).
- Body: ``BodyDeadlineMiddleware`` reads the whole body before the application sees it, and
  answers 408 if it is not in within ``BEACON_HTTP_BODY_TIMEOUT_S`` of the headers.
- Idle keep-alive connections close after ``BEACON_HTTP_KEEP_ALIVE_S``.

Faust workers serve with aiohttp (``aiohttp_options``): there aiohttp's keep-alive timer, which
also runs from a connection's start until a request's headers are complete, is set to the
header timeout, and ``aiohttp_body_deadline`` reads each body within the body timeout.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import uvicorn
from aiohttp import web
from uvicorn.protocols.http.h11_impl import H11Protocol

from beacon.runtime.logs import get_logger
from beacon.runtime.settings import Settings

log = get_logger("http")

_TIMEOUT_408 = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_BUSY_503 = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nretry-after: 5\r\nconnection: close\r\n\r\n"


def guarded_h11(header_timeout_s: float, max_connections: int) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a header deadline per request and a connection cap."""

    class GuardedH11Protocol(H11Protocol):
        _header_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                log.warning("http_connection_refused", reason="too_many_connections", limit=max_connections)
                transport.write(_BUSY_503)
                transport.close()
                return
            self._arm_header_deadline()

        def data_received(self, data: bytes) -> None:
            if self._between_requests() and self._header_deadline is None:
                self._arm_header_deadline()  # the next request on a kept-alive connection
            super().data_received(data)
            if not self._between_requests():
                self._cancel_header_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_header_deadline()
            super().connection_lost(exc)

        def _between_requests(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm_header_deadline(self) -> None:
            self._header_deadline = self.loop.call_later(header_timeout_s, self._headers_too_slow)

        def _cancel_header_deadline(self) -> None:
            if self._header_deadline is not None:
                self._header_deadline.cancel()
                self._header_deadline = None

        def _headers_too_slow(self) -> None:
            self._header_deadline = None
            if self._between_requests() and not self.transport.is_closing():
                log.warning("http_request_timeout", part="headers", timeout_s=header_timeout_s)
                self.transport.write(_TIMEOUT_408)
                self.transport.close()

    return GuardedH11Protocol


class BodyDeadlineMiddleware:
    """ASGI: the whole request body within ``timeout_s``, or 408 and the connection closed."""

    def __init__(self, app: Any, timeout_s: float):
        self.app, self.timeout_s = app, timeout_s

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        chunks: list[bytes] = []
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                log.warning("http_request_timeout", part="body", timeout_s=self.timeout_s, path=scope.get("path"))
                await self._send_408(send)
                return
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # e.g. http.disconnect, for streaming responses

        await self.app(scope, replay, send)

    @staticmethod
    async def _send_408(send: Any) -> None:
        body = json.dumps({"detail": "request body not received in time"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 408,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def uvicorn_config(app: Any, settings: Settings, port: int, **options: Any) -> uvicorn.Config:
    """The uvicorn.Config of a Beacon HTTP service, slow-client guards included."""
    return uvicorn.Config(
        BodyDeadlineMiddleware(app, settings.http_body_timeout_s),
        host=settings.bind_host,
        port=port,
        http=guarded_h11(settings.http_header_timeout_s, settings.http_max_connections),
        timeout_keep_alive=int(max(1, settings.http_keep_alive_s)),
        limit_concurrency=settings.http_max_connections + 1,  # the connection cap above is the limit
        h11_max_incomplete_event_size=16 * 1024,  # request line plus headers
        **options,
    )


def aiohttp_body_deadline(timeout_s: float) -> Any:
    """aiohttp middleware: the whole body within ``timeout_s``, else 408 (the body is cached
    on the request, so the handler's ``request.json()`` or ``post()`` reads it from memory)."""

    @web.middleware
    async def body_deadline(request: web.Request, handler: Any) -> Any:
        if request.body_exists:
            try:
                await asyncio.wait_for(request.read(), timeout_s)
            except TimeoutError:
                log.warning("http_request_timeout", part="body", timeout_s=timeout_s, path=request.path)
                return web.json_response(
                    {"detail": "request body not received in time"}, status=408, headers={"Connection": "close"}
                )
        return await handler(request)

    return body_deadline


def aiohttp_options(settings: Settings, *middlewares: Any) -> dict[str, Any]:
    """``web.Application(**options)`` of a Faust worker's web server (Faust's web_application_options)."""
    return {
        "middlewares": [*middlewares, aiohttp_body_deadline(settings.http_body_timeout_s)],  # first is outermost
        "handler_args": {"keepalive_timeout": settings.http_header_timeout_s},
    }


def cap_faust_web_connections(faust_web: Any, max_connections: int) -> None:
    """At most ``max_connections`` open connections on a Faust worker's aiohttp server
    (aiohttp has no such limit): one over the cap is closed as it is accepted, so slow or
    half-sent requests cannot pin the worker's file descriptors."""
    runner = faust_web._runner  # the aiohttp driver's AppRunner

    async def start_server() -> None:  # faust's Web.start_server, with the cap on the protocol factory
        await runner.setup()
        server = runner.server
        register = server.connection_made

        def connection_made(handler: Any, transport: asyncio.Transport) -> None:
            register(handler, transport)  # connection_lost forgets it, whichever way it ends
            if len(server.connections) > max_connections:
                log.warning("http_connection_refused", reason="connection cap", limit=max_connections)
                transport.abort()

        server.connection_made = connection_made
        await faust_web._create_site().start()

    faust_web.start_server = start_server
