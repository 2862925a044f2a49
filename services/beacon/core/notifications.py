"""Notification ledger records on the ``beacon.notifications`` topic (compacted).

The notifier writes one record each time a notification changes status, keyed by
``<alert id>:<notice key>``, so after compaction the topic holds the latest status of
every notification ever planned. People appear by their on-call id and channel only:
never a phone number, an address or the message text.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from beacon.core.records import TopicRecord

NotificationStatus = Literal["pending", "sent", "delivered", "failed", "cancelled"]


class NotificationRecord(TopicRecord):
    """The latest status of one notification, keyed by '<alert id>:<notice key>'."""

    alert_id: str
    key: str = Field(description="'<step>:<person>:<channel>': unique within the alert.")
    kind: Literal["page", "resolution"] = Field(description="A page for a step, or the 'child found' message.")
    step: int = Field(ge=0, description="Escalation step (0 is the resolution message).")
    person: str = Field(description="On-call id of the person notified.")
    channel: Literal["sms", "email"]
    status: NotificationStatus = Field(description="pending = planned, not yet handed to the provider.")
    at: AwareDatetime = Field(description="When the notifier recorded this status.")

    @property
    def record_key(self) -> bytes:
        """The Kafka key: one compacted slot per notification."""
        return f"{self.alert_id}:{self.key}".encode()
