"""OpenID Connect sign-in against a real provider the test starts (panva's oidc-provider on
node): a person signs in in Chromium and lands with the organisations and role of the token's
claims; a token without an organisation, a forged or replayed state, and a provider whose
issuer is not the configured one are refused."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from beacon.core.topics import EVENTS
from console.support import CHROMIUM, CHROMIUM_ARGS, console_url, reported_event
from harness.kafka import produce_events
from harness.oidc_provider import OidcProvider
from harness.services import ServiceProcess

pytestmark = pytest.mark.slow

CLIENT_ID, CLIENT_SECRET = "beacon-console", "client-secret-of-this-test-0123456789"
ACCOUNTS = {
    "lb-duty-7": {
        "preferred_username": "lb-duty-7",
        "beacon_orgs": ["lambeth", "met-police"],
        "beacon_role": "responder",
    },
    "no-org-9": {"preferred_username": "no-org-9", "beacon_role": "admin"},
}


@pytest.fixture
def provider(tmp_path, settings):
    redirect = f"{console_url(settings)}/login/oidc/callback"
    client = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [redirect],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    }
    with OidcProvider(tmp_path, [client], ACCOUNTS) as running:
        yield running


def oidc_console(console_env, settings, tmp_path, issuer: str) -> ServiceProcess:
    env = {
        **console_env,
        "BEACON_CONSOLE_OIDC_ISSUER": issuer,
        "BEACON_CONSOLE_OIDC_CLIENT_ID": CLIENT_ID,
        "BEACON_CONSOLE_OIDC_CLIENT_SECRET": CLIENT_SECRET,
    }
    return ServiceProcess("console", env, tmp_path / "console.log", port=settings.console_port).start()


def sign_in(page: Page, base: str, login: str) -> None:
    page.goto(base + "/login")
    page.get_by_role("link", name="Sign in with your organisation account").click()
    page.locator('input[name="login"]').fill(login)  # the provider's own login form
    page.locator('input[name="password"]').fill("any password")
    page.locator('button[type="submit"]').click()
    consent = page.locator('button[type="submit"]')  # the provider asks once to share the claims
    if page.url.startswith(base) is False and consent.count():
        consent.click()


def test_an_oidc_sign_in_lands_with_the_organisations_and_role_of_the_token(settings, console_env, provider, tmp_path):
    produce_events(
        settings,
        EVENTS,
        [
            reported_event("CH-LB000001", "MET-2026-000301", council="lambeth"),
            reported_event("CH-SW000002", "KNT-2026-000302", council="southwark", force="kent-police"),
        ],
    )
    console = oidc_console(console_env, settings, tmp_path, provider.issuer)
    base = console_url(settings)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 860})
                sign_in(page, base, "lb-duty-7")
                expect(page).to_have_url(base + "/")
                expect(page.get_by_test_id("principal")).to_have_text("(responder, lambeth, met-police)")
                expect(page.locator("#missing").get_by_role("link", name="CH-LB000001")).to_be_visible()
                assert "CH-SW000002" not in page.content()  # southwark's child, reported by kent
                page.screenshot(path=str(tmp_path / "oidc-dashboard.png"), full_page=True)

                refused = browser.new_page()
                sign_in(refused, base, "no-org-9")
                expect(refused.locator("p.error")).to_contain_text("no Beacon organisation")
                assert refused.goto(base + "/") is not None and refused.url.startswith(base + "/login")
            finally:
                browser.close()
    finally:
        console.stop()


def test_a_forged_or_replayed_state_is_refused(settings, console_env, provider, tmp_path):
    console = oidc_console(console_env, settings, tmp_path, provider.issuer)
    try:
        client = httpx.Client(base_url=console_url(settings), timeout=10)
        start = client.get("/login/oidc")
        assert start.status_code in (302, 307)
        query = parse_qs(urlsplit(start.headers["location"]).query)
        assert query["code_challenge_method"] == ["S256"] and query["nonce"] and query["state"]
        forged = client.get("/login/oidc/callback", params={"code": "x", "state": "not-the-state"})
        assert forged.status_code == 401 and "Sign-in failed" in forged.text
        assert client.get("/").status_code == 303  # not signed in
    finally:
        console.stop()


def test_a_provider_whose_issuer_is_not_the_configured_one_is_refused(settings, console_env, provider, tmp_path):
    # The same provider configured as ISSUER/: the tokens it signs name ISSUER, which is not exactly it.
    console = oidc_console(console_env, settings, tmp_path, provider.issuer + "/")
    base = console_url(settings)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page()
                sign_in(page, base, "lb-duty-7")
                expect(page.locator("p.error")).to_contain_text("Sign-in failed")
                assert page.goto(base + "/") is not None and page.url.startswith(base + "/login")
            finally:
                browser.close()
    finally:
        console.stop()
