"""Every HTTP route each Beacon service serves, read from the service's own router (what
``python -m beacon routes SERVICE`` prints, and what the route walk test holds to the README)."""

from __future__ import annotations

import importlib
from typing import Any

from starlette.routing import Mount, Route

FAUST_SERVICES = {
    "correlator": "beacon.correlator.app",
    "notifier": "beacon.notifier.app",
    "validator": "beacon.ingest.validator_app",
}


def asgi_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of a Starlette/FastAPI app; a mount is one ``GET prefix/{path}`` route."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if isinstance(route, Mount):
            found.add(("GET", f"{route.path}/{{path}}"))
        elif isinstance(route, Route):
            found |= {(method, route.path) for method in route.methods or () if method != "HEAD"}
    return sorted(found)


def service_routes(service: str) -> list[tuple[str, str]]:
    """Build the service as it starts (its settings from the environment), without serving."""
    if service in FAUST_SERVICES:
        from beacon.runtime.faust_app import web_routes

        return web_routes(importlib.import_module(FAUST_SERVICES[service]).app)
    from beacon.runtime.settings import load_settings

    if service == "ingest":
        from beacon.ingest.app import create_app
        from beacon.ingest.settings import IngestSettings

        return asgi_routes(create_app(load_settings(IngestSettings)))
    if service == "console":
        from beacon.console.app import create_app as create_console
        from beacon.console.feed import Feed
        from beacon.console.settings import ConsoleSettings

        settings = load_settings(ConsoleSettings)

        async def never_sent(_command: object) -> None:
            raise RuntimeError("listing routes only")

        return asgi_routes(create_console(settings, Feed(settings), never_sent, never_sent, never_sent))
    raise ValueError(f"unknown service {service!r}")
