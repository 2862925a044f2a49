"""The safety net under ``route_alerts``: an alert on ``beacon.alerts`` that no escalation
shows within a grace period is routed again.

Why: the kill test caught the notifier's consumer group committing past one alert it never
routed, across a rebalance (README, "Replica model"); nobody was paged for it, and nothing
would ever have read it again. Whatever Faust's mechanism, the fix must not depend on it:
every replica also reads ``beacon.alerts`` on its own (no consumer group, from
``notifier_sweep_lookback_s`` ago) and checks each alert against its ``AlertDirectory``
(the escalations changelog, every partition). An alert raised whose escalation never
appeared, or resolved while its escalation still runs, is routed again once
``notifier_sweep_grace_s`` has passed since Kafka got it, and again after twice as long,
and so on, until the directory shows it, or ``GIVE_UP_AFTER`` times (an alert the owner
refuses to hold, e.g. one emitted longer ago than the resolved retention, is logged as never
taken in and forgotten, so memory stays bounded). Routing is idempotent (a raise the owner already
holds changes nothing), so a false alarm costs one input, never a page.

Only ``beacon.alerts``: a backlog's alerts (``beacon.alerts.backlog``) may wait a long time
behind live work on purpose (live_first.py), and the import that raised them can be run
again. Memory: the alerts not yet confirmed, not every alert read.

Pure data structure here; the consumer and the timer live in ``agents``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from beacon.core.alerts import AlertRecord
from beacon.notifier.escalation import EscalationState


@dataclass
class _Unconfirmed:
    alert: AlertRecord
    due_at: float  # epoch seconds: when to check (and route again) next
    wait_s: float  # the next wait after a re-route (doubles)
    routed_again: int = 0


def confirmed(alert: AlertRecord, state: EscalationState | None) -> bool:
    """The escalation shows the alert record: raised (any state at all), or resolved."""
    if state is None:
        return False
    return alert.status == "raised" or state.status == "resolved"


GIVE_UP_AFTER = 5  # routings again: 1 + 2 + 4 + 8 + 16 grace periods (about an hour at 2 minutes)


class Sweep:
    def __init__(self, grace_s: float):
        self.grace_s = grace_s
        self._pending: dict[tuple[str, str], _Unconfirmed] = {}
        self.given_up: list[AlertRecord] = []  # since the last ``due``: for the shell to log

    def __len__(self) -> int:
        return len(self._pending)

    def saw(self, alert: AlertRecord, written_at: float) -> None:
        """An alert record read from the topic, written to Kafka at ``written_at`` (epoch s)."""
        key = (alert.alert_id, alert.status)
        if key not in self._pending:
            self._pending[key] = _Unconfirmed(alert, written_at + self.grace_s, self.grace_s)

    def due(self, now: float, state_of: Callable[[str], EscalationState | None]) -> list[AlertRecord]:
        """Forget the alerts the directory confirms; return those past their time that it does
        not (to route again), each checked again after twice its last wait."""
        again, self.given_up = [], []
        for key, entry in list(self._pending.items()):
            if confirmed(entry.alert, state_of(entry.alert.alert_id)):
                del self._pending[key]
            elif entry.due_at <= now and entry.routed_again >= GIVE_UP_AFTER:
                del self._pending[key]
                self.given_up.append(entry.alert)
            elif entry.due_at <= now:
                again.append(entry.alert)
                entry.routed_again += 1
                entry.wait_s *= 2
                entry.due_at = now + entry.wait_s
        return again
