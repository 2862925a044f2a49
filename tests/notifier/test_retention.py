"""Issue 14, item 1, with the real notifier: a resolved escalation leaves the table after the
retention (a tombstone on the changelog, gone from the API), and a replay of the expired
alert's records pages nobody; an alert raised now still pages."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from beacon.core.alerts import AlertRecord, alert_id
from beacon.core.topics import ALERTS
from harness.kafka import produce, read_topic
from notifier.stack import API_TOKEN, Stack
from notifier.test_scenarios import prism, running_stack

pytestmark = [pytest.mark.slow]
CHANGELOG = "beacon-notifier-escalations-changelog"
__all__ = ["prism"]  # the module's Prism fixture


@pytest.fixture
def stack(prism, settings, env, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(prism, settings, env, tmp_path) as s:
        yield s


def api_status(stack: Stack, alert: AlertRecord) -> int:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    return httpx.get(f"{stack.url}/v1/alerts/{alert.alert_id}", headers=headers, timeout=5).status_code


def test_a_resolved_escalation_expires_and_a_replay_of_it_pages_nobody(stack: Stack, settings):
    phone = stack.phone(stack.oncall_person())
    alert = stack.raise_alert()
    page = phone.expect_sms(contains=alert.episode_ref)
    assert "Acknowledged" in phone.reply(f"{page.code}a")
    stack.wait_state(alert, lambda s: s["status"] == "acknowledged")
    stack.advance(minutes=2)  # past the phone's one message a minute
    stack.resolve(alert)
    assert "resolved" in phone.expect_sms(contains=alert.episode_ref).body
    stack.wait_state(alert, lambda s: s["status"] == "resolved" and "pending" not in str(s["notices"]))

    stack.advance(hours=29 * 24)  # within the retention (30 days): kept
    time.sleep(2)
    assert api_status(stack, alert) == 200
    stack.advance(hours=24 + 1)  # past it
    deadline = time.monotonic() + 20
    while api_status(stack, alert) != 404 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert api_status(stack, alert) == 404
    changelog = read_topic(settings, CHANGELOG, expect=1, timeout_s=10)
    last = [r for r in changelog if r.key.decode().strip('"') == alert.alert_id][-1]
    assert last.value is None  # a tombstone: compaction removes the state from Kafka too

    # A replay of everything the correlator wrote for it (raised, then resolved) pages nobody.
    sent = len(stack.twilio.delivered())
    raised = alert.to_json()
    resolved = alert.model_copy(update={"status": "resolved"}).to_json()
    produce(settings, ALERTS, [(alert.key, raised), (alert.key, resolved), (alert.key, raised)])
    phone.expect_no_sms(settle_s=4)
    assert len(stack.twilio.delivered()) == sent
    assert api_status(stack, alert) == 404  # nothing recreated

    # An alert emitted now (by the notifier's clock) still pages: the worker is alive.
    now = stack.now()
    fresh = alert.model_copy(
        update={
            "alert_id": alert_id("CH-TEST-0001", "MET-2026-777777", "triage", "high"),
            "episode_ref": "MET-2026-777777",
            "occurred_at": now,
            "emitted_at": now,
        }
    )
    produce(settings, ALERTS, [(fresh.key, fresh.to_json())])
    phone = stack.phone(stack.oncall_person())
    phone.expect_sms(contains="MET-2026-777777")
