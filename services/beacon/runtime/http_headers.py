"""Security headers on every response Beacon's HTTP servers send: one set of headers, and an
adapter for each kind of server (ASGI for the console and ingest, aiohttp for the notifier's
Faust web server). A header the handler set itself is kept."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web

# Pages: only this origin's own script, style and forms; never framed; nothing cached or referred.
PAGE_HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
# An API that also serves its own documentation page (the ingest's /docs loads Swagger UI's
# script from a CDN, which the pages' policy would block): the same minus the CSP.
API_HEADERS: Mapping[str, str] = {k: v for k, v in PAGE_HEADERS.items() if k != "Content-Security-Policy"}

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class SecurityHeadersMiddleware:
    """ASGI middleware: adds ``headers`` to every HTTP response that does not set them."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str] = PAGE_HEADERS):
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def aiohttp_security_headers(headers: Mapping[str, str] = PAGE_HEADERS) -> Any:
    """The same for an aiohttp application (Faust's web server): ``middlewares=[...]``."""

    @web.middleware
    async def security_headers(request: web.Request, handler: Callable[[web.Request], Awaitable[Any]]) -> Any:
        try:
            response = await handler(request)
        except web.HTTPException as exc:  # aiohttp's own 404/405 answers are raised
            response = exc
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return security_headers
