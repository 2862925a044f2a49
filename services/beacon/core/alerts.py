"""Alert records: what the correlator raises and resolves, and the notifier pages on.

The alert id is a pure function of (child, episode, rule, step), so a replayed
event or a restarted worker re-derives the same id and downstream sinks drop the
duplicate. Records never carry a name, address or CSE detail: ``reason`` is
written for an SMS on a locked screen.
"""

from __future__ import annotations

import hashlib
from enum import Enum
from typing import Literal

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

    @property
    def key(self) -> bytes:
        return self.child_ref.encode()
