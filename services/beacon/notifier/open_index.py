"""The owner's index of its own partitions: what the escalation timer, the dispatcher and
the expiry of resolved alerts look at, so their cost follows what is open, never what is
stored (issue 14).

- ``pending``: notifications still to be sent (the dispatcher's input);
- ``due``: active alerts with a next step, and when (the timer pass reads only these);
- ``unacknowledged``: active alerts already paged, by (severity, exhausted) (the gauge);
- an expiry heap of resolved alerts, by when their retention ends (the timer pops only
  those whose time has come).

Maintained incrementally by the agent after every state change (``update``, ``forget``) and
rebuilt from the table only when this replica's partitions change (``rebuild``). Pure data
structure: no Kafka, no clock, tested and benchmarked on its own (bench/bench_notifier_scale.py).
In-memory bookkeeping that outlives an alert (``paged_rank``, ``first_page_seen``) is bounded."""

from __future__ import annotations

import heapq
from collections import OrderedDict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from beacon.notifier.dispatch import PendingRef
from beacon.notifier.escalation import DEFAULT_RETENTION, EscalationState, Notice, expires_at

K = TypeVar("K")
V = TypeVar("V")
Ref = tuple[str, str]  # (alert id, notice key)

# Enough for every contact's episodes of the last days: older entries only cost a page
# "worse than before" its urgency, or a duplicate latency sample.
BOUNDED_ENTRIES = 100_000


class BoundedDict(OrderedDict[K, V], Generic[K, V]):
    """A dict that forgets its least recently written entries beyond ``limit``."""

    def __init__(self, limit: int = BOUNDED_ENTRIES) -> None:
        super().__init__()
        self.limit = limit

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


def pending_ref(state: EscalationState, key: str, notice: Notice) -> PendingRef:
    """What the dispatcher plans with: contact, age, severity and the page group
    (an episode's pages, or its resolutions)."""
    return PendingRef(
        state.alert_id,
        key,
        notice.channel,
        notice.to,
        notice.created_at,
        state.severity.rank,
        f"{notice.kind}|{state.group}" if state.group else "",
        state.chain.group_s if state.chain else 0.0,
    )


class OpenIndex:
    def __init__(self, retention: timedelta = DEFAULT_RETENTION, bounded_entries: int = BOUNDED_ENTRIES) -> None:
        self.retention = retention
        self.current = False  # describes this replica's partitions as assigned now (see runtime.py)
        self.pending: dict[Ref, PendingRef] = {}
        self.due: dict[str, datetime] = {}
        self.unacknowledged: dict[str, tuple[str, bool]] = {}
        self._expiry_at: dict[str, datetime] = {}
        self._expiry_heap: list[tuple[datetime, str]] = []
        self.in_flight: dict[Ref, float] = {}  # ref -> loop time the send started
        self.tick_sent: dict[str, float] = {}
        self.last_sent: BoundedDict[tuple[str, str], datetime] = BoundedDict(bounded_entries)
        self.paged_rank: BoundedDict[tuple[tuple[str, str], str], int] = BoundedDict(bounded_entries)
        self.first_page_seen: BoundedDict[str, None] = BoundedDict(bounded_entries)

    # ---------------------------------------------------------------- maintenance
    def update(self, state: EscalationState) -> None:
        """Account for ``state``, the alert's new state: O(its notices)."""
        alert_id = state.alert_id
        for key, notice in state.notices.items():
            ref = (alert_id, key)
            if notice.status == "pending":
                self.pending[ref] = pending_ref(state, key, notice)
            else:
                self.pending.pop(ref, None)
                self.in_flight.pop(ref, None)
        if state.status == "active" and state.next_due is not None:
            self.due[alert_id] = state.next_due
        else:
            self.due.pop(alert_id, None)
            self.tick_sent.pop(alert_id, None)
        if state.status == "active" and state.first_paged_at is not None:
            self.unacknowledged[alert_id] = (state.severity.value, state.exhausted)
        else:
            self.unacknowledged.pop(alert_id, None)
        at = expires_at(state, self.retention)
        if at is None:
            self._expiry_at.pop(alert_id, None)
        elif self._expiry_at.get(alert_id) != at:
            self._expiry_at[alert_id] = at
            heapq.heappush(self._expiry_heap, (at, alert_id))

    def forget(self, state: EscalationState) -> None:
        """The alert's state left the table (expired)."""
        alert_id = state.alert_id
        for key in state.notices:
            self.pending.pop((alert_id, key), None)
            self.in_flight.pop((alert_id, key), None)
        for table in (self.due, self.tick_sent, self.unacknowledged, self._expiry_at):
            table.pop(alert_id, None)  # type: ignore[attr-defined]

    def rebuild(self, states: Iterable[EscalationState]) -> None:
        """From the table, after this replica's partitions changed: O(stored states), once."""
        in_flight = self.in_flight
        self.pending, self.due, self.unacknowledged, self.tick_sent = {}, {}, {}, {}
        self._expiry_at, self._expiry_heap = {}, []
        for state in states:
            self.update(state)
        self.in_flight = {ref: t for ref, t in in_flight.items() if ref in self.pending}

    # ---------------------------------------------------------------- queries
    def due_alerts(self, now: datetime, loop_now: float, resend_after_s: float) -> list[str]:
        """The timer pass: active alerts whose next step is due and that were not ticked
        in the last ``resend_after_s`` (marked as ticked now). O(active alerts)."""
        found = []
        for alert_id, due in self.due.items():
            if due <= now and loop_now - self.tick_sent.get(alert_id, -1e18) >= resend_after_s:
                self.tick_sent[alert_id] = loop_now
                found.append(alert_id)
        return found

    def expired(self, now: datetime) -> list[str]:
        """Resolved alerts whose retention is over (each returned once). O(expired · log n)."""
        found = []
        while self._expiry_heap and self._expiry_heap[0][0] <= now:
            at, alert_id = heapq.heappop(self._expiry_heap)
            if self._expiry_at.get(alert_id) == at:
                found.append(alert_id)
        return found

    def ready(self) -> list[PendingRef]:
        """Pending notifications not being sent right now."""
        return [ref for key, ref in self.pending.items() if key not in self.in_flight]

    def drop_stale_sends(self, loop_now: float, stale_after_s: float) -> None:
        """A send whose outcome never came back is tried again rather than left stalled."""
        self.in_flight = {
            ref: started
            for ref, started in self.in_flight.items()
            if ref in self.pending and loop_now - started < stale_after_s
        }

    def unacknowledged_counts(self) -> dict[tuple[str, bool], int]:
        counts: dict[tuple[str, bool], int] = {}
        for label in self.unacknowledged.values():
            counts[label] = counts.get(label, 0) + 1
        return counts
