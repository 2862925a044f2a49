"""A person at the console, in Debian's Chromium driven by Playwright: log in, see the
missing child, watch a new alert arrive without reloading, open the timeline and
acknowledge; the AckCommand lands on ACKS."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect, sync_playwright

from beacon.core.acks import AckCommand
from beacon.core.alerts import Severity
from beacon.core.topics import ACKS, ALERTS, AUDIT, EVENTS
from console.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    USER,
    audit_record,
    console_url,
    raised_alert,
    reported_event,
)
from harness.kafka import produce, produce_events, read_topic

pytestmark = pytest.mark.slow


def test_on_call_person_sees_an_alert_arrive_and_acknowledges_it(settings, start_console, tmp_path):
    child, episode = "CH-7F3A9C21", "MET-2026-000123"
    other = raised_alert(
        "CH-2B81D4E0",
        "MET-2026-000119",
        severity=Severity.medium,
        rule="repeat_episodes",
        step="3_in_42d",
        reason="Third missing episode in 42 days",
    )
    produce_events(
        settings,
        EVENTS,
        [
            reported_event(child, episode, hours_ago=3),
            reported_event("CH-2B81D4E0", "MET-2026-000119", risk="medium", hours_ago=26),
        ],
    )
    produce(settings, ALERTS, [(other.key, other.to_json())])
    start_console()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            page.goto(console_url(settings) + "/")
            expect(page).to_have_url(console_url(settings) + "/login?next=/")
            page.screenshot(path=str(tmp_path / "login.png"))
            page.get_by_label("User name").fill(USER)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()

            missing = page.locator("#missing")
            expect(missing.get_by_role("link", name=child)).to_be_visible()
            expect(page.locator("#live-status")).to_have_text("Live")
            page.evaluate("window.__notReloaded = true")

            # The correlator raises an alert and the notifier pages someone: both are pushed to the open page.
            alert = raised_alert(
                child,
                episode,
                severity=Severity.critical,
                rule="cse_missing",
                step="0h",
                reason="High risk missing, CSE screening on record",
            )
            produce(settings, ALERTS, [(alert.key, alert.to_json())])
            sent = audit_record(alert, "notification_sent", "au-sent-1", person="oncall-sam")
            delivered = audit_record(alert, "delivery_status", "au-dlv-1", person="oncall-sam", detail="delivered")
            produce(settings, AUDIT, [(sent.key, sent.to_json()), (delivered.key, delivered.to_json())])

            new_row = page.locator(f'#alerts tr[data-alert="{alert.alert_id}"]')
            expect(new_row).to_be_visible(timeout=30_000)
            expect(new_row.locator(".badge")).to_have_text("critical")
            expect(page.locator("#alerts tbody tr").first).to_have_attribute("data-alert", alert.alert_id)
            expect(page).to_have_title("(2) Beacon console")
            assert page.evaluate("window.__notReloaded") is True  # it arrived by push, not by a reload
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)

            missing.get_by_role("link", name=child).click()
            expect(page.get_by_role("heading", name=f"Child {child}")).to_be_visible()
            expect(page.get_by_text("Delivery to oncall-sam by sms: delivered")).to_be_visible()
            page.screenshot(path=str(tmp_path / "timeline.png"), full_page=True)

            page.get_by_role("button", name=f"Acknowledge alert {alert.alert_id}").click()
            expect(page.locator(".flash")).to_contain_text(f"Acknowledgement of alert {alert.alert_id} sent")
            expect(page.get_by_text(f"Acknowledgement sent by {USER} via console").first).to_be_visible()

            [command] = [AckCommand.from_json(r.value) for r in read_topic(settings, ACKS, expect=1)]
            assert (command.alert_id, command.action, command.by, command.via) == (
                alert.alert_id,
                "acknowledge",
                USER,
                "console",
            )

            # The notifier confirms; the open page follows by itself.
            confirmed = audit_record(alert, "acknowledged", "au-ack-1", person=USER, channel=None, detail="via=console")
            produce(settings, AUDIT, [(confirmed.key, confirmed.to_json())])
            expect(page.get_by_text(f"Acknowledged by {USER} via console").first).to_be_visible(timeout=30_000)
            page.screenshot(path=str(tmp_path / "acknowledged.png"), full_page=True)

            page.get_by_role("link", name="cse missing").click()
            expect(page.get_by_role("heading", name=f"Alert {alert.alert_id}")).to_be_visible()
            paged = page.locator("#paged")
            expect(paged).to_contain_text("oncall-sam")
            expect(paged).to_contain_text("delivery status")
            expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)  # nothing left to acknowledge
            page.screenshot(path=str(tmp_path / "alert.png"), full_page=True)
            print(f"screenshots in {tmp_path}")
        finally:
            browser.close()
