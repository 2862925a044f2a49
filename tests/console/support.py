"""Helpers shared by the console tests: records to produce, and a logged-in HTTP client."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from beacon.core.alerts import AlertRecord, Severity, alert_id
from beacon.core.audit import AuditRecord
from beacon.core.events import build_event

USER, PASSWORD = "duty-manager-1", "correct horse battery staple"
# The organisations the records below name (support.reported_event, raised_alert): USER sees them all.
USER_ORGANISATIONS = ("met-police", "southwark")
USER_ACCESS = ("--org", "met-police", "--org", "southwark", "--role", "responder")

# Debian's Chromium, driven by Playwright (never a browser Playwright downloads).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def console_url(settings) -> str:
    return f"http://127.0.0.1:{settings.console_port}"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF token in the form"
    return match.group(1)


def logged_in_client(settings, user: str = USER, password: str = PASSWORD, port: int | None = None) -> httpx.Client:
    """A session on the console at ``settings.console_port`` (or on the replica at ``port``)."""
    base_url = f"http://127.0.0.1:{port}" if port else console_url(settings)
    client = httpx.Client(base_url=base_url, timeout=10)
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"username": user, "password": password, "csrf": token, "next": "/"})
    assert response.status_code == 303, response.text
    return client


# ------------------------------------------------------------------ records


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


def reported_event(
    child: str,
    episode: str,
    *,
    risk: str = "high",
    hours_ago: float = 2,
    council: str = "southwark",
    force: str = "met-police",
) -> dict[str, Any]:
    started = datetime.now(UTC) - timedelta(hours=hours_ago)
    return build_event(
        "beacon.episode.reported.v1",
        child,
        {
            "episode_ref": episode,
            "category": "missing",
            "started_at": iso(started),
            "risk": risk,
            "age_years": 14,
            "looked_after": True,
            "reporting_org": force,
            "placing_council": council,
        },
        time=iso(started + timedelta(minutes=20)),
        source=f"urn:beacon:source:{force}",
        event_id=f"rep-{episode}",
    )


def raised_alert(
    child: str,
    episode: str,
    *,
    severity: Severity = Severity.high,
    rule: str = "triage",
    step: str = "high",
    reason: str = "Child reported missing, police risk high",
    council: str = "southwark",
) -> AlertRecord:
    now = datetime.now(UTC)
    return AlertRecord(
        alert_id=alert_id(child, episode, rule, step),
        status="raised",
        child_ref=child,
        episode_ref=episode,
        rule=rule,
        step=step,
        severity=severity,
        reason=reason,
        council=council,
        occurred_at=now - timedelta(minutes=1),
        emitted_at=now,
    )


def audit_record(
    alert: AlertRecord,
    kind: str,
    audit_id: str,
    *,
    person: str = "oncall-sam",
    channel: str | None = "sms",
    detail: str = "",
    step: int | None = 1,
) -> AuditRecord:
    return AuditRecord(
        audit_id=audit_id,
        kind=kind,
        at=datetime.now(UTC),
        alert_id=alert.alert_id,
        child_ref=alert.child_ref,
        person=person,
        channel=channel,
        step=step,
        detail=detail,
    )


RETURNED_CHILD, RETURNED_EPISODE = "CH-RHI-0001", "MET-2026-RHI1"


def returned_four_days_ago() -> list[dict]:
    """A child back home 96 hours ago with no return home interview recorded: 24 h overdue."""
    ended = datetime.now(UTC) - timedelta(hours=96)
    found = build_event(
        "beacon.episode.found.v1",
        RETURNED_CHILD,
        {"episode_ref": RETURNED_EPISODE, "outcome": "returned", "ended_at": iso(ended)},
        time=iso(ended),
        source="urn:beacon:source:southwark",
        event_id="found-rhi-1",
    )
    return [reported_event(RETURNED_CHILD, RETURNED_EPISODE, risk="medium", hours_ago=110), found]
