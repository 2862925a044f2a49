"""Audit records on the ``beacon.audit`` topic: who was told what, when, by which
channel, what the carrier said, and who acknowledged. Free of personal data:
people appear by their on-call id, children by their pseudonymous reference."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict

AuditKind = Literal[
    "alert_raised",
    "alert_resolved",
    "escalation_step",
    "notification_sent",
    "notification_failed",
    "delivery_status",
    "fallback",
    "acknowledged",
    "closed",
    "resolution_sent",
]


class AuditRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    audit_id: str  # deterministic where the fact is (alert, step, person, channel): replays dedup
    kind: AuditKind
    at: AwareDatetime
    alert_id: str
    child_ref: str
    person: str | None = None
    channel: Literal["sms", "email", "outbox"] | None = None
    step: int | None = None
    detail: str = ""  # short machine-readable detail (status, error class); never message text

    @property
    def key(self) -> bytes:
        return self.child_ref.encode()

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_json(cls, payload: bytes | str) -> "AuditRecord":
        return cls.model_validate_json(payload)
