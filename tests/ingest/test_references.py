"""References and ids cannot carry a name or an address, at every door; with a pseudonym key
the doors replace the source's references by stable keyed pseudonyms."""

from __future__ import annotations

import copy
import csv
import json
import re
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from beacon.core.events import event_from_json
from beacon.core.schemas import EXAMPLES, example_event
from beacon.core.topics import EVENTS, EVENTS_DLQ, EVENTS_HISTORY, EVENTS_RAW
from beacon.demo import demo_events
from beacon.ingest.decisions import ContractRules, contract_errors
from beacon.ingest.importer import csv_row_to_event
from beacon.ingest.references import DEFAULT_ID_PATTERN, DEFAULT_REFERENCE_PATTERN, pseudonym
from harness.cli import beacon_cli
from harness.kafka import produce, read_topic
from harness.services import REPO_ROOT, ServiceProcess

NAMES = ["Jessica.Marlowe.14.Acacia.Avenue", "Jessica-Marlowe/14-Acacia-Ave", "JESSICA-MARLOWE-14", "14-ACACIA-AVENUE"]
KEY = "pseudonym-key-of-this-test-only-0123456789abcdef"
RULES = ContractRules(future_tolerance=timedelta(minutes=5), earliest=datetime(1990, 1, 1, tzinfo=UTC))
REFERENCE, EVENT_ID = re.compile(DEFAULT_REFERENCE_PATTERN), re.compile(DEFAULT_ID_PATTERN)


def with_refs(subject: str | None = None, episode: str | None = None, event_id: str | None = None) -> dict:
    event = copy.deepcopy(example_event("beacon.episode.reported.v1"))
    event["subject"] = subject or event["subject"]
    event["data"]["episode_ref"] = episode or event["data"]["episode_ref"]
    event["id"] = event_id or event["id"]
    return event


def name_shaped_events() -> list[tuple[str, dict]]:
    cases = []
    for name in NAMES:
        cases += [
            ("subject", with_refs(subject=name)),
            ("data/episode_ref", with_refs(episode=name)),
            ("id", with_refs(event_id=name)),
        ]
    return [(field, event) for field, event in cases]


