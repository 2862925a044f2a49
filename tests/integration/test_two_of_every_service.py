"""Issue 13, item 3: two of every service on one broker, and whichever replica a request
reaches answers it correctly.

Two ingests, two correlators, two notifiers and two consoles. The reports go in over HTTP,
alternately through each ingest. The first notifier starts alone and pages every alert; the
second joins and takes over half the partitions, so the first is a former owner of those.
Then every acknowledgement path (the SMS-reply webhook, the link's page and its confirmation
POST, the API, and the console's Acknowledge button) is driven through EACH replica that
serves it, for alerts owned by either notifier; both notifiers must then answer every alert's
current state (a former owner never answers what it held before the takeover), and both
consoles must show who acknowledged it and by which path.

Ownership is read from each replica's /metrics (the consumer-progress exporter's series of
the partitions it is assigned), and an alert's partition from the producer's murmur2."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from kafka.partitioner.default import murmur2

from beacon.core.alerts import AlertRecord
from beacon.core.schemas import example_event
from beacon.notifier.escalation import reply_code
from console.support import PASSWORD, USER, USER_ACCESS, csrf_of, logged_in_client
from harness.cli import beacon_cli
from harness.kafka import read_alerts
from harness.services import ServiceProcess
from harness.smtp import SmtpServer
from harness.twilio_mock import Prism, Sms, TwilioProxy
from notifier.stack import API_TOKEN, notifier_env, replica_env, reply_through, spare_port, start_replicas

pytestmark = [pytest.mark.slow, pytest.mark.ha]
ALERTS_RAISED = 32  # enough that each notifier owns two alerts per path, whatever the split
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}
LAG_SERIES = re.compile(r'beacon_consumer_lag_records\{[^}]*partition="(\d+)"[^}]*topic="beacon\.notifier\.inputs"')


def _iso(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def report(number: int, now: datetime) -> dict:
    event = copy.deepcopy(example_event("beacon.episode.reported.v1"))  # high risk: pages the team manager
    event["source"] = "urn:beacon:source:met-police"  # the ingest key's source
    event["subject"] = f"CH-HA{number:06d}"
    event["id"] = f"met-evt-ha-{number:06d}"
    event["time"] = _iso(now - timedelta(minutes=1))
    event["data"]["episode_ref"] = f"MET-2026-{900000 + number}"
    event["data"]["started_at"] = _iso(now - timedelta(minutes=30))
    return event


def partition_of(alert_id: str, partitions: int) -> int:
    return (murmur2(alert_id.encode()) & 0x7FFFFFFF) % partitions


def owned_partitions(replica: ServiceProcess) -> set[int]:
    text = httpx.get(f"http://127.0.0.1:{replica.port}/metrics", timeout=5).text
    return {int(p) for p in LAG_SERIES.findall(text)}


def wait_split(replicas: list[ServiceProcess], partitions: int, timeout_s: float = 90) -> list[set[int]]:
    """Each replica's inputs partitions, once they are disjoint, cover every partition and
    every replica holds some (the rebalance after the second joined is over)."""
    deadline = time.monotonic() + timeout_s
    owned: list[set[int]] = []
    while time.monotonic() < deadline:
        ready = [httpx.get(f"http://127.0.0.1:{r.port}/readyz", timeout=5).status_code == 200 for r in replicas]
        owned = [owned_partitions(r) for r in replicas]
        if (
            all(ready)
            and all(owned)
            and sum(map(len, owned)) == partitions
            and set().union(*owned) == set(range(partitions))
        ):
            return owned
        time.sleep(0.5)
    raise AssertionError(f"the partitions never settled between the replicas: {owned}")


@dataclass
class Ha:
    ingests: list[ServiceProcess]
    correlators: list[ServiceProcess]
    notifiers: list[ServiceProcess]
    consoles: list[ServiceProcess]
    twilio: TwilioProxy
    public_url: str
    env: dict[str, str]
    ingest_token: str

    def started(self) -> list[ServiceProcess]:
        return self.ingests + self.correlators + self.notifiers + self.consoles


@pytest.fixture
def ha(settings, env, tmp_path: Path) -> Iterator[Ha]:
    prism = Prism(tmp_path / "prism.log").start()
    twilio = TwilioProxy(prism, port=spare_port(settings)).start()
    smtp = SmtpServer(tmp_path / "tls", port=spare_port(settings)).start()
    full_env = notifier_env(
        env,
        settings,
        twilio,
        smtp,
        # One message per page, none held back: each alert's SMS carries its own code and link.
        BEACON_NOTIFIER_MAX_BUNDLE="1",
        BEACON_NOTIFIER_CONTACT_MIN_INTERVAL_S="0",
    )
    # Twilio and the links reach Beacon through one public address (a Service in front of
    # the replicas, BEACON_PUBLIC_BASE_URL); the test sends each request to one replica.
    # The CLI writes the key and the console user to their topics, which every replica reads.
    token = beacon_cli(full_env, "apikeys", "create", "--source", "met-police", "--scope", "police").stdout.strip()
    beacon_cli(full_env, "console-user", "add", USER, *USER_ACCESS, stdin=PASSWORD + "\n")
    ha = Ha([], [], [], [], twilio, full_env["BEACON_PUBLIC_BASE_URL"], full_env, token)
    try:
        ha.ingests += start_replicas("ingest", full_env, settings, tmp_path, 2)
        ha.correlators += start_replicas("correlator", full_env, settings, tmp_path, 2)
        ha.consoles += start_replicas("console", full_env, settings, tmp_path, 2)
        ha.notifiers += start_replicas("notifier", full_env, settings, tmp_path, 1)
        yield ha
    finally:
        for process in ha.started():  # the replicas the test added too
            process.stop()
        smtp.stop()
        twilio.stop()
        prism.stop()


def state_on(replica: ServiceProcess, alert_id: str) -> dict:
    response = httpx.get(f"http://127.0.0.1:{replica.port}/v1/alerts/{alert_id}", headers=AUTH, timeout=5)
    assert response.status_code == 200, (replica.port, alert_id, response.status_code, response.text)
    return response.json()


def wait_everywhere(replicas: list[ServiceProcess], alert_id: str, status: str, timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    while time.monotonic() < deadline:
        seen = [state_on(r, alert_id)["status"] for r in replicas]
        if all(s == status for s in seen):
            return
        time.sleep(0.2)
    raise AssertionError(f"{alert_id}: replicas answer {seen}, expected {status} on each")


def wait_page(client: httpx.Client, path: str, text: str, timeout_s: float = 20) -> str:
    """The console page at ``path`` once it shows ``text`` (the console reads the topics a moment later)."""
    deadline = time.monotonic() + timeout_s
    while (page := client.get(path)).status_code != 200 or text not in page.text:
        assert time.monotonic() < deadline, f"{client.base_url}{path} never showed {text!r}: {page.status_code}"
        time.sleep(0.2)
    return page.text


@pytest.mark.parametrize("table_store", ["rocksdb://"], indirect=True)
def test_every_acknowledgement_path_works_through_every_replica(ha: Ha, settings, tmp_path: Path):
    now = datetime.now(UTC)
    for number in range(ALERTS_RAISED):  # alternately through each ingest
        ingest = ha.ingests[number % 2]
        response = httpx.post(
            f"http://127.0.0.1:{ingest.port}/v1/events",
            json=report(number, now),
            headers={"Authorization": f"Bearer {ha.ingest_token}"},
            timeout=30,
        )
        assert response.status_code == 202, (ingest.port, response.text)
    raised = [
        a
        for r in read_alerts(settings, expect=ALERTS_RAISED, timeout_s=60)
        if (a := AlertRecord.from_json(r.value)).status == "raised"
    ]
    assert len({a.alert_id for a in raised}) == ALERTS_RAISED  # two correlators, each alert once
    manager = "+447700900010"  # sw-tm-dana: the policy pages the team manager for a high-risk triage
    phone = ha.twilio.phone(manager)
    pages: dict[str, Sms] = {}
    deadline = time.monotonic() + 90
    while len(pages) < ALERTS_RAISED and time.monotonic() < deadline:
        for sms in phone.messages():
            for alert in raised:
                if alert.episode_ref and alert.episode_ref in sms.body:
                    pages.setdefault(alert.alert_id, sms)
        time.sleep(0.2)
    assert len(pages) == ALERTS_RAISED, f"{len(pages)} of {ALERTS_RAISED} alerts paged"
    assert len(phone.messages()) == ALERTS_RAISED  # each page once

    # The second notifier joins: it takes partitions over from the first (a former owner).
    second_port = spare_port(settings)
    second_env = replica_env(ha.env, "notifier", second_port, tmp_path / "notifier-1-data")
    second = ServiceProcess("notifier", second_env, tmp_path / "notifier-1.log", port=second_port).start()
    ha.notifiers.append(second)
    replicas = ha.notifiers
    owned = wait_split(replicas, settings.topic_partitions)
    owner = {
        a.alert_id: next(i for i, p in enumerate(owned) if partition_of(a.alert_id, settings.topic_partitions) in p)
        for a in raised
    }
    taken_over = [a for a, i in owner.items() if i == 1]
    assert taken_over, owned
    for alert_id in owner:  # before any acknowledgement, both answer every alert as active
        for replica in replicas:
            assert state_on(replica, alert_id)["status"] == "active"

    # Per path and per receiving replica: one alert it owns and one the other replica owns.
    codes = [reply_code(a) for a in owner]
    unique_code = {a for a in owner if codes.count(reply_code(a)) == 1}  # SMS needs an unambiguous code
    free = {i: [a for a in owner if owner[a] == i] for i in (0, 1)}
    paths = ("sms", "link", "api", "console")  # the first three reach a notifier, the last a console
    plan: list[tuple[str, int, str]] = []  # (path, receiving replica, alert id)
    for path in paths:
        for receiver in (0, 1):
            for alert_owner in (receiver, 1 - receiver):
                candidates = [a for a in free[alert_owner] if path != "sms" or a in unique_code]
                assert candidates, f"not enough alerts owned by replica {alert_owner} for {path}"
                free[alert_owner].remove(candidates[0])
                plan.append((path, receiver, candidates[0]))
    assert {(p, r, owner[a] != r) for p, r, a in plan} == {
        (p, r, other) for p in paths for r in (0, 1) for other in (False, True)
    }
    consoles = [logged_in_client(settings, port=c.port) for c in ha.consoles]  # one session on each

    for number, (path, receiver, alert_id) in enumerate(plan):
        url = f"http://127.0.0.1:{(ha.consoles if path == 'console' else replicas)[receiver].port}"
        sms = pages[alert_id]
        case = next(a.episode_ref for a in raised if a.alert_id == alert_id)
        if path == "sms":
            answer = reply_through(url, ha.public_url, manager, f"{sms.code}a", f"SM{number:032d}")
            assert f"Acknowledged: case {case}" in answer, (receiver, owner[alert_id], answer)
        elif path == "link":
            token_path = sms.ack_url.removeprefix(ha.public_url)
            page = httpx.get(url + token_path, timeout=10)
            assert page.status_code == 200, (receiver, owner[alert_id], page.text)
            assert f'action="{token_path}"' in page.text  # posts back to where it came from
            confirmed = httpx.post(url + token_path, timeout=10)
            assert confirmed.status_code == 200 and "Acknowledged" in confirmed.text, confirmed.text
        elif path == "api":
            response = httpx.post(
                f"{url}/v1/alerts/{alert_id}/ack", json={"by": "sw-tm-dana"}, headers=AUTH, timeout=10
            )
            assert response.status_code == 202, response.text
        else:
            page = wait_page(consoles[receiver], f"/alerts/{alert_id}", 'name="csrf"')
            form = {"csrf": csrf_of(page), "next": "/"}
            response = consoles[receiver].post(f"/alerts/{alert_id}/acknowledge", data=form)
            assert response.status_code == 303, (receiver, owner[alert_id], response.text)
        wait_everywhere(replicas, alert_id, "acknowledged")
        assert state_on(replicas[0], alert_id)["acked_via"] == path
        for console in consoles:  # each console reads the notifier's record of it
            wait_page(console, f"/alerts/{alert_id}", f"via {path}")

    # Every alert not acknowledged is still active on both: nobody's view went stale.
    acked = {a for _, _, a in plan}
    for alert_id in set(owner) - acked:
        for replica in replicas:
            assert state_on(replica, alert_id)["status"] == "active"
    # A second use of a used link is refused by either replica, whichever took it.
    _, _, first_link = next(step for step in plan if step[0] == "link")
    token_path = pages[first_link].ack_url.removeprefix(ha.public_url)
    for replica in replicas:
        assert httpx.get(f"http://127.0.0.1:{replica.port}{token_path}", timeout=10).status_code == 409
    for console in consoles:
        console.close()
