"""Pure decisions of the ingest path: request body -> events or a problem, rate limits.

No I/O here: the HTTP handler, the validator agent and the import tool call these
functions and only move data. Every refusal is an RFC 9457 problem listing each
failing field (and, in a batch, the item's index).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from beacon.core.events import EVENT_TYPES, CloudEvent, EventValidationError, FieldError, parse_event
from beacon.core.rate_limit import Bucket, retry_after_header, take_tokens
from beacon.ingest.references import DEFAULT_ID_PATTERN, DEFAULT_REFERENCE_PATTERN, pseudonymise, reference_errors

__all__ = ["Bucket", "retry_after_header", "take_tokens"]  # re-exported: the ingest's rate limit

PROBLEM_BASE = "https://beacon.example/problems/"

SINGLE_TYPES = ("application/cloudevents+json",)
BATCH_TYPES = ("application/cloudevents-batch+json",)
JSON_TYPES = ("application/json",)
ACCEPTED_CONTENT_TYPES = SINGLE_TYPES + BATCH_TYPES + JSON_TYPES


@dataclass(frozen=True)
class ItemError:
    field: str
    reason: str
    index: int | None = None  # position in a batch; None for a single event

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "reason": self.reason}
        if self.index is not None:
            out["index"] = self.index
        return out


@dataclass(frozen=True)
class Problem:
    """An RFC 9457 problem: ``reason`` is a bounded class for metrics and the type URI."""

    status: int
    reason: str
    title: str
    detail: str
    errors: tuple[ItemError, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "type": PROBLEM_BASE + self.reason,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            out["errors"] = [e.as_dict() for e in self.errors]
        return out


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


# ------------------------------------------------------------------ body -> raw events


def decode_body(
    body: bytes, content_type: str | None, headers: Mapping[str, str], *, max_events: int, max_bytes: int
) -> tuple[list[Any], bool] | Problem:
    """The raw (undecoded-by-contract) events of a request and whether it was a batch.

    Structured mode: one JSON object (``application/cloudevents+json`` or
    ``application/json``). Batch: a JSON array (``application/cloudevents-batch+json``
    or ``application/json``). Binary mode: ``ce-*`` headers carry the envelope and
    the body is ``data`` (``application/json``).
    """
    mtype = media_type(content_type)
    if mtype not in ACCEPTED_CONTENT_TYPES:
        return Problem(
            415,
            "unsupported-media-type",
            "Unsupported Media Type",
            f"content type {mtype or '(none)'!r} is not accepted; send one of {', '.join(ACCEPTED_CONTENT_TYPES)}",
        )
    if len(body) > max_bytes:
        return too_large(f"the body is {len(body)} bytes; at most {max_bytes} are accepted")
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return Problem(400, "malformed-json", "Malformed JSON", f"the body is not valid JSON: {exc}")
    except RecursionError:
        return Problem(400, "malformed-json", "Malformed JSON", "the body nests JSON too deeply")
    binary = mtype in JSON_TYPES and "ce-specversion" in {k.lower() for k in headers}
    if binary:
        return [binary_mode_event(headers, decoded)], False
    if mtype in BATCH_TYPES and not isinstance(decoded, list):
        return Problem(400, "malformed-batch", "Malformed batch", "a batch must be a JSON array of events")
    if mtype in SINGLE_TYPES and not isinstance(decoded, dict):
        return Problem(400, "malformed-event", "Malformed event", "a structured-mode event must be a JSON object")
    if isinstance(decoded, list):
        if not decoded:
            return Problem(400, "malformed-batch", "Empty batch", "a batch must hold at least one event")
        if len(decoded) > max_events:
            return too_large(f"the batch holds {len(decoded)} events; at most {max_events} are accepted")
        return decoded, True
    return [decoded], False


def too_large(detail: str) -> Problem:
    return Problem(413, "too-large", "Content Too Large", detail)


def binary_mode_event(headers: Mapping[str, str], data: Any) -> dict[str, Any]:
    """CloudEvents HTTP binary mode: attributes from ``ce-*`` headers, ``data`` from the body."""
    event: dict[str, Any] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith("ce-") and len(lower) > 3:
            event[lower[3:]] = value
    event["datacontenttype"] = "application/json"
    event["data"] = data
    return event


# ------------------------------------------------------------------ contract + authorisation


@dataclass(frozen=True)
class Caller:
    """Who is sending: the key's source name and the event types its scope allows."""

    source_name: str
    scope: str
    allowed_types: frozenset[str]
    source_uri: str


