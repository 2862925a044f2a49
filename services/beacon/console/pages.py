"""The coordinator's pages: Returns due, On call now, Reports (and their CSV downloads).

Handlers only move data: episodes come from the read model (read_model.py), the figures
from pure functions (returns_due.py, reports.py, on_call.py). Every handler reads through
the request's ScopedView (console/access.py, the one access decision): the read model's
queries are narrowed to the principal's organisations, then the rows are filtered by the
view (returns due and open alerts: children the principal may see now; reports: episodes
that involved one of the principal's organisations, whatever the history window, since a
statutory return covers every episode of the period). An alert not visible is 404.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from beacon.console import projection
from beacon.console.access import Role, ScopedView, require_role
from beacon.console.escalation_chain import ChainView, chain_view
from beacon.console.notes import MAX_NOTE_CHARS, NotesCipher, ShownNote
from beacon.console.on_call import on_call_now, open_by_person
from beacon.console.projection import AlertView
from beacon.console.read_model import ReadModel
from beacon.console.reports import (
    SSDA903_COLUMNS,
    monthly_figures,
    monthly_figures_csv,
    ssda903_missing,
    to_csv,
)
from beacon.console.returns_due import returns_due
from beacon.console.settings import ConsoleSettings
from beacon.core.audit import ConsoleAuditKind
from beacon.core.notes import NoteRecord
from beacon.core.policy import load_policy
from beacon.notifier.oncall import OnCallConfig, load_oncall
from beacon.runtime.logs import get_logger

log = get_logger("console")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def month_bounds(month: str | None, today: date) -> tuple[datetime, datetime, str]:
    """[first instant, first instant of the next month) in UTC, and the month's label; 400 if malformed."""
    if not month:
        year, number = today.year, today.month
    else:
        match = _MONTH.match(month)
        if not match or not 1 <= int(match.group(2)) <= 12 or not 1900 <= int(match.group(1)) <= 9998:
            raise HTTPException(status_code=400, detail="month: expected YYYY-MM, e.g. 2026-03.")
        year, number = int(match.group(1)), int(match.group(2))
    start = datetime(year, number, 1, tzinfo=UTC)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=UTC)
    return start, end, f"{year:04d}-{number:02d}"


def period_bounds(start: str, end: str) -> tuple[datetime, datetime]:
    """Inclusive dates YYYY-MM-DD -> [start, day after end); 400 naming the field otherwise."""
    bounds = []
    for name, value in (("from", start), ("to", end)):
        try:
            bounds.append(datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC))
        except ValueError:
            raise HTTPException(status_code=400, detail=f"{name}: expected a date YYYY-MM-DD.") from None
    if bounds[1] < bounds[0]:
        raise HTTPException(status_code=400, detail="to: must not be before from.")
    if bounds[1].date() == date.max:
        return bounds[0], datetime.max.replace(tzinfo=UTC)
    return bounds[0], bounds[1] + timedelta(days=1)


