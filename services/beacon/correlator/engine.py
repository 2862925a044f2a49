"""The correlator's decisions: pure functions, no I/O, no Faust.

Three modules, one job each: ``state.py`` holds a child's merged facts and ``merge``,
which folds one event into them; ``rules.py`` says what each of the six rules derives
from the facts; this module runs them per event and per tick (only the rules an event can
change, skipping episodes at rest, remembering the next deadline), emits the alert
records and prunes what no rule can look at again. ``migration.py`` reads states
written by older versions.

``decide(state, event, now, policy)`` merges one event into a child's state and returns
the alert records to emit; ``tick(state, now, policy)`` fires time rules from the wall
clock. ``now`` is only the processing time written into ``emitted_at``: every decision
uses event time.

Order independence by construction
----------------------------------
Events are merged into time-stamped fact sets (see ``state.py``) and alerts are *derived*
from the facts, each with a deterministic ``alert_id(child, episode, rule, step)``; each
episode remembers which (rule, step) it raised and resolved, so each alert is emitted
once. An event is *on time* when
its time is no more than ``allowed_lateness`` behind the child's watermark (the latest
event time seen). So when a fact at time ``x`` is known, every fact older than
``x - lateness`` is known too ("settled"). Each rule therefore:

* fires on the *presence* of facts at once (a report, a re-grade, a CSE screening), and
* lets the *absence* of a fact (not found yet, not re-allocated, no interview) count
  only over the settled past: before ``x - lateness`` for a rule decided at ``x``, and
  before the deadline itself for a time rule, which fires once the horizon (watermark,
  or wall clock on a tick) reaches ``deadline + lateness``.

A derived alert then stays derived whatever arrives later (within the lateness), so any
permutation or duplication of on-time events gives the same alert ids and the same
state as in-order delivery (tests/correlator/test_engine_properties.py).
The price: a child found within ``lateness`` before a CSE flag or a de-allocation still
raises that alert (resolved at once), and a ladder step fires if the child was still
missing *as recorded* at the deadline even if a later "found" says the child returned
earlier (also resolved at once). Both err towards telling someone.

Later than the lateness
-----------------------
A report, found or correction that arrives more than the lateness behind the horizon
(a backdated report, a backfill; live, the horizon is the wall clock) marks its episode
known since that horizon (``Episode.known_since``): its time rules are decided no earlier, so the
rest of the episode has the lateness to arrive. Whatever arrives, and in whatever order,
an alert whose resolution is due is resolved (``rules.Rules.resolutions``), also when its rule
no longer derives it on the new facts.
"""

from __future__ import annotations

import bisect
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from beacon.core.alerts import Alert
from beacon.core.domain import RISK_BY_RANK, episode_of, epoch
from beacon.core.events import CloudEvent, EpisodeCorrected, source_org
from beacon.core.policy import Policy
from beacon.correlator.rules import (
    DISCUSSED,
    FOUND,
    NEVER,
    RHI_OVERDUE,
    Derived,
    Rules,
    alert_id_of,
    alert_key,
    tables,
    with_resolution,
)
from beacon.correlator.state import (
    AT_REST_RULES,
    CHILD_SCOPE,
    CSE_RULE,
    EVERY_RULE,
    RAISED,
    REPEAT_RULE,
    RESOLVE,
    RESOLVED,
    TIME_RULES,
    TRIAGE_RULE,
    UNALLOCATED_RULE,
    ChildState,
    Episode,
    Scope,
    correction_refused,
    merge,
)