@dataclass(frozen=True)
class ContractRules:
    """What a deployment adds to the published contract at every door (HTTP, validator, import).

    Every date-time of an event (``time`` and each one in ``data``) must lie between
    ``earliest`` and ``future_tolerance`` after the server clock: a report dated year 1 or
    9999 is a typing error at the source, and it would break every page and timer after it.
    """

    future_tolerance: timedelta
    earliest: datetime
    reference_pattern: re.Pattern[str] = re.compile(DEFAULT_REFERENCE_PATTERN)
    id_pattern: re.Pattern[str] = re.compile(DEFAULT_ID_PATTERN)
    pseudonym_key: bytes | None = None  # set: references are replaced by their keyed pseudonyms

    @classmethod
    def from_settings(cls, settings: Any) -> ContractRules:
        key = settings.ingest_pseudonym_key.get_secret_value()
        return cls(
            future_tolerance=timedelta(seconds=settings.ingest_future_tolerance_s),
            earliest=settings.ingest_earliest_event_time,
            reference_pattern=re.compile(settings.ingest_reference_pattern),
            id_pattern=re.compile(settings.ingest_id_pattern),
            pseudonym_key=key.encode() if key else None,
        )


def _timestamps(event: CloudEvent) -> list[tuple[str, datetime]]:
    found = [("time", event.time)]
    for name in type(event.data).model_fields:
        value = getattr(event.data, name)
        if isinstance(value, datetime):
            found.append((f"data/{name}", value))
    return found


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def date_window_errors(event: CloudEvent, now: datetime, rules: ContractRules) -> list[FieldError]:
    """Every date-time of the event outside [earliest, now + future tolerance]."""
    latest = now + rules.future_tolerance
    errors = []
    for field_name, moment in _timestamps(event):
        if moment < rules.earliest:
            errors.append(
                FieldError(
                    field=field_name,
                    reason=f"is {moment.isoformat()}, before the earliest accepted date-time {_rfc3339(rules.earliest)}",
                )
            )
        elif moment > latest:
            errors.append(
                FieldError(
                    field=field_name,
                    reason=f"is {moment.isoformat()}, more than "
                    f"{int(rules.future_tolerance.total_seconds())} s after the server time "
                    f"{_rfc3339(now)}",
                )
            )
    return errors


def contract_errors(raw: Any, now: datetime, rules: ContractRules) -> tuple[CloudEvent | None, list[FieldError]]:
    """Validate one raw event against the contract and the deployment's rules; the event
    returned carries Beacon's references (the pseudonyms, when a key is set)."""
    try:
        event = parse_event(raw)
    except EventValidationError as exc:
        return None, list(exc.errors)
    errors = date_window_errors(event, now, rules) + reference_errors(event, rules.reference_pattern, rules.id_pattern)
    if errors:
        return None, errors
    if rules.pseudonym_key is not None:
        event = pseudonymise(event, rules.pseudonym_key)
    return event, []


def authorisation_errors(event: CloudEvent, caller: Caller) -> list[FieldError]:
    errors = []
    if event.type not in caller.allowed_types:
        errors.append(
            FieldError(
                field="type",
                reason=f"{event.type!r} is not in the scope {caller.scope!r} "
                f"of this key (source {caller.source_name!r})",
            )
        )
    if event.source != caller.source_uri:
        errors.append(
            FieldError(
                field="source",
                reason=f"this key may only send events with source {caller.source_uri!r}, not {event.source!r}",
            )
        )
    return errors


def check_events(
    raws: list[Any], batch: bool, caller: Caller, now: datetime, rules: ContractRules
) -> list[CloudEvent] | Problem:
    """Every event valid and allowed, or one problem listing every failure.

    422 if any item breaks the contract, else 403 if any item is outside the key's
    scope or source. All-or-nothing: one bad item refuses the whole batch.
    """
    events: list[CloudEvent] = []
    invalid: list[ItemError] = []
    forbidden: list[ItemError] = []
    for index, raw in enumerate(raws):
        at = index if batch else None
        event, errors = contract_errors(raw, now, rules)
        if event is None:
            invalid.extend(ItemError(e.field, e.reason, at) for e in errors)
            continue
        denied = authorisation_errors(event, caller)
        if denied:
            forbidden.extend(ItemError(e.field, e.reason, at) for e in denied)
            continue
        events.append(event)
    if invalid:
        count = len({e.index for e in invalid})
        return Problem(
            422,
            "invalid-event",
            "Event breaks the contract",
            f"{count} event(s) failed validation; nothing was accepted" if batch else "the event failed validation",
            tuple(invalid + forbidden),
        )
    if forbidden:
        return Problem(
            403,
            "forbidden-event",
            "Event not allowed for this key",
            f"the key of source {caller.source_name!r} (scope {caller.scope!r}) may not send "
            "this; nothing was accepted",
            tuple(forbidden),
        )
    return events


def type_label(raw: Any) -> str:
    """A bounded metrics label: a known event type, or 'unknown'."""
    value = raw.get("type") if isinstance(raw, dict) else None
    return value if isinstance(value, str) and value in EVENT_TYPES else "unknown"


# ------------------------------------------------------------------ rate limit
# The token bucket is shared with the other HTTP services: beacon.core.rate_limit.
