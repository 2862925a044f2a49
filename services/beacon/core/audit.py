"""Audit records on the ``beacon.audit`` topic: who was told what, when, by which
channel, what the carrier said, and who acknowledged. Free of personal data:
people appear by their on-call id, children by their pseudonymous reference."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime

from beacon.core.records import TopicRecord

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


class AuditRecord(TopicRecord):
    """One fact of an alert's notification history, keyed by child reference."""

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
