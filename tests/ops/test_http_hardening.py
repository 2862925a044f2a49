"""Headers, timeouts, connection limits and bad-key rate limits on Beacon's HTTP servers
(issue 11, item 9), with real sockets against real service processes."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from beacon.core.schemas import example_event
from harness.cli import beacon_cli
from harness.services import ServiceProcess

pytestmark = pytest.mark.slow

GUARDS = {
    "BEACON_HTTP_HEADER_TIMEOUT_S": "1.5",
    "BEACON_HTTP_BODY_TIMEOUT_S": "2",
    "BEACON_HTTP_MAX_CONNECTIONS": "40",
    "BEACON_HTTP_BAD_AUTH_BURST": "5",
    "BEACON_HTTP_BAD_AUTH_RATE_PER_S": "0.2",
}
SECURITY_HEADERS = ("X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy", "Cache-Control")
NOTIFIER_TOKEN = "notifier-api-token-for-this-test-0123456789"


@pytest.fixture
def guarded_env(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {
        **env,
        **GUARDS,
        "BEACON_NOTIFIER_API_TOKEN": NOTIFIER_TOKEN,
    }


@pytest.fixture
def ingest(guarded_env, settings, tmp_path: Path) -> Iterator[ServiceProcess]:
    with ServiceProcess("ingest", guarded_env, tmp_path / "ingest.log", port=settings.ingest_port) as service:
        yield service


@pytest.fixture
def console(guarded_env, settings, tmp_path: Path) -> Iterator[ServiceProcess]:
    with ServiceProcess("console", guarded_env, tmp_path / "console.log", port=settings.console_port) as service:
        yield service


@pytest.fixture
def notifier(guarded_env, settings, tmp_path: Path) -> Iterator[ServiceProcess]:
    with ServiceProcess("notifier", guarded_env, tmp_path / "notifier.log", port=settings.notifier_port) as service:
        yield service


def open_fds(service: ServiceProcess) -> int:
    assert service.process is not None
    return len(os.listdir(f"/proc/{service.process.pid}/fd"))


def drip(port: int, head: bytes, piece: bytes, every_s: float = 0.25, give_up_s: float = 20.0) -> tuple[bytes, float]:
    """Send ``head``, then ``piece`` every ``every_s`` until the server answers or closes;
    returns what it answered and after how many seconds."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        sock.settimeout(every_s)
        while time.monotonic() - started < give_up_s:
            try:
                answer = sock.recv(4096)
                return answer, time.monotonic() - started
            except TimeoutError:
                pass
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                return b"", time.monotonic() - started
    raise AssertionError(f"the server was still reading after {give_up_s} s")


BODY_DRIPS = {
    "ingest": b"POST /v1/events HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/cloudevents+json\r\n"
    b"Authorization: Bearer bk_whatever\r\nContent-Length: 100000\r\n\r\n{",
    "console": b"POST /login HTTP/1.1\r\nHost: console\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"Content-Length: 100000\r\n\r\nusername=",
    "notifier": b"POST /v1/alerts/A1/ack HTTP/1.1\r\nHost: notifier\r\nContent-Type: application/json\r\n"
    b"Authorization: Bearer x\r\nContent-Length: 100000\r\n\r\n{",
}


@pytest.mark.parametrize("service", sorted(BODY_DRIPS))
def test_a_body_dripped_slowly_is_cut_off(service, request, settings):
    request.getfixturevalue(service)
    port = getattr(settings, f"{service}_port")
    answer, seconds = drip(port, BODY_DRIPS[service], b" ")
    assert answer.startswith(b"HTTP/1.1 408"), answer
    print(f"{service}: dripped body cut off after {seconds:.1f} s (BEACON_HTTP_BODY_TIMEOUT_S=2)")
    assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200


@pytest.mark.parametrize("service", ["ingest", "console", "notifier"])
def test_headers_dripped_slowly_are_cut_off(service, request, settings):
    request.getfixturevalue(service)
    port = getattr(settings, f"{service}_port")
    answer, seconds = drip(port, b"GET /healthz HTTP/1.1\r\nHost: beacon\r\n", b"X-Drip: 1\r\n")
    if service == "notifier":  # aiohttp closes the connection without an answer
        assert answer == b"", answer
    else:
        assert answer.startswith(b"HTTP/1.1 408"), answer
    print(f"{service}: dripped headers cut off after {seconds:.1f} s (BEACON_HTTP_HEADER_TIMEOUT_S=1.5)")


def http_connections(service: ServiceProcess, port: int) -> int:
    """Accepted TCP connections on ``port`` the process holds a descriptor for (not its Kafka
    connections nor its listening socket), from /proc."""
    assert service.process is not None
    fd_dir = f"/proc/{service.process.pid}/fd"
    inodes = set()
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    held = 0
    for table in ("tcp", "tcp6"):
        with open(f"/proc/{service.process.pid}/net/{table}") as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
                if local_port == port and state != "0A" and inode in inodes:  # 0A: LISTEN
                    held += 1
    return held


