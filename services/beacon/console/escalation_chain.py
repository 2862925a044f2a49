"""The escalation chain of an alert as the Alert page shows it: who each step pages, which
steps the notifier has reached (its ``escalation_step`` audit records), and who is next and
when. The chain is resolved by the notifier's own function (notifier/escalation.py) from the
on-call file as it stood when the alert was raised, as the notifier resolves it; the
notifier's timer decides, this page only tells. Contact addresses are never shown. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from beacon.console.projection import AlertView
from beacon.notifier.escalation import resolve_chain
from beacon.notifier.oncall import OnCallConfig


@dataclass(frozen=True)
class StepView:
    number: int
    people: tuple[str, ...]
    channels: tuple[str, ...]
    wait_minutes: float  # before the next step, if nobody acknowledges
    reached_at: datetime | None


@dataclass(frozen=True)
class ChainView:
    policy: str
    team: str
    steps: tuple[StepView, ...]
    next_step: StepView | None
    next_at: datetime | None
    stopped: str | None  # why nobody more will be paged: acknowledged, resolved, closed, chain exhausted


def chain_view(config: OnCallConfig, alert: AlertView) -> ChainView | None:
    record = alert.raised_record
    if record is None or alert.raised_at is None:
        return None
    try:
        chain = resolve_chain(config, record, alert.raised_at)
    except (KeyError, AssertionError):  # the on-call file changed since: a role or person gone
        return None
    reached = {number: at for at, number in alert.escalation_steps}
    steps = tuple(
        StepView(
            number=n,
            people=tuple(t.person for t in chain.step(n).targets),
            channels=tuple(dict.fromkeys(c.channel for t in chain.step(n).targets for c in t.contacts)),
            wait_minutes=chain.step(n).delay_s / 60,
            reached_at=reached.get(n),
        )
        for n in range(1, chain.total_steps + 1)
    )
    last = max((n for n in reached if n <= chain.total_steps), default=0)
    stopped = {"acknowledged": "acknowledged", "resolved": "resolved", "closed": "closed"}.get(alert.status)
    if stopped is None and last >= chain.total_steps:
        stopped = "chain exhausted"
    next_step = steps[last] if stopped is None and last < len(steps) else None
    next_at = None
    if next_step is not None:
        since, wait = (reached[last], chain.step(last).delay_s) if last else (alert.raised_at, chain.hold_s)
        try:
            next_at = since + timedelta(seconds=wait)
        except OverflowError:  # a record dated in year 9999 produced straight to a topic
            next_at = None
    return ChainView(chain.policy, chain.team, steps, next_step, next_at, stopped)
