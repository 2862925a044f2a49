"""The HTTP ingest API against a real broker, as a real process."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from beacon.core.events import event_from_json
from beacon.core.schemas import example_event
from beacon.core.topics import API_KEYS, EVENTS
from beacon.ingest.apikeys import hash_token
from harness.cli import beacon_cli
from harness.kafka import produce, read_topic
from harness.services import REPO_ROOT, ServiceProcess

from .forbidden import forbidden_events

pytestmark = pytest.mark.slow

MET = "urn:beacon:source:met-police"
SOUTHWARK = "urn:beacon:source:southwark"


def police_event(n: int, child: str, event_type: str = "beacon.episode.sighting.v1") -> dict:
    event = example_event(event_type)
    event.update(id=f"met-{child}-{n:04d}", subject=child, source=MET)
    return event


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_events_land_in_order_per_child_on_one_partition(settings, client, create_key):
    token = create_key("met-police", "police")
    children = ["CH-AAA-001", "CH-BBB-002", "CH-CCC-003"]
    sent = defaultdict(list)
    for n in range(10):
        for child in children:
            event = police_event(n, child)
            r = client.post("/v1/events", json=event, headers=auth(token))
            assert r.status_code == 202, r.text
            assert r.json() == {"accepted": [event["id"]], "count": 1}
            sent[child].append(event["id"])
    batch = [police_event(n, "CH-DDD-004") for n in range(100, 150)]
    r = client.post(
        "/v1/events",
        content=json.dumps(batch),
        headers={**auth(token), "Content-Type": "application/cloudevents-batch+json"},
    )
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == [e["id"] for e in batch]
    sent["CH-DDD-004"] = [e["id"] for e in batch]

    records = read_topic(settings, EVENTS, expect=80)
    assert len(records) == 80
    seen, partitions = defaultdict(list), defaultdict(set)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        event = event_from_json(record.value)
        assert record.key == event.subject.encode()
        assert event.source == MET
        seen[event.subject].append(event.id)
        partitions[event.subject].add(record.partition)
    assert seen == sent
    assert all(len(p) == 1 for p in partitions.values())


def test_structured_binary_and_json_modes(settings, client, create_key):
    token = create_key("southwark", "council")
    event = example_event("beacon.cse.screened.v1")
    r = client.post(
        "/v1/events",
        content=json.dumps(event),
        headers={**auth(token), "Content-Type": "application/cloudevents+json; charset=utf-8"},
    )
    assert r.status_code == 202, r.text
    binary_headers = {f"ce-{k}": event[k] for k in ("specversion", "source", "type", "time", "subject")}
    r = client.post("/v1/events", json=event["data"], headers={**auth(token), **binary_headers, "ce-id": "swk-bin-1"})
    assert r.status_code == 202, r.text
    assert r.json()["accepted"] == ["swk-bin-1"]
    ids = sorted(event_from_json(rec.value).id for rec in read_topic(settings, EVENTS, expect=2))
    assert ids == sorted([event["id"], "swk-bin-1"])


def _problem(r: httpx.Response, status: int) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["type"].startswith("https://beacon.example/problems/")
    assert body["title"] and body["detail"]
    return body


def test_every_bad_input_gets_its_documented_status_and_body(settings, client, create_key):
    police = create_key("met-police", "police")
    good = police_event(1, "CH-AAA-001", "beacon.episode.reported.v1")

    # 401: no key, an unknown key, a malformed key
    for headers in ({}, auth("bk_AAAAAAAAAAAA_" + "x" * 43), auth("nonsense")):
        body = _problem(client.post("/v1/events", json=good, headers=headers), 401)
        assert "API key" in body["detail"]

    # 415: wrong content type
    body = _problem(
        client.post("/v1/events", content=json.dumps(good), headers={**auth(police), "Content-Type": "text/plain"}), 415
    )
    assert "text/plain" in body["detail"]

    # 400: malformed JSON
    _problem(
        client.post("/v1/events", content=b"{not json", headers={**auth(police), "Content-Type": "application/json"}),
        400,
    )

    # 413: body over the byte limit, and a batch over the count limit
    huge = b"[" + b" " * (1_048_576 + 10) + b"]"
    _problem(client.post("/v1/events", content=huge, headers={**auth(police), "Content-Type": "application/json"}), 413)
    too_many = [police_event(n, "CH-AAA-001") for n in range(501)]
    body = _problem(client.post("/v1/events", json=too_many, headers=auth(police)), 413)
    assert "501" in body["detail"]

    # 422: every failing field listed
    bad = copy.deepcopy(good)
    bad["data"]["risk"] = "extreme"
    bad["data"]["age_years"] = 99
    del bad["subject"]
    body = _problem(client.post("/v1/events", json=bad, headers=auth(police)), 422)
    fields = {e["field"] for e in body["errors"]}
    assert {"data/risk", "data/age_years", "subject"} <= fields
    assert all(e["reason"] for e in body["errors"])

    # 422: unknown type
    unknown = {**good, "type": "beacon.episode.teleported.v1"}
    body = _problem(client.post("/v1/events", json=unknown, headers=auth(police)), 422)
    assert body["errors"][0]["field"] == "type" and "unknown event type" in body["errors"][0]["reason"]

    # 422: time in the future beyond the tolerance
    future = {**good, "time": (datetime.now(UTC) + timedelta(hours=1)).isoformat()}
    body = _problem(client.post("/v1/events", json=future, headers=auth(police)), 422)
    assert body["errors"][0]["field"] == "time"

    # 422 in a batch: which item and why; nothing from the batch is written
    batch = [police_event(10, "CH-AAA-001"), bad, police_event(11, "CH-AAA-001")]
    body = _problem(client.post("/v1/events", json=batch, headers=auth(police)), 422)
    assert {e["index"] for e in body["errors"]} == {1}

    # 403: a type outside the key's scope, named in the body
    council_event = {**example_event("beacon.cse.screened.v1"), "source": MET}
    body = _problem(client.post("/v1/events", json=council_event, headers=auth(police)), 403)
    assert body["errors"] == [{"field": "type", "reason": body["errors"][0]["reason"]}]
    assert "beacon.cse.screened.v1" in body["errors"][0]["reason"] and "police" in body["errors"][0]["reason"]

    # 403: the event's source is not the key's source
    body = _problem(client.post("/v1/events", json={**good, "source": SOUTHWARK}, headers=auth(police)), 403)
    assert body["errors"][0]["field"] == "source" and MET in body["errors"][0]["reason"]

    assert read_topic(settings, EVENTS, expect=0, settle_s=1.0) == []

    metrics = client.get("/metrics").text
    assert 'beacon_events_rejected_total{reason="invalid-event",source="met-police"}' in metrics
    assert 'beacon_events_rejected_total{reason="unauthorized",source="unauthenticated"}' in metrics


def test_duplicate_id_is_accepted_twice_with_the_same_source_and_id(settings, client, create_key):
    token = create_key("met-police", "police")
    event = police_event(1, "CH-AAA-001")
    for _ in range(2):
        r = client.post("/v1/events", json=event, headers=auth(token))
        assert r.status_code == 202 and r.json()["accepted"] == [event["id"]]
    records = [event_from_json(r.value) for r in read_topic(settings, EVENTS, expect=2)]
    # Both are held by Kafka; the correlator drops the second by (source, id).
    assert [(e.source, e.id) for e in records] == [(MET, event["id"])] * 2


# Stops its broker: only the embedded one is per test (the Kafka cluster serves the whole
# session); losing Kafka brokers is the three-node failover tests' job.
@pytest.mark.parametrize("broker", ["tansu"], indirect=True)
def test_kafka_down_gives_503_and_nothing_is_acknowledged_that_kafka_does_not_hold(
    settings, broker, client, create_key
):
    token = create_key("met-police", "police")
    acknowledged = []
    for n in range(5):
        event = police_event(n, "CH-AAA-001")
        r = client.post("/v1/events", json=event, headers=auth(token))
        assert r.status_code == 202
        acknowledged += r.json()["accepted"]
    held = {event_from_json(r.value).id for r in read_topic(settings, EVENTS, expect=5)}
    assert set(acknowledged) <= held

    broker.stop()
    for n in range(5, 8):
        r = client.post("/v1/events", json=police_event(n, "CH-AAA-001"), headers=auth(token))
        body = _problem(r, 503)
        assert r.headers["Retry-After"] == "7"
        assert "nothing was accepted" in body["detail"]
    batch = [police_event(n, "CH-BBB-002") for n in range(20, 30)]
    _problem(client.post("/v1/events", json=batch, headers=auth(token)), 503)
    assert client.get("/readyz").status_code == 503


def test_api_key_cli_create_list_revoke(settings, client, ingest_env, create_key):
    token = create_key("met-police", "police")
    key_id = token.split("_")[1]
    listing = beacon_cli(ingest_env, "apikeys", "list").stdout
    assert key_id in listing and "met-police" in listing and "active" in listing
    assert token not in listing
    stored = b"".join(r.value for r in read_topic(settings, API_KEYS, expect=1, settle_s=0))
    assert token.encode() not in stored and hash_token(token).encode() in stored  # the hash only

    event = police_event(1, "CH-AAA-001")
    assert client.post("/v1/events", json=event, headers=auth(token)).status_code == 202
    beacon_cli(ingest_env, "apikeys", "revoke", key_id)
    assert "revoked" in beacon_cli(ingest_env, "apikeys", "list").stdout
    _problem(client.post("/v1/events", json=event, headers=auth(token)), 401)

    bad_scope = beacon_cli(ingest_env, "apikeys", "create", "--source", "met-police", "--scope", "admin", check=False)
    assert bad_scope.returncode == 2 and "unknown scope" in bad_scope.stderr


def test_rate_limit_gives_429_with_retry_after(settings, ingest_env, create_key, tmp_path):
    env = {**ingest_env, "BEACON_INGEST_RATE_PER_S": "0.5", "BEACON_INGEST_RATE_BURST": "3"}
    token = create_key("met-police", "police")
    other = create_key("southwark", "council")
    with (
        ServiceProcess("ingest", env, tmp_path / "ingest-rl.log", port=settings.ingest_port),
        httpx.Client(base_url=f"http://127.0.0.1:{settings.ingest_port}", timeout=30) as client,
    ):
        statuses = [
            client.post("/v1/events", json=police_event(n, "CH-AAA-001"), headers=auth(token)) for n in range(4)
        ]
        assert [r.status_code for r in statuses] == [202, 202, 202, 429]
        limited = statuses[-1]
        assert limited.headers["content-type"] == "application/problem+json"
        assert int(limited.headers["Retry-After"]) >= 1
        # the limit is per source: another source is unaffected
        r = client.post("/v1/events", json=example_event("beacon.cse.screened.v1"), headers=auth(other))
        assert r.status_code == 202


def test_openapi_and_docs_are_served(client):
    served = client.get("/openapi.json").json()
    assert "/v1/events" in served["paths"]
    assert client.get("/docs").status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200


def test_the_curl_example_works(settings, client, create_key):
    token = create_key("met-police", "police")
    result = subprocess.run(
        [
            str(REPO_ROOT / "examples" / "post_event.sh"),
            str(REPO_ROOT / "examples" / "reported.json"),
            str(client.base_url).rstrip("/"),
        ],
        env={**os.environ, "BEACON_API_KEY": token},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.startswith("HTTP/1.1 202")
    assert '"accepted":["met-evt-000001"]' in result.stdout


def test_values_the_schema_or_the_date_window_forbids_are_refused_naming_the_field(settings, client, create_key):
    """Ingest took "age_years": "14" or true, "looked_after": "yes" or 1 and "time": 1796000000,
    which the published schema forbids, and dates in year 1 or 9999 that broke the console."""
    token = create_key("met-police", "police")
    for field, event in forbidden_events():
        body = _problem(client.post("/v1/events", json=event, headers=auth(token)), 422)
        assert [e["field"] for e in body["errors"]] == [field], (event, body)
        assert body["errors"][0]["reason"]
    assert read_topic(settings, EVENTS, expect=0, settle_s=1.0) == []


def test_records_on_the_keys_topic_nobody_can_read_are_skipped_and_logged_and_keys_still_work(
    settings, client, create_key, ingest
):
    """Anything on beacon.apikeys (garbage, another shape, a record under another key id)
    is skipped with one log line naming where it is; the keys around it keep working."""
    token = create_key("met-police", "police")
    event = police_event(1, "CH-KEY-0001")
    key_id = token.split("_")[1]
    poison = [
        (b"junk", b"\x00\xff"),
        (b"junk", b"[1, 2]"),
        (key_id.encode(), b'{"key_id": "' + key_id.encode() + b'"}'),
        (b"AAAAAAAAAAAA", json.dumps({**json.loads(read_topic(settings, API_KEYS, expect=1)[0].value)}).encode()),
    ]
    produce(settings, API_KEYS, poison)
    later = create_key("southwark", "council")  # read after the poison: the feed went on
    assert client.post("/v1/events", json=event, headers=auth(token)).status_code == 202
    assert (
        client.post("/v1/events", json=example_event("beacon.cse.screened.v1"), headers=auth(later)).status_code == 202
    )
    lines = [json.loads(line) for line in ingest.log_file.read_text().splitlines() if line.startswith("{")]
    skipped = [line for line in lines if line["event"] == "api_key_record_skipped"]
    assert len(skipped) == len(poison) and all(line["topic"] == API_KEYS for line in skipped)
    assert {line["reason"] for line in skipped} == {"not_utf8", "not_an_object", "invalid", "key_mismatch"}
    assert "Traceback" not in ingest.log_file.read_text()
