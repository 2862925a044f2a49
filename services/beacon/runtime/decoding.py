"""The one safe decode step for every record a worker reads, and sending its dead letter.

A topic can hold anything: a null value, bytes that are not UTF-8 or not JSON, JSON
nested 100,000 deep, a near-1 MiB blob, valid JSON of the wrong shape, an event of a
type nobody knows. ``safe_decode`` turns every one of them into either the decoded
record or a :class:`Rejected` with a bounded reason class; it never raises, so no record
can stop a worker. The workers dead-letter what it rejects (``send_dead_letter``) and
move on; the console, a read-only projection, counts and skips it.

Every dead letter goes to ``beacon.events.dlq``, whatever topic the record came from,
as one ``DeadLetterRecord`` (``beacon.core.dead_letters``, published in
``schemas/records/beacon.events.dlq.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import pydantic_core
from pydantic import ValidationError

from beacon.core.dead_letters import MAX_KEY_CHARS, MAX_RECORD_BYTES, DeadLetterService, dead_letter
from beacon.core.events import EventValidationError

T = TypeVar("T")

# Records larger than MAX_RECORD_BYTES (a Kafka record is at most ~1 MiB on a default
# broker; no Beacon record is near it) are refused unread: bounded work per record.
MAX_ERRORS = 20
MAX_REASON_CHARS = 300

# Reason classes (the ``reason`` label of beacon_dead_letters_total: a bounded set).
NULL_VALUE = "null_value"
TOO_LARGE = "too_large"
NOT_UTF8 = "not_utf8"
NOT_JSON = "not_json"
TOO_DEEP = "too_deep"
NOT_AN_OBJECT = "not_an_object"
UNKNOWN_TYPE = "unknown_type"
INVALID = "invalid"
KEY_MISMATCH = "key_mismatch"
REFUSED = "refused"  # decoded and valid, but the rules refuse it (e.g. a correction from a stranger)
REASON_CLASSES = (
    NULL_VALUE,
    TOO_LARGE,
    NOT_UTF8,
    NOT_JSON,
    TOO_DEEP,
    NOT_AN_OBJECT,
    UNKNOWN_TYPE,
    INVALID,
    KEY_MISMATCH,
    REFUSED,
)


@dataclass(frozen=True)
class Rejected:
    """Why a record cannot be processed: a reason class and (field, reason) pairs."""

    reason: str
    errors: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return "; ".join(f"{field}: {reason}" for field, reason in self.errors)


def safe_decode(value: bytes | None, parse: Callable[[bytes], T], *, max_bytes: int = MAX_RECORD_BYTES) -> T | Rejected:
    """``parse(value)``, or the reason it cannot be: never raises."""
    if value is None:
        return Rejected(NULL_VALUE, (("/", "the record has no value"),))
    if type(value) is not bytes:  # the common case first: this runs for every record
        if not isinstance(value, bytearray | memoryview):
            return Rejected(INVALID, (("/", f"the record's value is a {type(value).__name__}, not bytes"),))
        value = bytes(value)
    if len(value) > max_bytes:
        return Rejected(TOO_LARGE, (("/", f"{len(value)} bytes; at most {max_bytes} are read"),))
    try:
        return parse(value)
    except Exception as exc:  # noqa: BLE001 - the point: whatever a decoder raises is a reason, never a crash
        return _why(value, exc)


def _why(value: bytes, exc: Exception) -> Rejected:
    try:
        value.decode("utf-8")
    except UnicodeDecodeError as bad:
        return Rejected(NOT_UTF8, (("/", f"not UTF-8 (byte {bad.start})"),))
    try:
        document = pydantic_core.from_json(value)  # Rust parser: a depth limit, not a RecursionError
    except ValueError as bad:
        text = str(bad)
        return Rejected(TOO_DEEP if "recursion limit" in text else NOT_JSON, (("/", _clip(f"not valid JSON: {text}")),))
    if not isinstance(document, dict):
        return Rejected(NOT_AN_OBJECT, (("/", f"a JSON {_json_kind(document)}, not an object"),))
    errors = _errors_of(exc)
    unknown = any(field == "type" and "unknown" in reason for field, reason in errors)
    return Rejected(UNKNOWN_TYPE if unknown else INVALID, errors)


def _errors_of(exc: Exception) -> tuple[tuple[str, str], ...]:
    if isinstance(exc, EventValidationError):
        pairs = [(e.field, e.reason) for e in exc.errors]
    elif isinstance(exc, ValidationError):
        pairs = [("/".join(str(p) for p in err["loc"]) or "/", err["msg"]) for err in exc.errors(include_input=False)]
    else:  # a decoder bug: its type only (an exception's text may quote the payload)
        pairs = [("/", f"could not be decoded ({type(exc).__name__})")]
    return tuple((_clip(field), _clip(reason)) for field, reason in pairs[:MAX_ERRORS]) or (("/", "invalid"),)


def _json_kind(document: Any) -> str:
    if isinstance(document, list):
        return "array"
    if isinstance(document, str):
        return "string"
    if document is None:
        return "null"
    if isinstance(document, bool):
        return "boolean"
    return "number"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


# ------------------------------------------------------------------ the shell


async def send_dead_letter(dlq_topic: Any, message: Any, rejected: Rejected, service: DeadLetterService) -> None:
    """Write the letter for a Faust ``message`` and wait for the broker's ack (so the
    record's offset is committed only once its letter is safe), count it and log it
    (where and why; never the content)."""
    from beacon.runtime.logs import get_logger
    from beacon.runtime.metrics import DEAD_LETTERS

    letter = dead_letter(
        message.value,
        message.key,
        rejected.errors,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        now=datetime.now(UTC),
        service=service,
        reason_class=rejected.reason,
    )
    key = message.key[: MAX_KEY_CHARS * 4] if message.key is not None else None
    await (await dlq_topic.send(key=key, value=letter.to_json(), headers=letter.headers, force=True))
    DEAD_LETTERS.labels(topic=message.topic, reason=rejected.reason).inc()
    get_logger(service).warning(
        "record dead-lettered",
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        reason=rejected.reason,
    )
