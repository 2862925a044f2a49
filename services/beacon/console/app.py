"""The console's HTTP shell: log in, read the view, push changes, produce AckCommands.

Handlers only move data: the view comes from the projection, the acknowledgement is an
AckCommand on ACKS that the notifier acts on (and audits); the console never changes an
alert itself.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
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
from beacon.console.access import Principal, Role, ScopedView, require_role
from beacon.console.feed import Feed
from beacon.console.oidc import CLIENT, ClaimsRefused, id_token_checks, make_oauth, principal_from_claims
from beacon.console.pages import register_work_pages
from beacon.console.sessions import SessionRecord
from beacon.console.settings import ConsoleSettings
from beacon.console.throttle import LoginThrottle, ThrottlePolicy
from beacon.core import domain
from beacon.core.acks import AckCommand
from beacon.core.audit import AuditRecord, ConsoleAuditKind
from beacon.core.notes import NoteRecord
from beacon.runtime.http_headers import SecurityHeadersMiddleware
from beacon.runtime.logs import get_logger
from beacon.runtime.metrics import CONSOLE_LOGIN_FAILURES

log = get_logger("console")
HERE = Path(__file__).parent

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


def throttle_policy(settings: ConsoleSettings) -> ThrottlePolicy:
    return ThrottlePolicy(
        free_failures_per_user=settings.console_login_free_failures_per_user,
        free_failures_per_address=settings.console_login_free_failures_per_address,
        backoff_s=settings.console_login_backoff_s,
        max_backoff_s=settings.console_login_max_backoff_s,
        lockout_after=settings.console_login_lockout_after,
    )


def _local_time(ts: datetime | None, zone: ZoneInfo) -> str:
    """A time in the console's zone. Any date the contract can parse renders: a record produced
    straight to a topic skips ingest's date window, and year 1 or 9999 cannot always move
    to another zone, so those are shown with their own offset instead."""
    if ts is None:
        return "-"
    try:
        return ts.astimezone(zone).strftime("%a %d %b %H:%M")
    except (OverflowError, ValueError):
        return ts.strftime("%d %b %Y %H:%M UTC%z")


def create_app(
    settings: ConsoleSettings,
    feed: Feed,
    send_ack: Callable[[AckCommand], Any],
    send_session_record: Callable[[SessionRecord], Any],
    send_audit: Callable[[AuditRecord], Any],
    send_note: Callable[[NoteRecord], Any] | None = None,
) -> FastAPI:
    """``send_ack``, ``send_session_record``, ``send_audit`` and ``send_note`` are awaited with each
    record for ACKS, CONSOLE_SESSIONS, AUDIT and CONSOLE_NOTES; they must raise if Kafka did not
    take it (``send_note`` None: notes are off)."""
    users = feed.users
    history = timedelta(days=settings.console_history_days)
    throttle = LoginThrottle(throttle_policy(settings))
    zone = ZoneInfo(settings.console_timezone)
    templates = Jinja2Templates(directory=str(HERE / "templates"))

    templates.env.filters["when"] = lambda ts: _local_time(ts, zone)
    templates.env.filters["iso"] = lambda ts: ts.isoformat() if ts else ""
    templates.env.filters["since"] = lambda ts, now: _format_duration((now - ts).total_seconds()) if ts else "-"
    templates.env.globals.update(
        risk_label=domain.risk_label,
        category_label=domain.category_label,
        severity_label=domain.severity_label,
        zone_name=settings.console_timezone,
        oidc_enabled=bool(settings.console_oidc_issuer),
    )
    oauth = make_oauth(settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        feed.start()
        yield
        await feed.stop()

    app = FastAPI(title="Beacon console", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.console_session_secret.get_secret_value(),
        session_cookie="beacon_console",
        max_age=settings.console_session_max_age_s,
        same_site="lax",
        https_only=settings.console_cookie_secure,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    app.add_middleware(SecurityHeadersMiddleware)

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

    def current_principal(request: Request) -> Principal:
        """The signed-in user, with the organisations and role the users topic gives them now."""
        name, session_id, issued_at = (request.session.get(k) for k in ("user", "sid", "iat"))
        principal = _session_principal(request.session, name)
        valid = (
            principal is not None
            and isinstance(session_id, str)
            and isinstance(issued_at, int | float)
            and feed.sessions_ready  # until the users and revocations at start are read, no session is trusted
            and feed.sessions.session_valid(str(name), session_id, issued_at)
        )
        if not valid or principal is None:
            for key in ("user", "sid", "iat"):
                request.session.pop(key, None)
            raise LoginRequired()
        request.state.principal = principal  # for the templates (role, organisations, buttons)
        return principal

    def _session_principal(session: dict[str, Any], name: object) -> Principal | None:
        if not isinstance(name, str):
            return None
        signed_in = session.get("oidc")
        if signed_in is None:
            return users.principal(name)  # a local account: as the users topic says now (removed: at once)
        if oauth is None or not isinstance(signed_in, dict):
            return None  # OIDC switched off: its sessions end
        try:  # what the ID token said at sign-in, in the signed cookie; until the session ends
            return Principal(name, frozenset(signed_in["orgs"]), Role.parse(signed_in["role"]))
        except (KeyError, TypeError, ValueError):
            return None

    def scoped(request: Request) -> ScopedView:
        """THE way a handler reads the view: only what this principal may see (console/access.py)."""
        return ScopedView(feed.state, current_principal(request), datetime.now(UTC), history)

    async def audit(
        view: ScopedView, kind: ConsoleAuditKind, child_ref: str, alert_id: str | None, detail: str
    ) -> None:
        """Who looked at which child, or did what: on the audit topic before the answer goes out.
        Fails closed: a view that cannot be audited is not shown."""
        record = AuditRecord(
            audit_id=f"console:{kind}:{uuid.uuid4()}",
            kind=kind,
            at=datetime.now(UTC),
            alert_id=alert_id,
            child_ref=child_ref,
            person=view.principal.name,
            detail=detail,
        )
        try:
            await send_audit(record)
        except Exception as exc:  # noqa: BLE001 - any failure to audit is answered 503
            log.error("console_audit_not_sent", kind=kind, error=type(exc).__name__)
            raise HTTPException(
                status_code=503, detail="Kafka did not take the audit record, so this cannot be shown. Try again."
            ) from None

    async def end_sessions(record: SessionRecord) -> bool:
        """Apply here at once, then hand to every replica through Kafka; False if Kafka refused."""
        feed.sessions.apply(record)
        try:
            await send_session_record(record)
        except Exception as exc:  # noqa: BLE001 - reported to the person and the log, never a 500
            log.error("console_session_record_not_sent", kind=record.kind, error=type(exc).__name__)
            return False
        return True

    def client_address(request: Request) -> str:
        return request.client.host if request.client else "unknown"

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
        principal = getattr(request.state, "principal", None)
        context.update(principal=principal, can_respond=principal is not None and principal.has_role(Role.responder))
        return templates.TemplateResponse(request, template, context, status_code=status_code)

    def dashboard_context(view: ScopedView) -> dict[str, Any]:
        rows = view.only_visible(projection.missing_now(view.state))
        alerts = view.only_visible(projection.open_alerts(view.state))
        return {"rows": rows, "alerts": alerts, "unacked": sum(1 for a in alerts if a.needs_attention)}

    def child_context(view: ScopedView, child_ref: str) -> dict[str, Any]:
        child = view.child(child_ref)
        episodes = sorted(
            child.episodes.values(), key=lambda e: e.started_at or e.ended_at or projection._NEVER, reverse=True
        )
        alerts = sorted(
            (view.state.alerts[a] for a in child.alert_ids if a in view.state.alerts),
            key=lambda a: (not a.is_open, projection.alert_order(a)),
        )
        return {
            "child": child,
            "episodes": episodes,
            "alerts": alerts,
            "entries": list(reversed(projection.timeline(view.state, child_ref))),
        }

    def alert_context(view: ScopedView, alert_id: str) -> dict[str, Any]:
        alert = view.alert(alert_id)
        if alert.raised_at is None and alert.resolved_at is None:
            raise HTTPException(status_code=404, detail="No such alert.")
        entries = [e for e in projection.timeline(view.state, alert.child_ref or "") if e.alert_id == alert_id]
        return {
            "alert": alert,
            "entries": list(reversed(entries)),
            "chain": work_pages.alert_chain(alert),
            "notes": work_pages.alert_notes(alert),
            "notes_on": work_pages.notes_cipher is not None,
        }

    work_pages = register_work_pages(app, settings, feed.read_model, render, scoped, check_csrf, audit, send_note)

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
        if not feed.sessions_ready:  # account locks are not known yet
            raise HTTPException(status_code=503, detail="The console is starting. Try again in a few seconds.")
        address, now = client_address(request), time.time()
        verdict = throttle.check(
            username,
            address,
            now,
            locked=feed.sessions.locked(username),
            unlocked_at=feed.sessions.unlocked_at.get(username),
        )
        if not verdict.allowed:
            # Refused before the password is checked: a guess made while waiting teaches nothing.
            CONSOLE_LOGIN_FAILURES.labels(reason=verdict.reason).inc()
            log.warning("console_login_refused", reason=verdict.reason, client=address)
            if verdict.reason == "locked":
                message = "This account is locked after too many failed logins. Ask an administrator to unlock it."
                return render(request, "login.html", None, status_code=423, next=_local_path(next), error=message)
            wait = max(1, int(verdict.retry_after_s + 0.999))
            response = render(
                request,
                "login.html",
                None,
                status_code=429,
                next=_local_path(next),
                error=f"Too many failed logins. Wait {wait} s, then try again.",
            )
            response.headers["Retry-After"] = str(wait)
            return response
        if await asyncio.to_thread(users.authenticate, username, password):  # scrypt off the event loop
            throttle.succeeded(username)
            request.session.clear()  # a fresh session (and CSRF token) at every login
            request.session.update(user=username, sid=secrets.token_urlsafe(18), iat=now)
            log.info("console_login", user=username)
            return RedirectResponse(_local_path(next), status_code=303)
        CONSOLE_LOGIN_FAILURES.labels(reason="wrong_password").inc()
        known = users.exists(username)
        # The name only if it is an account's: a mistyped password can land in the name field.
        log.warning("console_login_failed", client=address, user=username if known else None, user_known=known)
        if throttle.failed(username, address, now):
            await end_sessions(SessionRecord(kind="user_locked", subject=username, at=now, reason="lockout"))
            log.warning("console_user_locked", user=username if known else None, user_known=known, client=address)
        return render(
            request, "login.html", None, status_code=401, next=_local_path(next), error="Wrong user name or password."
        )

    @app.get("/login/oidc")
    async def oidc_login(request: Request, next: str = "/") -> Response:
        if oauth is None:
            raise HTTPException(status_code=404, detail="Not Found")
        request.session["oidc_next"] = _local_path(next)
        redirect_uri = settings.console_oidc_redirect_url or str(request.url_for("oidc_callback"))
        # authlib keeps state, nonce and the PKCE verifier in the signed session cookie.
        try:
            response: Response = await oauth.create_client(CLIENT).authorize_redirect(request, redirect_uri)
        except Exception as exc:  # noqa: BLE001 - the provider's discovery did not answer or is not valid
            log.error("console_oidc_provider_unreachable", error=type(exc).__name__)
            return render(
                request,
                "login.html",
                None,
                status_code=502,
                next="/",
                error="The sign-in provider did not answer. Try again, or log in with a local account.",
            )
        return response

    @app.get("/login/oidc/callback", name="oidc_callback")
    async def oidc_callback(request: Request) -> Response:
        if oauth is None:
            raise HTTPException(status_code=404, detail="Not Found")
        if not feed.sessions_ready:
            raise HTTPException(status_code=503, detail="The console is starting. Try again in a few seconds.")
        try:
            token = await oauth.create_client(CLIENT).authorize_access_token(
                request, claims_options=id_token_checks(settings)
            )
            claims = token.get("userinfo")
            if not claims:
                raise ClaimsRefused("the provider sent no ID token")
            principal = principal_from_claims(claims, settings)
        except ClaimsRefused as exc:
            CONSOLE_LOGIN_FAILURES.labels(reason="oidc_claims").inc()
            log.warning("console_oidc_refused", reason=str(exc))
            return render(request, "login.html", None, status_code=403, next="/", error=f"Sign-in refused: {exc}.")
        except Exception as exc:  # noqa: BLE001 - a bad state, nonce, signature, issuer or audience
            CONSOLE_LOGIN_FAILURES.labels(reason="oidc_invalid").inc()
            log.warning("console_oidc_failed", error=type(exc).__name__, detail=str(exc)[:200])
            return render(request, "login.html", None, status_code=401, next="/", error="Sign-in failed: try again.")
        target = _local_path(request.session.get("oidc_next"))
        request.session.clear()  # a fresh session (and CSRF token) at every sign-in
        request.session.update(
            user=principal.name,
            sid=secrets.token_urlsafe(18),
            iat=time.time(),
            oidc={"orgs": sorted(principal.organisations), "role": principal.role.name},
        )
        log.info("console_login", user=principal.name, via="oidc")
        return RedirectResponse(target, status_code=303)

    @app.post("/logout")
    async def logout(request: Request, csrf: str = Form("")) -> Response:
        check_csrf(request, csrf)
        session_id, user = request.session.get("sid"), request.session.get("user")
        request.session.clear()
        if isinstance(session_id, str):
            # Ends this session on every replica, whoever else holds a copy of the cookie.
            if not await end_sessions(
                SessionRecord(kind="session_ended", subject=session_id, at=time.time(), reason="logout")
            ):
                request.session["flash_error"] = (
                    "Logged out of this console, but Kafka did not record it: other consoles may still "
                    "accept this session until it expires. Tell the administrator."
                )
            log.info("console_logout", user=user)
        return RedirectResponse("/login", status_code=303)

    # ---------------------------------------------------------------- pages

    @app.get("/", response_class=HTMLResponse)
    async def dashboard(request: Request) -> HTMLResponse:
        view = scoped(request)
        return render(
            request, "dashboard.html", view.principal.name, fragment="/fragments/dashboard", **dashboard_context(view)
        )

    @app.get("/fragments/dashboard", response_class=HTMLResponse)
    async def dashboard_fragment(request: Request) -> HTMLResponse:
        view = scoped(request)
        return render(request, "_dashboard.html", view.principal.name, **dashboard_context(view))

    @app.get("/children")
    async def find_child(request: Request, ref: str = "") -> Response:
        view = scoped(request)
        ref = ref.strip()
        if not view.sees_child(ref):  # not there, or not this user's: the same answer
            if ref:
                request.session["flash_error"] = "No record of that child reference."
            return RedirectResponse("/", status_code=303)
        return RedirectResponse(f"/children/{quote(ref)}", status_code=303)

    @app.get("/children/{child_ref}", response_class=HTMLResponse)
    async def child_page(request: Request, child_ref: str) -> HTMLResponse:
        view = scoped(request)
        context = child_context(view, child_ref)
        await audit(view, "timeline_viewed", child_ref, None, "page")
        return render(
            request, "child.html", view.principal.name, fragment=f"/fragments/children/{quote(child_ref)}", **context
        )

    @app.get("/fragments/children/{child_ref}", response_class=HTMLResponse)
    async def child_fragment(request: Request, child_ref: str) -> HTMLResponse:
        view = scoped(request)
        context = child_context(view, child_ref)
        await audit(view, "timeline_viewed", child_ref, None, "live")
        return render(request, "_child.html", view.principal.name, **context)

    @app.get("/alerts/{alert_id}", response_class=HTMLResponse)
    async def alert_page(request: Request, alert_id: str) -> HTMLResponse:
        view = scoped(request)
        context = alert_context(view, alert_id)
        await audit(view, "alert_viewed", context["alert"].child_ref, alert_id, "page")
        return render(
            request, "alert.html", view.principal.name, fragment=f"/fragments/alerts/{quote(alert_id)}", **context
        )

    @app.get("/fragments/alerts/{alert_id}", response_class=HTMLResponse)
    async def alert_fragment(request: Request, alert_id: str) -> HTMLResponse:
        view = scoped(request)
        context = alert_context(view, alert_id)
        await audit(view, "alert_viewed", context["alert"].child_ref, alert_id, "live")
        return render(request, "_alert.html", view.principal.name, **context)

    @app.post("/alerts/{alert_id}/acknowledge")
    async def acknowledge(request: Request, alert_id: str, csrf: str = Form(""), next: str = Form("/")) -> Response:
        view = scoped(request)
        check_csrf(request, csrf)
        alert = view.alert(alert_id)  # 404 before 403: a viewer of another council learns nothing
        if alert.raised_at is None:
            raise HTTPException(status_code=404, detail="No such alert.")
        require_role(view.principal, Role.responder)
        user = view.principal.name
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
        await audit(view, "action_requested", alert.child_ref or "", alert_id, "acknowledge")
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

    @app.get("/admin/users", response_class=HTMLResponse)
    async def users_page(request: Request) -> HTMLResponse:
        """User management needs the admin role (today a read-out: changes go through the CLI to Kafka)."""
        principal = current_principal(request)
        require_role(principal, Role.admin)
        listed = sorted((u.principal for u in users.users.values()), key=lambda p: p.name)
        return render(request, "users.html", principal.name, users=listed)

    @app.get("/live")
    async def live(request: Request) -> StreamingResponse:
        # Carries view versions only, never a reference: what changed is fetched through scoped().
        current_principal(request)

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
