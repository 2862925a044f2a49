"""The one safe decode step and the dead-letter record (pure; the workers' side is in
tests/ops/test_poison_records.py)."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from beacon.core.alerts import AlertRecord
from beacon.core.dead_letters import COPY_BYTES, DeadLetterRecord, dead_letter
from beacon.core.events import event_from_json, event_to_json
from beacon.core.schemas import example_event
from beacon.runtime.decoding import REASON_CLASSES, Rejected, safe_decode

NOW = datetime(2026, 11, 21, 9, 31, 2, tzinfo=UTC)
PRODUCER_LIMIT = 1_048_576
VALID = json.dumps(example_event("beacon.episode.reported.v1")).encode()

NASTY = {
    "null value": (None, "null_value"),
    "empty": (b"", "not_json"),
    "not UTF-8": (b"\xff\xfe\x00garbage", "not_utf8"),
    "not JSON": (b"{'single': quotes}", "not_json"),
    "100,000 deep": (b"[" * 100_000 + b"]" * 100_000, "too_deep"),
    "100,000 deep objects": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "too_deep"),
    "too large": (b" " * (PRODUCER_LIMIT + 1), "too_large"),
    "array": (b"[1, 2]", "not_an_object"),
    "string": (b'"text"', "not_an_object"),
    "wrong shape": (b'{"type": "beacon.episode.reported.v1", "data": {}}', "invalid"),
    "unknown type": (json.dumps({**json.loads(VALID), "type": "beacon.nope.v1"}).encode(), "unknown_type"),
}


def _letter(value: bytes | None, rejected: Rejected) -> dict:
    record = dead_letter(
        value,
        b"CH-1",
        rejected.errors,
        topic="beacon.events",
        partition=2,
        offset=41,
        now=NOW,
        service="correlator",
        reason_class=rejected.reason,
    )
    letter = record.to_json()
    assert record.key == "CH-1" and len(letter) < PRODUCER_LIMIT
    assert DeadLetterRecord.from_json(letter) == record  # the published model reads it back
    return json.loads(letter)


def test_every_nasty_record_gets_its_reason_class():
    for name, (value, reason) in NASTY.items():
        rejected = safe_decode(value, event_from_json)
        assert isinstance(rejected, Rejected), name
        assert rejected.reason == reason, (name, rejected)
        assert rejected.errors and all(len(r) <= 300 for _, r in rejected.errors), name


def test_a_valid_record_is_decoded():
    event = safe_decode(VALID, event_from_json)
    assert not isinstance(event, Rejected) and event_to_json(event) == event_to_json(event_from_json(VALID))


def test_the_letter_says_where_and_why_and_keeps_size_hash_and_a_bounded_copy():
    big = b'{"x": "' + b"a" * 950_000 + b'"'  # ~950 KB, not JSON (unterminated)
    letter = _letter(big, safe_decode(big, event_from_json))  # type: ignore[arg-type]
    assert (letter["topic"], letter["partition"], letter["offset"], letter["key"]) == ("beacon.events", 2, 41, "CH-1")
    assert letter["reason_class"] == "not_json" and letter["reason"][0]["field"] == "/"
    assert letter["original_size"] == len(big) and letter["original_sha256"] == hashlib.sha256(big).hexdigest()
    assert letter["original_truncated"] is True
    assert base64.b64decode(letter["original"]) == big[:COPY_BYTES]
    assert datetime.fromisoformat(letter["received_at"]) == NOW and letter["service"] == "correlator"


def test_a_null_value_letter_has_no_copy():
    letter = _letter(None, safe_decode(None, event_from_json))  # type: ignore[arg-type]
    assert letter["original"] is None and letter["original_size"] == 0 and letter["original_sha256"] is None
    assert letter["reason_class"] == "null_value" and letter["source"] == "unknown"


def test_whatever_a_decoder_raises_is_a_reason_not_a_crash():
    def broken(_: bytes) -> object:
        raise RecursionError("deep inside")

    rejected = safe_decode(VALID, broken)
    assert isinstance(rejected, Rejected) and rejected.reason == "invalid"
    assert rejected.errors == (("/", "could not be decoded (RecursionError)"),)  # its type, never its text


records = st.one_of(
    st.none(),
    st.binary(max_size=2000),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=30,
    ).map(lambda doc: json.dumps(doc).encode()),
    st.integers(min_value=1, max_value=3000).map(lambda depth: b"[" * depth + b"]" * depth),
)


@settings(max_examples=300, deadline=None)
@given(records, st.sampled_from([event_from_json, AlertRecord.from_json]))
def test_any_record_is_decoded_or_rejected_with_a_known_reason_and_its_letter_fits(value, parse):
    outcome = safe_decode(value, parse)
    if isinstance(outcome, Rejected):
        assert outcome.reason in REASON_CLASSES and outcome.errors
        letter = _letter(value, outcome)
        assert letter["original_size"] == (len(value) if value is not None else 0)
        if value is not None:
            assert base64.b64decode(letter["original"]) == value[:COPY_BYTES]