def as_datetime(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def event_key(event: CloudEvent) -> int:
    """Duplicate key: the same (source, id) is the same event. Only a fast path: a
    duplicate whose key is forgotten is merged again, which changes nothing."""
    return zlib.crc32(f"{event.source}|{event.id}".encode())


@dataclass
class Outcome:
    """What one decide/tick did: for metrics and logs (never personal data)."""

    applied: bool = True
    duplicate: bool = False
    stale: bool = False
    alerts: list[Alert] = field(default_factory=list)
    refused: str | None = None  # why this event was refused (it changed nothing)
    # (event id, reason) of corrections that arrived before their report, refused now
    # that the report says who has a part in the episode (they were never applied).
    refused_earlier: list[tuple[str, str]] = field(default_factory=list)


# ------------------------------------------------------------------ running the rules


class _Derivation(Rules):
    """The rules (``rules.Rules``) run for one event or tick, with the three shortcuts
    that keep a worker at thousands of events a second: only the rules the event's
    ``Scope`` names, no rules for episodes at rest (``Episode.at_rest``), and time rules
    only once the horizon reaches the child's next deadline (``ChildState.next_fire``).
    Each shortcut skips only what cannot change: the result is what running every rule
    would give (tests/correlator/test_engine_properties.py)."""

    looked_at: list[Episode]  # episodes whose rules are all up to date (set by ``derive``)

    def at_rest(self, episode: Episode) -> bool:
        """After a derivation at a horizon at or past the watermark: nothing new can be
        derived for this episode unless an event about it arrives. It closed more than
        twice the lateness ago (so no late CSE flag or de-allocation can count, and every
        ladder step due before the return has been derived), and its return interview
        is settled (recorded before the watermark minus the lateness) or already overdue."""
        w, lateness = self.state.watermark, self.lateness
        if not episode.closings or episode.closings[0][0] >= w - 2 * lateness or self.horizon < w:
            return False
        if episode.known_since + lateness > self.horizon:
            return False  # known late: its time rules are still held (time_points)
        if episode.interview is not None:
            return episode.interview[0] < w - lateness
        return alert_key(RHI_OVERDUE, self.tables.rhi_step) in episode.alert_status

    def derive(self, touched: str | None, scope: Scope) -> list[Derived]:
        """Every alert the facts call for that is not yet said, re-evaluating only the
        rules ``scope`` names (see ``Scope``) for the episode ``touched`` (None: every rule
        of every episode, for a wall-clock tick) and the others. Episodes at rest are
        skipped, except by a tick or an event about them, which re-evaluates all their
        rules. Sets ``next_fire``, the child's next deadline."""
        state = self.state
        derived: list[Derived] = []
        self.looked_at = looked_at = []
        # ``next_fire``: 0 not known yet (then every time rule runs and finds it), -1 nothing pending.
        time_due = 0 <= state.next_fire <= self.horizon
        kept = False  # an episode whose time rules did not run keeps its pending deadline
        for ref, episode in state.episodes.items():
            if episode.report is None:
                continue  # placeholder: nothing to say until the report arrives
            if touched is None:
                rules = EVERY_RULE
            elif ref == touched:
                # At rest, its rules skipped the child's late facts (CSE, allocation): all again.
                rules = EVERY_RULE if episode.at_rest else scope.episode
            else:
                rules = scope.others & AT_REST_RULES if episode.at_rest else scope.others
            if time_due and not episode.at_rest:
                rules |= TIME_RULES
            if rules or not episode.at_rest:
                looked_at.append(episode)  # its rules are all up to date: it may now be at rest
            if not episode.at_rest and not rules & TIME_RULES:
                kept = True
            if not rules:
                continue
            closed = bool(episode.closings)
            first = len(derived)
            for flag, rule in ((TRIAGE_RULE, self.triage), (UNALLOCATED_RULE, self.unallocated)):
                if rules & flag:
                    derived += (with_resolution(d, closed) for d in rule(ref, episode, closed))
            if rules & CSE_RULE:
                derived += self.cse_missing(ref, episode, closed)
            if rules & REPEAT_RULE:
                derived += self.repeat(ref, episode, closed)
            if rules & TIME_RULES:
                derived += self.time_rules(ref, episode, closed)
            # Resolutions come only with a closing fact, a discussion or an interview.
            if (
                rules & RESOLVE
                and (closed or state.discussions or episode.interview)
                and RAISED in episode.alert_status.values()
            ):
                derived += self.resolutions(ref, episode, closed, derived[first:])
        if kept and state.next_fire > 0:
            self.next_fire = min(self.next_fire, state.next_fire)
        return derived

    def settle(self) -> None:
        """Once their alerts are emitted: mark the episodes looked at that are now at rest."""
        for episode in self.looked_at:
            episode.at_rest = self.at_rest(episode)

    def next_deadline(self) -> int | None:
        """When the next not-yet-raised time rule can fire, from every episode's facts."""
        pending = [
            fire_at
            for ref, episode in self.state.episodes.items()
            if episode.report is not None and not episode.at_rest
            for fire_at, rule, step, _, _ in self.time_points(episode)
            if alert_key(rule, step) not in episode.alert_status
        ]
        return min(pending, default=None)


# ------------------------------------------------------------------ emitting


def _emit(
    child_ref: str,
    state: ChildState,
    policy: Policy,
    now: datetime,
    touched: str | None = None,
    scope: Scope = CHILD_SCOPE,
) -> list[Alert]:
    rules = _Derivation(child_ref, state, policy, max(state.watermark, state.ticked_at))
    derived = sorted(rules.derive(touched, scope), key=lambda d: (d.occurred_at, d.rule, d.step))
    raised: list[Alert] = []
    resolved: list[Alert] = []
    for d in derived:
        episode = state.episodes[d.episode_ref]
        key = alert_key(d.rule, d.step)
        status = episode.alert_status.get(key)
        if status == RESOLVED or (status == RAISED and not d.resolved):
            continue  # the common case: nothing new to say
        council = (
            episode.report.council
            if episode.report and episode.report.council
            else (state.placement[2] if state.placement else None)
        )
        common: dict[str, Any] = {
            "alert_id": alert_id_of(child_ref, d),
            "child_ref": child_ref,
            "episode_ref": d.episode_ref,
            "rule": d.rule,
            "step": d.step,
            "severity": d.severity,
            "council": council,
            "notify": d.notify,
            "emitted_at": now,
        }
        if status is None:
            raised.append(
                Alert(
                    status="raised",
                    reason=d.reason,
                    occurred_at=as_datetime(d.occurred_at),
                    trigger_event_ids=d.triggers,
                    **common,
                )
            )
            episode.alert_status[key] = RAISED
            status = RAISED
        if d.resolved and status == RAISED:
            resolved.append(
                Alert(
                    status="resolved",
                    reason=d.resolved_reason,
                    occurred_at=as_datetime(max(d.occurred_at, _resolution_time(rules, episode, d))),
                    trigger_event_ids=d.triggers,
                    closed_by=episode.closed_by if d.resolved_reason == FOUND else None,
                    **common,
                )
            )
            episode.alert_status[key] = RESOLVED
    rules.settle()
    state.next_fire = rules.next_fire if rules.next_fire < NEVER else -1
    return raised + resolved


def _resolution_time(rules: Rules, episode: Episode, d: Derived) -> int:
    if d.resolved_reason == DISCUSSED:
        assert episode.report is not None
        return rules.discussion_time(episode.report)
    if d.rule == RHI_OVERDUE:
        return episode.interview[0] if episode.interview else d.occurred_at
    return episode.closings[0][0] if episode.closings else d.occurred_at


def _prune(state: ChildState, policy: Policy) -> None:
    """Forget what no rule can look at again: closed (or never reported) episodes and
    superseded facts older than the longest window plus the lateness. An episode whose
    strategy-discussion prompt is still open is kept: a discussion held later closes it."""
    cutoff = state.watermark - tables(policy).horizon
    gone = [
        ref
        for ref, e in state.episodes.items()
        if (e.closings or e.report is None)
        and (e.report is None or e.report.time < cutoff)
        and e.last_fact_time() < cutoff
        and not _awaits_discussion(e)
    ]
    if gone:
        for ref in gone:
            del state.episodes[ref]
        state.aliases = {alias: ref for alias, ref in state.aliases.items() if ref in state.episodes}
    for facts in (state.cse_screenings, state.allocations, state.discussions):
        if len(facts) > 1 and facts[1][0] < cutoff:  # sorted: the old facts are a prefix
            old = bisect.bisect_left(facts, (cutoff,))
            del facts[: old - 1]  # keep the latest old one: it is still the value as of now


def _awaits_discussion(episode: Episode) -> bool:
    a = episode.alert_status
    return RAISED in a.values() and any(status == RAISED and key[0] in "RC" for key, status in a.items())


# An events record Kafka got this long before the correlator reads it comes from a backlog
# (the correlator was down, or far behind): the alerts it raises are flagged
# (``Alert.from_backlog``), so an episode whose found is right behind it pages nobody. A busy
# live stream lags far less, so its alerts are never flagged.
BACKLOG_AGE = timedelta(seconds=60)


def from_backlog(written_at: datetime | None, now: datetime, history: bool) -> bool:
    """Whether alerts raised by a record are flagged: a history import's always, an events
    record's when Kafka got it (``written_at``) more than ``BACKLOG_AGE`` before ``now``."""
    return history or (written_at is not None and now - written_at > BACKLOG_AGE)


def flagged(alerts: list[Alert]) -> list[Alert]:
    return [msgspec.structs.replace(alert, from_backlog=True) for alert in alerts]


def decide(state: ChildState, event: CloudEvent, now: datetime, policy: Policy) -> tuple[ChildState, list[Alert]]:
    """Merge one event into the child's state; return the new state and the alerts to emit.
    The state passed in is not modified."""
    state, outcome = apply_event(state, event, now, policy)
    return state, outcome.alerts


def apply_event(
    state: ChildState,
    event: CloudEvent,
    now: datetime,
    policy: Policy,
    *,
    copy: bool = True,
    wall: datetime | None = None,
) -> tuple[ChildState, Outcome]:
    """``decide`` that also says whether the event was applied, a duplicate or stale.
    ``copy=False`` updates ``state`` in place: for a caller that owns it (the worker
    deserialised it for this batch), it saves a deep copy per event. ``wall``: the wall
    clock, from a worker that has caught up with its events (live, not replaying): the
    event is merged at the horizon a tick would have reached, so a report or found that
    arrives later than the lateness behind it holds its episode's time rules for the
    lateness (``Episode.known_since``) instead of firing them over a past it has not heard all of."""
    if copy:
        state = state.copy()
    t = epoch(event.time)
    key = (t, event_key(event))
    if key in state.recent_events:
        return state, Outcome(applied=False, duplicate=True)
    policy_tables = tables(policy)
    if t < state.watermark - policy_tables.horizon:
        # Older than anything a rule still looks at (e.g. a replay of pruned history).
        return state, Outcome(applied=False, stale=True)
    state.recent_events.append(key)
    state.recent_events.sort()
    del state.recent_events[: max(0, len(state.recent_events) - policy.processed_event_memory)]
    refused = _refusal(state, event, policy)
    if refused is not None:
        # Nothing merged; only its key is remembered, as for a correction that came before
        # its report and was refused then, so a resend is a duplicate either way.
        return state, Outcome(applied=False, refused=refused)
    if wall is not None:
        state.ticked_at = max(state.ticked_at, epoch(wall))
    horizon = max(state.watermark, state.ticked_at)
    earlier: list[tuple[str, str]] = []
    known = horizon if t < horizon - policy_tables.lateness else 0
    scope = merge(state, event, t, known, policy.corrections.parties_only, earlier)
    state.watermark = max(state.watermark, t)
    if state.ticked_at <= state.watermark:
        state.ticked_at = 0  # the watermark has caught up with the last tick: nothing to remember
    ref = getattr(event.data, "episode_ref", None)
    touched = episode_of(state.aliases, ref) if ref else ""
    alerts = _emit(event.subject, state, policy, now, touched, scope)
    _prune(state, policy)
    return state, Outcome(alerts=alerts, refused_earlier=earlier)


def _refusal(state: ChildState, event: CloudEvent, policy: Policy) -> str | None:
    """Why a correction of a reported episode is refused (``policy.corrections``), if it is.
    One of an episode not yet reported is checked when its report arrives (``merge``)."""
    data = event.data
    if not isinstance(data, EpisodeCorrected) or not policy.corrections.parties_only:
        return None
    ref = episode_of(state.aliases, data.episode_ref)
    episode = state.episodes.get(ref)
    if episode is None or episode.report is None:
        return None
    return correction_refused(state, episode, ref, source_org(event.source))


def tick(child_ref: str, state: ChildState, now: datetime, policy: Policy) -> tuple[ChildState, list[Alert]]:
    """Fire time rules whose deadline (plus lateness) the wall clock has reached."""
    wall = epoch(now)
    if wall <= max(state.watermark, state.ticked_at):
        return state, []
    state = state.copy()
    state.ticked_at = wall
    return state, _emit(child_ref, state, policy, now)


def next_deadline(child_ref: str, state: ChildState, policy: Policy) -> int | None:
    """Epoch second at which a tick could next raise a time-rule alert for this child
    (never later than the real one; it may be earlier)."""
    if state.next_fire:
        return state.next_fire if state.next_fire > 0 else None
    return _Derivation(child_ref, state, policy, NEVER).next_deadline()


def missing_risk(state: ChildState) -> str | None:
    """Police risk grade of the child's open episode (latest re-grade), None if not missing."""
    current = state.open_episode()
    if current is None:
        return None
    episode = current[1]
    assert episode.report is not None
    latest = max([(episode.report.time, episode.report.event_id, episode.report.risk), *episode.regrades])
    return RISK_BY_RANK[latest[2]]
