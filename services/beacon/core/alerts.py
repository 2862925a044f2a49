"""Alert records: what the correlator raises and resolves, and the notifier pages on.

The alert id is a pure function of (child, episode, rule, step), so a replayed
event or a restarted worker re-derives the same id and downstream sinks drop the
duplicate. Records never carry a name, address or CSE detail: ``reason`` is
written for an SMS on a locked screen.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import Enum
from typing import Literal

import msgspec
from pydantic import AwareDatetime, Field

from beacon.core.records import TopicRecord


class Severity(str, Enum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.low: 0, Severity.medium: 1, Severity.high: 2, Severity.critical: 3}


def alert_id(child_ref: str, episode_ref: str | None, rule: str, step: str) -> str:
    """Deterministic, short, opaque id: safe to show in an SMS, reveals nothing."""
    digest = hashlib.sha256(f"{child_ref}|{episode_ref or '-'}|{rule}|{step}".encode()).hexdigest()
    return f"A{digest[:15]}"


class AlertRecord(TopicRecord):
    """An alert raised or resolved by the correlator, keyed by child reference."""

    # The correlator writes these as ``Alert`` (below): the same fields, encoded without validation.

    alert_id: str
    status: Literal["raised", "resolved"]
    child_ref: str
    episode_ref: str | None = None
    rule: str = Field(description="Which rule fired, e.g. triage, repeat_episodes, cse_missing.")
    step: str = Field(description="Which step of the rule, e.g. the ladder rung '24h'.")
    severity: Severity
    reason: str = Field(max_length=300, description="Human-readable, free of personal data.")
    council: str | None = Field(default=None, description="Placing council: routes to its on-call teams.")
    notify: str | None = Field(default=None, description="Role the policy says to page, e.g. team_manager.")
    occurred_at: AwareDatetime = Field(description="Event time at which the rule fired.")
    emitted_at: AwareDatetime = Field(description="Processing time at which the record was written.")
    trigger_event_ids: tuple[str, ...] = ()
    closed_by: str | None = Field(
        default=None,
        description="On a record resolved by a found or a correction: the organisation that sent it "
        "(from the event's authenticated source).",
    )
    from_backlog: bool | None = Field(
        default=None,
        description="True on an alert the correlator raised while it replayed a backlog (a history "
        "import, or an events record read over 60 s after Kafka got it: catching up after downtime) "
        "rather than from a live event or the wall clock; "
        "absent otherwise. The notifier holds such an alert before its first page, so an episode "
        "already over (its found right behind it in the backlog) pages nobody.",
    )

    @property
    def key(self) -> bytes:
        return self.child_ref.encode()


class Alert(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """An alert record as the correlator writes it: built from facts that were validated
    when they arrived, so not validated again (a worker emits thousands a second and
    pydantic's validation and encoding were a tenth of its time). Same fields, order and
    JSON as ``AlertRecord`` (tests/core/test_alerts.py keeps them so); readers parse the
    topic with ``AlertRecord``."""

    alert_id: str
    status: Literal["raised", "resolved"]
    child_ref: str
    episode_ref: str | None = None
    rule: str
    step: str
    severity: Severity
    reason: str
    council: str | None = None
    notify: str | None = None
    occurred_at: datetime
    emitted_at: datetime
    trigger_event_ids: tuple[str, ...]
    closed_by: str | None = None
    from_backlog: bool | None = None

    @property
    def key(self) -> bytes:
        return self.child_ref.encode()

    def to_json(self) -> bytes:
        """As ``AlertRecord.to_json``: fields in order, ``None`` left out."""
        return _ALERT_ENCODER.encode(self)


_ALERT_ENCODER = msgspec.json.Encoder()