def _csv(body: str, filename: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


@dataclass(frozen=True)
class WorkPages:
    """What the pages registered here lend the alert page."""

    oncall_config: OnCallConfig
    notes_cipher: NotesCipher | None  # None: BEACON_CONSOLE_NOTES_KEY unset, notes are off

    def alert_chain(self, alert: AlertView) -> ChainView | None:
        return chain_view(self.oncall_config, alert)

    def alert_notes(self, alert: AlertView) -> list[ShownNote]:
        if self.notes_cipher is None:
            return [ShownNote(n.by, n.at, None) for n in alert.notes]
        return [self.notes_cipher.open(n) for n in alert.notes]


def register_work_pages(
    app: FastAPI,
    settings: ConsoleSettings,
    read_model: ReadModel,
    render: Callable[..., HTMLResponse],
    scoped: Callable[[Request], ScopedView],
    check_csrf: Callable[[Request, str], None],
    audit: Callable[[ScopedView, ConsoleAuditKind, str, str | None, str], Awaitable[None]],
    send_note: Callable[[NoteRecord], Awaitable[Any]] | None = None,
) -> WorkPages:
    """``scoped`` is THE way to read the view for the request's principal (app.scoped); the
    read model's queries are made through it too (ScopedView.episodes_started, ...)."""
    deadline_hours = load_policy(settings.policy_file).return_interview.deadline_hours
    oncall_config = load_oncall(settings.oncall_file)
    notes_key = settings.console_notes_key.get_secret_value()
    notes_cipher = NotesCipher(notes_key) if notes_key and send_note is not None else None

    def returns_context(view: ScopedView) -> dict[str, Any]:
        now = view.now
        # A return older than the look-back with no interview recorded is for the monthly
        # figures, not the day's work list.
        since = now - timedelta(days=settings.console_returns_due_days)
        rows = view.returns_awaiting_interview(read_model, since)
        by_council = returns_due(rows, now, deadline_hours)
        overdue = sum(1 for dues in by_council.values() for d in dues if d.overdue(now))
        return {
            "by_council": by_council,
            "deadline_hours": deadline_hours,
            "overdue": overdue,
            "days": settings.console_returns_due_days,
        }

    @app.get("/returns", response_class=HTMLResponse)
    async def returns_page(request: Request) -> HTMLResponse:
        view = scoped(request)
        return render(
            request, "returns.html", view.principal.name, fragment="/fragments/returns", **returns_context(view)
        )

    @app.get("/fragments/returns", response_class=HTMLResponse)
    async def returns_fragment(request: Request) -> HTMLResponse:
        view = scoped(request)
        return render(request, "_returns.html", view.principal.name, **returns_context(view))

    def on_call_context(view: ScopedView) -> dict[str, Any]:
        # Who is on call is the rota (no child in it): the teams of the principal's organisations.
        # What each person has open: only alerts of children the principal may see.
        alerts = view.only_visible(projection.open_alerts(view.state))
        return {
            "teams": on_call_now(oncall_config, view.now, alerts, view.principal.organisations),
            "taken": open_by_person(alerts),
        }

    @app.get("/on-call", response_class=HTMLResponse)
    async def on_call_page(request: Request) -> HTMLResponse:
        view = scoped(request)
        return render(
            request, "on_call.html", view.principal.name, fragment="/fragments/on-call", **on_call_context(view)
        )

    @app.get("/fragments/on-call", response_class=HTMLResponse)
    async def on_call_fragment(request: Request) -> HTMLResponse:
        view = scoped(request)
        return render(request, "_on_call.html", view.principal.name, **on_call_context(view))

    @app.get("/reports", response_class=HTMLResponse)
    async def reports_page(request: Request, month: str | None = None) -> HTMLResponse:
        view = scoped(request)
        start, end, label = month_bounds(month, view.now.date())
        rows = view.episodes_started(read_model, start, end)
        return render(
            request,
            "reports.html",
            view.principal.name,
            month=label,
            period_from=start.date().isoformat(),
            period_to=(end - timedelta(days=1)).date().isoformat(),
            figures=monthly_figures(rows, deadline_hours),
            deadline_hours=deadline_hours,
        )

    @app.get("/reports/monthly.csv")
    async def monthly_csv(request: Request, month: str | None = None) -> Response:
        view = scoped(request)
        start, end, label = month_bounds(month, view.now.date())
        rows = view.episodes_started(read_model, start, end)
        return _csv(monthly_figures_csv(monthly_figures(rows, deadline_hours)), f"beacon-monthly-{label}.csv")

    @app.get("/reports/ssda903-missing.csv")
    async def ssda903_csv(request: Request, start: str = "", end: str = "", council: str | None = None) -> Response:
        view = scoped(request)
        period_start, period_end = period_bounds(start, end)
        rows = view.episodes_started(read_model, period_start, period_end)
        table = ssda903_missing(rows, council or None)
        return _csv(to_csv(SSDA903_COLUMNS, table), f"ssda903-missing-{start}-to-{end}.csv")

    @app.post("/alerts/{alert_id}/notes")
    async def add_note(
        request: Request, alert_id: str, csrf: str = Form(""), text: str = Form("", max_length=MAX_NOTE_CHARS)
    ) -> Response:
        view = scoped(request)
        check_csrf(request, csrf)
        alert = view.alert(alert_id)  # 404 before 403: another organisation's alert does not exist here
        if alert.raised_at is None or alert.child_ref is None:
            raise HTTPException(status_code=404, detail="No such alert.")
        require_role(view.principal, Role.responder)
        user = view.principal.name
        back = RedirectResponse(f"/alerts/{quote(alert_id)}", status_code=303)
        if notes_cipher is None or send_note is None:
            raise HTTPException(status_code=404, detail="Notes are off on this console.")
        if not text.strip():
            request.session["flash_error"] = "The note is empty: nothing was saved."
            return back
        await audit(view, "action_requested", alert.child_ref, alert_id, "note")
        note = notes_cipher.seal(
            alert_id=alert_id, child_ref=alert.child_ref, by=user, at=datetime.now(UTC), text=text.strip()
        )
        try:
            await send_note(note)
        except Exception as exc:  # noqa: BLE001 - any failure to hand the note to Kafka is answered 503
            log.error("console_note_not_sent", alert_id=alert_id, by=user, error=type(exc).__name__)
            raise HTTPException(status_code=503, detail="Kafka did not take the note. It was NOT saved.") from None
        log.info("console_note_added", alert_id=alert_id, child_ref=alert.child_ref, by=user, note_id=note.note_id)
        request.session["flash"] = "Note saved (encrypted). It appears below once the console has read it back."
        return back

    return WorkPages(oncall_config, notes_cipher)
