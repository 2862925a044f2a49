"""Audit records on the ``beacon.audit`` topic: who was told what, when, by which
channel, what the carrier said, and who acknowledged; and, from the console, who looked
at which child's timeline or alert and who asked for what (a GDPR question councils must
answer). Free of personal data: people appear by their on-call id or console user name,
children by their pseudonymous reference."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import AwareDatetime, model_validator

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
    # written by the console (person: the console user; detail: page, live, or the action asked for)
    "timeline_viewed",
    "alert_viewed",
    "action_requested",
]
ConsoleAuditKind = Literal["timeline_viewed", "alert_viewed", "action_requested"]
# Who looked at what: not part of an alert's notification history, so the console's view skips them.
CONSOLE_AUDIT_KINDS = frozenset(get_args(ConsoleAuditKind))


class AuditRecord(TopicRecord):
    """One fact of an alert's notification history, or of console access, keyed by child reference."""

    audit_id: str  # deterministic where the fact is (alert, step, person, channel): replays dedup
    kind: AuditKind
    at: AwareDatetime
    alert_id: str | None = None  # every notifier kind names its alert; a timeline view names none
    child_ref: str
    person: str | None = None
    channel: Literal["sms", "email", "outbox"] | None = None
    step: int | None = None
    detail: str = ""  # short machine-readable detail (status, error class); never message text

    @property
    def key(self) -> bytes:
        return self.child_ref.encode()

    @model_validator(mode="after")
    def _alert_named(self) -> AuditRecord:
        if self.alert_id is None and self.kind not in CONSOLE_AUDIT_KINDS:
            raise ValueError(f"a {self.kind} record names its alert_id")
        return self