def wait_for_connections(service: ServiceProcess, port: int, at_most: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while (count := http_connections(service, port)) > at_most and time.monotonic() < deadline:
        time.sleep(0.1)
    return count


@pytest.mark.parametrize("name", ["ingest", "console", "notifier"])
def test_hundreds_of_half_sent_requests_do_not_pin_file_descriptors(name, guarded_env, settings, tmp_path):
    port = getattr(settings, f"{name}_port")
    env = {**guarded_env, "BEACON_HTTP_HEADER_TIMEOUT_S": "6"}  # long enough to look at them held
    limit = int(GUARDS["BEACON_HTTP_MAX_CONNECTIONS"])
    with ServiceProcess(name, env, tmp_path / f"{name}-fds.log", port=port) as service:
        before = open_fds(service)
        sockets = []
        try:
            for _ in range(300):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: beacon\r\n")  # and never the rest
                sockets.append(sock)
            opened = time.monotonic()
            # Connections over the cap are answered and closed as the server gets to them.
            held = wait_for_connections(service, port, limit, timeout_s=3)
            held_fds = open_fds(service)
            still_held = http_connections(service, port) if time.monotonic() - opened < 5 else None
            after = wait_for_connections(service, port, 0, timeout_s=20)
            after_fds = open_fds(service)
        finally:
            for sock in sockets:
                sock.close()
        print(
            f"{name}: 300 half-sent requests -> {held} connections held ({before} -> {held_fds} file descriptors), "
            f"{after} after the header timeout ({after_fds} file descriptors)"
        )
        # Every server, uvicorn's and the Faust workers' aiohttp: at most BEACON_HTTP_MAX_CONNECTIONS at any time.
        assert held <= limit
        assert still_held is None or still_held <= limit
        assert after == 0  # every server: released once the header timeout has passed
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200


def test_bad_keys_get_429_after_the_limit_while_a_good_key_still_works(ingest, guarded_env, settings):
    good = beacon_cli(guarded_env, "apikeys", "create", "--source", "met-police", "--scope", "police").stdout.strip()
    url = f"http://127.0.0.1:{settings.ingest_port}/v1/events"
    event = {**example_event("beacon.episode.sighting.v1"), "source": "urn:beacon:source:met-police"}
    statuses = [
        httpx.post(url, json=event, headers={"Authorization": f"Bearer bk_guess{n}"}, timeout=5).status_code
        for n in range(int(GUARDS["BEACON_HTTP_BAD_AUTH_BURST"]))
    ]
    assert statuses == [401] * 5
    limited = httpx.post(url, json=event, headers={"Authorization": "Bearer bk_guess-again"}, timeout=5)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert httpx.post(url, json=event, timeout=5).status_code == 429  # no key at all: the same budget
    accepted = httpx.post(url, json=event, headers={"Authorization": f"Bearer {good}"}, timeout=10)
    assert accepted.status_code == 202, accepted.text


def test_bad_tokens_on_the_notifier_api_get_429_while_the_good_token_works(notifier, settings):
    url = f"http://127.0.0.1:{settings.notifier_port}/v1/alerts/A-unknown"
    statuses = [
        httpx.get(url, headers={"Authorization": f"Bearer guess-{n}"}, timeout=5).status_code
        for n in range(int(GUARDS["BEACON_HTTP_BAD_AUTH_BURST"]))
    ]
    assert statuses == [401] * 5
    limited = httpx.post(f"{url}/ack", json={"by": "x"}, timeout=5)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert httpx.get(url, headers={"Authorization": f"Bearer {NOTIFIER_TOKEN}"}, timeout=5).status_code == 404


def test_every_server_sends_the_security_headers(ingest, console, notifier, settings):
    pages = [
        httpx.get(f"http://127.0.0.1:{settings.console_port}/login", timeout=5),
        httpx.get(f"http://127.0.0.1:{settings.notifier_port}/a/not-a-token", timeout=5),
        httpx.get(f"http://127.0.0.1:{settings.notifier_port}/no-such-page", timeout=5),
    ]
    for page in pages:
        assert page.headers["Content-Security-Policy"].startswith("default-src 'self'"), page.url
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    api = [
        httpx.post(f"http://127.0.0.1:{settings.ingest_port}/v1/events", json={}, timeout=5),
        httpx.get(f"http://127.0.0.1:{settings.notifier_port}/healthz", timeout=5),
    ]
    for response in pages + api:
        assert response.headers["X-Frame-Options"] == "DENY", response.url
        assert response.headers["X-Content-Type-Options"] == "nosniff", response.url
        assert response.headers["Referrer-Policy"] == "no-referrer", response.url
        assert response.headers["Cache-Control"] == "no-store", response.url
    assert pages[1].status_code == 400 and pages[2].status_code == 404
