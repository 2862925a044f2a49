"""What leaves for each contact now, as a pure planning function.

Pending notifications are grouped by contact (channel, address), and within a contact
by group: the pages of one episode (Alertmanager's grouping). A contact's message
carries whole groups, so the alerts of one episode raised together reach a person as
one page:

- group wait: a group leaves once its oldest notification has waited ``group_wait_s``
  (the policy's ``group_seconds``), so alerts raised together travel together;
- rate limit: a contact gets at most one message per ``min_interval`` (GoAlert: one a
  minute per contact method), except that a critical page never waits for it, nor does
  a page for an episode the contact was already paged about at a lower severity (the
  case got worse: ``paged_rank`` remembers the highest severity each group reached);
- bundling: what piles up meanwhile leaves as one message of up to ``max_bundle``
  pages, most severe first (then oldest), saying how many more wait. Nothing is
  dropped: what is not listed stays pending for the next message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

CRITICAL_RANK = 3  # Severity.critical.rank


@dataclass(frozen=True)
class PendingRef:
    alert_id: str
    key: str
    channel: str
    to: str
    created_at: datetime
    severity_rank: int = 0  # Severity.rank of the alert
    group: str = ""  # notifications of one group leave as one page; "" groups by alert
    group_wait_s: float = 0.0

    @property
    def contact(self) -> tuple[str, str]:
        return (self.channel, self.to)

    @property
    def group_key(self) -> str:
        return self.group or self.alert_id


@dataclass(frozen=True)
class Page:
    """One group's notifications, most severe first: rendered as one page."""

    refs: tuple[PendingRef, ...]

    @property
    def severity_rank(self) -> int:
        return self.refs[0].severity_rank

    @property
    def ready_at(self) -> datetime:
        oldest = min(r.created_at for r in self.refs)
        return oldest + timedelta(seconds=max(r.group_wait_s for r in self.refs))

    def order(self) -> tuple[int, datetime, str]:
        return (-self.severity_rank, min(r.created_at for r in self.refs), self.refs[0].alert_id)


@dataclass(frozen=True)
class Message:
    """One message to one contact: its pages in listing order, and how many more wait."""

    pages: tuple[Page, ...]
    more: int = 0
    past_the_limit: bool = False  # critical pages sent inside the contact's minute: it is not restarted

    @property
    def refs(self) -> list[PendingRef]:
        return [r for page in self.pages for r in page.refs]


@dataclass(frozen=True)
class Plan:
    send_now: list[Message]
    wait_until: dict[tuple[str, str], datetime]  # contacts with something still to send, and when


def _urgent(page: Page, rank_already_paged: int | None) -> bool:
    """Leaves inside the contact's minute: critical, or worse than this contact was
    already told about the same episode."""
    worse = rank_already_paged is not None and page.severity_rank > rank_already_paged
    return page.severity_rank >= CRITICAL_RANK or worse


def pages_of(refs: list[PendingRef]) -> list[Page]:
    groups: dict[str, list[PendingRef]] = {}
    for ref in refs:
        groups.setdefault(ref.group_key, []).append(ref)
    pages = [
        Page(tuple(sorted(g, key=lambda r: (-r.severity_rank, r.created_at, r.alert_id, r.key))))
        for g in groups.values()
    ]
    return sorted(pages, key=Page.order)


def plan_sends(
    pending: list[PendingRef],
    last_sent: dict[tuple[str, str], datetime],
    now: datetime,
    min_interval: timedelta,
    max_bundle: int,
    paged_rank: dict[tuple[tuple[str, str], str], int] | None = None,
) -> Plan:
    paged_rank = paged_rank or {}
    by_contact: dict[tuple[str, str], list[PendingRef]] = {}
    for ref in pending:
        by_contact.setdefault(ref.contact, []).append(ref)
    send_now: list[Message] = []
    wait_until: dict[tuple[str, str], datetime] = {}
    for contact, refs in by_contact.items():
        pages = pages_of(refs)
        ready = [p for p in pages if p.ready_at <= now]
        previous = last_sent.get(contact)
        limited_until = previous + min_interval if previous is not None and now < previous + min_interval else None
        if limited_until is not None:
            ready = [p for p in ready if _urgent(p, paged_rank.get((contact, p.refs[0].group_key)))]
        listed = ready[:max_bundle]
        if listed:
            send_now.append(
                Message(pages=tuple(listed), more=len(pages) - len(listed), past_the_limit=limited_until is not None)
            )
        waiting = [p for p in pages if p not in listed]
        if waiting:
            free_at = limited_until or (now + min_interval if listed else now)
            wait_until[contact] = max(min(p.ready_at for p in waiting), free_at)
    return Plan(send_now=send_now, wait_until=wait_until)
