"""A coordinator at the console, in Debian's Chromium driven by Playwright over the real
console process and broker: a high-risk report appears on Missing now without a reload,
Returns due lists an overdue interview, and the CSV reports of a scripted month hold its
known numbers."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from beacon.core.topics import EVENTS
from console import scripted_month
from console.support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    RETURNED_CHILD,
    RETURNED_EPISODE,
    USER,
    console_url,
    reported_event,
    returned_four_days_ago,
)
from harness.kafka import produce_events

pytestmark = pytest.mark.slow


def log_in(page: Page, base: str) -> None:
    page.goto(f"{base}/login?next=/")
    page.get_by_label("User name").fill(USER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#live-status")).to_have_text("Live")


def test_a_coordinators_day_missing_now_returns_due_and_reports(settings, start_console, tmp_path: Path):
    produce_events(settings, EVENTS, [*returned_four_days_ago(), *scripted_month.events()])
    start_console()
    base = console_url(settings)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True).new_page()
            log_in(page, base)

            # A high-risk report arrives while the page is open: pushed, no reload.
            page.evaluate("window.__notReloaded = true")
            produce_events(settings, EVENTS, [reported_event("CH-HIGH-0001", "MET-2026-HIGH1", risk="high")])
            row = page.locator('#missing tr[data-child="CH-HIGH-0001"]')
            expect(row).to_be_visible(timeout=30_000)
            expect(row).to_contain_text("high")
            assert page.evaluate("window.__notReloaded") is True

            page.get_by_role("link", name="Returns due").click()
            overdue = page.locator(f'tr[data-child="{RETURNED_CHILD}"]')
            expect(overdue).to_contain_text("Overdue by 1 d 0 h")
            expect(overdue).to_contain_text(RETURNED_EPISODE)
            expect(page.get_by_role("heading", name="southwark")).to_be_visible()

            page.goto(f"{base}/reports?month={scripted_month.MONTH}")
            for council, episodes, children, repeat, ended, within, median in scripted_month.FIGURES:
                figures = page.locator(f'#figures tr[data-council="{council}"]')
                expect(figures).to_contain_text(f"{within} of {ended} returns")
                expect(figures.locator('td[data-label="Episodes"]')).to_have_text(str(episodes))
                expect(figures.locator('td[data-label="Children"]')).to_have_text(str(children))
                expect(figures.locator('td[data-label="Repeat"]')).to_have_text(str(repeat))
                expect(figures.locator('td[data-label="Median"]')).to_have_text(f"{median} h")
            with page.expect_download() as monthly:
                page.get_by_role("link", name="Download these figures (CSV)").click()
            assert monthly.value.suggested_filename == "beacon-monthly-2026-03.csv"
            assert Path(monthly.value.path()).read_bytes().decode() == scripted_month.MONTHLY_CSV

            page.get_by_label("From").fill("2026-03-01")
            page.get_by_label("To", exact=True).fill("2026-03-31")
            page.get_by_label("Placing council").fill("southwark")
            with page.expect_download() as ssda903:
                page.get_by_role("button", name="Download CSV").click()
            assert Path(ssda903.value.path()).read_bytes().decode() == scripted_month.SSDA903_SOUTHWARK_CSV
        finally:
            browser.close()
