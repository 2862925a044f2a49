"""The contract of what Beacon writes: a published JSON Schema for the records of every
topic, generated from the models, that cannot drift, whose example validates, and that
agrees with the models on what is refused."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from beacon.core.dead_letters import COPY_BYTES, DeadLetterRecord, dead_letter
from beacon.core.events import EVENT_TYPES
from beacon.core.record_schemas import RECORD_MODELS, RECORD_SCHEMA_DIR, all_record_schemas, example_records
from beacon.core.schemas import example_event
from beacon.core.topics import EVENTS, EVENTS_DLQ, TOPICS
from harness.contract import published_validator, schema_errors


def test_committed_record_schema_files_match_the_models():
    generated = all_record_schemas()
    committed = {p.name: p.read_text() for p in RECORD_SCHEMA_DIR.glob("*.json")}
    assert sorted(committed) == sorted(generated), "run `make schemas` and commit schemas/records/"
    for name, text in generated.items():
        assert committed[name] == text, f"{name} drifted from the model; run `make schemas`"


def test_every_topic_has_a_published_record_schema():
    assert {f"{spec.name}.json" for spec in TOPICS if spec.published} == {
        p.name for p in RECORD_SCHEMA_DIR.glob("*.json")
    }


@pytest.mark.parametrize("topic", sorted(RECORD_MODELS))
def test_each_record_example_validates_against_the_schema_file_and_the_model(topic):
    validator = published_validator(topic)
    validator.check_schema(validator.schema)
    (example,) = validator.schema["examples"]
    validator.validate(example)
    # As a record arrives from its topic: JSON (a strict model takes a JSON array for a tuple).
    assert RECORD_MODELS[topic].model_validate_json(json.dumps(example)) == example_records()[topic]


@pytest.mark.parametrize("topic", sorted(RECORD_MODELS))
def test_schema_and_model_agree_on_a_missing_required_field_and_an_unknown_one(topic):
    model = RECORD_MODELS[topic]
    example = json.loads(example_records()[topic].to_json())
    required = published_validator(topic).schema["required"]
    assert required
    for field in required:
        incomplete = {k: v for k, v in example.items() if k != field}
        assert schema_errors(topic, json.dumps(incomplete).encode()), f"schema accepted a record without {field}"
        with pytest.raises(ValueError):
            model.model_validate(incomplete)
    extra = json.dumps({**example, "child_name": "x"}).encode()  # no field for personal data: refused
    assert schema_errors(topic, extra)
    with pytest.raises(ValueError):
        model.model_validate_json(extra)


@pytest.mark.parametrize("event_type", sorted(EVENT_TYPES))
def test_the_events_topic_schema_accepts_each_event_type_and_refuses_an_unknown_one(event_type):
    assert schema_errors(EVENTS, json.dumps(example_event(event_type)).encode()) == []
    unknown = {**example_event(event_type), "type": "beacon.episode.vanished.v1"}
    assert schema_errors(EVENTS, json.dumps(unknown).encode())


@given(
    value=st.one_of(st.none(), st.binary(max_size=300)),
    key=st.one_of(st.none(), st.binary(max_size=40)),
    reasons=st.lists(st.tuples(st.text(max_size=30), st.text(max_size=80)), max_size=4),
)
def test_a_dead_letter_of_any_bytes_matches_the_published_schema_and_keeps_the_original(value, key, reasons):
    letter = dead_letter(
        value,
        key,
        reasons,
        topic="beacon.events.raw",
        partition=0,
        offset=7,
        now=datetime(2026, 11, 21, 9, 31, tzinfo=UTC),
        service="validator",
    )
    payload = letter.to_json()
    assert schema_errors(EVENTS_DLQ, payload) == []
    parsed = DeadLetterRecord.from_json(payload)
    if value is None:
        assert parsed.original is None and parsed.original_size == 0
    else:  # a bounded copy, the size and the hash of the whole value
        assert base64.b64decode(parsed.original or "") == value[:COPY_BYTES]
        assert (parsed.original_size, parsed.original_sha256) == (len(value), hashlib.sha256(value).hexdigest())
    assert len(parsed.reason) == max(1, len(reasons))
