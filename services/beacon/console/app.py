"""The console's HTTP shell: log in, read the view, push changes, produce AckCommands.

Handlers only move data: the view comes from the projection, the acknowledgement is an
AckCommand on ACKS that the notifier acts on (and audits); the console never changes an
alert itself.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from beacon.console import projection
from beacon.console.feed import Feed
from beacon.console.settings import ConsoleSettings
from beacon.console.users import UserStore
from beacon.core import domain
from beacon.core.acks import AckCommand
from beacon.core.logs import get_logger

log = get_logger("console")
HERE = Path(__file__).parent

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
SSE_KEEPALIVE_S = 15.0
SSE_COALESCE_S = 0.2  # a burst of records becomes one page refresh


class LoginRequired(Exception):
    pass


def _local_path(target: str | None) -> str:
    """Only redirect inside the console (no open redirect to another site)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _format_duration(seconds: float) -> str:
    minutes = max(0, int(seconds // 60))
    days, rem = divmod(minutes, 24 * 60)
    hours, mins = divmod(rem, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins:02d} min"
    return f"{mins} min"


def create_app(settings: ConsoleSettings, feed: Feed, send_ack: Callable[[AckCommand], Any]) -> FastAPI:
    """``send_ack`` is awaited with each AckCommand; it must raise if Kafka did not take it."""
    users = UserStore(settings.console_users_file)
    zone = ZoneInfo(settings.console_timezone)
    templates = Jinja2Templates(directory=str(HERE / "templates"))

    def local_time(ts: datetime | None) -> str:
        return ts.astimezone(zone).strftime("%a %d %b %H:%M") if ts else "-"

    templates.env.filters["when"] = local_time
    templates.env.filters["iso"] = lambda ts: ts.isoformat() if ts else ""
    templates.env.filters["since"] = lambda ts, now: _format_duration((now - ts).total_seconds()) if ts else "-"
    templates.env.globals.update(
        risk_label=domain.risk_label,
        category_label=domain.category_label,
        severity_label=domain.severity_label,
        zone_name=settings.console_timezone,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        feed.start()
        yield
        await feed.stop()

    app = FastAPI(title="Beacon console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    secret = settings.console_session_secret.get_secret_value() or secrets.token_urlsafe(32)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="beacon_console",
        max_age=settings.console_session_max_age_s,
        same_site="lax",
        https_only=settings.console_cookie_secure,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, _exc: LoginRequired) -> Response:
        if request.url.path.startswith(("/fragments/", "/live")):
            return JSONResponse({"detail": "login required"}, status_code=401)
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def error_page(request: Request, exc: StarletteHTTPException) -> Response:
        if "text/html" not in request.headers.get("accept", "") or request.url.path.startswith("/fragments/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        user = request.session.get("user")
        return templates.TemplateResponse(
            request,
            "error.html",
            {
                "user": user,
                "csrf": csrf_token(request),
                "ready": feed.ready,
                "detail": exc.detail,
                "status_code": exc.status_code,
            },
            status_code=exc.status_code,
        )

    # ---------------------------------------------------------------- helpers

    def csrf_token(request: Request) -> str:
        token = request.session.get("csrf")
        if not token:
            token = request.session["csrf"] = secrets.token_urlsafe(32)
        return str(token)

    def check_csrf(request: Request, submitted: str) -> None:
        expected = request.session.get("csrf")
        if not expected or not secrets.compare_digest(str(expected).encode(), submitted.encode()):
            log.warning("console_csrf_rejected", path=request.url.path)
            raise HTTPException(
                status_code=403,
                detail="The form expired or did not come from this console. Go back, reload the page and try again.",
            )

    def current_user(request: Request) -> str:
        name = request.session.get("user")
        if not name or not users.exists(name):  # a removed user's session stops working at once
            request.session.pop("user", None)
            raise LoginRequired()
        return str(name)

    def render(
        request: Request, template: str, user: str | None, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        whole_page = not template.startswith("_")  # live fragments leave messages for the next page
        context.update(
            user=user,
            csrf=csrf_token(request),
            now=datetime.now(UTC),
            ready=feed.ready,
            flash=request.session.pop("flash", None) if whole_page else None,
            flash_error=request.session.pop("flash_error", None) if whole_page else None,
        )
        return templates.TemplateResponse(request, template, context, status_code=status_code)

    def dashboard_context() -> dict[str, Any]:
        rows = projection.missing_now(feed.state)
        alerts = projection.open_alerts(feed.state)
        return {"rows": rows, "alerts": alerts, "unacked": sum(1 for a in alerts if a.needs_attention)}

    def child_context(child_ref: str) -> dict[str, Any]:
        child = feed.state.children.get(child_ref)
        if child is None:
            raise HTTPException(status_code=404, detail="No record of this child reference.")
        episodes = sorted(
            child.episodes.values(), key=lambda e: e.started_at or e.ended_at or projection._NEVER, reverse=True
        )
        alerts = sorted(
            (feed.state.alerts[a] for a in child.alert_ids if a in feed.state.alerts),
            key=lambda a: (not a.is_open, projection.alert_order(a)),
        )
        return {
            "child": child,
            "episodes": episodes,
            "alerts": alerts,
            "entries": list(reversed(projection.timeline(feed.state, child_ref))),
        }

    def alert_context(alert_id: str) -> dict[str, Any]:
        alert = feed.state.alerts.get(alert_id)
        if alert is None or alert.raised_at is None and alert.resolved_at is None:
            raise HTTPException(status_code=404, detail="No such alert.")
        entries = [e for e in projection.timeline(feed.state, alert.child_ref or "") if e.alert_id == alert_id]
        return {"alert": alert, "entries": list(reversed(entries))}

    # ---------------------------------------------------------------- operations

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        ready = feed.ready and feed.failed is None
        body = {"ready": ready, "caught_up": feed.ready, "failed": feed.failed, "version": feed.state.version}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    # ---------------------------------------------------------------- login

    @app.get("/login", response_class=HTMLResponse)
    async def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return render(request, "login.html", None, next=_local_path(next), error=None)

    @app.post("/login", response_class=HTMLResponse)
    async def login(
        request: Request,
        username: str = Form(max_length=64),
        password: str = Form(max_length=1024),
        csrf: str = Form(""),
        next: str = Form("/"),
    ) -> Response:
        check_csrf(request, csrf)
        if await asyncio.to_thread(users.authenticate, username, password):  # scrypt off the event loop
            request.session.clear()  # a fresh session (and CSRF token) at every login
            request.session["user"] = username
            log.info("console_login", user=username)
            return RedirectResponse(_local_path(next), status_code=303)
        log.warning("console_login_failed")  # no name: a mistyped password can land in the name field
        return render(
            request, "login.html", None, status_code=401, next=_local_path(next), error="Wrong user name or password."
        )

    @app.post("/logout")
    async def logout(request: Request, csrf: str = Form("")) -> Response:
        check_csrf(request, csrf)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # ---------------------------------------------------------------- pages

    @app.get("/", response_class=HTMLResponse)
    async def dashboard(request: Request) -> HTMLResponse:
        user = current_user(request)
        return render(request, "dashboard.html", user, fragment="/fragments/dashboard", **dashboard_context())

    @app.get("/fragments/dashboard", response_class=HTMLResponse)
    async def dashboard_fragment(request: Request) -> HTMLResponse:
        user = current_user(request)
        return render(request, "_dashboard.html", user, **dashboard_context())

    @app.get("/children")
    async def find_child(request: Request, ref: str = "") -> Response:
        current_user(request)
        ref = ref.strip()
        if ref not in feed.state.children:
            if ref:
                request.session["flash_error"] = "No record of that child reference."
            return RedirectResponse("/", status_code=303)
        return RedirectResponse(f"/children/{quote(ref)}", status_code=303)

    @app.get("/children/{child_ref}", response_class=HTMLResponse)
    async def child_page(request: Request, child_ref: str) -> HTMLResponse:
        user = current_user(request)
        return render(
            request, "child.html", user, fragment=f"/fragments/children/{quote(child_ref)}", **child_context(child_ref)
        )

    @app.get("/fragments/children/{child_ref}", response_class=HTMLResponse)
    async def child_fragment(request: Request, child_ref: str) -> HTMLResponse:
        user = current_user(request)
        return render(request, "_child.html", user, **child_context(child_ref))

    @app.get("/alerts/{alert_id}", response_class=HTMLResponse)
    async def alert_page(request: Request, alert_id: str) -> HTMLResponse:
        user = current_user(request)
        return render(
            request, "alert.html", user, fragment=f"/fragments/alerts/{quote(alert_id)}", **alert_context(alert_id)
        )

    @app.get("/fragments/alerts/{alert_id}", response_class=HTMLResponse)
    async def alert_fragment(request: Request, alert_id: str) -> HTMLResponse:
        user = current_user(request)
        return render(request, "_alert.html", user, **alert_context(alert_id))

    @app.post("/alerts/{alert_id}/acknowledge")
    async def acknowledge(request: Request, alert_id: str, csrf: str = Form(""), next: str = Form("/")) -> Response:
        user = current_user(request)
        check_csrf(request, csrf)
        alert = feed.state.alerts.get(alert_id)
        if alert is None or alert.raised_at is None:
            raise HTTPException(status_code=404, detail="No such alert.")
        if alert.status != "raised":
            request.session["flash_error"] = f"Alert {alert_id} is already {alert.status}: nothing to do."
            return RedirectResponse(_local_path(next), status_code=303)
        # One command per (alert, person): a double click or a resubmitted form is the same command.
        command = AckCommand(
            command_id=f"console:{alert_id}:{user}",
            alert_id=alert_id,
            action="acknowledge",
            by=user,
            via="console",
            at=datetime.now(UTC),
        )
        try:
            await send_ack(command)
        except Exception as exc:  # noqa: BLE001 - any failure to hand the ack to Kafka is answered 503
            log.error("console_ack_not_sent", alert_id=alert_id, by=user, error=type(exc).__name__)
            raise HTTPException(
                status_code=503,
                detail="Kafka did not take the acknowledgement. It was NOT "
                "recorded: try again, or acknowledge by SMS or phone.",
            ) from None
        log.info(
            "console_ack_requested",
            alert_id=alert_id,
            child_ref=alert.child_ref,
            by=user,
            command_id=command.command_id,
            via="console",
        )
        request.session["flash"] = (
            f"Acknowledgement of alert {alert_id} sent. The notifier stops the escalation and confirms it here."
        )
        return RedirectResponse(_local_path(next), status_code=303)

    @app.get("/live")
    async def live(request: Request) -> StreamingResponse:
        current_user(request)

        async def stream() -> AsyncIterator[str]:
            version = -1
            yield "retry: 3000\n\n"
            while not feed.closing and not await request.is_disconnected():
                new_version = await feed.wait_for_change(version, SSE_KEEPALIVE_S)
                if feed.closing:
                    break  # the browser reconnects (to another instance, or to this one once restarted)
                if new_version == version:
                    yield ": keep-alive\n\n"
                    continue
                if version != -1:
                    await asyncio.sleep(SSE_COALESCE_S)
                    new_version = feed.state.version
                version = new_version
                yield f"event: change\ndata: {version}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"X-Accel-Buffering": "no"})

    return app
