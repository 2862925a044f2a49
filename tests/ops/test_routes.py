"""Every route of every service is a documented one (issue 11, item 2): Faust's built-in web
views (/table/..., /router/, ...) served table state and topology to anyone.

The routes come from each service's own router (``python -m beacon routes SERVICE``), then
every service runs as a real process and is walked over HTTP: Faust's known paths and other
guesses answer 404, every documented page without a parameter answers."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from harness.services import ServiceProcess

pytestmark = pytest.mark.slow

OPS = {("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics")}
# README, "Security" > "What each endpoint exposes": the same table.
DOCUMENTED = {
    "ingest": OPS | {("GET", "/docs"), ("GET", "/openapi.json"), ("POST", "/v1/events")},
    "validator": OPS,
    "correlator": OPS,
    "notifier": OPS
    | {
        ("GET", "/a/{token}"),
        ("POST", "/a/{token}"),
        ("POST", "/webhooks/twilio/sms"),
        ("POST", "/webhooks/twilio/status"),
        ("GET", "/v1/alerts/{alert_id}"),
        ("POST", "/v1/alerts/{alert_id}/ack"),
        # GET /test/clock and POST /test/clock/advance exist only with BEACON_NOTIFIER_TEST_CLOCK
    },
    "console": OPS
    | {
        ("GET", "/"),
        ("GET", "/login"),
        ("POST", "/login"),
        ("POST", "/logout"),
        ("GET", "/login/oidc"),  # 404 unless BEACON_CONSOLE_OIDC_ISSUER
        ("GET", "/login/oidc/callback"),
        ("GET", "/admin/users"),
        ("GET", "/children"),
        ("GET", "/children/{child_ref}"),
        ("GET", "/alerts/{alert_id}"),
        ("POST", "/alerts/{alert_id}/acknowledge"),
        ("GET", "/fragments/dashboard"),
        ("GET", "/fragments/children/{child_ref}"),
        ("GET", "/fragments/alerts/{alert_id}"),
        ("GET", "/live"),
        ("GET", "/static/{path}"),
        ("GET", "/returns"),
        ("GET", "/fragments/returns"),
        ("GET", "/on-call"),
        ("GET", "/fragments/on-call"),
        ("GET", "/reports"),
        ("GET", "/reports/monthly.csv"),
        ("GET", "/reports/ssda903-missing.csv"),
        ("POST", "/alerts/{alert_id}/notes"),
    },
}
# What Faust mounts by default or with its debug flags (faust/web/apps), and some guesses.
UNDOCUMENTED = [
    "/",
    "/router/",
    "/router/topics",
    "/router/children/",
    "/router/children/CH-1/",
    "/table/",
    "/table/children/",
    "/table/children/CH-1/",
    "/table/escalations/",
    "/table/escalations/A1/",
    "/graph/",
    "/assignment/",
    "/performance/",
    "/redoc",
    "/docs/oauth2-redirect",
    "/admin",
    "/.env",
    "/debug",
]
ROUTE_LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE|OPTIONS) (/\S*)$")


def listed_routes(service: str, env: dict[str, str]) -> set[tuple[str, str]]:
    result = subprocess.run(
        [sys.executable, "-m", "beacon", "routes", service],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return {(m[1], m[2]) for line in result.stdout.splitlines() if (m := ROUTE_LINE.match(line))}


@pytest.mark.parametrize("service", sorted(DOCUMENTED))
def test_every_route_a_service_registers_is_documented(service, env):
    assert listed_routes(service, env) == DOCUMENTED[service]


def test_every_running_service_answers_only_its_documented_routes(env, settings, tmp_path: Path):
    services = [
        ServiceProcess(name, env, tmp_path / f"{name}.log", port=getattr(settings, f"{name}_port"))
        for name in DOCUMENTED
    ]
    try:
        for service in services:
            service.start()
        for service in services:
            base = f"http://127.0.0.1:{service.port}"
            for path in UNDOCUMENTED:
                if (service.name, path) == ("console", "/"):
                    continue  # the console's dashboard
                for method in ("GET", "POST"):
                    response = httpx.request(method, base + path, timeout=5)
                    assert response.status_code == 404, (service.name, method, path, response.text[:200])
            for method, path in DOCUMENTED[service.name]:
                if method == "GET" and "{" not in path and not path.startswith(("/test/", "/login/oidc")):
                    response = httpx.get(base + path, timeout=5)
                    assert response.status_code != 404, (service.name, path)
            if service.name == "notifier":  # test clock off: its routes are not mounted
                assert httpx.get(f"{base}/test/clock", timeout=5).status_code == 404
            if service.name == "console":  # no OIDC issuer configured: its routes exist and refuse
                for path in ("/login/oidc", "/login/oidc/callback"):
                    assert httpx.get(base + path, timeout=5).status_code == 404
    finally:
        for service in services:
            service.stop()
