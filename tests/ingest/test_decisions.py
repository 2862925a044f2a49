"""Unit tests of the pure ingest decisions (no broker, no server)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from beacon.core.schemas import example_event
from beacon.ingest.apikeys import ApiKeyRegistry, KeyStoreError, new_key, revocation
from beacon.ingest.decisions import Bucket, Caller, ContractRules, Problem, check_events, decode_body, take_tokens
from beacon.ingest.importer import csv_row_to_event
from beacon.ingest.openapi import OPENAPI_FILE, render_openapi
from beacon.ingest.settings import POLICE_TYPES, IngestSettings
from beacon.ingest.validator import Forward, classify
from beacon.runtime.decoding import Rejected

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
RULES = ContractRules(future_tolerance=timedelta(minutes=5), earliest=datetime(1990, 1, 1, tzinfo=UTC))
POLICE = Caller("met-police", "police", frozenset(POLICE_TYPES), "urn:beacon:source:met-police")
LIMITS = {"max_events": 3, "max_bytes": 10_000}


def decode(body: object, content_type: str = "application/json", headers: dict | None = None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return decode_body(raw, content_type, headers or {}, **LIMITS)


def test_content_types_and_shapes():
    event = example_event("beacon.episode.found.v1")
    assert decode(event) == ([event], False)
    assert decode([event, event]) == ([event, event], True)
    assert decode(event, "application/cloudevents+json; charset=utf-8") == ([event], False)
    assert decode([event], "application/cloudevents-batch+json") == ([event], True)
    assert decode(event, "text/plain").status == 415
    assert decode(event, "application/cloudevents-batch+json").status == 400
    assert decode([event], "application/cloudevents+json").status == 400
    assert decode([]).status == 400
    assert decode([event] * 4).status == 413
    assert decode(b"x" * 10_001).status == 413
    assert decode(b"{oops").status == 400
    assert decode(b"[" * 5000).status == 400  # nesting deeper than the parser's recursion limit


def test_binary_mode_takes_the_envelope_from_headers():
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "b-1",
        "ce-source": "urn:beacon:source:met-police",
        "ce-type": "beacon.episode.found.v1",
        "ce-time": "2026-11-21T09:30:00Z",
        "ce-subject": "CH-1234",
    }
    data = {"episode_ref": "MET-1", "outcome": "found", "ended_at": "2026-11-21T09:20:00Z"}
    [event], batch = decode(data, headers=headers)
    assert not batch and event["id"] == "b-1" and event["data"] == data and event["subject"] == "CH-1234"
    assert check_events([event], False, POLICE, NOW, RULES)[0].id == "b-1"


def test_batch_is_all_or_nothing_and_names_every_failing_item():
    good = example_event("beacon.episode.found.v1")
    bad = {**good, "data": {**good["data"], "outcome": "vanished"}}
    foreign = example_event("beacon.cse.screened.v1")
    result = check_events([good, bad, foreign], True, POLICE, NOW, RULES)
    assert isinstance(result, Problem) and result.status == 422
    assert [(e.index, e.field) for e in result.errors] == [(1, "data/outcome"), (2, "type"), (2, "source")]


def test_scope_and_source_give_403_saying_which():
    council_type = {**example_event("beacon.cse.screened.v1"), "source": "urn:beacon:source:met-police"}
    result = check_events([council_type], False, POLICE, NOW, RULES)
    assert result.status == 403 and "beacon.cse.screened.v1" in result.errors[0].reason
    wrong_source = {**example_event("beacon.episode.found.v1"), "source": "urn:beacon:source:kent-police"}
    result = check_events([wrong_source], False, POLICE, NOW, RULES)
    assert result.status == 403 and result.errors[0].field == "source"


def test_future_time_beyond_tolerance_is_refused():
    event = example_event("beacon.episode.found.v1")
    assert not isinstance(check_events([{**event, "time": "2026-11-21T12:04:00Z"}], False, POLICE, NOW, RULES), Problem)
    result = check_events([{**event, "time": "2026-11-21T12:06:00Z"}], False, POLICE, NOW, RULES)
    assert result.status == 422 and result.errors[0].field == "time"


def test_token_bucket():
    bucket, wait = take_tokens(None, 3, now=0.0, rate=1.0, burst=3)
    assert wait == 0 and bucket.tokens == 0
    bucket, wait = take_tokens(bucket, 2, now=1.0, rate=1.0, burst=3)
    assert wait == pytest.approx(1.0)
    bucket, wait = take_tokens(bucket, 2, now=2.0, rate=1.0, burst=3)
    assert wait == 0
    # a request bigger than the bucket costs the whole bucket, so it can pass once full
    assert take_tokens(Bucket(3, 0.0), 100, now=0.0, rate=1.0, burst=3)[1] == 0


def test_api_key_registry_lets_in_the_active_key_and_a_revocation_is_final():
    scopes = IngestSettings.model_construct().ingest_scopes
    key, token = new_key("met-police", "police", scopes, NOW)
    assert token not in key.to_json().decode() and key.token_sha256 in key.to_json().decode()
    registry = ApiKeyRegistry()
    assert registry.authenticate(token) is None  # not on the topic yet
    registry.apply(key.key_id, key)
    assert registry.authenticate(token) == key
    assert registry.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert registry.authenticate(None) is None and registry.authenticate("bearer junk") is None
    revoked = revocation(registry.keys, key.key_id, NOW + timedelta(hours=1))
    assert revoked.revoked_at == "2026-11-21T13:00:00Z"
    registry.apply(key.key_id, revoked)
    assert registry.authenticate(token) is None
    registry.apply(key.key_id, key)  # a replayed create does not bring it back
    assert registry.authenticate(token) is None
    assert revocation(registry.keys, key.key_id, NOW + timedelta(hours=2)) == revoked  # revoked once


def test_a_tombstone_or_a_record_under_another_kafka_key_lets_nobody_in():
    scopes = IngestSettings.model_construct().ingest_scopes
    key, token = new_key("met-police", "police", scopes, NOW)
    registry = ApiKeyRegistry()
    with pytest.raises(ValueError, match="under the Kafka key"):
        registry.apply("AAAAAAAAAAAA", key)
    assert registry.authenticate(token) is None
    registry.apply(key.key_id, key)
    registry.apply(key.key_id, None)
    assert registry.authenticate(token) is None


def test_new_keys_refuse_bad_sources_scopes_and_unknown_ids():
    scopes = IngestSettings.model_construct().ingest_scopes
    with pytest.raises(KeyStoreError):
        new_key("Met Police", "police", scopes, NOW)
    with pytest.raises(KeyStoreError, match="unknown scope"):
        new_key("met-police", "admin", scopes, NOW)
    with pytest.raises(KeyStoreError, match="no key with id"):
        revocation({}, "AAAAAAAAAAAA", NOW)


def test_validator_classify_never_raises():
    good = json.dumps(example_event("beacon.episode.found.v1")).encode()
    outcome = classify(good, now=NOW, rules=RULES)
    assert isinstance(outcome, Forward) and outcome.key == b"CH-7F3A9C21"
    for poison in (None, b"", b"\x00\xff", b"[1,2]", b"null", b'{"source": 5}', b"[" * 5000, b"[" * 100_000):
        rejected = classify(poison, now=NOW, rules=RULES)
        assert isinstance(rejected, Rejected) and rejected.errors, poison


def test_csv_row_to_event():
    row = {"id": "1", "type": "t", "data.level": "high", "data.disclosure": "true", "data.episode_ref": ""}
    assert csv_row_to_event(row) == {
        "specversion": "1.0",
        "id": "1",
        "type": "t",
        "data": {"level": "high", "disclosure": "true"},
    }


def test_checked_in_openapi_matches_the_service():
    assert OPENAPI_FILE.read_text() == render_openapi(), "run: python -m beacon schemas openapi"


def test_csv_cells_are_typed_by_the_contract_and_nothing_else_is_coerced():
    row = {
        "id": "met-csv-1",
        "type": "beacon.episode.reported.v1",
        "data.age_years": "14",
        "data.looked_after": "true",
        "data.episode_ref": "MET-2026-000123",
    }
    assert csv_row_to_event(row)["data"] == {"age_years": 14, "looked_after": True, "episode_ref": "MET-2026-000123"}
    loose = {**row, "data.age_years": "14 years", "data.looked_after": "yes"}
    assert csv_row_to_event(loose)["data"] == {
        "age_years": "14 years",
        "looked_after": "yes",
        "episode_ref": "MET-2026-000123",
    }