@pytest.mark.parametrize(("field", "event"), name_shaped_events(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_name_shaped_reference_or_id_is_refused_naming_the_field(field, event):
    accepted, errors = contract_errors(event, datetime.now(UTC), RULES)
    assert accepted is None and [e.field for e in errors] == [field]
    assert "pattern" in errors[0].reason


def test_every_example_demo_event_and_example_file_passes_the_default_rules():
    now = datetime.now(UTC)
    events = [example_event(t) for t in EXAMPLES] + demo_events(now - timedelta(minutes=10))
    events.append(json.loads((REPO_ROOT / "examples" / "reported.json").read_text()))
    with open(REPO_ROOT / "examples" / "history.csv", newline="") as f:
        events += [csv_row_to_event(row) for row in csv.DictReader(f)]
    for event in events:
        accepted, errors = contract_errors(event, now, RULES)
        assert accepted is not None, (event, errors)


@given(reference=st.text(min_size=1, max_size=80), kind=st.sampled_from(["subject", "episode"]))
def test_a_pseudonym_is_stable_keyed_and_a_valid_reference_itself(reference, kind):
    beacon_ref = pseudonym(KEY.encode(), kind, reference)
    assert beacon_ref == pseudonym(KEY.encode(), kind, reference)
    assert beacon_ref != pseudonym(b"another-key-of-at-least-32-bytes!!", kind, reference)
    assert beacon_ref != pseudonym(KEY.encode(), "episode" if kind == "subject" else "subject", reference)
    assert REFERENCE.fullmatch(beacon_ref)


@given(event_id=st.uuids().map(str) | st.uuids().map(lambda u: str(u).upper()))
def test_a_uuid_is_a_valid_event_id(event_id):
    assert EVENT_ID.fullmatch(event_id)


def test_with_a_key_the_references_are_replaced_and_the_id_kept():
    rules = ContractRules(**{**RULES.__dict__, "pseudonym_key": KEY.encode()})
    event, errors = contract_errors(with_refs(), datetime.now(UTC), rules)
    assert event is not None and not errors
    assert event.subject == pseudonym(KEY.encode(), "subject", "CH-7F3A9C21")
    assert event.data.episode_ref == pseudonym(KEY.encode(), "episode", "MET-2026-000123")
    assert event.id == "met-evt-000001"


def test_a_short_pseudonym_key_is_refused_at_start(ingest_env):
    result = beacon_cli({**ingest_env, "BEACON_INGEST_PSEUDONYM_KEY": "too-short"}, "apikeys", "list", check=False)
    assert result.returncode != 0 and "BEACON_INGEST_PSEUDONYM_KEY" in result.stderr and "32 bytes" in result.stderr


# ------------------------------------------------------------------ the doors, as real processes


@pytest.mark.slow
def test_http_ingest_refuses_names_and_pseudonymises_with_a_key(settings, ingest_env, create_key, tmp_path):
    env = {**ingest_env, "BEACON_INGEST_PSEUDONYM_KEY": KEY}
    token = create_key("met-police", "police")
    headers = {"Authorization": f"Bearer {token}"}
    with (
        ServiceProcess("ingest", env, tmp_path / "ingest.log", port=settings.ingest_port),
        httpx.Client(base_url=f"http://127.0.0.1:{settings.ingest_port}", timeout=30) as client,
    ):
        for field, event in name_shaped_events():
            response = client.post("/v1/events", json=event, headers=headers)
            assert response.status_code == 422 and [e["field"] for e in response.json()["errors"]] == [field]
        first, again = with_refs(event_id="met-evt-000101"), with_refs(event_id="met-evt-000102")
        for event in (first, again):
            assert client.post("/v1/events", json=event, headers=headers).status_code == 202
    records = read_topic(settings, EVENTS, expect=2)
    subject = pseudonym(KEY.encode(), "subject", "CH-7F3A9C21")
    assert {r.key for r in records} == {subject.encode()}  # same child, same pseudonym, one partition
    for record in records:
        event = event_from_json(record.value)
        assert (event.subject, event.data.episode_ref) == (
            subject,
            pseudonym(KEY.encode(), "episode", "MET-2026-000123"),
        )
        assert b"CH-7F3A9C21" not in record.value and b"MET-2026-000123" not in record.value
    lookup = beacon_cli(env, "pseudonym", "CH-7F3A9C21")
    assert lookup.stdout.split() == ["CH-7F3A9C21", subject]
    found = subprocess_find(env, subject, ["CH-0000-0001", "CH-7F3A9C21", "CH-0000-0002"])
    assert found == ["CH-7F3A9C21"]


def subprocess_find(env: dict[str, str], beacon_ref: str, candidates: list[str]) -> list[str]:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "beacon", "pseudonym", "--find", beacon_ref],
        input="\n".join(candidates) + "\n",
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.split()


@pytest.mark.slow
def test_the_validator_dead_letters_names_and_pseudonymises_with_a_key(settings, env, tmp_path):
    probes = name_shaped_events()
    records = [(b"x", json.dumps(event).encode()) for _, event in probes]
    records.append((b"CH-7F3A9C21", json.dumps(with_refs()).encode()))
    keyed = {**env, "BEACON_INGEST_PSEUDONYM_KEY": KEY}
    with ServiceProcess("validator", keyed, tmp_path / "validator.log", port=settings.validator_port):
        produce(settings, EVENTS_RAW, records)
        dead = read_topic(settings, EVENTS_DLQ, expect=len(probes), timeout_s=90)
        [forwarded] = read_topic(settings, EVENTS, expect=1, timeout_s=60)
    assert sorted(json.loads(r.value)["reason"][0]["field"] for r in dead) == sorted(f for f, _ in probes)
    subject = pseudonym(KEY.encode(), "subject", "CH-7F3A9C21")
    assert forwarded.key == subject.encode() and event_from_json(forwarded.value).subject == subject


@pytest.mark.slow
def test_the_import_refuses_names_and_pseudonymises_with_a_key(settings, ingest_env, tmp_path):
    probes = name_shaped_events()
    source = tmp_path / "history.jsonl"
    source.write_text("\n".join(json.dumps(e) for e in [*(e for _, e in probes), with_refs()]) + "\n")
    rejects = tmp_path / "rejects.jsonl"
    result = beacon_cli(
        {**ingest_env, "BEACON_INGEST_PSEUDONYM_KEY": KEY}, "import", str(source), "--rejects", str(rejects)
    )
    assert f"accepted: 1  rejected: {len(probes)}" in result.stdout
    refused = [json.loads(line)["errors"][0]["field"] for line in rejects.read_text().splitlines()]
    assert refused == [field for field, _ in probes]
    [record] = read_topic(settings, EVENTS_HISTORY, expect=1)
    assert event_from_json(record.value).subject == pseudonym(KEY.encode(), "subject", "CH-7F3A9C21")
