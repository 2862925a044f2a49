"""Acknowledgement commands on the ``beacon.acks`` topic.

Every way a person responds (SMS reply, signed link, API call, web console) becomes
one of these records, keyed by alert id; the notifier is the only consumer that acts
on them, so an acknowledgement has exactly one effect however it arrived.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from beacon.core.records import TopicRecord

AckAction = Literal["acknowledge", "escalate", "close"]


class AckCommand(TopicRecord):
    """A person's response to an alert (acknowledge, escalate, close), keyed by alert id."""

    command_id: str = Field(min_length=1, max_length=128, description="Unique per command: dedup key.")
    alert_id: str
    action: AckAction
    by: str = Field(description="Person id from the on-call configuration, or an API/console user.")
    via: Literal["sms", "link", "api", "console"]
    at: AwareDatetime

    @property
    def key(self) -> bytes:
        return self.alert_id.encode()
