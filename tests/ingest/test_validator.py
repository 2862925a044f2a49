"""Direct Kafka ingestion: the validator worker as a real process on a real broker."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest

from beacon.core.events import event_from_json
from beacon.core.schemas import example_event
from beacon.core.topics import EVENTS, EVENTS_DLQ, EVENTS_RAW
from harness.contract import assert_match_published_schema
from harness.kafka import produce, read_topic
from harness.services import REPO_ROOT, ServiceProcess

from .forbidden import forbidden_events

pytestmark = [pytest.mark.slow, pytest.mark.table_stores]


def test_valid_records_continue_and_invalid_ones_go_to_the_dlq_with_reasons(settings, env, tmp_path):
    good = [example_event("beacon.episode.reported.v1"), example_event("beacon.cse.screened.v1")]
    bad_contract = {**example_event("beacon.episode.found.v1"), "id": "met-bad-1"}
    bad_contract["data"] = {**bad_contract["data"], "outcome": "vanished"}
    poison = b"\xff\xfe not json at all"
    records = [
        (b"CH-7F3A9C21", json.dumps(good[0]).encode()),
        (b"CH-7F3A9C21", json.dumps(bad_contract).encode()),
        (None, poison),
        (b"CH-7F3A9C21", json.dumps({"type": "beacon.nope.v1", "source": "urn:x:y"}).encode()),
        (b"wrong-key", json.dumps(good[1]).encode()),
    ]
    with ServiceProcess("validator", env, tmp_path / "validator.log", port=settings.validator_port):
        produce(settings, EVENTS_RAW, records)
        # the integrators' example script takes the same path
        example = subprocess.run(
            [
                sys.executable,
                str(REPO_ROOT / "examples" / "produce_kafka.py"),
                "--bootstrap",
                settings.kafka_bootstrap_servers,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert "sent met-evt-000001 to beacon.events.raw" in example.stdout
        forwarded = read_topic(settings, EVENTS, expect=3, timeout_s=90)
        dead = read_topic(settings, EVENTS_DLQ, expect=3, timeout_s=60)

    assert sorted(event_from_json(r.value).id for r in forwarded) == sorted(
        [e["id"] for e in good] + ["met-evt-000001"]
    )
    assert all(r.key == event_from_json(r.value).subject.encode() for r in forwarded)  # keyed by subject

    assert_match_published_schema(EVENTS_DLQ, dead)
    assert_match_published_schema(EVENTS, forwarded)
    letters = sorted((json.loads(r.value) for r in dead), key=lambda d: d["offset"] + 100 * d["partition"])
    assert len(letters) == 3
    by_original = {base64.b64decode(d["original"]): d for d in letters}
    assert set(by_original) == {records[1][1], poison, records[3][1]}

    contract = by_original[records[1][1]]
    assert contract["source"] == "urn:beacon:source:met-police" and contract["key"] == "CH-7F3A9C21"
    assert contract["reason"][0]["field"] == "data/outcome"
    assert contract["topic"] == EVENTS_RAW and isinstance(contract["partition"], int)
    assert isinstance(contract["offset"], int) and contract["received_at"].endswith("Z")

    unreadable = by_original[poison]
    assert unreadable["source"] == "unknown" and unreadable["key"] is None
    assert unreadable["reason_class"] == "not_utf8" and "not UTF-8" in unreadable["reason"][0]["reason"]

    unknown_type = by_original[records[3][1]]
    assert unknown_type["source"] == "urn:x:y" and unknown_type["reason"][0]["field"] == "type"


def test_records_the_schema_or_the_date_window_forbids_are_dead_lettered_naming_the_field(settings, env, tmp_path):
    probes = forbidden_events()
    good = example_event("beacon.episode.reported.v1")
    records = [(b"CH-7F3A9C21", json.dumps(event).encode()) for _, event in probes]
    records.append((b"CH-7F3A9C21", json.dumps(good).encode()))
    with ServiceProcess("validator", env, tmp_path / "validator.log", port=settings.validator_port):
        produce(settings, EVENTS_RAW, records)
        dead = read_topic(settings, EVENTS_DLQ, expect=len(probes), timeout_s=90)
        forwarded = read_topic(settings, EVENTS, expect=1, timeout_s=60)
    assert [event_from_json(r.value).id for r in forwarded] == [good["id"]]
    fields = {
        json.loads(base64.b64decode(letter["original"]))["id"]: letter["reason"]
        for letter in map(json.loads, (r.value for r in dead))
    }
    assert {event_id: [r["field"] for r in reasons] for event_id, reasons in fields.items()} == {
        event["id"]: [field] for field, event in probes
    }
