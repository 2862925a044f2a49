"""Dead-letter records on the ``beacon.events.dlq`` topic: one format, whoever refused.

The validator (records on ``beacon.events.raw`` that fail the contract) and the
correlator (records on ``beacon.events`` it cannot read) write the same record: the
original bytes, where they were read, and every reason, so one reader can replay or
inspect the whole topic. ``dead_letter`` never raises, whatever the bytes are.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from beacon.core.records import TopicRecord

DeadLetterService = Literal["validator", "correlator"]
REASON_HEADER = "beacon-dlq-reason"
SERVICE_HEADER = "beacon-dlq-service"
_HEADER_LIMIT = 1000  # bytes of the reason header: a Kafka header is not a place for a long list


class DeadLetterReason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    field: str = Field(description="JSON-pointer-like path of the failing field ('/' for the whole record).")
    reason: str = Field(description="Why it was refused.")


class DeadLetterRecord(TopicRecord):
    """A record Beacon could not accept, with everything needed to find, fix and replay it."""

    original: str = Field(description="The refused record's value, base64-encoded, byte for byte.")
    key: str | None = Field(description="The refused record's key (UTF-8, invalid bytes replaced), or null.")
    source: str = Field(max_length=255, description="The record's claimed CloudEvents source, or 'unknown'.")
    reason: tuple[DeadLetterReason, ...] = Field(min_length=1, description="Every reason it was refused.")
    topic: str = Field(description="Topic the record was read from.")
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    received_at: AwareDatetime = Field(description="When the refusing service read it.")
    service: DeadLetterService = Field(description="Which service refused it.")

    def to_json(self) -> bytes:
        # Unlike other records, a missing key is written as null: readers rely on the field.
        return self.model_dump_json().encode()

    @property
    def headers(self) -> list[tuple[str, bytes]]:
        """Kafka headers for tools that filter without parsing the value."""
        summary = "; ".join(f"{r.field}: {r.reason}" for r in self.reason)
        return [(REASON_HEADER, summary.encode()[:_HEADER_LIMIT]), (SERVICE_HEADER, self.service.encode())]


def claimed_source(value: bytes) -> str:
    """The record's claimed ``source`` if it has one, else 'unknown' (never raises)."""
    try:
        decoded = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return "unknown"
    source = decoded.get("source") if isinstance(decoded, dict) else None
    return source[:255] if isinstance(source, str) and source else "unknown"


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
) -> DeadLetterRecord:
    """The dead-letter record for one refused Kafka record; ``reasons`` are (field, reason)."""
    original = value or b""
    return DeadLetterRecord(
        original=base64.b64encode(original).decode(),
        key=key.decode("utf-8", errors="replace") if key is not None else None,
        source=claimed_source(original),
        reason=tuple(DeadLetterReason(field=f, reason=r) for f, r in reasons)
        or (DeadLetterReason(field="/", reason="refused"),),
        topic=topic,
        partition=partition,
        offset=offset,
        received_at=now,
        service=service,
    )
