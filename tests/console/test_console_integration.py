"""The console as a real process over the real broker: records in, pages out, acks on ACKS."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from beacon.core.acks import AckCommand
from beacon.core.alerts import Severity
from beacon.core.events import build_event
from beacon.core.topics import ACKS, ALERTS, AUDIT, EVENTS
from console.support import (
    USER,
    audit_record,
    console_url,
    csrf_of,
    iso,
    logged_in_client,
    raised_alert,
    reported_event,
)
from harness.kafka import produce, produce_events, read_topic

pytestmark = pytest.mark.slow


def wait_for(fetch: Callable[[], str], condition: Callable[[str], bool], timeout_s: float = 30.0) -> str:
    """Poll a page until it shows what the test waits for (no timing asserted, only an upper bound)."""
    deadline = time.monotonic() + timeout_s
    body = ""
    while time.monotonic() < deadline:
        body = fetch()
        if condition(body):
            return body
        time.sleep(0.2)
    raise AssertionError(f"page never showed the expected content; last body:\n{body[-3000:]}")


def test_pages_need_a_login_and_health_pages_do_not(settings, start_console):
    start_console()
    base = console_url(settings)
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{base}/readyz").status_code == 200
    assert "beacon_timer_last_run_timestamp_seconds" in httpx.get(f"{base}/metrics").text
    for path in ("/", "/children/CH-ANY-001", "/alerts/A0123"):
        response = httpx.get(f"{base}{path}")
        assert (response.status_code, response.headers["location"]) == (303, f"/login?next={path}")
    assert httpx.get(f"{base}/fragments/dashboard").status_code == 401
    assert httpx.get(f"{base}/live").status_code == 401

    client = httpx.Client(base_url=base)
    token = csrf_of(client.get("/login").text)
    wrong = client.post("/login", data={"username": USER, "password": "not the password", "csrf": token})
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    unknown = client.post("/login", data={"username": "nobody", "password": "whatever it is", "csrf": token})
    assert unknown.status_code == 401
    forged = httpx.post(f"{base}/login", data={"username": USER, "password": "x", "csrf": "forged"})
    assert forged.status_code == 403
    assert client.get("/").status_code == 303
    assert "Content-Security-Policy" in client.get("/login").headers


def test_ready_only_once_the_history_at_start_is_in_the_view(settings, start_console):
    children = [f"CH-HIST-{n:03d}" for n in range(40)]
    produce_events(settings, EVENTS, [reported_event(c, f"EP-HIST-{n:03d}") for n, c in enumerate(children)])
    # Records that break their contract are skipped and counted, never shown half-read nor fatal.
    produce(settings, ALERTS, [(b"CH-HIST-000", b"not json"), (b"CH-HIST-000", b'{"alert_id": "A1"}')])
    start_console()  # returns once /readyz answers 200
    page = logged_in_client(settings).get("/").text
    assert all(child in page for child in children)
    assert httpx.get(f"{console_url(settings)}/readyz").json()["ready"] is True
    metrics = httpx.get(f"{console_url(settings)}/metrics").text
    assert 'beacon_consumer_lag_records{group="console",partition="0",topic="beacon.events"} 0.0' in metrics


def test_records_appear_on_the_pages_once_and_ack_goes_to_acks(settings, console_env, start_console, tmp_path):
    start_console()
    client = logged_in_client(settings)
    child, episode = "CH-INT-0001", "MET-2026-0001"
    alert = raised_alert(child, episode, severity=Severity.critical, rule="cse_missing", step="0h")
    secret = "Told the carer she stays with a man at 12 Acacia Road"
    interview = build_event(
        "beacon.return_interview.recorded.v1",
        child,
        {"episode_ref": "MET-2025-0999", "status": "declined", "recorded_at": iso(alert.occurred_at), "reason": secret},
        time=iso(alert.occurred_at),
        source="urn:beacon:source:southwark",
        event_id="rhi-1",
    )
    paged = audit_record(alert, "notification_sent", "au-sent-1")
    delivered = audit_record(alert, "delivery_status", "au-dlv-1", detail="delivered")
    produce_events(settings, EVENTS, [reported_event(child, episode), interview])
    produce(settings, ALERTS, [(alert.key, alert.to_json())])
    produce(settings, AUDIT, [(paged.key, paged.to_json()), (delivered.key, delivered.to_json())])

    dashboard = wait_for(lambda: client.get("/").text, lambda body: alert.alert_id in body)
    assert child in dashboard and episode in dashboard and "Not acknowledged" in dashboard
    assert "sev-critical" in dashboard and secret not in dashboard

    timeline = wait_for(
        lambda: client.get(f"/children/{child}").text, lambda body: "Delivery to oncall-sam by sms: delivered" in body
    )
    assert "Paged oncall-sam by sms" in timeline and "Reported missing by met-police" in timeline
    assert "Return home interview declined" in timeline and "Acacia" not in timeline
    found = client.get("/children", params={"ref": f" {child} "})
    assert (found.status_code, found.headers["location"]) == (303, f"/children/{child}")
    assert client.get("/children", params={"ref": "CH-NOBODY-1"}).headers["location"] == "/"
    assert "No record of that child reference." in client.get("/").text
    alert_page = client.get(f"/alerts/{alert.alert_id}").text
    assert "Who was paged" in alert_page and "oncall-sam" in alert_page and "delivered" in alert_page

    # At-least-once delivery: the same records again, then a marker to know they were all read.
    produce_events(settings, EVENTS, [reported_event(child, episode)])
    produce(settings, ALERTS, [(alert.key, alert.to_json())])
    produce(settings, AUDIT, [(paged.key, paged.to_json())])
    produce_events(settings, EVENTS, [reported_event("CH-INT-MARK", "MET-2026-MARK")])
    wait_for(lambda: client.get("/").text, lambda body: "CH-INT-MARK" in body)
    timeline = client.get(f"/children/{child}").text
    assert timeline.count("Paged oncall-sam by sms") == 1
    assert timeline.count("Reported missing by met-police") == 1
    assert timeline.count("Alert raised (critical)") == 1

    # Acknowledge: refused without the form's CSRF token, accepted with it.
    form = {"next": f"/children/{child}"}
    assert client.post(f"/alerts/{alert.alert_id}/acknowledge", data={**form, "csrf": "forged"}).status_code == 403
    assert client.post(f"/alerts/{alert.alert_id}/acknowledge", data=form).status_code == 403
    token = csrf_of(timeline)
    accepted = client.post(f"/alerts/{alert.alert_id}/acknowledge", data={**form, "csrf": token})
    assert (accepted.status_code, accepted.headers["location"]) == (303, f"/children/{child}")
    again = client.post(f"/alerts/{alert.alert_id}/acknowledge", data={**form, "csrf": token})
    assert again.status_code == 303
    html = {"Accept": "text/html"}
    unknown = client.post("/alerts/A000000000000000/acknowledge", data={**form, "csrf": token}, headers=html)
    assert unknown.status_code == 404 and "No such alert." in unknown.text and "<h1>Not found</h1>" in unknown.text
    forged = client.post(f"/alerts/{alert.alert_id}/acknowledge", data={**form, "csrf": "x"}, headers=html)
    assert forged.status_code == 403 and "<h1>Refused</h1>" in forged.text

    commands = [AckCommand.from_json(r.value) for r in read_topic(settings, ACKS, expect=1)]
    assert {(c.alert_id, c.action, c.by, c.via) for c in commands} == {(alert.alert_id, "acknowledge", USER, "console")}
    assert len({c.command_id for c in commands}) == 1  # a double submit is one command
    assert all(r.key == alert.alert_id.encode() for r in read_topic(settings, ACKS, expect=1, settle_s=0))

    # The console reads ACKS back: pending until the notifier's audit record confirms.
    wait_for(
        lambda: client.get(f"/children/{child}").text,
        lambda body: f"Acknowledgement sent by {USER} via console" in body,
    )
    confirmed = audit_record(alert, "acknowledged", "au-ack-1", person=USER, channel=None, detail="via=console")
    produce(settings, AUDIT, [(confirmed.key, confirmed.to_json())])
    wait_for(lambda: client.get("/").text, lambda body: f"Acknowledged by {USER} via console" in body)
    late = client.post(f"/alerts/{alert.alert_id}/acknowledge", data={**form, "csrf": token}, follow_redirects=True)
    assert f"Alert {alert.alert_id} is already acknowledged: nothing to do." in late.text
    assert len(read_topic(settings, ACKS, expect=1)) == 2  # the two submits before; none after the confirmation

    log_lines = [json.loads(line) for line in _log(tmp_path).splitlines() if line.startswith("{")]
    acks_logged = [line for line in log_lines if line.get("event") == "console_ack_requested"]
    assert acks_logged and acks_logged[0]["by"] == USER and acks_logged[0]["alert_id"] == alert.alert_id
    assert "Acacia" not in _log(tmp_path)


def test_a_second_report_for_an_open_episode_is_one_row_in_missing_now(settings, start_console):
    """Two forces report the same missing child under their own incident numbers: the
    correlator merges the second report into the open episode (core/domain.py), and so
    does the console: one row, the first report's episode, the latest risk grade."""
    child = "CH-TWICE-001"
    first = reported_event(child, "MET-2026-0500", risk="low", hours_ago=3)
    second = {**reported_event(child, "KNT-2026-0077", risk="high", hours_ago=1), "source": "urn:beacon:source:kent"}
    produce_events(settings, EVENTS, [first, second, reported_event("CH-OTHER-002", "MET-2026-0501")])
    start_console()
    client = logged_in_client(settings)

    dashboard = wait_for(lambda: client.get("/").text, lambda body: "CH-OTHER-002" in body)
    missing = dashboard.split('id="missing"', 1)[1].split("</table>", 1)[0]
    assert missing.count(f'data-child="{child}"') == 1
    assert "MET-2026-0500" in missing and "KNT-2026-0077" not in missing
    assert '<span class="risk risk-high">high</span>' in missing
    assert 'Missing now <span class="count">2</span>' in dashboard
    timeline = client.get(f"/children/{child}").text
    assert timeline.count("Reported missing by met-police") == 2  # both kept
    assert "(as KNT-2026-0077: the same episode)" in timeline


