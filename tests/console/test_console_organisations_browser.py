"""Organisations and roles at the console, in Debian's Chromium driven by Playwright over the
running console: a council's user never sees another council's child (not on the dashboard,
not by URL, not by search, not in the counts), a viewer cannot acknowledge, and every view of
a timeline is on the audit topic with who looked."""

from __future__ import annotations

import subprocess
import sys

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from beacon.core.alerts import Severity
from beacon.core.audit import AuditRecord
from beacon.core.topics import ALERTS, AUDIT, EVENTS
from console.support import CHROMIUM, CHROMIUM_ARGS, console_url, raised_alert, reported_event
from harness.kafka import produce, produce_events, read_topic

pytestmark = pytest.mark.slow

PASSWORD = "a passphrase for this test 1"
SOUTHWARK_RESPONDER, LAMBETH_VIEWER = "sw-duty-1", "lb-viewer-1"
CHILD_A, EPISODE_A = "CH-A0000001", "MET-2026-000201"  # placed by southwark, reported by the met
CHILD_B, EPISODE_B = "CH-B0000002", "KNT-2026-000202"  # placed by lambeth, reported by kent


def add_user(env: dict[str, str], name: str, role: str, *organisations: str) -> None:
    orgs = [arg for org in organisations for arg in ("--org", org)]
    added = subprocess.run(
        [sys.executable, "-m", "beacon", "console-user", "add", name, *orgs, "--role", role],
        input=PASSWORD + "\n",
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert added.returncode == 0, added.stderr


def log_in(page: Page, base: str, name: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#live-status")).to_have_text("Live")


def test_a_council_sees_only_its_children_and_a_viewer_cannot_acknowledge(
    settings, console_env, start_console, tmp_path
):
    add_user(console_env, SOUTHWARK_RESPONDER, "responder", "southwark")
    add_user(console_env, LAMBETH_VIEWER, "viewer", "lambeth")
    add_user(console_env, "sw-admin-1", "admin", "southwark")
    alert_a = raised_alert(CHILD_A, EPISODE_A, severity=Severity.high)
    alert_b = raised_alert(CHILD_B, EPISODE_B, severity=Severity.critical, council="lambeth")
    produce_events(
        settings,
        EVENTS,
        [
            reported_event(CHILD_A, EPISODE_A),
            reported_event(CHILD_B, EPISODE_B, council="lambeth", force="kent-police"),
        ],
    )
    produce(settings, ALERTS, [(a.key, a.to_json()) for a in (alert_a, alert_b)])
    start_console()
    base = console_url(settings)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            southwark = browser.new_page(viewport={"width": 1280, "height": 860})
            log_in(southwark, base, SOUTHWARK_RESPONDER)
            expect(southwark.get_by_test_id("principal")).to_have_text("(responder, southwark)")
            expect(southwark.locator("#missing").get_by_role("link", name=CHILD_A)).to_be_visible()
            expect(southwark.locator(f'#alerts tr[data-alert="{alert_a.alert_id}"]')).to_be_visible()
            body = southwark.content()
            assert CHILD_B not in body and alert_b.alert_id not in body and EPISODE_B not in body
            expect(southwark).to_have_title("(1) Beacon console")  # the count is of what this user sees
            southwark.screenshot(path=str(tmp_path / "southwark-dashboard.png"), full_page=True)

            # By URL: the same 404 as a reference that never existed.
            for path in (f"/children/{CHILD_B}", f"/alerts/{alert_b.alert_id}", "/children/CH-NEVER-EXISTED"):
                response = southwark.goto(base + path)
                assert response is not None and response.status == 404, path
                expect(southwark.get_by_text("No ", exact=False).first).to_be_visible()
            unknown = southwark.request.get(base + "/fragments/children/CH-NEVER-EXISTED")
            hidden = southwark.request.get(base + f"/fragments/children/{CHILD_B}")
            assert (hidden.status, hidden.text()) == (unknown.status, unknown.text()) == (404, unknown.text())
            # By the search box: the same words as for a reference that does not exist.
            southwark.goto(base + "/")
            southwark.get_by_label("Find a child by reference").fill(CHILD_B)
            southwark.get_by_role("button", name="Open timeline").click()
            expect(southwark.locator("p.error")).to_have_text("No record of that child reference.")
            expect(southwark).to_have_url(base + "/")
            # Its own child opens, and the view is audited.
            southwark.goto(base + f"/children/{CHILD_A}")
            expect(southwark.get_by_role("heading", name=f"Child {CHILD_A}")).to_be_visible()
            southwark.screenshot(path=str(tmp_path / "southwark-timeline.png"), full_page=True)

            lambeth = browser.new_page(viewport={"width": 1280, "height": 860})
            log_in(lambeth, base, LAMBETH_VIEWER)
            row = lambeth.locator(f'#alerts tr[data-alert="{alert_b.alert_id}"]')
            expect(row).to_be_visible()
            expect(row.get_by_role("button", name="Acknowledge", exact=False)).to_have_count(0)
            assert CHILD_A not in lambeth.content()
            lambeth.goto(base + f"/alerts/{alert_b.alert_id}")
            expect(lambeth.get_by_role("heading", name=f"Alert {alert_b.alert_id}")).to_be_visible()
            expect(lambeth.get_by_role("button", name="Acknowledge", exact=False)).to_have_count(0)
            lambeth.screenshot(path=str(tmp_path / "lambeth-viewer-alert.png"), full_page=True)
            # A hand-made form post is refused too: the role is checked by the server, not the button.
            csrf = lambeth.locator('input[name="csrf"]').first.get_attribute("value")
            refused = lambeth.request.post(
                base + f"/alerts/{alert_b.alert_id}/acknowledge",
                form={"csrf": csrf or "", "next": "/"},
                headers={"Accept": "text/html"},
                max_redirects=0,
            )
            assert refused.status == 403, refused.text()
            # Another council's alert is 404 to the same post, before any role is considered.
            other = lambeth.request.post(
                base + f"/alerts/{alert_a.alert_id}/acknowledge",
                form={"csrf": csrf or "", "next": "/"},
                max_redirects=0,
            )
            assert other.status == 404
            # User management needs the admin role.
            for page in (southwark, lambeth):
                response = page.goto(base + "/admin/users")
                assert response is not None and response.status == 403
            admin = browser.new_page(viewport={"width": 390, "height": 844})
            log_in(admin, base, "sw-admin-1")
            response = admin.goto(base + "/admin/users")
            assert response is not None and response.status == 200
            rows = admin.locator("#users tbody tr")
            expect(rows).to_have_count(4)  # the suite's own user too
            expect(admin.locator("#users")).to_contain_text("lb-viewer-1")
            assert "scrypt" not in admin.content()
            admin.screenshot(path=str(tmp_path / "admin-users-phone.png"), full_page=True)
            print(f"screenshots in {tmp_path}")
        finally:
            browser.close()

    audits = [AuditRecord.from_json(r.value) for r in read_topic(settings, AUDIT, expect=3)]
    viewed = {(a.person, a.kind, a.child_ref, a.alert_id) for a in audits}
    assert (SOUTHWARK_RESPONDER, "timeline_viewed", CHILD_A, None) in viewed
    assert (LAMBETH_VIEWER, "alert_viewed", CHILD_B, alert_b.alert_id) in viewed
    assert not any(a.person == SOUTHWARK_RESPONDER and a.child_ref == CHILD_B for a in audits)
    assert not any(a.kind == "action_requested" for a in audits)  # nothing was acknowledged
