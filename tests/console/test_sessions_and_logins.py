"""Console logins and sessions (issue 11, item 3), over real console processes and a real
broker: failed logins are throttled per user and per address and lock the user until an admin
unlocks it; logout, password change and removal end sessions at once on every replica."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from beacon.runtime.broker import free_port
from console.support import PASSWORD, USER, USER_ACCESS, USER_ORGANISATIONS, csrf_of
from harness.cli import beacon_cli
from harness.services import ServiceProcess

pytestmark = pytest.mark.slow

FAST_THROTTLE = {
    "BEACON_CONSOLE_LOGIN_FREE_FAILURES_PER_USER": "3",
    "BEACON_CONSOLE_LOGIN_FREE_FAILURES_PER_ADDRESS": "50",
    "BEACON_CONSOLE_LOGIN_BACKOFF_S": "1.5",  # long enough that a loaded machine still answers inside it
    "BEACON_CONSOLE_LOGIN_MAX_BACKOFF_S": "1.5",
    "BEACON_CONSOLE_LOGIN_LOCKOUT_AFTER": "6",
}
WRONG = "not the password at all"


@pytest.fixture
def replicas(console_env: dict[str, str], settings, tmp_path: Path) -> Iterator[Callable[..., list[ServiceProcess]]]:
    """Start N console replicas: one users file, one broker, one session secret (TEST_SECRETS)."""
    started: list[ServiceProcess] = []

    def start(count: int = 1, **extra: str) -> list[ServiceProcess]:
        for index in range(count):
            port = settings.console_port if index == 0 else free_port()
            env = {**console_env, **extra, "BEACON_CONSOLE_PORT": str(port)}
            started.append(ServiceProcess("console", env, tmp_path / f"console-{index}.log", port=port).start())
        return started

    yield start
    for process in started:
        process.stop()


def url(console: ServiceProcess) -> str:
    return f"http://127.0.0.1:{console.port}"


def attempt(client: httpx.Client, user: str, password: str) -> httpx.Response:
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"username": user, "password": password, "csrf": token, "next": "/"})


def login(console: ServiceProcess, user: str = USER, password: str = PASSWORD) -> httpx.Client:
    client = httpx.Client(base_url=url(console), timeout=10)
    response = attempt(client, user, password)
    assert response.status_code == 303, response.text
    return client


def with_cookie(console: ServiceProcess, cookie: str) -> httpx.Client:
    """Another browser (or a thief) presenting the same session cookie."""
    return httpx.Client(base_url=url(console), timeout=10, cookies={"beacon_console": cookie})


def refused_within(client: httpx.Client, timeout_s: float = 10.0) -> float:
    """Seconds until the dashboard sends this cookie to the login page (fails after timeout_s)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        response = client.get("/")
        if response.status_code == 303 and response.headers["location"].startswith("/login"):
            return time.monotonic() - started
        assert response.status_code == 200
        time.sleep(0.05)
    raise AssertionError("the session still works")


