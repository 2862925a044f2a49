"""What the notifier's HTTP endpoints receive, parsed: request bytes -> a typed request or a
refusal naming the field and the reason. Pure (no I/O), so no input can make a handler fail."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# The test clock moves at most this far per call (a typo of 1e12 seconds would overflow it).
MAX_CLOCK_STEP = timedelta(days=3650)


@dataclass(frozen=True)
class Refusal:
    """A 4xx answer: which field, and why."""

    status: int
    field: str
    reason: str

    def body(self) -> dict[str, str]:
        return {"error": self.reason, "field": self.field}


class ApiAckRequest(BaseModel):
    """Body of ``POST /v1/alerts/{id}/ack`` (every field optional; an empty body acknowledges)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    action: Literal["acknowledge", "escalate", "close"] = "acknowledge"
    by: str = Field(default="api", min_length=1, max_length=64, description="Who acts (a staff id).")
    command_id: str | None = Field(default=None, min_length=1, max_length=128, description="Idempotency key.")


def _json_object(body: bytes) -> dict[str, Any] | Refusal:
    if not body.strip():
        return {}
    try:
        decoded = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return Refusal(400, "/", "the body must be a JSON object")
    if not isinstance(decoded, dict):
        return Refusal(400, "/", f"the body must be a JSON object, not {type(decoded).__name__}")
    return decoded


def parse_api_ack(body: bytes) -> ApiAckRequest | Refusal:
    decoded = _json_object(body)
    if isinstance(decoded, Refusal):
        return decoded
    try:
        return ApiAckRequest.model_validate(decoded)
    except ValidationError as exc:
        first = exc.errors()[0]
        return Refusal(422, "/".join(str(p) for p in first["loc"]) or "/", first["msg"])


def parse_clock_advance(body: bytes) -> timedelta | Refusal:
    """Body of ``POST /test/clock/advance``: ``{"seconds": <number >= 0>}``."""
    decoded = _json_object(body)
    if isinstance(decoded, Refusal):
        return decoded
    if set(decoded) != {"seconds"}:
        return Refusal(422, "seconds", 'send {"seconds": <a number of seconds, at least 0>} and nothing else')
    seconds = decoded["seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return Refusal(422, "seconds", "must be a number")
    if seconds < 0:
        return Refusal(422, "seconds", "the clock only moves forward")
    if seconds > MAX_CLOCK_STEP.total_seconds():
        return Refusal(422, "seconds", f"at most {int(MAX_CLOCK_STEP.total_seconds())} per call")
    return timedelta(seconds=seconds)