def test_a_removed_user_is_logged_out_as_soon_as_the_console_reads_the_removal(settings, console_env, start_console):
    start_console()
    client = logged_in_client(settings)
    assert client.get("/").status_code == 200
    removed = subprocess.run(
        [sys.executable, "-m", "beacon", "console-user", "remove", USER],
        env=console_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert removed.returncode == 0, removed.stderr
    # The CLI returns once Kafka holds the removal; the console's feed fetches it a moment later
    # (milliseconds; more on a loaded 2-core machine, where CI once saw one more page served).
    returned = time.monotonic()
    while (status := client.get("/").status_code) == 200 and time.monotonic() - returned < 10:
        time.sleep(0.02)
    assert status == 303
    print(f"removed user's session refused {1000 * (time.monotonic() - returned):.0f} ms after the CLI returned")


def _log(tmp_path: Path) -> str:
    return (tmp_path / "console.log").read_text()


def test_pages_render_records_with_dates_ingest_would_refuse(settings, start_console):
    """A record produced straight to beacon.events skips ingest's date window: the console
    answered 500 on the dashboard, its live fragment and the child page after one."""
    start_console()
    client = logged_in_client(settings)
    children = {"CH-OLD-0001": "0001-01-01T00:00:00Z", "CH-FAR-9999": "9999-12-31T23:59:59-12:00"}
    events = []
    for child, started_at in children.items():
        event = reported_event(child, f"MET-{child[3:]}")
        event["data"]["started_at"] = started_at
        event["time"] = started_at
        events.append(event)
    produce_events(settings, EVENTS, events)
    wait_for(lambda: client.get("/").text, lambda body: all(child in body for child in children))
    assert client.get("/").status_code == 200
    assert client.get("/fragments/dashboard").status_code == 200
    for child in children:
        assert client.get(f"/children/{child}").status_code == 200
        assert client.get(f"/fragments/children/{child}").status_code == 200
