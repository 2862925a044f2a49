"""Every console page at a desktop and at a phone's width (390 px), in Debian's Chromium
driven by Playwright: no sideways scrolling on the phone, the case reference in view,
and axe-core (tests/tools, installed by ``make tools``) finds no serious or critical
accessibility violation. Screenshots of each page at each width are saved under
var/screenshots/ (gitignored) as test artefacts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from beacon.core.alerts import Severity
from beacon.core.topics import ALERTS, AUDIT, EVENTS
from console import scripted_month
from console.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    RETURNED_CHILD,
    USER,
    audit_record,
    console_url,
    raised_alert,
    reported_event,
    returned_four_days_ago,
)
from harness.kafka import produce, produce_events

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "tools" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = ROOT / "var" / "screenshots"
WIDTHS = {"desktop": {"width": 1280, "height": 860}, "phone": {"width": 390, "height": 844}}
CHILD, EPISODE = "CH-7F3A9C21", "MET-2026-000123"


CASE_LINK_EDGES = """([table, child]) => {
    const link = [...document.querySelectorAll(`${table} a`)].find((a) => a.textContent.trim() === child);
    const box = link.getBoundingClientRect();
    return [box.left, box.right];
}"""


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "targets": [n["target"] for n in v["nodes"]][:5]}
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


def check(page: Page, name: str, width: str) -> None:
    if page.locator("#live").count():  # a live page: wait until connected, to meet fewer re-renders
        expect(page.locator("#live-status")).to_have_text("Live")
    page.screenshot(path=str(SCREENSHOTS / f"{name}-{width}.png"), full_page=True)
    assert axe_violations(page) == [], f"{name} at {width} width"
    scroll, viewport = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= viewport, f"{name} scrolls sideways at {width} width: {scroll} px in {viewport} px"


@pytest.mark.parametrize("width", list(WIDTHS))
def test_every_page_is_usable_and_accessible_at_desktop_and_phone_widths(settings, start_console, width):
    alert = raised_alert(CHILD, EPISODE, severity=Severity.critical, rule="cse_missing", step="flag")
    other = raised_alert(
        "CH-2B81D4E0", "MET-2026-000119", severity=Severity.medium, rule="repeat_episodes", step="3_in_90d"
    )
    produce_events(
        settings,
        EVENTS,
        [
            reported_event(CHILD, EPISODE, hours_ago=3),
            reported_event("CH-2B81D4E0", "MET-2026-000119", risk="medium", hours_ago=26),
        ],
    )
    produce(settings, ALERTS, [(alert.key, alert.to_json()), (other.key, other.to_json())])
    sent = audit_record(alert, "notification_sent", "au-sent-1")
    delivered = audit_record(alert, "delivery_status", "au-dlv-1", detail="delivered")
    produce(settings, AUDIT, [(sent.key, sent.to_json()), (delivered.key, delivered.to_json())])
    produce_events(settings, EVENTS, [*returned_four_days_ago(), *scripted_month.events()])
    start_console()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    base = console_url(settings)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # The console's CSP admits only its own scripts; the test's axe-core is let in.
            context = browser.new_context(viewport=WIDTHS[width], bypass_csp=True, is_mobile=width == "phone")
            page = context.new_page()
            page.goto(f"{base}/login?next=/")
            check(page, "login", width)
            page.get_by_label("User name").fill(USER)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()

            case_link = page.locator("#missing").get_by_role("link", name=CHILD)
            expect(case_link).to_be_visible()
            expect(page.locator(f'#alerts tr[data-alert="{alert.alert_id}"]')).to_be_visible()
            expect(page.locator("#live-status")).to_have_text("Live")
            # The case reference, in both tables, is on screen without scrolling sideways
            # (measured in one step in the page: a live update may re-render the tables).
            for table in ("#missing", "#alerts"):
                left, right = page.evaluate(CASE_LINK_EDGES, [table, CHILD])
                assert 0 <= left < right <= WIDTHS[width]["width"], (table, left, right)
            check(page, "dashboard", width)

            case_link.click()
            expect(page.get_by_role("heading", name=f"Child {CHILD}")).to_be_visible()
            expect(page.get_by_text("Delivery to oncall-sam by sms: delivered")).to_be_visible()
            check(page, "child", width)

            page.goto(f"{base}/alerts/{alert.alert_id}")
            expect(page.get_by_role("heading", name=f"Alert {alert.alert_id}")).to_be_visible()
            expect(page.locator("#paged")).to_contain_text("oncall-sam")
            check(page, "alert", width)

            page.goto(f"{base}/returns")
            expect(page.locator(f'tr[data-child="{RETURNED_CHILD}"]')).to_contain_text("Overdue")
            check(page, "returns-due", width)

            page.goto(f"{base}/on-call")
            expect(page.locator("#on-call tbody tr").first).to_be_visible()
            check(page, "on-call", width)

            page.goto(f"{base}/reports?month={scripted_month.MONTH}")
            expect(page.locator('#figures tr[data-council="southwark"]')).to_be_visible()
            check(page, "reports", width)

            page.goto(f"{base}/alerts/A000000000000000")
            expect(page.get_by_role("heading", name="Not found")).to_be_visible()
            check(page, "not-found", width)
        finally:
            browser.close()