def metric(console: ServiceProcess, reason: str) -> float:
    text = httpx.get(f"{url(console)}/metrics", timeout=5).text
    match = re.search(rf'^beacon_console_login_failures_total{{reason="{reason}"}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_wrong_passwords_slow_down_then_lock_the_user_until_an_admin_unlocks(replicas, console_env):
    (console,) = replicas(1, **FAST_THROTTLE)
    client = httpx.Client(base_url=url(console), timeout=10)
    for _ in range(3):  # the free failures
        assert attempt(client, USER, WRONG).status_code == 401
    throttled = attempt(client, USER, PASSWORD)  # even the right password waits: it is not checked
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    assert "Too many failed logins" in throttled.text
    for _ in range(3):  # failures 4, 5 and 6, each after its backoff; the 6th locks
        time.sleep(1.6)
        assert attempt(client, USER, WRONG).status_code == 401
    time.sleep(1.6)
    locked = attempt(client, USER, PASSWORD)
    assert locked.status_code == 423 and "locked" in locked.text

    unlocked = beacon_cli(console_env, "console-user", "unlock", USER)
    assert unlocked.returncode == 0, unlocked.stderr
    deadline = time.monotonic() + 10
    while (response := attempt(client, USER, PASSWORD)).status_code == 423 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert response.status_code == 303  # the right password works again

    assert metric(console, "wrong_password") == 6
    assert metric(console, "throttled") >= 1 and metric(console, "locked") >= 1
    log = console.log_file.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    failed = [line for line in lines if line.get("event") == "console_login_failed"]
    assert len(failed) == 6 and all(line["user"] == USER and line["client"] == "127.0.0.1" for line in failed)
    assert any(line.get("event") == "console_user_locked" for line in lines)
    assert WRONG not in log and PASSWORD not in log


def test_one_address_guessing_many_names_is_slowed_down(replicas):
    (console,) = replicas(1, **{**FAST_THROTTLE, "BEACON_CONSOLE_LOGIN_FREE_FAILURES_PER_ADDRESS": "4"})
    client = httpx.Client(base_url=url(console), timeout=10)
    for index in range(4):
        assert attempt(client, f"guess-{index}", WRONG).status_code == 401
    assert attempt(client, "guess-99", WRONG).status_code == 429  # a fresh name, the same address
    assert attempt(client, USER, PASSWORD).status_code == 429
    time.sleep(1.6)
    assert attempt(client, USER, PASSWORD).status_code == 303
    log = console.log_file.read_text()
    assert "guess-0" not in log  # names that are no account are never logged (they may be passwords)


def test_a_session_logged_out_on_one_replica_is_refused_on_the_other(replicas):
    first, second = replicas(2)
    browser = login(first)
    cookie = browser.cookies["beacon_console"]
    copy_on_first, copy_on_second = with_cookie(first, cookie), with_cookie(second, cookie)
    assert copy_on_second.get("/").status_code == 200  # one cookie secret: the session works on both
    token = csrf_of(browser.get("/").text)
    assert browser.post("/logout", data={"csrf": token}).status_code == 303
    assert copy_on_first.get("/").status_code == 303  # the very next request, where it was logged out
    seconds = refused_within(copy_on_second)
    print(f"logout reached the other replica in {seconds * 1000:.0f} ms")
    assert login(second).get("/").status_code == 200  # logging in again works


def test_a_password_change_and_a_removal_end_the_sessions_on_every_replica(replicas, console_env):
    first, second = replicas(2)
    old = login(first).cookies["beacon_console"]
    assert with_cookie(second, old).get("/").status_code == 200
    new_password = "a brand new passphrase 42"
    changed = beacon_cli(console_env, "console-user", "add", USER, *USER_ACCESS, stdin=new_password + "\n")
    assert changed.returncode == 0 and f"set {USER}" in changed.stdout, changed.stderr
    refused_within(with_cookie(first, old))
    refused_within(with_cookie(second, old))
    fresh = login(second, password=new_password).cookies["beacon_console"]
    assert with_cookie(first, fresh).get("/").status_code == 200  # the new login is not caught by it

    removed = beacon_cli(console_env, "console-user", "remove", USER)
    assert removed.returncode == 0, removed.stderr
    refused_within(with_cookie(first, fresh))
    refused_within(with_cookie(second, fresh))


def test_a_password_change_with_kafka_down_changes_nothing(console_env, settings):
    env = {**console_env, "BEACON_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}
    refused = beacon_cli(env, "console-user", "add", USER, *USER_ACCESS, stdin="another new passphrase\n", check=False)
    assert refused.returncode == 1 and "did not take the record" in refused.stderr
    listed = beacon_cli(console_env, "console-user", "list")
    assert listed.stdout.split() == [USER, "responder", ",".join(sorted(USER_ORGANISATIONS))]


def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.1)


def test_a_user_added_after_the_consoles_started_reaches_every_replica_and_so_does_a_new_role(replicas, console_env):
    patient = {  # the polls below are failed logins until the user arrives: not throttled here
        "BEACON_CONSOLE_LOGIN_FREE_FAILURES_PER_USER": "50",
        "BEACON_CONSOLE_LOGIN_FREE_FAILURES_PER_ADDRESS": "100",
        "BEACON_CONSOLE_LOGIN_LOCKOUT_AFTER": "60",
    }
    first, second = replicas(2, **patient)
    newcomer, password = "lb-duty-3", "a newcomer's passphrase 7"
    refused = httpx.Client(base_url=url(second), timeout=10)
    assert attempt(refused, newcomer, password).status_code == 401
    added = beacon_cli(console_env, "console-user", "add", newcomer, "--org", "lambeth", stdin=password + "\n")
    assert added.returncode == 0, added.stderr
    for console in (first, second):  # no file, no restart: the users topic
        client = httpx.Client(base_url=url(console), timeout=10)
        eventually(lambda client=client: attempt(client, newcomer, password).status_code == 303)
        assert "(viewer, lambeth)" in client.get("/").text
    listed = beacon_cli(console_env, "console-user", "list").stdout.splitlines()
    assert f"{newcomer}\tviewer\tlambeth" in listed and "scrypt" not in "".join(listed)
    removed = beacon_cli(console_env, "console-user", "remove", newcomer)
    assert removed.returncode == 0, removed.stderr
    for console in (first, second):
        client = httpx.Client(base_url=url(console), timeout=10)
        eventually(lambda client=client: attempt(client, newcomer, password).status_code == 401)
    unknown = beacon_cli(console_env, "console-user", "remove", newcomer, check=False)
    assert unknown.returncode == 1 and "no user" in unknown.stderr
