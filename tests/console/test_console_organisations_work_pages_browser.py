"""The coordinator's pages keep to the access policy, in Debian's Chromium driven by Playwright
over the running console: a viewer of one council never sees another council's child on
Returns due, in the Reports' CSV rows, or among On call now's open alerts; and a viewer cannot
add a note (the server checks the role, not the button)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from beacon.core.events import build_event
from beacon.core.topics import ALERTS, EVENTS
from console.support import CHROMIUM, CHROMIUM_ARGS, console_url, iso, raised_alert, reported_event
from console.test_console_organisations_browser import PASSWORD, add_user
from harness.kafka import produce, produce_events

pytestmark = pytest.mark.slow

SOUTHWARK_VIEWER, LAMBETH_VIEWER = "sw-viewer-2", "lb-viewer-2"
# Back home four days ago, no return home interview: one child per council.
RETURNED_A, RETURNED_EPISODE_A = "CH-RA000001", "MET-2026-RA0001"
RETURNED_B, RETURNED_EPISODE_B = "CH-RB000002", "KNT-2026-RB0002"
# Missing now with an open alert: one child per council.
OPEN_A, OPEN_EPISODE_A = "CH-OA000003", "MET-2026-OA0003"
OPEN_B, OPEN_EPISODE_B = "CH-OB000004", "KNT-2026-OB0004"


def returned(child: str, episode: str, council: str, force: str) -> list[dict]:
    ended = datetime.now(UTC) - timedelta(hours=96)
    found = build_event(
        "beacon.episode.found.v1",
        child,
        {"episode_ref": episode, "outcome": "returned", "ended_at": iso(ended)},
        time=iso(ended),
        source=f"urn:beacon:source:{force}",
        event_id=f"found-{episode}",
    )
    return [reported_event(child, episode, risk="medium", hours_ago=110, council=council, force=force), found]


def log_in(page: Page, base: str, name: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#live-status")).to_have_text("Live")


def test_returns_due_reports_and_on_call_show_only_the_viewers_councils_children(
    settings, console_env, start_console, tmp_path
):
    add_user(console_env, SOUTHWARK_VIEWER, "viewer", "southwark")
    add_user(console_env, LAMBETH_VIEWER, "viewer", "lambeth")
    alert_a = raised_alert(OPEN_A, OPEN_EPISODE_A)
    alert_b = raised_alert(OPEN_B, OPEN_EPISODE_B, council="lambeth")
    produce_events(
        settings,
        EVENTS,
        [
            *returned(RETURNED_A, RETURNED_EPISODE_A, "southwark", "met-police"),
            *returned(RETURNED_B, RETURNED_EPISODE_B, "lambeth", "kent-police"),
            reported_event(OPEN_A, OPEN_EPISODE_A),
            reported_event(OPEN_B, OPEN_EPISODE_B, council="lambeth", force="kent-police"),
        ],
    )
    produce(settings, ALERTS, [(a.key, a.to_json()) for a in (alert_a, alert_b)])
    start_console()
    base = console_url(settings)
    today = datetime.now(UTC).date()
    period = f"start={(today - timedelta(days=10)).isoformat()}&end={today.isoformat()}"

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for name, own, others in (
                (SOUTHWARK_VIEWER, (RETURNED_A, OPEN_A, alert_a.alert_id), (RETURNED_B, OPEN_B, alert_b.alert_id)),
                (LAMBETH_VIEWER, (RETURNED_B, OPEN_B, alert_b.alert_id), (RETURNED_A, OPEN_A, alert_a.alert_id)),
            ):
                own_returned, own_open, own_alert = own
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                log_in(page, base, name)

                page.get_by_role("link", name="Returns due").click()
                expect(page.locator(f'tr[data-child="{own_returned}"]')).to_contain_text("Overdue")
                assert not any(ref in page.content() for ref in others), (name, "returns due")
                page.screenshot(path=str(tmp_path / f"{name}-returns.png"), full_page=True)

                page.get_by_role("link", name="On call now").click()
                expect(page.locator("#on-call").get_by_role("link", name=own_open)).to_be_visible()
                assert not any(ref in page.content() for ref in others), (name, "on call")

                csv = page.request.get(f"{base}/reports/ssda903-missing.csv?{period}")
                assert csv.status == 200, csv.text()
                rows = csv.text().splitlines()
                assert any(row.startswith(own_returned + ",") for row in rows), (name, rows)
                assert any(row.startswith(own_open + ",") for row in rows), (name, rows)
                assert not any(ref in csv.text() for ref in others), (name, rows)
                monthly = page.request.get(f"{base}/reports/monthly.csv")
                assert monthly.status == 200
                other_council = "lambeth" if name == SOUTHWARK_VIEWER else "southwark"
                assert other_council not in monthly.text(), (name, monthly.text())

                # Another council's alert does not exist here; its own alert refuses a viewer's note.
                hidden = page.request.get(f"{base}/alerts/{others[2]}")
                assert hidden.status == 404
                page.goto(f"{base}/alerts/{own_alert}")
                csrf = page.locator('input[name="csrf"]').first.get_attribute("value") or ""
                for alert, status in ((others[2], 404), (own_alert, 403)):
                    refused = page.request.post(
                        f"{base}/alerts/{alert}/notes", form={"csrf": csrf, "text": "x"}, max_redirects=0
                    )
                    assert refused.status == status, (name, alert, refused.status)
                page.close()
        finally:
            browser.close()
