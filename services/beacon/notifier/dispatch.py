"""Per-contact rate limit and bundling, as a pure planning function.

Pending notifications are grouped by contact (channel, address). A contact gets at
most one message per ``min_interval`` (GoAlert: 1 a minute per contact method);
whatever piles up meanwhile leaves as one bundled message (up to ``max_bundle``
notifications, oldest first), so nobody is flooded and nothing is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class PendingRef:
    alert_id: str
    key: str
    channel: str
    to: str
    created_at: datetime

    @property
    def contact(self) -> tuple[str, str]:
        return (self.channel, self.to)


@dataclass(frozen=True)
class Plan:
    send_now: list[list[PendingRef]]  # each inner list is one message to one contact
    wait_until: dict[tuple[str, str], datetime]  # contacts held back by the rate limit


def plan_sends(
    pending: list[PendingRef],
    last_sent: dict[tuple[str, str], datetime],
    now: datetime,
    min_interval: timedelta,
    max_bundle: int,
) -> Plan:
    by_contact: dict[tuple[str, str], list[PendingRef]] = {}
    for ref in sorted(pending, key=lambda r: (r.created_at, r.alert_id, r.key)):
        by_contact.setdefault(ref.contact, []).append(ref)
    send_now: list[list[PendingRef]] = []
    wait_until: dict[tuple[str, str], datetime] = {}
    for contact, refs in by_contact.items():
        previous = last_sent.get(contact)
        if previous is not None and now < previous + min_interval:
            wait_until[contact] = previous + min_interval
            continue
        send_now.append(refs[:max_bundle])
    return Plan(send_now=send_now, wait_until=wait_until)
