"""API keys live on the compacted topic beacon.apikeys: two ingest replicas on one broker,
a key issued through the CLI works on both at once, and once the CLI has revoked it both
refuse it, within a time this test measures and prints (README, "API keys")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from beacon.runtime.broker import free_port
from harness.cli import beacon_cli
from harness.services import ServiceProcess

from .test_http_ingest import auth, police_event

pytestmark = [pytest.mark.slow, pytest.mark.ha]


@pytest.fixture
def two_ingests(ingest_env: dict[str, str], tmp_path: Path) -> Iterator[list[httpx.Client]]:
    ports = [free_port(), free_port()]
    replicas = [
        ServiceProcess("ingest", {**ingest_env, "BEACON_INGEST_PORT": str(port)}, tmp_path / f"ingest-{n}.log", port)
        for n, port in enumerate(ports)
    ]
    clients = [httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) for port in ports]
    try:
        for replica in replicas:
            replica.start()
        yield clients
    finally:
        for client in clients:
            client.close()
        for replica in replicas:
            replica.stop()


def test_a_key_issued_by_the_cli_works_on_every_replica_and_its_revocation_reaches_every_one(ingest_env, two_ingests):
    token = beacon_cli(ingest_env, "apikeys", "create", "--source", "met-police", "--scope", "police").stdout.strip()
    key_id = token.split("_")[1]
    for n, client in enumerate(two_ingests):  # at once: no wait, no retry
        response = client.post("/v1/events", json=police_event(n, "CH-AAA-001"), headers=auth(token))
        assert response.status_code == 202, (n, response.text)

    revoked = beacon_cli(ingest_env, "apikeys", "revoke", key_id)
    revoked_at = time.monotonic()  # the CLI returned: Kafka holds the revocation (acks=all)
    assert f"revoked {key_id}" in revoked.stdout
    refused_after: list[float] = []
    for client in two_ingests:
        deadline = revoked_at + 5.0  # a bound far above what is measured; the number printed is the point
        while True:
            status = client.post("/v1/events", json=police_event(9, "CH-AAA-001"), headers=auth(token)).status_code
            if status == 401:
                refused_after.append(time.monotonic() - revoked_at)
                break
            assert status == 202 and time.monotonic() < deadline, f"revocation not enforced in 5 s ({status})"
            time.sleep(0.01)
    print(f"revocation refused on both replicas {max(refused_after) * 1000:.0f} ms after the CLI returned")
    # Refused for good, on both, and the listing says so.
    for client in two_ingests:
        assert client.post("/v1/events", json=police_event(10, "CH-AAA-001"), headers=auth(token)).status_code == 401
    assert f"{key_id}" in (listing := beacon_cli(ingest_env, "apikeys", "list").stdout) and "revoked" in listing


def test_a_replica_started_later_reads_every_key_and_revocation_from_the_topic(ingest_env, settings, tmp_path):
    """A restart (or a new pod) loses nothing: the keys are on Kafka, not in the pod."""
    kept = beacon_cli(ingest_env, "apikeys", "create", "--source", "met-police", "--scope", "police").stdout.strip()
    gone = beacon_cli(ingest_env, "apikeys", "create", "--source", "southwark", "--scope", "council").stdout.strip()
    beacon_cli(ingest_env, "apikeys", "revoke", gone.split("_")[1])
    with (
        ServiceProcess("ingest", ingest_env, tmp_path / "late.log", port=settings.ingest_port),
        httpx.Client(base_url=f"http://127.0.0.1:{settings.ingest_port}", timeout=30) as client,
    ):
        assert client.get("/readyz").json() == {"ready": True, "kafka": True, "api_keys": True}
        assert client.post("/v1/events", json=police_event(1, "CH-AAA-001"), headers=auth(kept)).status_code == 202
        assert client.post("/v1/events", json=police_event(2, "CH-AAA-001"), headers=auth(gone)).status_code == 401
