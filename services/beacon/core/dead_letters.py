"""Dead-letter records on the ``beacon.events.dlq`` topic: one format, whoever refused.

Every worker that cannot process a record (the validator on ``beacon.events.raw``, the
correlator on ``beacon.events``, the notifier on ``beacon.alerts``, ``beacon.acks`` and its
inputs) writes the same record to ``beacon.events.dlq``, whatever topic it came from:
where the record was (topic, partition, offset), a bounded reason class and every field
reason, its size and SHA-256, and a copy of at most ``COPY_BYTES`` of it (base64). A letter
therefore always fits under the producer's 1 MiB limit, and the original can still be
found by its offset. ``dead_letter`` never raises, whatever the bytes are.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import pydantic_core
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from beacon.core.records import TopicRecord

DeadLetterService = Literal["validator", "correlator", "notifier"]
REASON_HEADER = "beacon-dlq-reason"
SERVICE_HEADER = "beacon-dlq-service"
_HEADER_LIMIT = 1000  # bytes of the reason header: a Kafka header is not a place for a long list

COPY_BYTES = 64 * 1024  # of the original, kept in the letter (base64: ~87 KB)
MAX_RECORD_BYTES = 1_048_576  # larger values are not parsed for their source
MAX_KEY_CHARS = 256
MAX_REASONS = 20
MAX_REASON_CHARS = 300


class DeadLetterReason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(description="JSON-pointer-like path of the failing field ('/' for the whole record).")
    reason: str = Field(description="Why it was refused.")


class DeadLetterRecord(TopicRecord):
    """A record Beacon could not accept, with everything needed to find, fix and replay it."""

    topic: str = Field(description="Topic the record was read from.")
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    key: str | None = Field(
        description=f"The refused record's key (UTF-8, invalid bytes replaced, at most {MAX_KEY_CHARS} characters), "
        "or null."
    )
    source: str = Field(max_length=255, description="The record's claimed CloudEvents source, or 'unknown'.")
    service: DeadLetterService = Field(description="Which service refused it.")
    reason_class: str = Field(
        default="invalid",
        description="Bounded class of the refusal (null_value, too_large, not_utf8, not_json, too_deep, "
        "not_an_object, unknown_type, invalid, key_mismatch, refused): the label of beacon_dead_letters_total.",
    )
    reason: tuple[DeadLetterReason, ...] = Field(
        min_length=1, max_length=MAX_REASONS, description="Why it was refused, field by field."
    )
    original: str | None = Field(
        description=f"The refused record's value, base64-encoded: its first {COPY_BYTES} bytes (see "
        "original_truncated), or null for a record with no value."
    )
    original_size: int = Field(ge=0, description="Size of the refused value in bytes (0 for no value).")
    original_sha256: str | None = Field(description="SHA-256 of the whole refused value (hex), or null.")
    original_truncated: bool = Field(description="True when `original` holds only the first bytes of the value.")
    received_at: AwareDatetime = Field(description="When the refusing service read it.")

    def to_json(self) -> bytes:
        # Unlike other records, missing values are written as null: readers rely on the fields.
        return self.model_dump_json().encode()

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers for tools that filter without parsing the value."""
        summary = "; ".join(f"{r.field}: {r.reason}" for r in self.reason)
        return [(REASON_HEADER, summary.encode()[:_HEADER_LIMIT]), (SERVICE_HEADER, self.service.encode())]


def claimed_source(value: bytes | None) -> str:
    """The record's claimed ``source`` if it is a JSON object that has one, else 'unknown'
    (never raises; pydantic-core's parser has a depth limit, so deep JSON costs nothing)."""
    if not value or len(value) > MAX_RECORD_BYTES:
        return "unknown"
    try:
        document = pydantic_core.from_json(value)
    except ValueError:
        return "unknown"
    source = document.get("source") if isinstance(document, dict) else None
    return source[:255] if isinstance(source, str) and source else "unknown"


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON_CHARS else text[: MAX_REASON_CHARS - 1] + "…"


def dead_letter(
    value: bytes | None,
    key: bytes | None,
    reasons: Iterable[tuple[str, str]],
    *,
    topic: str,
    partition: int,
    offset: int,
    now: datetime,
    service: DeadLetterService,
    reason_class: str = "invalid",
) -> DeadLetterRecord:
    """The dead-letter record for one refused Kafka record; ``reasons`` are (field, reason)."""
    original = bytes(value) if value is not None else None
    clipped = tuple(DeadLetterReason(field=_clip(f), reason=_clip(r)) for f, r in list(reasons)[:MAX_REASONS]) or (
        DeadLetterReason(field="/", reason="refused"),
    )
    return DeadLetterRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key.decode("utf-8", errors="replace")[:MAX_KEY_CHARS] if key is not None else None,
        source=claimed_source(original),
        service=service,
        reason_class=reason_class,
        reason=clipped,
        original=base64.b64encode(original[:COPY_BYTES]).decode() if original is not None else None,
        original_size=len(original) if original is not None else 0,
        original_sha256=hashlib.sha256(original).hexdigest() if original is not None else None,
        original_truncated=original is not None and len(original) > COPY_BYTES,
        received_at=now,
    )
